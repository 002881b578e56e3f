/**
 * `node dist/test/bench/mdns-scale.js N` (inside `unshare -rn`, `lo` up): what DNS-SD costs a
 * fleet simulated in one process (issue 15, "TCP at scale"), apart from everything else. N
 * discoveries on one shared responder, as `iotmesh sim` starts them (batches of 16, each with a
 * seeded random source, as a MeshNode gives its discovery); prints one JSON line: the time and CPU
 * until all were up, until each had found every other, the CPU of the next 10 s (the browsers'
 * early queries, RFC 6762 §5.2), and the CPU of one query round (one PTR query, answered with
 * every instance, heard by every browser: what each cache refresh at 80–95 % of a TTL costs).
 * Not a section of `npm run bench`: a diagnosis for the tcp section's start-up.
 */
import { createMdnsDiscovery, createMdnsResponder, type MdnsDiscovery } from '../../mesh/index.js'
import { generateKeyPair, mixSeed, seededRandom } from '../../shared/index.js'

const n = Number(process.argv[2] ?? 100)
const cpuMs = (since: NodeJS.CpuUsage): number => Math.round((process.cpuUsage(since).user + process.cpuUsage(since).system) / 1000)
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

const responder = createMdnsResponder({})
await responder.start()
const t0 = Date.now()
const c0 = process.cpuUsage()
let found = 0
const discoveries: MdnsDiscovery[] = []
for (let i = 0; i < n; i += 16) {
  await Promise.all(Array.from({ length: Math.min(16, n - i) }, async (_, j) => {
    const keys = generateKeyPair(seededRandom(mixSeed(7, 'identity', i + j)).bytes(32))
    const d = createMdnsDiscovery({ identity: { id: keys.id, publicKey: keys.publicKey }, port: 1000 + i + j, name: `sim-${i + j}` }, { responder, random: seededRandom(mixSeed(7, 'random', i + j)) })
    d.on('peer', () => { found++ })
    discoveries.push(d)
    await d.start()
  }))
}
const startedMs = Date.now() - t0
const startCpuMs = cpuMs(c0)
while (found < n * (n - 1) && Date.now() - t0 < 300_000) await sleep(100)
const allFoundMs = Date.now() - t0
const c1 = process.cpuUsage()
await sleep(10_000)
const next10sCpuMs = cpuMs(c1)
const c2 = process.cpuUsage()
for (let k = 0; k < 3; k++) {
  responder.query([{ name: '_iotmesh._tcp.local', type: 'PTR' }])
  await sleep(3000)
}
const queryRoundCpuMs = Math.round(cpuMs(c2) / 3) // each round's 3 s, including what else runs in them
process.stdout.write(`${JSON.stringify({ discoveries: n, startedMs, startCpuMs, allFoundMs, found, next10sCpuMs, queryRoundCpuMs, responder: responder.counters })}\n`)
await Promise.all(discoveries.map(async (d) => { await d.stop({ goodbye: false }) }))
await responder.stop()
