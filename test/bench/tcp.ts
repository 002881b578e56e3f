import { availableParallelism } from 'node:os'
import { createFleet, type Fleet, type FleetFlow } from '../../firmware-sim/index.js'
import { processWindow, round } from './measure.js'

/**
 * Section "tcp" (issue 15, "TCP at scale"): a fleet of mesh devices in one process over real
 * encrypted TCP links on loopback, with DNS-SD, as `iotmesh sim --mode mesh` runs it (the bench
 * runs in a private network namespace: nothing leaves its `lo`). Per size: how long the fleet took
 * to start (every device up: `start_s`) and until every device had a reading at the gateway
 * (`all_delivering_s`); then, over a window after a warm-up, the share of the schedule produced
 * (one reading per device per second), the share delivered, duplicates per delivered reading at
 * the gateway's node and summed over every relay (the fullest relay apart), the cores used, and
 * the links opened per minute (`link_opens_per_min`: handshakes completed by the listening ends).
 * "Sustained" follows the fleet section's rule (≥ 99 % of the schedule, ≥ 99.9 % delivered);
 * `within_a_minute` says whether both start figures were under 60 s. The window (110 s) takes in
 * the first DNS-SD refresh queries, which every device's browser answers at once.
 *
 * Each run says `workers`: 1, the devices in the main thread with the gateway (`iotmesh sim`'s
 * default), or N, the devices dealt over N worker threads (`iotmesh sim --workers auto`, one per
 * core: FleetInit.workers), each with its own mDNS responder, the gateway in the main thread. With
 * workers the fullest relay is not reported (`busiest_relay`: null; its counters are in another
 * thread). Sizes from `IOTMESH_TCP_SIZES` (default 50,100,200,300; quick: 20), each at the
 * `IOTMESH_TCP_WORKERS` given (`1`, `auto` or a number; default: every size with 1, then the
 * largest with `auto` too, on a machine of more than one core). Every run listed runs, sustained or not, and only what ran is reported.
 */
const MIN_SCHEDULE = 0.99
const MIN_DELIVERY = 0.999

type Workers = number | 'auto'

/** The runs asked for: sizes × workers from the environment, or the default plan above. */
function plan (quick: boolean): Array<{ devices: number, workers: Workers }> {
  const list = (name: string): string[] => (process.env[name] ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '')
  const sizes = list('IOTMESH_TCP_SIZES').map(Number).filter((n) => Number.isSafeInteger(n) && n > 0)
  const workers = list('IOTMESH_TCP_WORKERS').map((w): Workers => w === 'auto' ? 'auto' : Number(w)).filter((w) => w === 'auto' || (Number.isSafeInteger(w) && w >= 1))
  const chosen = sizes.length > 0 ? sizes : quick ? [20] : [50, 100, 200, 300]
  if (workers.length > 0) return chosen.flatMap((devices) => workers.map((w) => ({ devices, workers: w })))
  const ones = chosen.map((devices) => ({ devices, workers: 1 as Workers }))
  return availableParallelism() > 1 ? [...ones, { devices: Math.max(...chosen), workers: 'auto' }] : ones // one core: no second thread to give
}

export async function benchTcp (quick: boolean): Promise<Record<string, unknown>> {
  const runs: Array<Record<string, unknown>> = []
  for (const { devices, workers } of plan(quick)) {
    process.stderr.write(`bench: tcp ${devices} mesh devices${workers === 1 ? '' : `, workers ${workers}`}…\n`)
    runs.push(await measure(devices, workers, quick))
  }
  const sustained = runs.filter((r) => r.sustained === true && r.workers === 1).map((r) => r.devices as number)
  const sustainedWorkers = runs.filter((r) => r.sustained === true && r.workers !== 1).map((r) => r.devices as number)
  return {
    tcp: {
      runs,
      sustained_sizes: sustained,
      sustained_sizes_with_workers: sustainedWorkers,
      reading_interval_ms: 1000,
      sustained_when: { schedule_ratio: MIN_SCHEDULE, delivery_ratio: MIN_DELIVERY },
      goal: { devices: 300, start_s: 60, duplicates_per_delivered: 0.01 }
    }
  }
}

/** Duplicates seen by every device's node, and by the one that saw most (in this thread: without workers). */
function relayDuplicates (fleet: Fleet): Map<string, number> {
  const byNode = new Map<string, number>()
  for (const d of fleet.devices) byNode.set(d.name, d.device?.node?.counters.duplicates ?? 0)
  return byNode
}

async function measure (devices: number, workers: Workers, quick: boolean): Promise<Record<string, unknown>> {
  const warmupMs = quick ? 3000 : 10_000
  // 110 s: the window takes in the first DNS-SD cache refreshes (80–95 % of the 120 s TTL, RFC 6762 §5.2).
  const windowMs = quick ? 10_000 : 110_000
  const origins = new Set<string>()
  let allDeliveringS: number | undefined
  const t0 = Date.now()
  const fleet = await createFleet({ devices, mode: 'mesh', transport: 'tcp', interval: 1000, gateway: {}, seed: 7, ...(workers === 1 ? {} : { workers }) })
  const startS = (Date.now() - t0) / 1000
  const onDelivered = ({ origin }: { origin: string }): void => {
    origins.add(origin)
    if (allDeliveringS === undefined && origins.size >= devices) allDeliveringS = (Date.now() - t0) / 1000
  }
  fleet.on('delivered', onDelivered)
  try {
    // With workers, flow() holds their last answers (sent every second): asked for at both ends of the window.
    const w = await processWindow(warmupMs, windowMs, async () => {
      await fleet.refresh()
      return { stats: fleet.stats(), flow: fleet.flow(), relays: relayDuplicates(fleet) }
    })
    const { stats: before, flow: flow0, relays: relays0 } = w.start
    const wall = w.wallS
    await fleet.refresh() // with workers: their counters as of now (stats() and flow() use the last answers)
    const after = fleet.stats()
    const flow = fleet.flow()
    const relays = relayDuplicates(fleet)
    const produced = after.published - before.published
    const delivered = after.atGateway - before.atGateway
    const schedule = produced / wall / devices
    const gwDup = (flow.gatewayNode?.duplicates ?? 0) - (flow0.gatewayNode?.duplicates ?? 0)
    const relayDup = flow.relays.duplicates - flow0.relays.duplicates
    let busiest = 0
    for (const [name, n] of relays) busiest = Math.max(busiest, n - (relays0.get(name) ?? 0))
    return {
      devices,
      transport: 'tcp',
      workers: after.workers ?? 1,
      sustained: schedule >= MIN_SCHEDULE && after.deliveryRatio >= MIN_DELIVERY,
      start_s: round(startS, 1),
      // Until every device had a reading at the gateway; null: some never did by the window's end.
      all_delivering_s: allDeliveringS === undefined ? null : round(allDeliveringS, 1),
      within_a_minute: startS <= 60 && allDeliveringS !== undefined && allDeliveringS <= 60,
      devices_delivering: origins.size,
      window_s: round(wall, 1),
      schedule_ratio: round(schedule, 4),
      // Of every reading published at least 2 s before the end (from the start, not only the window), the share at the gateway.
      delivery_ratio: round(after.deliveryRatio, 5),
      missing: after.missing,
      duplicates_per_delivered: {
        gateway: round(gwDup / Math.max(1, delivered), 4),
        relays: round(relayDup / Math.max(1, delivered), 4),
        busiest_relay: after.workers === undefined ? round(busiest / Math.max(1, delivered), 4) : null
      },
      cpu_cores_used: round(w.cpuMicros / 1e6 / wall, 3),
      rss_mb: Math.round(process.memoryUsage().rss / 2 ** 20),
      event_loop_delay_ms: w.eventLoopDelayMs,
      machine_load_1min: w.machineLoad1min,
      links: after.links,
      // Links opened over the window (handshakes the listening ends completed: one per link), per minute.
      link_opens_per_min: round((flow.links.handshakes - flow0.links.handshakes) / wall * 60, 1),
      flow: windowFlow(flow0, flow)
    }
  } finally {
    fleet.off('delivered', onDelivered)
    await fleet.stop()
    if (global.gc !== undefined) global.gc()
  }
}

/** The flow counters that explain duplicates, as changes over the window (links and queues as at its end). */
function windowFlow (a: FleetFlow, b: FleetFlow): Record<string, unknown> {
  return {
    relayed: b.relays.relayed - a.relays.relayed,
    repaired: b.relays.repaired - a.relays.repaired,
    wants_sent: b.relays.wantsSent - a.relays.wantsSent,
    wants_held: b.relays.wantsHeld - a.relays.wantsHeld,
    full_digests: b.relays.fullDigests - a.relays.fullDigests,
    reoffers_passed: b.relays.reoffersPassed - a.relays.reoffersPassed,
    gateway_frames_in: (b.gatewayNode?.framesIn ?? 0) - (a.gatewayNode?.framesIn ?? 0),
    gateway_wants_sent: (b.gatewayNode?.wantsSent ?? 0) - (a.gatewayNode?.wantsSent ?? 0),
    gateway_wants_held: (b.gatewayNode?.wantsHeld ?? 0) - (a.gatewayNode?.wantsHeld ?? 0),
    links_open: b.links.open,
    link_frames_out: b.links.framesOut - a.links.framesOut,
    max_queued_bytes: b.links.maxQueuedBytes,
    outbox_frames: b.outbox.frames,
    rejected: b.relays.rejected,
    over_budget: b.relays.overBudget
  }
}
