import { afterAll, expect, it } from 'vitest'
import { Gateway, type Reading } from '../../gateway/index.js'
import { createLan, type Lan } from '../../firmware-sim/fleet/lan.js'
import { MeshProcs, assertFreshBuild, type MeshProc } from '../helpers/mesh-proc.js'
import { describeNet } from '../helpers/netns.js'

/**
 * Partitions heal completely over TCP (issue 11): mesh nodes as real processes on namespace hosts
 * (mesh-child.ts, found by DNS-SD, linked over TCP with a fast keepalive so a cut kills links),
 * the gateway in this process on the LAN's bridge as the durable subscriber. Host 0 is never cut
 * off; hosts 1–3 are cut off silently (`ip link set … down`, no FIN) one after another, several
 * times, while every node publishes. After the last heal, every reading of every node must reach
 * the gateway, on hosts that were cut off and on the one that never was, each once.
 */

const HOSTS = 4
const PER_HOST = 2
const CYCLES = Number(process.env.IOTMESH_PARTITION_CYCLES ?? 3)
const EVERY = 100

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

let lan: Lan | undefined
let gateway: Gateway | undefined
const procs = new MeshProcs()
afterAll(async () => {
  await procs.killAll()
  await gateway?.stop()
  await lan?.destroy()
})

describeNet('partitions heal completely over TCP', () => {
  it(`${HOSTS} hosts × ${PER_HOST} nodes, ${CYCLES} silent cut/heal cycles: every reading reaches the gateway once`, async () => {
    assertFreshBuild()
    lan = await createLan({ hosts: HOSTS, bridgeHost: 254, subnet: '10.79.0' })
    const address = lan.address as string
    const readings: Reading[] = []
    const mesh = { host: address, link: { keepaliveInterval: 500, keepaliveTimeout: 2000 }, routing: { syncInterval: 500 } }
    gateway = new Gateway({ host: address, port: 0, wsPort: false, mesh })
    gateway.on('reading', (r) => { readings.push(r) })
    await gateway.start()
    const env = {
      IOTMESH_CHILD_MDNS: '1', IOTMESH_CHILD_KEEPALIVE_INTERVAL: '500', IOTMESH_CHILD_KEEPALIVE_TIMEOUT: '2000', IOTMESH_CHILD_SYNC_INTERVAL: '500'
    } as const
    const spawning = lan.hosts.flatMap((host, h) => Array.from({ length: PER_HOST }, async (_, i) => ({
      proc: await procs.spawn(lan as Lan, host, `h${h}n${i}`, { ...env, IOTMESH_CHILD_HOST: host.address }, AbortSignal.timeout(30_000)),
      host: h
    })))
    const nodes: Array<{ proc: MeshProc, host: number }> = await Promise.all(spawning)
    const at = (id: string): number => readings.filter((r) => r.origin === id).length
    for (const { proc } of nodes) await proc.call('stream', { every: EVERY })
    const warm = Date.now() + 20_000
    while (!nodes.every(({ proc }) => at(proc.id) > 0) && Date.now() < warm) await sleep(100)
    expect(nodes.filter(({ proc }) => at(proc.id) === 0).map(({ proc }) => proc.label)).toEqual([])

    for (let c = 0; c < CYCLES; c++) {
      const host = lan.hosts[1 + (c % (HOSTS - 1))]
      if (host === undefined) continue
      await lan.connect(host, false)
      await sleep(3000) // past the keepalive timeout: links to the host die on both sides
      await lan.connect(host, true)
      await sleep(2000)
    }
    const published = new Map<string, number[]>()
    for (const { proc } of nodes) published.set(proc.id, (await proc.call<{ seqs: number[] }>('streamStop')).seqs)

    const missing = (): Array<{ label: string, host: number, missing: number[] }> => nodes.map(({ proc, host }) => {
      const got = new Set(readings.filter((r) => r.origin === proc.id).map((r) => r.seq))
      return { label: proc.label, host, missing: (published.get(proc.id) ?? []).filter((s) => !got.has(s)) }
    })
    const deadline = Date.now() + 30_000
    while (missing().some((m) => m.missing.length > 0) && Date.now() < deadline) await sleep(250)
    // Each missing number with its place among what its node published (#k of n): the cycle it fell in.
    const lost = missing().filter((m) => m.missing.length > 0).map((m) => {
      const all = published.get(nodes.find((n) => n.proc.label === m.label)?.proc.id ?? '') ?? []
      return `${m.label}: ${m.missing.length} (${m.missing.slice(0, 5).map((s) => `${s} #${all.indexOf(s) + 1} of ${all.length}`).join(', ')})`
    })
    expect(lost, 'readings never reaching the gateway').toEqual([])
    for (const { proc } of nodes) {
      const seqs = readings.filter((r) => r.origin === proc.id).map((r) => r.seq)
      expect(new Set(seqs).size).toBe(seqs.length)
      expect(published.get(proc.id)?.length ?? 0).toBeGreaterThan(CYCLES * 30)
    }
  }, 120_000)
})
