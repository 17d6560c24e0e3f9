import { Sandbox } from '@e2b/code-interpreter'
// or import { Sandbox } from 'e2b'
// or import { Sandbox } from '@e2b/desktop'

const sbx = await Sandbox.resume(sandboxId, { timeoutMs: 60 * 1000 }) // 60 秒
