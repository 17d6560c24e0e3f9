// Wire-compatibility smoke test: the official E2B JS SDK (pinned in package.json) drives a
// stasis-envd listening on localhost:49983, through the SDK's debug mode (which skips the
// control plane and talks to envd directly). Run by ../tests/sdk_smoke.rs when node is present.
import { Sandbox, CommandExitError, NotFoundError } from 'e2b'
import assert from 'node:assert/strict'

const sbx = await Sandbox.create({ debug: true })
const home = `${process.env.SMOKE_HOME}/js-${process.pid}-${Date.now()}`

// commands
const r = await sbx.commands.run('echo hi; echo err >&2')
assert.equal(r.stdout, 'hi\n'); assert.equal(r.stderr, 'err\n'); assert.equal(r.exitCode, 0)
await assert.rejects(sbx.commands.run('exit 3'), (e) => e instanceof CommandExitError && e.exitCode === 3)
assert.equal((await sbx.commands.run('whoami', { user: 'root' })).stdout, 'root\n')
assert.equal((await sbx.commands.run('echo $FOO', { envs: { FOO: 'bar' }, cwd: '/tmp' })).stdout, 'bar\n')
const chunks = []
await sbx.commands.run('for i in 1 2 3; do echo $i; done', { onStdout: (d) => chunks.push(d) })
assert.equal(chunks.join(''), '1\n2\n3\n')

// background process: list, connect, stdin, kill
const bg = await sbx.commands.run('cat', { background: true, stdin: true, timeoutMs: 0 })
assert.ok((await sbx.commands.list()).some((p) => p.pid === bg.pid))
const again = await sbx.commands.connect(bg.pid)
await sbx.commands.sendStdin(bg.pid, 'piped\n')
await sbx.commands.closeStdin(bg.pid)
const res = await again.wait()
assert.equal(res.stdout, 'piped\n')
assert.equal(await sbx.commands.kill(999999), false)
const sleeper = await sbx.commands.run('sleep 60', { background: true })
assert.equal(await sbx.commands.kill(sleeper.pid), true)
await assert.rejects(sleeper.wait(), CommandExitError)

// files
await sbx.files.write(`${home}/smoke/a.txt`, 'hello')
assert.equal(await sbx.files.read(`${home}/smoke/a.txt`), 'hello')
await sbx.files.write([{ path: `${home}/smoke/b.txt`, data: 'b' }, { path: `${home}/smoke/c.txt`, data: 'c' }])
const bytes = await sbx.files.read(`${home}/smoke/a.txt`, { format: 'bytes' })
assert.equal(Buffer.from(bytes).toString(), 'hello')
const names = (await sbx.files.list(`${home}/smoke`)).map((e) => e.name).sort()
assert.deepEqual(names, ['a.txt', 'b.txt', 'c.txt'])
assert.equal(await sbx.files.exists(`${home}/smoke/nope`), false)
assert.equal(await sbx.files.exists(`${home}/smoke/a.txt`), true)
assert.equal(await sbx.files.makeDir(`${home}/smoke/d`), true)
assert.equal(await sbx.files.makeDir(`${home}/smoke/d`), false)
const info = await sbx.files.getInfo(`${home}/smoke/a.txt`)
assert.equal(info.size, 5); assert.equal(info.type, 'file')
await sbx.files.rename(`${home}/smoke/a.txt`, `${home}/smoke/d/a.txt`)
await sbx.files.remove(`${home}/smoke/b.txt`)
await assert.rejects(sbx.files.read(`${home}/smoke/b.txt`), NotFoundError)
await assert.rejects(sbx.files.write('/root/forbidden.txt', 'x'))

// watch
const events = []
const handle = await sbx.files.watchDir(`${home}/smoke`, (e) => events.push(e), { recursive: true })
await sbx.files.write(`${home}/smoke/watched.txt`, 'w')
for (let i = 0; i < 50 && !events.some((e) => e.name === 'watched.txt'); i++) await new Promise((r) => setTimeout(r, 50))
await handle.stop()
assert.ok(events.some((e) => e.name === 'watched.txt' && e.type === 'create'), JSON.stringify(events))

// pty
let out = ''
const term = await sbx.pty.create({ cols: 80, rows: 24, onData: (d) => { out += new TextDecoder().decode(d) }, timeoutMs: 0 })
await sbx.pty.resize(term.pid, { cols: 100, rows: 40 })
await sbx.pty.sendInput(term.pid, new TextEncoder().encode('stty size; exit\n'))
await term.wait().catch(() => {})
assert.ok(out.includes('40 100'), out)

console.log('js sdk smoke: ok')
