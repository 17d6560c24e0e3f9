import { Sandbox } from '@e2b/code-interpreter'
// or import { Sandbox } from 'e2b'
// or import { Sandbox } from '@e2b/desktop'

const sbx = await Sandbox.create()
console.log('Sandbox created', sbx.sandboxId)

// 暂停沙箱
const sandboxId = await sbx.pause()

// 删除被暂停的沙箱
await sbx.kill()

// 或者通过指定沙箱 ID 来删除被暂停的沙箱
// await Sandbox.kill(sandboxId)
