// Code interpreter conformance: the official `@e2b/code-interpreter` JS SDK (the version pinned in
// ../js/package.json, installed in ../js/node_modules) against a running `stasis server`, through
// the SDK's own environment variables (E2B_API_KEY, E2B_API_URL, E2B_SANDBOX_URL). Prints
// `PASS <gen> <scenario>` or `FAIL <gen> <scenario>: <reason>` per scenario (gen: $STASIS_GEN,
// default interp-js); exits non-zero when any failed.
//
//   node test_interpreter.mjs [scenario ...]

import { Sandbox } from '../js/node_modules/@e2b/code-interpreter/dist/index.mjs'

const GEN = process.env.STASIS_GEN || 'interp-js'
const DEBUG = process.env.STASIS_CONFORMANCE_DEBUG === '1'
const SERVICE_LOG = '/var/log/stasis-template-start.log'

class Failure extends Error {}

function check(cond, what) {
  if (!cond) throw new Failure(what)
}

function checkEq(got, want, what) {
  const [g, w] = [JSON.stringify(got), JSON.stringify(want)]
  if (g !== w) throw new Failure(`${what}: got ${g}, want ${w}`)
}

function debug(msg) {
  if (DEBUG) process.stderr.write(`[${GEN}] ${msg}\n`)
}

// By name: the SDK's error classes come from its own copy of `e2b`.
async function expectError(name, what, fn) {
  try {
    await fn()
  } catch (err) {
    if (err?.name === name) return err
    throw new Failure(`${what}: expected ${name}, got ${err?.name}: ${err?.message}`)
  }
  throw new Failure(`${what}: expected ${name}, nothing was thrown`)
}

const scenarios = {
  // Sandbox.create() with no template gives an interpreter; variables persist across calls.
  async 'default-template'(sbx) {
    const first = await sbx.runCode("x = 41\nprint('hello')")
    checkEq(first.error, undefined, 'error of `x = 41`')
    checkEq(first.logs.stdout, ['hello\n'], 'stdout of print')
    const second = await sbx.runCode('x + 1')
    checkEq(second.text, '42', 'text of `x + 1`')
    checkEq(second.executionCount, first.executionCount + 1, 'executionCount after one more run')
    const seen = []
    await sbx.runCode('for i in range(3): print(i, flush=True)', { onStdout: (m) => seen.push(m.line) })
    checkEq(seen.join(''), '0\n1\n2\n', 'onStdout lines')
  },

  // A matplotlib figure comes back as a PNG that decodes as an image; display() works.
  async 'rich-output'(sbx) {
    const ex = await sbx.runCode(
      'import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.show()'
    )
    checkEq(ex.error, undefined, 'error of the plot')
    const pngs = ex.results.filter((r) => r.png).map((r) => r.png)
    check(pngs.length === 1, `one PNG result, got ${JSON.stringify(ex.results.map((r) => r.formats()))}`)
    const raw = Buffer.from(pngs[0], 'base64')
    check(raw.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), 'PNG signature')
    check(raw.readUInt32BE(16) > 100 && raw.readUInt32BE(20) > 100, 'PNG dimensions')
    const html = await sbx.runCode("from IPython.display import display, HTML\ndisplay(HTML('<i>it</i>'))\n'done'")
    check(html.results.some((r) => r.html === '<i>it</i>' && !r.isMainResult), 'display(HTML) result')
    checkEq(html.text, 'done', 'main result next to a display()')
  },

  // An exception comes back as name, value and traceback.
  async error(sbx) {
    const ex = await sbx.runCode("print('before')\nraise ValueError('bad value')")
    check(ex.error, 'no error for raise')
    checkEq(ex.error.name, 'ValueError', 'error name')
    checkEq(ex.error.value, 'bad value', 'error value')
    check(typeof ex.error.traceback === 'string' && ex.error.traceback.includes('ValueError'), `traceback ${ex.error.traceback}`)
    checkEq(ex.logs.stdout, ['before\n'], 'stdout before the error')
    checkEq((await sbx.runCode('2 * 3')).text, '6', 'the kernel works after an error')
  },

  // Contexts keep separate state; JavaScript and bash contexts work.
  async contexts(sbx) {
    const a = await sbx.createCodeContext()
    const b = await sbx.createCodeContext({ language: 'python', cwd: '/tmp' })
    checkEq([a.language, b.cwd], ['python', '/tmp'], 'context fields')
    await sbx.runCode("v = 'a'", { context: a })
    await sbx.runCode("v = 'b'", { context: b })
    checkEq((await sbx.runCode('v', { context: a })).text, 'a', 'v in context a')
    checkEq((await sbx.runCode('v', { context: b })).text, 'b', 'v in context b')
    const listed = (await sbx.listCodeContexts()).map((c) => c.id)
    check(listed.includes(a.id) && listed.includes(b.id), `listCodeContexts: ${listed}`)
    const env = await sbx.runCode("import os; os.environ['STASIS_T']", { context: a, envs: { STASIS_T: 'js' } })
    checkEq(env.text, 'js', 'envs seen by the execution')
    await sbx.restartCodeContext(a)
    check((await sbx.runCode('v', { context: a })).error?.name === 'NameError', 'state is gone after a restart')
    const js = await sbx.createCodeContext({ language: 'javascript' })
    await sbx.runCode('var n = 20; console.log("hi")', { context: js })
    const jsv = await sbx.runCode('n + 1', { context: js })
    checkEq(jsv.text, '21', 'JavaScript state persists')
    const sh = await sbx.runCode('echo $((6 * 7))', { language: 'bash' })
    checkEq(sh.logs.stdout.join(''), '42\n', 'a bash execution')
  },

  // Unknown contexts are NotFound.
  async 'invalid-context'(sbx) {
    const ctx = await sbx.createCodeContext()
    await sbx.removeCodeContext(ctx)
    await expectError('NotFoundError', 'runCode in a removed context', () => sbx.runCode('1', { context: ctx }))
    await expectError('NotFoundError', 'restart of an unknown context', () => sbx.restartCodeContext('no-such-context'))
  },

  // A client timeout interrupts an endless loop; the kernel and its state survive.
  async interrupt(sbx) {
    await sbx.runCode("kept = 'still here'")
    await expectError('TimeoutError', 'an endless loop with timeoutMs 3000', () => sbx.runCode('while True:\n    pass', { timeoutMs: 3000 }))
    const next = await sbx.runCode('kept')
    checkEq(next.text, 'still here', `the next execution after an interrupt (${JSON.stringify(next)})`)
  },

  // Variables, imports, open files and the counter survive pause + connect.
  async 'pause-resume'(sbx) {
    await sbx.runCode("import json\nx = {'k': 5}\nf = open('/tmp/held.txt', 'w+')\nf.write('xyz'); f.flush()")
    const before = await sbx.runCode('x')
    check(await sbx.pause(), 'pause() returned false')
    const again = await sbx.connect()
    const after = await again.runCode("x['k']")
    checkEq(after.error, undefined, 'error of the first runCode after resume')
    checkEq(after.text, '5', 'x after resume')
    checkEq(after.executionCount, before.executionCount + 1, 'execution counter after resume')
    checkEq((await again.runCode('f.seek(0); f.read()')).text, 'xyz', 'an open file after resume')
    checkEq((await again.runCode('json.dumps(x)')).text, '{"k": 5}', 'an import after resume')
  },
}

let failed = 0
const names = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(scenarios)
for (const name of names) {
  const fn = scenarios[name]
  if (!fn) {
    console.log(`FAIL ${GEN} ${name}: unknown scenario (known: ${Object.keys(scenarios).join(' ')})`)
    failed++
    continue
  }
  const started = Date.now()
  let sbx
  try {
    sbx = await Sandbox.create({ timeoutMs: 600_000 })
    debug(`${name}: sandbox ${sbx.sandboxId} ready after ${Date.now() - started} ms`)
    await fn(sbx)
    console.log(`PASS ${GEN} ${name}`)
  } catch (err) {
    failed++
    console.log(`FAIL ${GEN} ${name}: ${err?.name}: ${String(err?.message).replace(/\n/g, ' ').slice(0, 300)}`)
    if (DEBUG) {
      console.error(err)
      // The interpreter service's own log, from inside the sandbox.
      const log = await sbx?.commands.run(`tail -n 40 ${SERVICE_LOG}`).catch((e) => ({ stdout: `(unreadable: ${e})` }))
      console.error(`${SERVICE_LOG}:\n${log?.stdout}`)
    }
  } finally {
    debug(`${name}: ${Date.now() - started} ms`)
    if (sbx) await sbx.kill().catch(() => {})
  }
}
process.exit(failed ? 1 : 0)
