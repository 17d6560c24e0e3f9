// Shared pieces of the JS conformance scenarios: which SDK generation runs, assertions that
// explain themselves, a REST client for the few checks an SDK cannot express, and the runner
// that prints one `PASS <gen> <scenario>` / `FAIL <gen> <scenario>: <reason>` line each.

import { inspect } from 'node:util'

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** A failed expectation; its message becomes the FAIL line's reason. */
export class Failure extends Error {}

export function check(cond, message) {
  if (!cond) throw new Failure(message)
}

export function checkEq(actual, expected, what) {
  if (actual !== expected) {
    throw new Failure(`${what}: expected ${show(expected)}, got ${show(actual)}`)
  }
}

/** `date` lies within `tolMs` of `expectedMs` (epoch ms). */
export function checkNear(date, expectedMs, tolMs, what) {
  const got = date instanceof Date ? date.getTime() : Date.parse(date)
  check(Number.isFinite(got), `${what}: not a date: ${show(date)}`)
  const diff = (got - expectedMs) / 1000
  check(
    Math.abs(got - expectedMs) <= tolMs,
    `${what}: expected ≈ ${new Date(expectedMs).toISOString()} (±${tolMs / 1000} s), ` +
      `got ${new Date(got).toISOString()} (${diff >= 0 ? '+' : ''}${diff.toFixed(1)} s)`,
  )
}

export function show(value) {
  return inspect(value, { depth: 3, breakLength: Infinity, maxStringLength: 300 })
}

/** One line describing an error: class, status if any, message. */
export function describe(err) {
  if (!(err instanceof Error)) return show(err)
  const cls = err.constructor?.name ?? 'Error'
  const msg = String(err.message).replace(/\s+/g, ' ').slice(0, 400)
  const cause = err.cause instanceof Error ? ` (cause: ${err.cause.code ?? ''} ${err.cause.message})` : ''
  return `${cls}: ${msg}${cause}`
}

/**
 * `promise` must reject with an instance of `cls` (and pass `extra`, if given); returns the error.
 * A resolution or a different error is a Failure naming both.
 */
export async function expectError(promise, cls, what, extra) {
  let value
  try {
    value = await promise
  } catch (err) {
    if (!(err instanceof cls)) {
      throw new Failure(`${what}: expected ${cls.name}, got ${describe(err)}`)
    }
    if (extra) extra(err)
    return err
  }
  throw new Failure(`${what}: expected ${cls.name}, but it succeeded with ${show(value)}`)
}

/** Rejects with a Failure naming `what` when `promise` takes longer than `ms`. */
export function within(ms, what, promise) {
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Failure(`${what}: no answer within ${ms / 1000} s`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/**
 * Polls `probe` every `everyMs` until it returns a truthy value or `ms` pass; returns the value.
 * Errors from the probe count as "not yet", except a Failure, which ends the wait.
 */
export async function eventually(ms, everyMs, what, probe) {
  const deadline = Date.now() + ms
  let last
  for (;;) {
    try {
      last = await probe()
      if (last) return last
    } catch (err) {
      if (err instanceof Failure) throw err
      last = err
    }
    if (Date.now() > deadline) {
      throw new Failure(`${what}: not true within ${ms / 1000} s (last: ${last instanceof Error ? describe(last) : show(last)})`)
    }
    await sleep(everyMs)
  }
}

/** The generation under test, from STASIS_GEN: `js-current` or `js-beta`. */
export const GEN = process.env.STASIS_GEN ?? 'js-current'
export const BETA = GEN === 'js-beta'

/** The control plane's base URL as the generation's SDK computes it. */
export function apiBase() {
  if (process.env.E2B_API_URL) return process.env.E2B_API_URL.replace(/\/$/, '')
  return `https://api.${process.env.E2B_DOMAIN}`
}

/**
 * A raw control-plane request, for what the SDK cannot show (status codes the beta SDK swallows,
 * `endAt` the beta SDK does not expose) and for cleanup.
 */
export async function rest(method, path, body, apiKey = process.env.E2B_API_KEY, timeoutMs = 30_000) {
  const res = await fetch(apiBase() + path, {
    method,
    headers: { 'X-API-KEY': apiKey, ...(body !== undefined && { 'Content-Type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(timeoutMs),
  })
  const text = await res.text()
  let json
  try {
    json = text ? JSON.parse(text) : undefined
  } catch {
    json = undefined
  }
  return { status: res.status, headers: res.headers, text, json }
}

/** Kills a sandbox through the API, ignoring every outcome: cleanup only. */
export async function forceKill(id) {
  try {
    await rest('DELETE', `/sandboxes/${encodeURIComponent(id)}`, undefined, undefined, 10_000)
  } catch {
    // the runner kills whatever is left before it stops the server
  }
}

/** Unique per run and generation, so concurrent generations never see each other's sandboxes. */
export const RUN_TAG = `${process.env.STASIS_RUN_ID ?? process.pid}-${GEN}`

/**
 * Runs `scenarios` ({name, timeoutMs, run(ctx)}) in order, one line each. `ctx.track(id)` records
 * a sandbox for cleanup after the scenario, whatever its outcome. Returns the number of failures.
 */
export async function runScenarios(scenarios, only) {
  let failed = 0
  for (const scenario of scenarios) {
    if (only && !only.includes(scenario.name)) continue
    const owned = new Set()
    const ctx = { track: (id) => (owned.add(id), id), log: (...a) => debug(scenario.name, ...a) }
    const started = Date.now()
    try {
      await within(scenario.timeoutMs ?? 120_000, 'scenario', scenario.run(ctx))
      console.log(`PASS ${GEN} ${scenario.name}`)
    } catch (err) {
      failed++
      const reason = err instanceof Failure ? err.message : `unexpected ${describe(err)}${where(err)}`
      console.log(`FAIL ${GEN} ${scenario.name}: ${reason.replace(/\s+/g, ' ')}`)
      if (!(err instanceof Failure) && process.env.STASIS_CONFORMANCE_DEBUG) console.error(err)
    } finally {
      await Promise.all([...owned].map(forceKill))
      debug(scenario.name, `took ${((Date.now() - started) / 1000).toFixed(1)} s`)
    }
  }
  return failed
}

/** ` (at scenarios.mjs:123)`: the suite's own line an unexpected error came through. */
function where(err) {
  const frame = String(err?.stack ?? '')
    .split('\n')
    .map((l) => l.match(/\/conformance\/js\/((?:lib\/)?[\w-]+\.mjs):(\d+)/))
    .find(Boolean)
  return frame ? ` (at ${frame[1]}:${frame[2]})` : ''
}

export function debug(...args) {
  if (process.env.STASIS_CONFORMANCE_DEBUG) console.error(`[${GEN}]`, ...args)
}
