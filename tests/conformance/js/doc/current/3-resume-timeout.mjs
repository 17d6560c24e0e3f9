// The document's "resume with a timeout" block for today's SDK. `sandboxId` comes from the
// previous block, as in the document.
import { Sandbox } from '@e2b/code-interpreter'

const sbx = await Sandbox.connect(sandboxId, { timeoutMs: 60 * 1000 }) // 60 s
