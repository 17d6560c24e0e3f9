// Stasis code interpreter: one JavaScript context, a persistent Node REPL without a terminal.
//
// Requests arrive as JSON lines on stdin ({op: "run", id, code, count} or {op: "env", id, set,
// unset}); replies go out as JSON lines ({id, type: stdout|stderr|result|error|done}) on the
// pipe whose fd number is the first argument.
// Code runs in this process's global scope with `vm.runInThisContext`, so `var`, functions and
// top-level `let`/`const` persist from one execution to the next. SIGINT stops a running script
// (`breakOnSigint`) and abandons an awaited promise; otherwise it is ignored.
'use strict'

const fs = require('fs')
const util = require('util')
const vm = require('vm')
const readline = require('readline')

const REPLY_FD = Number(process.argv[2] || 3)
let current = null // id of the execution whose output is being captured
let abandon = null // rejects the promise an execution is waiting for

function send(obj) {
  fs.writeSync(REPLY_FD, JSON.stringify(obj) + '\n')
}

function capture(stream, type) {
  const original = stream.write.bind(stream)
  stream.write = (chunk, encoding, cb) => {
    if (current === null) return original(chunk, encoding, cb)
    const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString(typeof encoding === 'string' ? encoding : 'utf8')
    send({ id: current, type, text })
    if (typeof encoding === 'function') encoding()
    else if (typeof cb === 'function') cb()
    return true
  }
}
capture(process.stdout, 'stdout')
capture(process.stderr, 'stderr')

globalThis.require = require
globalThis.module = module
globalThis.exports = module.exports
globalThis.__dirname = process.cwd()
globalThis.__filename = 'cell.js'
globalThis.display = (value) => {
  if (current !== null) send({ id: current, type: 'result', main: false, data: bundle(value) })
}

process.on('SIGINT', () => {
  if (abandon) abandon(new Error('Execution interrupted'))
})

function bundle(value) {
  const data = { 'text/plain': typeof value === 'string' ? value : util.inspect(value, { depth: 4, colors: false }) }
  if (value !== null && typeof value === 'object' && !(value instanceof Error)) {
    try {
      const json = JSON.parse(JSON.stringify(value))
      if (json !== null && typeof json === 'object') data['application/json'] = json
    } catch (_) {
      // not representable as JSON: text only
    }
  }
  return data
}

// The user's frames only: not the runner's or Node's `vm` machinery under them.
function userStack(stack) {
  return String(stack)
    .split('\n')
    .filter((line) => !/\(node:|at node:|js_runner\.js|sigintHandlersWrap/.test(line))
    .join('\n')
}

function errorReply(id, err) {
  if (err instanceof Error) {
    return { id, type: 'error', name: err.name || 'Error', value: err.message || String(err), traceback: userStack(err.stack || err) }
  }
  return { id, type: 'error', name: 'Error', value: util.inspect(err), traceback: util.inspect(err) }
}

function isAwaitError(err) {
  return err instanceof SyntaxError && /await is only valid/.test(err.message)
}

async function run(req) {
  current = req.id
  try {
    let value
    const filename = `<cell ${req.count}>`
    try {
      value = vm.runInThisContext(req.code, { filename, breakOnSigint: true })
    } catch (err) {
      if (!isAwaitError(err)) throw err
      // Top-level await: run the cell as an async function. A cell that is one expression
      // keeps its value; otherwise it runs as a block (its declarations stay local to it).
      let wrapped
      try {
        wrapped = new vm.Script(`(async () => (\n${req.code}\n))()`, { filename })
      } catch (_) {
        wrapped = new vm.Script(`(async () => {\n${req.code}\n})()`, { filename })
      }
      value = wrapped.runInThisContext({ breakOnSigint: true })
    }
    if (value && typeof value.then === 'function') {
      value = await new Promise((resolve, reject) => {
        abandon = reject
        value.then(resolve, reject)
      })
    }
    if (value !== undefined) send({ id: req.id, type: 'result', main: true, data: bundle(value) })
  } catch (err) {
    send(errorReply(req.id, err))
  } finally {
    abandon = null
    current = null
    send({ id: req.id, type: 'done' })
  }
}

function env(req) {
  for (const [k, v] of Object.entries(req.set || {})) process.env[k] = v
  for (const k of req.unset || []) delete process.env[k]
  send({ id: req.id, type: 'done' })
}

// One request at a time, in order.
let chain = Promise.resolve()
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  let req
  try {
    req = JSON.parse(line)
  } catch (_) {
    return
  }
  chain = chain.then(() => (req.op === 'env' ? env(req) : run(req)))
}).on('close', () => chain.then(() => process.exit(0)))
