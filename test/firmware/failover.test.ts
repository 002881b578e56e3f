import { expect, it } from 'vitest'
import type { DeviceId } from '../../shared/index.js'
import type { DeviceMode } from '../../firmware-sim/index.js'
import { describeNet } from '../helpers/netns.js'
import { keyOf, longestGap, startFleet, type FleetLog, type Published } from './fleet-support.js'

/**
 * Broker failover, device crashes and partitions on a simulated fleet (firmware-sim/fleet), as
 * the gateway sees them. Six devices sampling every 250 ms over real TCP links found by DNS-SD
 * inside the test's private namespace. Every wait is on the fleet's own events, bounded; the only
 * time windows are the outages, and they are measured with the fleet's timestamps.
 */

const DEVICES = 6
const INTERVAL = 250
/** Fast link keepalive, so a link cut by a partition or a crash is noticed within a test's time. */
const LINK = { keepaliveInterval: 200, keepaliveTimeout: 1000 }
const ROUTING = { syncInterval: 200 }
let fleets = 0

async function fleetOf (mode: DeviceMode): Promise<FleetLog> {
  return await startFleet({
    devices: DEVICES,
    mode,
    // A fleet name of our own: other test files share the namespace and may browse DNS-SD meanwhile.
    fleet: `failover-${process.pid}-${fleets++}`,
    seed: 7,
    interval: INTERVAL,
    sensors: 'temperature,battery',
    link: LINK,
    routing: ROUTING
  })
}

/** Waits until every device has published `n` readings after `since` (ms, wall clock). */
async function readingsAfter (log: FleetLog, since: number, n: number, what: string): Promise<void> {
  await log.waiter.until(() => log.fleet.devices.every((d) => log.of(d.index).filter((p) => p.at > since).length >= n), what)
}

/** Before an outage: every device delivers, and (mesh, hybrid) reaches the gateway over the mesh. */
async function warmUp (log: FleetLog, mode: DeviceMode): Promise<void> {
  const origins = log.fleet.devices.map((d) => d.keys.id)
  await log.waiter.until(() => {
    if (mode !== 'broker' && !origins.every((o) => log.onMesh.has(o))) return false
    return log.fleet.devices.every((d) => log.of(d.index).filter((p) => log.arrived.has(keyOf(p))).length >= 2)
  }, 'every device delivering (over the mesh unless in broker mode)', 20_000)
}

const pendingBroker = (log: FleetLog): number[] => log.fleet.devices.map((d) => d.outbox.stats().pending.broker ?? 0)

/** Until every device's outbox is down to what one interval puts in flight. */
async function drained (log: FleetLog): Promise<void> {
  const pending = (i: number): number => Object.values(log.fleet.devices[i]?.outbox.stats().pending ?? {}).reduce((a, n) => a + (n ?? 0), 0)
  await log.waiter.until(() => log.fleet.devices.every((d) => pending(d.index) <= 2), 'the outboxes to drain', 15_000)
}

/** After recovery: every reading published up to now reaches the gateway (bounded), and nothing refused. */
async function everyReadingArrives (log: FleetLog, what: string, ms = 15_000): Promise<Published[]> {
  const snapshot = [...log.published]
  await log.waiter.until(() => log.missing(snapshot).length === 0, `every reading ${what}`, ms).catch((err: Error) => {
    const missing = log.missing(snapshot)
    throw new Error(`${err.message}: ${missing.length} of ${snapshot.length} still missing, e.g. ${JSON.stringify(missing.slice(0, 5))}`)
  })
  // Per device: the gateway has every sequence number the device published, no other.
  for (const sim of log.fleet.devices) {
    const seqs = snapshot.filter((p) => p.device === sim.index).map((p) => p.seq)
    expect(new Set(seqs).size).toBe(seqs.length) // no number published twice
    const got = [...log.arrived.values()].filter((a) => a.origin === sim.keys.id && a.seq <= Math.max(...seqs)).map((a) => a.seq)
    expect(got.sort((a, b) => a - b)).toEqual([...seqs].sort((a, b) => a - b))
  }
  const dropped = log.fleet.gateway?.counters.dropped ?? {}
  for (const [reason, n] of Object.entries(dropped)) if (reason !== 'duplicate') expect({ reason, n }).toEqual({ reason, n: 0 })
  return snapshot
}

describeNet('fleet failover: the broker stops for several intervals and comes back', () => {
  it.each(['broker', 'mesh', 'hybrid'] as const)('%s mode', async (mode) => {
    const log = await fleetOf(mode)
    await warmUp(log, mode)

    await log.fleet.stopBroker()
    const down = Date.now()
    const pendingAtStop = pendingBroker(log)
    // The outage: at least six sampling intervals of every device.
    await readingsAfter(log, down, 6, 'six readings of every device during the outage')
    const up = Date.now()
    const during = log.published.filter((p) => p.at >= down && p.at <= up)
    const arrivedDuring = [...log.arrived.values()].filter((a) => a.receivedAt >= down && a.receivedAt < up)
    // A reading is announced when sampled and lands in the outbox a moment later (on a loaded machine,
    // later still). With the broker down nothing leaves the broker path's backlog, so it only grows:
    // wait until it holds every reading of the outage (or time out: then one was lost).
    const mineDuring = (i: number): number => during.filter((p) => p.device === i).length
    if (mode !== 'mesh') {
      await log.waiter.until(() => log.fleet.devices.every((d, i) => (pendingBroker(log)[i] ?? 0) >= Math.max(mineDuring(d.index), (pendingAtStop[i] ?? 0) + mineDuring(d.index) - 1)),
        'every reading of the outage in its outbox', 10_000)
    }
    const pendingAtEnd = pendingBroker(log)
    const brokerUpAtEnd = log.fleet.devices.map((d) => d.device?.counters.paths.broker?.up)
    await log.fleet.startBroker()

    if (mode === 'broker') {
      // Nothing reaches the gateway while its broker is down, and every device's outbox holds its readings.
      expect(arrivedDuring).toEqual([])
      for (const [i, sim] of log.fleet.devices.entries()) {
        const mine = during.filter((p) => p.device === sim.index).length
        expect(mine).toBeGreaterThanOrEqual(6)
        // Every reading of the outage is held (a frame in flight when the broker stopped may have been acknowledged since).
        expect(pendingAtEnd[i]).toBeGreaterThanOrEqual(mine)
        expect(pendingAtEnd[i]).toBeGreaterThanOrEqual((pendingAtStop[i] ?? 0) + mine - 1)
        expect(brokerUpAtEnd[i]).toBe(false)
      }
    } else {
      // The mesh carries on: what was published during the outage arrives during the outage
      // (the last interval excepted: it may be in flight), from every device, without a gap.
      const settled = during.filter((p) => p.at < up - INTERVAL)
      const late = settled.filter((p) => (log.arrived.get(keyOf(p))?.receivedAt ?? Infinity) >= up)
      expect(late).toEqual([])
      for (const p of settled) expect(log.arrived.get(keyOf(p))?.path).toBe('mesh')
      const gaps = log.fleet.devices.map((d) => longestGap(log, d.keys.id, down, up))
      for (const gap of gaps) expect(gap).toBeLessThan(3 * INTERVAL)
      if (mode === 'hybrid') {
        // The broker path's backlog grows meanwhile: a frame leaves the outbox once every path took it.
        for (const [i, sim] of log.fleet.devices.entries()) {
          const mine = during.filter((p) => p.device === sim.index).length
          expect(pendingAtEnd[i]).toBeGreaterThanOrEqual(mine)
          expect(pendingAtEnd[i]).toBeGreaterThanOrEqual((pendingAtStop[i] ?? 0) + mine - 1)
          expect(brokerUpAtEnd[i]).toBe(false)
        }
      }
    }

    // Back up: the backlogs drain and the gateway ends with every sequence number of every device.
    await drained(log)
    await everyReadingArrives(log, `${mode} after the broker restart`)
    if (mode === 'broker') {
      for (const p of during) expect(log.arrived.get(keyOf(p))?.receivedAt).toBeGreaterThanOrEqual(up)
    }
  })
})

describeNet('fleet faults in mesh mode', () => {
  it('crash and restart: no sequence number reused, nothing lost, nothing refused as a replay (also with a backlog)', async () => {
    // SIGKILL of a real device process (disk state, broker mode) is test/firmware/device-cli.test.ts;
    // here the fleet's in-process crash: no goodbye, acks not yet durable forgotten, the key,
    // sequence source and outbox kept as a device keeps them on disk.
    const log = await fleetOf('mesh')
    await warmUp(log, 'mesh')
    const plain = 1 // crashes while connected
    const cut = 4 // cut off first, so its outbox holds a backlog when it crashes
    const origin = (i: number): DeviceId => log.fleet.devices[i]?.keys.id as DeviceId
    const others = log.fleet.devices.map((d) => d.index).filter((i) => i !== cut)
    log.fleet.partition([others])
    const cutAt = Date.now()
    await log.waiter.until(() => log.of(cut).filter((p) => p.at > cutAt).length >= 4, 'four readings of the cut-off device')

    const arrivedAtCrash = new Set(log.arrived.keys())
    await log.fleet.crash(plain)
    await log.fleet.crash(cut)
    const crashedAt = Date.now()
    const before = (i: number): number[] => log.of(i).filter((p) => p.at <= crashedAt).map((p) => p.seq)
    const backlog = before(cut).filter((seq) => !arrivedAtCrash.has(`${origin(cut)}/${seq}`))
    expect(backlog.length).toBeGreaterThanOrEqual(3)
    expect(log.fleet.stats().devicesUp).toBe(DEVICES - 2)
    // The others go on while two are down.
    await log.waiter.until(() => [0, 2, 3, 5].every((i) => log.of(i).filter((p) => p.at > crashedAt && log.arrived.has(keyOf(p))).length >= 3), 'the others delivering')
    for (const i of [plain, cut]) expect(log.of(i).filter((p) => p.at > crashedAt)).toEqual([])

    log.fleet.heal()
    await log.fleet.restart(plain)
    await log.fleet.restart(cut)
    const restartedAt = Date.now()
    await log.waiter.until(() => [plain, cut].every((i) => log.of(i).filter((p) => p.at > restartedAt && log.arrived.has(keyOf(p))).length >= 3), 'both restarted devices delivering again', 15_000)
    await drained(log)
    await everyReadingArrives(log, 'after the restarts')

    for (const i of [plain, cut]) {
      const after = log.of(i).filter((p) => p.at > restartedAt).map((p) => p.seq)
      expect(Math.min(...after)).toBeGreaterThan(Math.max(...before(i))) // numbers move on past everything signed before the crash
    }
    for (const seq of backlog) expect(log.arrived.has(`${origin(cut)}/${seq}`)).toBe(true) // the backlog survived the crash
    const counters = log.fleet.gateway?.counters
    expect(counters?.dropped.too_old).toBe(0)
    // A duplicate may only be a frame sent again from the outbox: signed, and accepted, before the crash.
    for (const drop of log.drops.filter((d) => d.deviceId === origin(plain) || d.deviceId === origin(cut))) {
      expect(drop.reason).toBe('duplicate')
      expect(arrivedAtCrash.has(`${drop.deviceId}/${drop.seq}`)).toBe(true)
    }
  })

  it('a restart after the fleet stopped is a no-op (nothing left running)', async () => {
    const log = await startFleet({ devices: 2, mode: 'mesh', gateway: false, transport: 'memory', interval: INTERVAL, fleet: `failover-${process.pid}-${fleets++}` })
    await log.fleet.crash(0)
    expect(log.fleet.devices[0]?.state).toBe('crashed')
    await log.fleet.stop()
    await log.fleet.restart(0)
    expect(log.fleet.devices.map((d) => [d.state, d.device])).toEqual([['stopped', undefined], ['stopped', log.fleet.devices[1]?.device]])
    expect(log.fleet.devices[1]?.device?.running).toBe(false)
  })

  it('partition and heal: what the cut-off side published reaches the gateway after healing, exactly once', async () => {
    const log = await fleetOf('mesh')
    await warmUp(log, 'mesh')
    const cutOff = [3, 4, 5]
    log.fleet.partition([[0, 1, 2], cutOff]) // the gateway joins the first group
    const cutAt = Date.now()
    await readingsAfter(log, cutAt, 6, 'six readings of every device during the partition')
    const healAt = Date.now()
    log.fleet.heal()
    const published = log.published.filter((p) => p.at >= cutAt && p.at <= healAt)
    const fromCutOff = published.filter((p) => cutOff.includes(p.device))
    // The partition holds: nothing from the cut-off side arrives while it lasts (the first interval
    // excepted: frames already on their way), while the gateway's side delivers (links it had
    // across the cut are replaced, so no bound on its gaps here).
    const leaked = fromCutOff.filter((p) => p.at > cutAt + INTERVAL && (log.arrived.get(keyOf(p))?.receivedAt ?? Infinity) < healAt)
    expect(leaked).toEqual([])
    expect(fromCutOff.length).toBeGreaterThanOrEqual(3 * 6)
    for (const i of [0, 1, 2]) {
      expect(published.filter((p) => p.device === i && (log.arrived.get(keyOf(p))?.receivedAt ?? Infinity) < healAt).length).toBeGreaterThanOrEqual(1)
    }

    await everyReadingArrives(log, 'after healing')
    // Exactly once at the gateway: accepted once each, and the mesh never handed the gateway a second copy.
    expect(log.fleet.gateway?.counters.dropped.duplicate).toBe(0)
    expect(log.fleet.gateway?.bridge?.counters.meshDuplicates).toBe(0)
  })
})
