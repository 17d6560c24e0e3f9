// The document's "pause" block for today's SDK: pause() returns true (the beta returned the id),
// so the id to keep comes from the instance.
import { Sandbox } from '@e2b/code-interpreter'

const sbx = await Sandbox.create()
console.log('Sandbox created', sbx.sandboxId)

const sandboxId = sbx.sandboxId
const paused = await sbx.pause()
console.log('Sandbox paused', sandboxId, paused)
