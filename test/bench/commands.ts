import { Child, waitFor } from './child.js'
import { percentile, round } from './measure.js'

const CHILD = new URL('./command-child.js', import.meta.url)

/** What a child answers for one command: its round trip, or `lost` (no verified result within 5 s) with a code. */
interface Issued { ms: number, status: string, code?: string, counters?: Record<string, number> }

/**
 * Section "commands": the round trip of a command, from the issuer's send to its verified result,
 * over one mesh hop, three mesh hops (TCP links, every process its own) and through the broker
 * (issuer → iotmesh gateway on Aedes, which checks the command → device → result back the same
 * way), interleaved command by command in one run, so drift hits each path alike.
 */
export async function benchCommands (quick: boolean): Promise<Record<string, unknown>> {
  const n = quick ? 60 : 400
  const warmup = quick ? 10 : 40
  const mesh = [1, 2, 3, 4].map((seed) => new Child(CHILD, { IOTMESH_BENCH_ROLE: 'mesh', IOTMESH_BENCH_SEED: String(seed) }))
  const gateway = new Child(CHILD, { IOTMESH_BENCH_ROLE: 'gateway' })
  const all = [...mesh, gateway]
  try {
    await Promise.all(all.map(async (c) => await c.ready))
    const [issuer, one, , three] = mesh as [Child, Child, Child, Child]
    const infos = await Promise.all(mesh.map(async (c) => await c.call<{ id: string, port: number }>('info')))
    for (let i = 1; i < mesh.length; i++) await mesh[i]!.call('dial', { port: infos[i - 1]!.port })
    await one.call('serve')
    await three.call('serve')
    const oneId = infos[1]!.id
    const threeId = infos[3]!.id
    await waitFor('routes from the issuer to both devices', async () => {
      const { routes } = await issuer.call<{ routes: Array<{ subscriber: string, hops?: number }> }>('status')
      return routes.some((r) => r.subscriber === oneId && r.hops === 1) && routes.some((r) => r.subscriber === threeId && r.hops === 3)
    })
    const { port } = await gateway.call<{ port: number }>('info')
    const env = { IOTMESH_BENCH_BROKER: `mqtt://127.0.0.1:${port}` }
    const device = new Child(CHILD, { ...env, IOTMESH_BENCH_ROLE: 'device', IOTMESH_BENCH_SEED: '5' })
    const mqttIssuer = new Child(CHILD, { ...env, IOTMESH_BENCH_ROLE: 'issuer' })
    all.push(device, mqttIssuer)
    await Promise.all([device.ready, mqttIssuer.ready])
    let brokerDevice = { id: '', publicKey: '', up: false }
    await waitFor('the broker device connected', async () => { brokerDevice = await device.call('info'); return brokerDevice.up })

    const rtt = { one: [] as number[], three: [] as number[], broker: [] as number[] }
    const refused: Record<string, number> = {}
    // Commands with no verified result within 5 s (issued after the warm-up), per path, with why and when.
    const lost = { one: 0, three: 0, broker: 0, detail: [] as Array<{ path: string, index: number, code: string, ms: number, counters?: unknown }> }
    let failed = 0
    for (let i = 0; i < 3 * (warmup + n); i++) {
      const path = (['one', 'three', 'broker'] as const)[i % 3] as 'one' | 'three' | 'broker'
      const on = Math.floor(i / 3) % 2 === 0
      try {
        const r = path === 'broker'
          ? await mqttIssuer.call<Issued>('issue', { target: brokerDevice.id, publicKey: brokerDevice.publicKey, on })
          : await issuer.call<Issued>('issue', { target: path === 'one' ? oneId : threeId, on })
        if (r.status === 'lost') {
          if (i < 3 * warmup) continue
          lost[path]++
          lost.detail.push({ path, index: i, code: r.code ?? 'ERR_UNKNOWN', ms: round(r.ms), ...r.counters === undefined ? {} : { counters: r.counters } })
        } else if (r.status !== 'ok') refused[r.status] = (refused[r.status] ?? 0) + 1
        else if (i >= 3 * warmup) rtt[path].push(r.ms)
      } catch {
        failed++ // the child did not answer (IPC), not the command
      }
    }
    const summary = (xs: number[]): Record<string, number> => ({ commands: xs.length, p50_ms: round(percentile(xs, 50), 3), p99_ms: round(percentile(xs, 99), 3) })
    const one1 = summary(rtt.one)
    const broker = summary(rtt.broker)
    return {
      commands: {
        round_trip: { mesh_one_hop: one1, mesh_three_hops: summary(rtt.three), broker },
        mesh_one_hop_over_broker_p50: round((one1.p50_ms as number) / (broker.p50_ms as number)),
        lost: { mesh_one_hop: lost.one, mesh_three_hops: lost.three, broker: lost.broker, of: n, detail: lost.detail.slice(0, 20) },
        failed,
        refused
      }
    }
  } finally {
    await Promise.all(all.map(async (c) => { await c.stop() }))
  }
}
