// The document's "kill a paused sandbox" block for today's SDK (the id comes from the instance).
import { Sandbox } from '@e2b/code-interpreter'

const sbx = await Sandbox.create()
console.log('Sandbox created', sbx.sandboxId)

const sandboxId = sbx.sandboxId
await sbx.pause()

// kill the paused sandbox
await sbx.kill()

// or kill it by id
// await Sandbox.kill(sandboxId)
