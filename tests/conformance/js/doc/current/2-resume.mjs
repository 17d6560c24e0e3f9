// The document's "resume" block for today's SDK: Sandbox.connect resumes a paused sandbox.
import { Sandbox } from '@e2b/code-interpreter'

const sbx = await Sandbox.create()
console.log('Sandbox created', sbx.sandboxId)

const sandboxId = sbx.sandboxId
const paused = await sbx.pause()
console.log('Sandbox paused', sandboxId, paused)

const sameSbx = await Sandbox.connect(sandboxId)
console.log('Sandbox resumed', sameSbx.sandboxId)
