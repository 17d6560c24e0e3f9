// Scenario 1: the code blocks of the user's pause/resume document, each run as its own Node
// program, followed by checks of what they did. `doc/beta/` holds the blocks exactly as the
// document prints them (written for the beta SDK); `doc/current/` holds the same blocks for
// today's SDK (`Sandbox.connect` instead of `Sandbox.resume`, the id kept from the instance).
//
// The only edits made before running a block:
//   - the package an import names is mapped to the installed alias of the generation under test
//     (`@e2b/code-interpreter` → `@e2b/code-interpreter-beta`, `e2b` → `e2b-beta`), and for the
//     `e2b` flavour to the document's own alternative, `import { Sandbox } from 'e2b'`;
//   - a block that uses `sandboxId` from the previous block gets it defined from the environment;
//   - TypeScript is transpiled (types dropped) with the pinned `typescript`;
//   - the "kill by id" run swaps the two alternatives the last block offers.

import { spawn } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

import { BETA, Failure, GEN, check, checkEq, checkNear, expectError, show } from './harness.mjs'
import { load } from './generation.mjs'

const JS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..')

export function build(block, flavour, { killById = false } = {}) {
  const src = join(JS_DIR, 'doc', BETA ? 'beta' : 'current', block)
  let code = readFileSync(src, 'utf8')

  code = code.replace(/^(import .* from )'(@e2b\/code-interpreter|e2b)'/gm, (_, head, pkg) => {
    let target = flavour === 'e2b' ? 'e2b' : pkg
    if (BETA) target = target === 'e2b' ? 'e2b-beta' : '@e2b/code-interpreter-beta'
    return `${head}'${target}'`
  })

  const declares = /\b(const|let|var)\s+sandboxId\b/.test(code)
  const uses = /(^|[^.\w])sandboxId\b/m.test(code)
  if (uses && !declares) {
    code = `const sandboxId = process.env.STASIS_DOC_SANDBOX_ID // from the previous block\n${code}`
  }

  if (killById) {
    const before = code
    code = code
      .replace(/^await sbx\.kill\(\)$/m, '// await sbx.kill()')
      .replace(/^\/\/ await Sandbox\.kill\(sandboxId\)$/m, 'await Sandbox.kill(sandboxId)')
    check(code !== before && /^await Sandbox\.kill\(sandboxId\)$/m.test(code), `${block}: no kill-by-id alternative to swap in`)
  }

  if (block.endsWith('.ts')) {
    code = ts.transpileModule(code, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    }).outputText
  }

  const outDir = join(JS_DIR, '.doc-build', `${GEN}-${flavour}`)
  mkdirSync(outDir, { recursive: true })
  const out = join(outDir, block.replace(/\.(ts|mjs)$/, killById ? '-by-id.mjs' : '.mjs'))
  writeFileSync(out, code)
  return out
}

/** Runs a block; resolves to its stdout, or fails with its exit status and stderr. */
function runBlock(file, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [file], {
      cwd: JS_DIR,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000)
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      if (code === 0) return resolve(stdout)
      const noise = /^\s*(at |node:internal|triggerUncaughtException|\^|Node\.js v|[{}]\s*$)|^\s*$/
      const err = stderr.split('\n').filter((l) => !noise.test(l)).slice(0, 4).map((l) => l.trim()).join(' | ')
      reject(new Failure(`block ${file.split('/').pop()} exited ${signal ?? code}: ${err}`))
    })
  })
}

function field(stdout, label, block) {
  const line = stdout.split('\n').find((l) => l.startsWith(label + ' '))
  check(line, `${block}: printed no "${label} …" line (stdout: ${show(stdout.slice(0, 300))})`)
  return line.slice(label.length + 1).trim().split(/\s+/)
}

export function documentScenario(flavour) {
  return {
    name: flavour === 'ci' ? '1-document' : '1-document-e2b',
    timeoutMs: 240_000,
    async run(ctx) {
      const sdk = await load(flavour)
      const { Sandbox, m } = sdk

      // Block 1: create and pause; the beta's pause() returns the id, today's returns true.
      let out = await runBlock(build('1-pause.mjs', flavour))
      const [a] = field(out, 'Sandbox created', '1-pause')
      ctx.track(a)
      const paused = field(out, 'Sandbox paused', '1-pause')
      if (BETA) checkEq(paused[0], a, '1-pause: the id pause() returned')
      else checkEq(paused.join(' '), `${a} true`, '1-pause: the id and what pause() returned')
      checkEq((await sdk.info(a))?.state, 'paused', `1-pause: state of ${a} afterwards`)

      // Block 2: create, pause, resume with the default timeout (300 s).
      out = await runBlock(build('2-resume.mjs', flavour))
      const resumedAt = Date.now()
      const [b] = field(out, 'Sandbox created', '2-resume')
      ctx.track(b)
      if (BETA) checkEq(field(out, 'Sandbox paused', '2-resume')[0], b, '2-resume: the id pause() returned')
      checkEq(field(out, 'Sandbox resumed', '2-resume')[0], b, '2-resume: the resumed sandbox id')
      const bInfo = await sdk.info(b)
      checkEq(bInfo?.state, 'running', `2-resume: state of ${b} after resume`)
      checkNear(bInfo.endAt, resumedAt + 300_000, 15_000, '2-resume: endAt after a resume with the default timeout')

      // Block 3: resume the first sandbox with timeoutMs: 60 s; its end time must follow.
      await runBlock(build('3-resume-timeout.mjs', flavour), { STASIS_DOC_SANDBOX_ID: a })
      const aInfo = await sdk.info(a)
      checkEq(aInfo?.state, 'running', `3-resume-timeout: state of ${a} after resume`)
      checkNear(aInfo.endAt, Date.now() + 60_000, 5_000, '3-resume-timeout: endAt after resume with timeoutMs 60 000')

      // Pause it again (a second pause/resume cycle) so block 4 has a known paused sandbox.
      checkEq(await sdk.pauseById(a), sdk.pausedAnswer(a), `second pause of ${a}`)

      // Block 4: list every paused sandbox with the paginator.
      out = await runBlock(build('4-list-paused.ts', flavour))
      check(out.startsWith('all paused sandboxes'), `4-list-paused: unexpected output ${show(out.slice(0, 200))}`)
      const listed = [...out.matchAll(/sandboxId: '([^']+)'/g)].map((x) => x[1])
      const states = [...out.matchAll(/state: '([^']+)'/g)].map((x) => x[1])
      check(listed.includes(a), `4-list-paused: paused ${a} missing from ${show(listed)}`)
      check(!listed.includes(b), `4-list-paused: running ${b} listed as paused`)
      checkEq(new Set(listed).size, listed.length, `4-list-paused: duplicates in ${show(listed)}`)
      check(states.length === listed.length && states.every((s) => s === 'paused'), `4-list-paused: states ${show(states)}`)

      // Block 5: kill a paused sandbox through its instance, then (the alternative) by id.
      for (const killById of [false, true]) {
        const label = killById ? '5-kill-paused (by id)' : '5-kill-paused'
        out = await runBlock(build('5-kill-paused.mjs', flavour, { killById }))
        const [c] = field(out, 'Sandbox created', label)
        ctx.track(c)
        checkEq(await sdk.info(c), null, `${label}: ${c} after the kill (null = 404)`)
        checkEq(await Sandbox.kill(c), false, `${label}: Sandbox.kill(${c}) after the kill`)
      }

      // Kill the paused first sandbox by id; resuming it afterwards is NotFoundError.
      checkEq(await Sandbox.kill(a), true, `Sandbox.kill(${a}) of a paused sandbox`)
      await expectError(sdk.resume(a), m.NotFoundError, `resume of killed ${a}`)
      await expectError(sdk.resume(a, { timeoutMs: 60_000 }), m.NotFoundError, `resume of killed ${a} with timeoutMs`)
    },
  }
}
