import { Sandbox, SandboxInfo } from '@e2b/code-interpreter'
// or import { Sandbox, SandboxInfo } from 'e2b'
// or import { Sandbox, SandboxInfo } from '@e2b/desktop'

// 过滤出所有被暂停的沙箱
const paginator = Sandbox.list({ query: { state: ['paused'] } })

// 分页获取所有被暂停的沙箱
const sandboxes: SandboxInfo[] = []
while (paginator.hasNext) {
  const items = await paginator.nextItems()
  sandboxes.push(...items)
}

console.log('all paused sandboxes', sandboxes)
