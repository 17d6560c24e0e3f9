// The document's "list paused sandboxes" block: unchanged for today's SDK.
import { Sandbox, SandboxInfo } from '@e2b/code-interpreter'

const paginator = Sandbox.list({ query: { state: ['paused'] } })

const sandboxes: SandboxInfo[] = []
while (paginator.hasNext) {
  const items = await paginator.nextItems()
  sandboxes.push(...items)
}

console.log('all paused sandboxes', sandboxes)
