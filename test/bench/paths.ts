import { Child, BROKER_CHILD, MESH_CHILD, UNBUDGETED, waitFor } from './child.js'
import { FloorPair, overFloor } from './floor.js'
import { percentile, round } from './measure.js'

interface Rx { seq: number, tag: number, lat: number, hops?: number }

/**
 * Section "paths": end-to-end latency of one mesh hop, three mesh hops and the broker path
 * (device process → iotmesh gateway on Aedes → subscriber process, every frame signed by the
 * device and verified by the gateway and by the subscriber), interleaved message by message in
 * one run with the floor's samples (floor.ts: sign + verify + loopback round trip), and each as a
 * ratio to that floor; then sustained throughput of one mesh hop and of the broker path, windowed.
 * A second line of four mesh nodes relays before verifying (routing `relayBeforeVerify`): its one
 * and three hops are interleaved with the rest (`relay_early`), against the first line, which
 * verifies at every hop before relaying (the default).
 */
export async function benchPaths (quick: boolean): Promise<Record<string, unknown>> {
  const n = quick ? 300 : 2000
  const warmup = quick ? 50 : 200
  const mesh = [0, 1, 2, 3].map(() => new Child(MESH_CHILD, UNBUDGETED))
  const early = [0, 1, 2, 3].map(() => new Child(MESH_CHILD, { ...UNBUDGETED, IOTMESH_CHILD_RELAY_EARLY: '1' }))
  const gateway = new Child(BROKER_CHILD, { IOTMESH_BENCH_ROLE: 'gateway' })
  const floor = new FloorPair()
  const all = [...mesh, ...early, gateway, floor.sender, floor.receiver]
  try {
    await Promise.all(all.map(async (c) => await c.ready))
    await floor.start()
    await Promise.all([line(mesh), line(early)])
    const { port } = await gateway.call<{ port: number }>('info')
    const env = { IOTMESH_BENCH_BROKER: `mqtt://127.0.0.1:${port}` }
    const device = new Child(BROKER_CHILD, { ...env, IOTMESH_BENCH_ROLE: 'device' })
    const subscriber = new Child(BROKER_CHILD, { ...env, IOTMESH_BENCH_ROLE: 'subscriber' })
    all.push(device, subscriber)
    await Promise.all([device.ready, subscriber.ready])
    await waitFor('the subscriber to learn the device key', async () => (await subscriber.call<number>('keys')) > 0)

    const lat = { one: [] as number[], three: [] as number[], broker: [] as number[], earlyOne: [] as number[], earlyThree: [] as number[] }
    let lost = 0
    const [m0, m1, , m3] = mesh as [Child, Child, Child, Child]
    const [e0, e1, , e3] = early as [Child, Child, Child, Child]
    await Promise.all([m0.call('eld'), m1.call('eld')])
    const cpuOf = async (): Promise<number[]> => (await Promise.all([m0, m1, floor.sender, floor.receiver].map(async (c) => await c.call<{ cpuUs: number }>('stats')))).map((x) => x.cpuUs)
    const cpu0 = await cpuOf()
    // Messages alternate between the paths and the floor's two samples (mesh, broker, raw signed
    // hop, round trip, mesh relaying early, …): one at a time, so none competes with another for
    // the two cores, and drift over the run hits each alike.
    const ROUND = 5
    for (let i = 0; i < ROUND * (warmup + n); i++) {
      const keep = i >= ROUND * warmup
      const slot = i % ROUND
      if (slot === 2) { if (await floor.raw(i, keep) === undefined && keep) lost++; continue }
      if (slot === 3) { if (await floor.rtt(i, keep) === undefined && keep) lost++; continue }
      const [sender, first, third] = slot === 0 ? [m0, m1, m3] : slot === 4 ? [e0, e1, e3] : [device, subscriber, undefined]
      const want = new Map<Child, Rx | undefined>(third === undefined ? [[first, undefined]] : [[first, undefined], [third, undefined]])
      const done = new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000)
        for (const child of want.keys()) {
          child.onEvent = (m) => {
            if (m.ev !== 'rx' || m.seq !== i) return
            want.set(child, m as unknown as Rx)
            if ([...want.values()].every((v) => v !== undefined)) { clearTimeout(timer); resolve() }
          }
        }
      })
      sender.send({ cmd: 'pubfast', seq: i, tag: slot === 1 ? 2 : 1 })
      await done
      if (!keep) continue
      if ([...want.values()].some((v) => v === undefined)) { lost++; continue }
      const ms = (c: Child): number => (want.get(c) as Rx).lat / 1e6
      if (third === undefined) lat.broker.push(ms(first))
      else {
        (slot === 0 ? lat.one : lat.earlyOne).push(ms(first))
        ;(slot === 0 ? lat.three : lat.earlyThree).push(ms(third))
      }
    }
    for (const c of [m1, m3, e1, e3, subscriber]) c.onEvent = undefined
    const [eld0, eld1] = await Promise.all([m0.call('eld'), m1.call('eld')])
    // CPU (user + system) per round (a message of each path, a sample of each floor kind), all the process did: the mesh sender publishes one frame, its first hop verifies, delivers and relays it on; the floor sender signs one and pings once, its receiver verifies one and echoes once.
    const cpuPer = (await cpuOf()).map((us, i) => Math.round((us - (cpu0[i] as number)) / (n + warmup)))
    const summary = (xs: number[]): { p50_ms: number, p99_ms: number } => ({ p50_ms: round(percentile(xs, 50), 4), p99_ms: round(percentile(xs, 99), 4) })
    const floorSummary = floor.summary()
    const floorMs = floorSummary.floor_ms

    // IOTMESH_BENCH_THROUGHPUT=0 leaves the throughput rounds out (a CPU profile of the latency loop alone).
    const tputN = process.env.IOTMESH_BENCH_THROUGHPUT === '0' ? 0 : quick ? 3000 : 20_000
    const meshTput = tputN === 0 ? Number.NaN : await throughput(m0, m1, tputN)
    const brokerTput = tputN === 0 ? Number.NaN : await throughput(device, subscriber, tputN)
    const one = summary(lat.one)
    const three = summary(lat.three)
    const broker = summary(lat.broker)
    const earlyOne = summary(lat.earlyOne)
    const earlyThree = summary(lat.earlyThree)
    const relays = await Promise.all([m1, e1].map(async (c) => (await c.call<{ relay: { relayed: number, relayedEarly: number, earlyForgeries: number } }>('stats')).relay))
    return {
      paths: {
        messages: n,
        lost,
        floor: floorSummary,
        mesh_one_hop: one,
        mesh_three_hops: three,
        broker: broker,
        event_loop_delay: { mesh_sender: eld0, mesh_first_hop: eld1 },
        cpu_us_per_round: { mesh_sender: cpuPer[0], mesh_first_hop: cpuPer[1], floor_sender: cpuPer[2], floor_receiver: cpuPer[3] },
        over_floor: {
          raw_signed_hop: overFloor(floorSummary.raw_signed_hop as { p50_ms: number, p99_ms: number }, floorMs),
          mesh_one_hop: overFloor(one, floorMs),
          mesh_three_hops: overFloor(three, floorMs),
          broker: overFloor(broker, floorMs)
        },
        mesh_one_hop_over_broker_p50: round((one.p50_ms as number) / (broker.p50_ms as number)),
        relay_early: {
          mesh_one_hop: earlyOne,
          mesh_three_hops: earlyThree,
          over_floor: { mesh_one_hop: overFloor(earlyOne, floorMs), mesh_three_hops: overFloor(earlyThree, floorMs) },
          three_hops_over_verify_first_p50: round((earlyThree.p50_ms as number) / (three.p50_ms as number)),
          one_hop_over_verify_first_p50: round((earlyOne.p50_ms as number) / (one.p50_ms as number)),
          // The first relay of each line: what it relayed, and how much of that before verifying.
          first_relay: { verify_first: relays[0], relay_early: relays[1] }
        },
        throughput_msgs_per_s: { mesh_one_hop: Math.round(meshTput), broker: Math.round(brokerTput) },
        mesh_over_broker_throughput: round(meshTput / brokerTput)
      }
    }
  } finally {
    await Promise.all(all.map(async (c) => await c.stop()))
  }
}

/** Links each node of `line` to the one before it, and waits until every link is up. */
async function line (nodes: Child[]): Promise<void> {
  const infos = await Promise.all(nodes.map(async (c) => await c.call<{ addrs: string[] }>('info')))
  for (let i = 1; i < nodes.length; i++) await nodes[i]!.call('dial', { addrs: infos[i - 1]!.addrs })
  await waitFor('a line of four mesh nodes', async () => (await Promise.all(nodes.map(async (c) => await c.call<{ conns: number }>('status')))).every((s, i) => s.conns === (i === 0 || i === nodes.length - 1 ? 1 : 2)))
}

/** Windowed: at most 1000 messages un-acknowledged; the receiver reports every 50. */
async function throughput (sender: Child, receiver: Child, n: number): Promise<number> {
  await receiver.call('rxmode', { mode: 'count', every: 50 })
  let last = { n: 0, t: 0n }
  const finished = new Promise<void>((resolve) => {
    receiver.onEvent = (m) => {
      if (m.ev !== 'cnt') return
      last = { n: m.n as number, t: BigInt(m.t as string) }
      sender.send({ cmd: 'ack', n: m.n })
      if (last.n >= Math.floor(n / 50) * 50) resolve()
    }
  })
  const { t0 } = await sender.call<{ t0: string }>('tput', { n, window: 1000, capMs: 60_000, tag: 3 }, 120_000)
  await Promise.race([finished, new Promise((resolve) => setTimeout(resolve, 5000))])
  receiver.onEvent = undefined
  await receiver.call('rxmode', { mode: 'each' })
  return last.n / (Number(last.t - BigInt(t0)) / 1e9)
}
