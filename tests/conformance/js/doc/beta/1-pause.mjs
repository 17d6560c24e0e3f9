import { Sandbox } from '@e2b/code-interpreter'
// or import { Sandbox } from 'e2b'
// or import { Sandbox } from '@e2b/desktop'

const sbx = await Sandbox.create()
console.log('Sandbox created', sbx.sandboxId)

// 暂停沙箱
// 建议您将沙箱 ID 保存到数据库中,以便稍后恢复沙箱。
const sandboxId = await sbx.pause()
console.log('Sandbox paused', sandboxId)
