// Preloaded with `node --require` for the SDK generations that reach Stasis through a domain
// (E2B_DOMAIN): answers 127.0.0.1 for STASIS_TEST_DOMAIN (default stasis.test) and every name
// under it, as wildcard DNS would, and leaves every other name to the system resolver. Only
// name resolution changes; the SDKs' code is untouched.
'use strict'
const dns = require('node:dns')

const domain = (process.env.STASIS_TEST_DOMAIN || 'stasis.test').toLowerCase()
const systemLookup = dns.lookup
const systemPromiseLookup = dns.promises.lookup

function isTestName(hostname) {
  const name = String(hostname).toLowerCase().replace(/\.$/, '')
  return name === domain || name.endsWith('.' + domain)
}

function lookup(hostname, options, callback) {
  if (typeof options === 'function') {
    callback = options
    options = {}
  } else if (typeof options === 'number') {
    options = { family: options }
  }
  if (!isTestName(hostname)) return systemLookup.call(dns, hostname, options, callback)
  const answer = { address: '127.0.0.1', family: 4 }
  process.nextTick(() => {
    if (options && options.all) callback(null, [answer])
    else callback(null, answer.address, answer.family)
  })
}

dns.lookup = lookup
dns.promises.lookup = async (hostname, options) => {
  if (!isTestName(hostname)) return systemPromiseLookup.call(dns.promises, hostname, options)
  const answer = { address: '127.0.0.1', family: 4 }
  return options && options.all ? [answer] : answer
}
