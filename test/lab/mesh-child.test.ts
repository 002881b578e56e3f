import { afterAll, expect, it } from 'vitest'
import { MeshProcs, assertFreshBuild } from '../helpers/mesh-proc.js'
import { describeNet } from '../helpers/netns.js'

/**
 * lab/children/mesh-child.ts as the anchors harness drives it (../shared/anchors-bench, section M:
 * ten processes, node i dials nodes 0..i-1 through `dial` after it started, all at once): every
 * node ends with nine links. The node's outbound slots are sized at construction from its static
 * peers (8 with none), so without room for peers added later, node 9 held 8 and the harness's M
 * section failed "mesh not ready" in every repetition.
 */

const N = 10
const procs = new MeshProcs()
afterAll(async () => { await procs.killAll() })

describeNet('the anchors adapter', () => {
  it('forms a full mesh of ten when each node dials every node before it', async () => {
    assertFreshBuild()
    const nodes = await Promise.all(Array.from({ length: N }, async (_, i) => await procs.fork(`m${i}`, {})))
    const infos = await Promise.all(nodes.map(async (n) => await n.call<{ addrs: string[] }>('info')))
    await Promise.all(nodes.map(async (n, i) => i === 0 ? undefined : await n.call('dial', { addrs: infos.slice(0, i).map((x) => x.addrs[0]) })))
    const conns = async (): Promise<number[]> => await Promise.all(nodes.map(async (n) => (await n.call<{ conns: number }>('status')).conns))
    const deadline = Date.now() + 20_000
    let last = await conns()
    while (!last.every((c) => c === N - 1) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200))
      last = await conns()
    }
    expect(last).toEqual(Array.from({ length: N }, () => N - 1))
  }, 60_000)
})
