// The conformance scenarios for one JS SDK generation (STASIS_GEN=js-current|js-beta), against a
// running `stasis server` configured through the SDK's own environment variables. Prints one
// PASS/FAIL line per scenario; exits non-zero when any failed.
//
//   node scenarios.mjs [scenario-name ...]

import {
  BETA,
  Failure,
  RUN_TAG,
  check,
  checkEq,
  checkNear,
  describe,
  eventually,
  expectError,
  rest,
  runScenarios,
  show,
  sleep,
  within,
} from './lib/harness.mjs'
import { load } from './lib/generation.mjs'
import { documentScenario } from './lib/document.mjs'

const sdk = await load('e2b')
const { Sandbox, m } = sdk

/** Output of a command that must succeed. */
async function sh(sbx, cmd) {
  return (await sbx.commands.run(cmd)).stdout
}

/** An in-sandbox HTTP/1.1 server on `port`: `/ping` answers `pong`, `/stream` sends `<n>\n` every 100 ms. */
const STREAM_SERVER = `
import http.server, sys, time

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == '/ping':
            body = b'pong'
            self.send_response(200)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header('Content-Type', 'text/plain')
        self.send_header('Transfer-Encoding', 'chunked')
        self.end_headers()
        n = 0
        try:
            while True:
                line = b'%d\\n' % n
                self.wfile.write(b'%x\\r\\n%s\\r\\n' % (len(line), line))
                self.wfile.flush()
                n += 1
                time.sleep(0.1)
        except OSError:
            pass

http.server.ThreadingHTTPServer(('0.0.0.0', int(sys.argv[1])), Handler).serve_forever()
`

/** Reads a streamed response in the background; `chunks` counts lines, `ended` settles when it stops. */
function consume(res) {
  const state = { lines: 0, ended: null }
  const reader = res.body.getReader()
  const decoder = new TextDecoder()
  state.reader = reader
  state.ended = (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) return { how: 'end of body', at: Date.now() }
        state.lines += (decoder.decode(value, { stream: true }).match(/\n/g) ?? []).length
      }
    } catch (err) {
      return { how: `error (${err.cause?.code ?? err.name}: ${err.cause?.message ?? err.message})`, at: Date.now() }
    }
  })()
  return state
}

const scenarios = [
  documentScenario('ci'),
  documentScenario('e2b'),

  {
    name: '2-state',
    async run(ctx) {
      const sbx = await Sandbox.create({ timeoutMs: 300_000 })
      const id = ctx.track(sbx.sandboxId)
      const text = `written before pause by ${RUN_TAG}\n`
      await sbx.files.write('/home/user/state.txt', text)
      const counter = await sbx.commands.run(
        `bash -c 'i=0; while true; do echo $i > /tmp/counter.new; mv /tmp/counter.new /tmp/counter; i=$((i+1)); sleep 0.1; done'`,
        { background: true, timeoutMs: 0 },
      )
      const server = await sbx.commands.run('python3 -m http.server 8000 --directory /home/user', {
        background: true,
        timeoutMs: 0,
      })
      await eventually(15_000, 200, 'in-sandbox http.server on :8000 answers', async () =>
        (await sh(sbx, "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/state.txt || true")) === '200',
      )
      await sleep(1000)
      const before = Number((await sbx.files.read('/tmp/counter')).trim())
      check(before >= 5, `counter before pause is ${before}, expected ≥ 5 after a second`)

      checkEq(await sbx.pause(), sdk.pausedAnswer(id), 'pause()')
      checkEq((await sdk.info(id))?.state, 'paused', 'state after pause')
      await sleep(1500)
      const again = await sdk.resume(id)
      checkEq(again.sandboxId, id, 'resumed sandbox id')

      checkEq(await again.files.read('/home/user/state.txt'), text, 'file written before pause')
      const pids = (await again.commands.list()).map((p) => p.pid)
      check(pids.includes(counter.pid), `background counter pid ${counter.pid} not in commands.list() ${show(pids)}`)
      check(pids.includes(server.pid), `http.server pid ${server.pid} not in commands.list() ${show(pids)}`)

      const c1 = Number((await again.files.read('/tmp/counter')).trim())
      check(c1 >= before, `counter went from ${before} to ${c1} across the pause: restarted, not restored`)
      await sleep(1000)
      const c2 = Number((await again.files.read('/tmp/counter')).trim())
      check(c2 > c1, `counter stopped after resume: ${c1} then ${c2} a second later`)

      checkEq(
        await sh(again, "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/state.txt"),
        '200',
        'in-sandbox curl of the http.server after resume',
      )
      const url = `${sdk.scheme}://${again.getHost(8000)}/state.txt`
      const res = await fetch(url, { signal: AbortSignal.timeout(10_000) })
      checkEq(res.status, 200, `GET ${url} through the proxy after resume`)
      checkEq(await res.text(), text, `body of ${url}`)
    },
  },

  {
    name: '3-network',
    async run(ctx) {
      const sbx = await Sandbox.create({ timeoutMs: 300_000 })
      const id = ctx.track(sbx.sandboxId)
      await sbx.files.write('/home/user/stream.py', STREAM_SERVER)
      await sbx.commands.run('python3 /home/user/stream.py 8080', { background: true, timeoutMs: 0 })
      const base = `${sdk.scheme}://${sbx.getHost(8080)}`

      await eventually(15_000, 200, `GET ${base}/ping answers 200`, async () => {
        const r = await fetch(`${base}/ping`, { signal: AbortSignal.timeout(5_000) })
        return r.status === 200 && (await r.text()) === 'pong'
      })

      const res = await fetch(`${base}/stream`, { signal: AbortSignal.timeout(120_000) })
      checkEq(res.status, 200, `GET ${base}/stream`)
      const stream = consume(res)
      await eventually(10_000, 50, 'three streamed lines before pause', async () => stream.lines >= 3)

      const pauseStarted = Date.now()
      checkEq(await sbx.pause(), sdk.pausedAnswer(id), 'pause() while a client streams')
      const pausedAt = Date.now()
      const end = await within(10_000, 'the streaming client being disconnected after pause', stream.ended)
      check(end.at >= pauseStarted, `stream ended by ${end.how} before the pause started`)
      check(end.at <= pausedAt + 5_000, `stream ended ${(end.at - pausedAt) / 1000} s after pause returned`)
      ctx.log(`stream ended by ${end.how} after ${stream.lines} lines`)
      const linesAtEnd = stream.lines

      // While paused: the proxy answers 502 with E2B's body, the SDK reports not running.
      const r = await fetch(`${base}/ping`, { signal: AbortSignal.timeout(10_000) })
      const body = await r.text()
      checkEq(r.status, 502, `GET ${base}/ping while paused (body ${body.slice(0, 200)})`)
      let json
      try {
        json = JSON.parse(body)
      } catch {
        throw new Failure(`502 body while paused is not JSON: ${show(body.slice(0, 200))}`)
      }
      checkEq(json.code, 502, '502 body .code')
      check(/not found/i.test(json.message ?? ''), `502 body .message ${show(json.message)} lacks "not found"`)
      // The beta's id is `{sandboxID}-{clientID}`; the proxy may name either form.
      check(json.sandboxId === id || json.sandboxId === id.split('-')[0], `502 body .sandboxId ${show(json.sandboxId)} for ${id}`)
      checkEq(await sbx.isRunning(), false, 'isRunning() while paused')
      await expectError(sbx.files.read('/home/user/stream.py'), m.TimeoutError, 'files.read() while paused')

      const again = await sdk.resume(id)
      await sleep(300)
      checkEq(stream.lines, linesAtEnd, 'the disconnected stream stays disconnected after resume')
      const r2 = await fetch(`${base}/ping`, { signal: AbortSignal.timeout(10_000) })
      checkEq(r2.status, 200, `first GET ${base}/ping after resume`)
      checkEq(await r2.text(), 'pong', 'body of /ping after resume')
      checkEq(await again.isRunning(), true, 'isRunning() after resume')

      const res2 = await fetch(`${base}/stream`, { signal: AbortSignal.timeout(30_000) })
      checkEq(res2.status, 200, `new GET ${base}/stream after resume`)
      const stream2 = consume(res2)
      await eventually(10_000, 50, 'three lines on a new stream after resume', async () => stream2.lines >= 3)
      await stream2.reader.cancel()
    },
  },

  {
    name: '4-pagination',
    async run(ctx) {
      const suite = `${RUN_TAG}-4`
      const label = 'a b&c=d/é?%'
      const meta = (i) => ({
        suite,
        idx: String(i),
        group: i % 2 ? 'odd' : 'even',
        ...(i === 0 && { label }),
      })
      const ids = []
      for (let batch = 0; batch < 8; batch += 4) {
        const made = await Promise.all(
          [0, 1, 2, 3].map((k) => Sandbox.create({ timeoutMs: 300_000, metadata: meta(batch + k) })),
        )
        for (const s of made) ids.push(ctx.track(s.sandboxId))
      }
      const paused = ids.slice(0, 7)
      const running = ids[7]
      for (let k = 0; k < paused.length; k += 4) {
        const answers = await Promise.all(paused.slice(k, k + 4).map((id) => sdk.pauseById(id)))
        answers.forEach((a, j) => checkEq(a, sdk.pausedAnswer(paused[k + j]), `pause of ${paused[k + j]}`))
      }

      const listAll = async (opts, what) => {
        const paginator = Sandbox.list(opts)
        const pages = []
        while (paginator.hasNext) {
          const page = await paginator.nextItems()
          pages.push(page)
          check(pages.length <= 20, `${what}: more than 20 pages`)
        }
        return pages
      }

      const pages = await listAll({ query: { state: ['paused'], metadata: { suite } }, limit: 3 }, 'paused, limit 3')
      const sizes = pages.map((p) => p.length)
      check(sizes.every((n) => n <= 3), `paused, limit 3: page sizes ${show(sizes)}`)
      check(pages.length >= 3, `paused, limit 3: ${pages.length} pages (${show(sizes)}) for 7 sandboxes`)
      const items = pages.flat()
      const got = items.map((s) => s.sandboxId)
      checkEq(new Set(got).size, got.length, `paused, limit 3: duplicates across pages ${show(got)}`)
      checkEq([...got].sort().join(','), [...paused].sort().join(','), 'paused, limit 3: the ids across all pages')
      check(items.every((s) => s.state === 'paused'), `paused, limit 3: states ${show(items.map((s) => s.state))}`)
      check(items.every((s) => s.metadata?.suite === suite), 'paused, limit 3: metadata of the listed sandboxes')

      const byMeta = async (metadata, state) =>
        (await listAll({ query: { metadata, ...(state && { state }) }, limit: 3 }, show(metadata)))
          .flat()
          .map((s) => s.sandboxId)
          .sort()
          .join(',')
      checkEq(
        await byMeta({ suite, group: 'even' }, ['paused']),
        [0, 2, 4, 6].map((i) => ids[i]).sort().join(','),
        'paused with metadata group=even',
      )
      checkEq(await byMeta({ suite, label }, ['paused']), ids[0], `paused with metadata label=${show(label)}`)
      checkEq(await byMeta({ suite }, ['running']), running, 'running with the suite metadata')
      checkEq(await byMeta({ suite }), [...ids].sort().join(','), 'no state filter (running and paused)')
      checkEq(await byMeta({ suite: `${suite}-none` }, ['paused']), '', 'a metadata value nobody has')
    },
  },

  {
    name: '5-errors',
    async run(ctx) {
      const sbx = await Sandbox.create({ timeoutMs: 300_000 })
      const id = ctx.track(sbx.sandboxId)

      await expectError(sbx.commands.run('exit 3'), m.CommandExitError, "commands.run('exit 3')", (e) =>
        checkEq(e.exitCode, 3, 'CommandExitError.exitCode'),
      )
      await expectError(sbx.commands.run('echo oops >&2; exit 7'), m.CommandExitError, 'exit 7', (e) => {
        checkEq(e.exitCode, 7, 'CommandExitError.exitCode')
        checkEq(e.stderr, 'oops\n', 'CommandExitError.stderr')
      })

      checkEq(await sbx.pause(), sdk.pausedAnswer(id), 'first pause()')
      if (BETA) {
        // The beta's pause() ignores the 409 (it answers the id either way): check the wire.
        checkEq(await sbx.pause(), id, 'second pause() (beta: the id, no error)')
        const r = await rest('POST', `/sandboxes/${id}/pause`, {})
        checkEq(r.status, 409, `POST /sandboxes/${id}/pause of a paused sandbox`)
        checkEq(r.json?.code, 409, '409 body .code (the SDK reads body.code)')
      } else {
        checkEq(await sbx.pause(), false, 'second pause()')
      }

      if (BETA) {
        await sbx.kill()
        checkEq(await Sandbox.kill(id), false, 'Sandbox.kill() after kill()')
      } else {
        checkEq(await sbx.kill(), true, 'kill() of a paused sandbox')
        checkEq(await sbx.kill(), false, 'second kill()')
        checkEq(await Sandbox.kill(id), false, 'Sandbox.kill() after kill()')
        await expectError(sbx.pause(), m.NotFoundError, 'pause() of a killed sandbox')
      }
      await expectError(sdk.resume(id), m.NotFoundError, 'resume of a killed sandbox')

      const unknown = 'stasisconformanceunknown'
      await expectError(sdk.resume(unknown), m.NotFoundError, 'resume of an unknown id')
      checkEq(await Sandbox.kill(unknown), false, 'Sandbox.kill() of an unknown id')
      await expectError(Sandbox.setTimeout(unknown, 10_000), BETA ? m.SandboxError : m.NotFoundError, 'setTimeout of an unknown id')
      if (!BETA) {
        await expectError(Sandbox.getInfo(unknown), m.NotFoundError, 'getInfo of an unknown id')
        await expectError(Sandbox.pause(unknown), m.NotFoundError, 'pause of an unknown id')
      }

      // A wrong API key: today's SDK raises AuthenticationError; the beta maps every non-429
      // API error, 401 included, to SandboxError("401: ...").
      const wrong = { apiKey: 'stasis-conformance-wrong-key' }
      const authCheck = (e) => BETA && check(/^401\b/.test(e.message), `beta error for a wrong key: ${show(e.message)}`)
      await expectError(Sandbox.create(wrong), BETA ? m.SandboxError : m.AuthenticationError, 'create with a wrong API key', authCheck)
      if (!BETA) {
        await expectError(Sandbox.list(wrong).nextItems(), m.AuthenticationError, 'list with a wrong API key')
        await expectError(Sandbox.connect(id, wrong), m.AuthenticationError, 'connect with a wrong API key')
      }
      await expectError(Sandbox.kill(id, wrong), BETA ? m.SandboxError : m.AuthenticationError, 'kill with a wrong API key', authCheck)
    },
  },

  {
    name: '6-timeouts',
    async run(ctx) {
      const expiry = async () => {
        const sbx = await Sandbox.create({ timeoutMs: 5_000 })
        const created = Date.now()
        const id = ctx.track(sbx.sandboxId)
        checkNear((await sdk.info(id)).endAt, created + 5_000, 3_000, 'endAt of a 5 s sandbox')
        await sleep(2_000)
        checkEq(await sbx.isRunning(), true, 'isRunning() 2 s into a 5 s timeout')
        await eventually(15_000, 250, `5 s sandbox ${id} gone`, async () => (await sdk.info(id)) === null)
        check(Date.now() - created >= 4_000, `5 s sandbox gone after only ${(Date.now() - created) / 1000} s`)
        checkEq(await sbx.isRunning(), false, 'isRunning() after the timeout')
        checkEq(await Sandbox.kill(id), false, 'Sandbox.kill() after the timeout')
        await expectError(sdk.resume(id), m.NotFoundError, 'resume after the timeout killed it')
      }

      const extend = async () => {
        const sbx = await Sandbox.create({ timeoutMs: 5_000 })
        const id = ctx.track(sbx.sandboxId)
        await sbx.setTimeout(30_000)
        const setAt = Date.now()
        checkNear((await sdk.info(id)).endAt, setAt + 30_000, 3_000, 'endAt after setTimeout(30 s)')
        await sleep(8_000)
        checkEq((await sdk.info(id))?.state, 'running', 'state 8 s into a 5 s timeout extended to 30 s')
        checkEq(await sbx.isRunning(), true, 'isRunning() after the extension')
        checkEq(await sh(sbx, 'echo alive'), 'alive\n', 'a command after the extension')
        await sbx.setTimeout(2_000)
        const shortenedAt = Date.now()
        await eventually(12_000, 250, `sandbox ${id} gone after setTimeout(2 s)`, async () => (await sdk.info(id)) === null)
        check(Date.now() - shortenedAt >= 1_000, 'gone less than a second after setTimeout(2 s)')
      }

      const autoPause = async () => {
        // Only today's SDK can ask for auto-pause (the beta's create sends autoPause: false).
        const sbx = await Sandbox.create({ timeoutMs: 5_000, lifecycle: { onTimeout: 'pause' } })
        const id = ctx.track(sbx.sandboxId)
        await sbx.files.write('/home/user/auto.txt', 'kept')
        await eventually(15_000, 250, `auto-pause of ${id} at its timeout`, async () => (await sdk.info(id))?.state === 'paused')
        const again = await Sandbox.connect(id, { timeoutMs: 5_000 })
        checkEq(await again.files.read('/home/user/auto.txt'), 'kept', 'file after auto-pause and connect')
        // The policy survives the resume: the next timeout pauses again rather than killing.
        await eventually(15_000, 250, `second auto-pause of ${id} after a resume`, async () => {
          const info = await sdk.info(id)
          if (info === null) throw new Failure(`${id} was killed at its second timeout instead of paused`)
          return info.state === 'paused'
        })
      }

      const autoResume = async () => {
        // Traffic through the proxy resumes a sandbox that asked for it (today's SDKs only).
        const sbx = await Sandbox.create({ timeoutMs: 5_000, lifecycle: { onTimeout: 'pause', autoResume: true } })
        const id = ctx.track(sbx.sandboxId)
        await sbx.files.write('/home/user/index.html', 'awake')
        await sbx.commands.run('python3 -m http.server 8000 --directory /home/user', { background: true, timeoutMs: 0 })
        const url = `${sdk.scheme}://${sbx.getHost(8000)}/index.html`
        await eventually(10_000, 200, `GET ${url} before the timeout`, async () => (await fetch(url)).status === 200)
        await eventually(15_000, 250, `auto-pause of ${id}`, async () => (await sdk.info(id))?.state === 'paused')
        await sleep(1_000)
        const res = await fetch(url, { signal: AbortSignal.timeout(20_000) })
        checkEq(res.status, 200, `GET ${url} of an auto-pausing sandbox with autoResume`)
        checkEq(await res.text(), 'awake', 'body served after auto-resume')
        checkEq((await sdk.info(id))?.state, 'running', 'state after traffic auto-resumed it')
      }

      const checks = { expiry, extend, ...(!BETA && { autoPause, autoResume }) }
      const results = await Promise.allSettled(Object.values(checks).map((f) => f()))
      const failures = results
        .map((r, i) => r.status === 'rejected' && `${Object.keys(checks)[i]}: ${r.reason instanceof Failure ? r.reason.message : describe(r.reason)}`)
        .filter(Boolean)
      if (failures.length) throw new Failure(failures.join('; '))
    },
  },
]

scenarios.push({
  name: '7-interpreter-state',
  async run(ctx) {
    // "Loaded variables" survive a pause: the document's promise, with the code interpreter.
    const ci = await load('ci')
    const sbx = await ci.Sandbox.create({ timeoutMs: 300_000 })
    const id = ctx.track(sbx.sandboxId)
    const first = await sbx.runCode('x = 41 + 1\nx')
    check(!first.error, `runCode before pause: ${show(first.error)}`)
    checkEq(first.text, '42', 'runCode result before pause')
    checkEq(await sbx.pause(), ci.pausedAnswer(id), 'pause()')
    const again = await ci.resume(id)
    const after = await again.runCode('x')
    check(!after.error, `runCode('x') after resume: ${show(after.error)}`)
    checkEq(after.text, '42', "runCode('x') after resume")
  },
})

scenarios.push({
  name: '8-abandoned-pause',
  async run(ctx) {
    // A client that gives up on pause() (a request timeout, a serverless function killed) must
    // not leave the sandbox stuck: it ends up paused or running, and connect and kill work.
    const sbx = await Sandbox.create({ timeoutMs: 300_000 })
    const id = ctx.track(sbx.sandboxId)
    await sbx.files.write('/home/user/kept.txt', 'kept')
    const outcome = await sbx.pause({ requestTimeoutMs: 40 }).then(
      (v) => `answered ${show(v)}`,
      (e) => `gave up (${e.name})`,
    )
    ctx.log(`pause with requestTimeoutMs 40: ${outcome}`)
    const state = await eventually(15_000, 250, `${id} settles after an abandoned pause (${outcome})`, async () => {
      const s = (await sdk.info(id))?.state
      return (s === 'paused' || s === 'running') && s
    })
    const again = await within(15_000, `resume after an abandoned pause (state ${state})`, sdk.resume(id))
    checkEq(await again.files.read('/home/user/kept.txt'), 'kept', 'file after an abandoned pause and resume')
    checkEq(await within(15_000, 'kill after an abandoned pause', Sandbox.kill(id)), true, 'Sandbox.kill()')
  },
})

scenarios.push({
  name: '9-repeated-cycles',
  async run(ctx) {
    // Five pause/resume cycles in a row (E2B#736: the second cycle failed; E2B#884: files lost
    // after repeated cycles): every write survives every cycle, the same process keeps running.
    const sbx = await Sandbox.create({ timeoutMs: 300_000 })
    const id = ctx.track(sbx.sandboxId)
    const counter = await sbx.commands.run('sleep infinity', { background: true, timeoutMs: 0 })
    let current = sbx
    for (let i = 1; i <= 5; i++) {
      await current.files.write(`/home/user/cycle-${i}.txt`, `cycle ${i}`)
      await current.commands.run(`echo ${i} >> /home/user/log.txt`)
      checkEq(await current.pause(), sdk.pausedAnswer(id), `pause() #${i}`)
      current = await sdk.resume(id)
      for (let j = 1; j <= i; j++) {
        checkEq(await current.files.read(`/home/user/cycle-${j}.txt`), `cycle ${j}`, `cycle-${j}.txt after resume #${i}`)
      }
      const expected = Array.from({ length: i }, (_, k) => `${k + 1}\n`).join('')
      checkEq(await current.files.read('/home/user/log.txt'), expected, `log.txt after resume #${i}`)
      const pids = (await current.commands.list()).map((p) => p.pid)
      check(pids.includes(counter.pid), `pid ${counter.pid} missing after resume #${i}: ${show(pids)}`)
    }
  },
})

/** An HTTPS request to a package registry from inside the sandbox: its status, "000" when blocked. */
const EGRESS = "curl -sk -o /dev/null -m 8 -w '%{http_code}' https://pypi.org/simple/six/ || true"

if (!BETA) {
  // The beta SDK predates E2B's network options.
  scenarios.push({
    name: '10-egress',
    async run(ctx) {
      // Internet on by default, off per sandbox, allow/deny lists on create and while running,
      // and egress back after a pause/resume.
      const open = await Sandbox.create({ timeoutMs: 300_000 })
      const id = ctx.track(open.sandboxId)
      checkEq(await sh(open, EGRESS), '200', 'egress with the default network')
      await open.updateNetwork({ denyOut: ['0.0.0.0/0'] })
      checkEq(await sh(open, EGRESS), '000', "egress after updateNetwork({ denyOut: ['0.0.0.0/0'] })")
      await open.updateNetwork({})
      checkEq(await sh(open, EGRESS), '200', 'egress after updateNetwork({}) cleared the rules')
      checkEq(await open.pause(), sdk.pausedAnswer(id), 'pause()')
      const again = await sdk.resume(id)
      checkEq(await sh(again, EGRESS), '200', 'egress after resume')

      const closed = await Sandbox.create({ timeoutMs: 300_000, allowInternetAccess: false })
      ctx.track(closed.sandboxId)
      checkEq(await sh(closed, EGRESS), '000', 'egress with allowInternetAccess: false')
      const listed = await Sandbox.create({ timeoutMs: 300_000, network: { denyOut: ['0.0.0.0/0'], allowOut: ['pypi.org'] } })
      ctx.track(listed.sandboxId)
      checkEq(await sh(listed, EGRESS), '200', "egress to an allowOut name under denyOut ['0.0.0.0/0']")
      await expectError(Sandbox.create({ network: { denyOut: ['pypi.org'] } }), m.SandboxError, 'create with a domain name in denyOut')
    },
  })
}

const only = process.argv.slice(2)
const failed = await runScenarios(scenarios, only.length ? only : undefined)
process.exit(failed ? 1 : 0)
