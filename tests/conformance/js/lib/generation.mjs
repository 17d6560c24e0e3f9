// What differs between the SDK generations, in one place. The beta (1.2.0-beta.4) resumes with
// `Sandbox.resume`, returns the id from `pause()`, has no `getInfo` and maps a 401 to a plain
// `SandboxError`; today's SDK (2.51.0) resumes with `Sandbox.connect`, returns true/false from
// `pause()`, and has `getInfo`.

import { BETA, Failure, rest } from './harness.mjs'

/**
 * The SDK module for `flavour` `e2b` (base sandboxes) or `ci` (`@e2b/code-interpreter`), of the
 * generation under test, with the generation's verbs.
 */
export async function load(flavour = 'e2b') {
  const pkg = {
    'e2b': BETA ? 'e2b-beta' : 'e2b',
    'ci': BETA ? '@e2b/code-interpreter-beta' : '@e2b/code-interpreter',
  }[flavour]
  const m = await import(pkg)
  const { Sandbox } = m

  return {
    m,
    Sandbox,
    scheme: BETA ? 'https' : 'http',

    /** Resume a paused sandbox the way the generation does it; returns the instance. */
    resume: (id, opts) => (BETA ? Sandbox.resume(id, opts) : Sandbox.connect(id, opts)),

    /** What `pause()` answers when it paused the sandbox. */
    pausedAnswer: (id) => (BETA ? id : true),

    /** Pause by id; answers like the instance method. */
    pauseById: async (id) => (BETA ? (await Sandbox.connect(id)).pause() : Sandbox.pause(id)),

    /**
     * `{state, endAt}` of a sandbox, or null when the API says it does not exist. The beta has no
     * getInfo, so it asks the API directly (the same route today's SDK uses).
     */
    async info(id) {
      if (!BETA) {
        try {
          const i = await Sandbox.getInfo(id)
          return { state: i.state, endAt: i.endAt, metadata: i.metadata }
        } catch (err) {
          if (err instanceof m.NotFoundError) return null
          throw err
        }
      }
      const res = await rest('GET', `/sandboxes/${encodeURIComponent(id)}`)
      if (res.status === 404) return null
      if (res.status !== 200) throw new Failure(`GET /sandboxes/${id}: ${res.status} ${res.text.slice(0, 200)}`)
      return { state: res.json.state, endAt: new Date(res.json.endAt), metadata: res.json.metadata }
    },
  }
}
