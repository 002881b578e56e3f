import { createFleet, type FleetInit } from '../../firmware-sim/index.js'
import { defaultEd25519, type Ed25519 } from '../../shared/index.js'
import { processWindow, round } from './measure.js'

/**
 * Section "fleet": the largest fleet (devices at 1 reading/s) that one process sustains, for mesh
 * mode, mesh mode with signature checks shared between the simulated devices (`mesh-shared`,
 * labelled `verification: "shared"`: the same deliveries, less CPU than real devices), and broker
 * mode, with CPU and memory per device. Sustained means what a user gets: the
 * devices produce at least 99 % of their schedule in the measured window (a fleet that falls
 * behind its timers is not sustained, however well it delivers the little it makes), and at least
 * 99.9 % of what they produced reaches the gateway. Sizes grow until a size misses the mark. Mesh fleets use in-memory links (one process
 * cannot hold thousands of TCP sockets' worth of encryption and still be the thing measured);
 * broker fleets are real MQTT clients over TCP to the embedded Aedes broker. Everything (devices,
 * gateway, broker) shares the one process: CPU per device includes the gateway's share.
 *
 * Each size also says why it missed the mark, if it did (`flow`, Fleet.flow()): what each step
 * dropped by error code (device outboxes, relays, links, the gateway's mesh node, the bridge, the
 * gateway's ingest) and what still waits in outboxes and link queues; with the event loop's delay
 * (the fleet's one thread: `cpu_cores_used` near 1 is a saturated thread, whatever the cores) and
 * the machine's load average (1 min) at the start and end of the window, since other processes
 * take the CPU from this one.
 */
const MIN_SCHEDULE = 0.99
const MIN_DELIVERY = 0.999

export async function benchFleet (quick: boolean): Promise<Record<string, unknown>> {
  // IOTMESH_FLEET_SIZES=250,500 and IOTMESH_FLEET_MODES=mesh measure only those (a diagnosis, not the figure of record).
  const sizes = listOf(process.env.IOTMESH_FLEET_SIZES)?.map(Number) ?? (quick ? [20, 50] : [100, 250, 500, 750, 1000])
  // mesh-shared: the mesh fleet with signature checks shared between its simulated devices (FleetInit.shareVerification):
  // the same deliveries, less CPU than real devices; labelled `verification: "shared"` in each run.
  // mesh-workers, mesh-shared-workers: the same fleets split over worker threads (FleetInit.workers 'auto': one per core,
  // the gateway in the main thread); not in the default list, which stays the one-thread figure of record.
  const MODES = ['mesh', 'mesh-shared', 'broker', 'mesh-workers', 'mesh-shared-workers'] as const
  const DEFAULT_MODES = ['mesh', 'mesh-shared', 'broker']
  const modes = (listOf(process.env.IOTMESH_FLEET_MODES) ?? DEFAULT_MODES).filter((m): m is typeof MODES[number] => (MODES as readonly string[]).includes(m))
  const out: Record<string, unknown> = {}
  for (const mode of modes) {
    const runs: Array<Record<string, unknown>> = []
    let largest = 0
    for (const devices of sizes) {
      process.stderr.write(`bench: fleet ${mode} ${devices} devices…\n`)
      const mesh = mode !== 'broker'
      const shared = mode === 'mesh-shared' || mode === 'mesh-shared-workers'
      const workers = mode.endsWith('-workers') ? { workers: 'auto' as const } : {}
      const run = await measure({ devices, mode: mesh ? 'mesh' : 'broker', transport: mesh ? 'memory' : 'tcp', ...(shared ? { shareVerification: true } : {}), ...workers }, quick)
      runs.push(run)
      if (!(run.sustained as boolean)) break
      largest = devices
    }
    out[mode] = { largest_sustained_devices: largest, runs }
  }
  return { fleet: { ...out, reading_interval_ms: 1000, sustained_when: { schedule_ratio: MIN_SCHEDULE, delivery_ratio: MIN_DELIVERY }, goal_mesh_devices: 1000 } }
}

/**
 * Counts the process's Ed25519 signature checks until the returned function is called (which
 * stops counting and gives the count): every part of a fleet uses the default backend.
 */
function countVerifies (): () => number {
  const ed = defaultEd25519 as { verify: Ed25519['verify'] }
  const original = ed.verify
  let n = 0
  ed.verify = (signature, message, key) => { n++; return original.call(defaultEd25519, signature, message, key) }
  return () => { ed.verify = original; return n }
}

function listOf (value: string | undefined): string[] | undefined {
  const items = value?.split(',').map((v) => v.trim()).filter((v) => v !== '')
  return items === undefined || items.length === 0 ? undefined : items
}

async function measure (init: FleetInit, quick: boolean): Promise<Record<string, unknown>> {
  const warmupMs = quick ? 3000 : 5000
  const windowMs = quick ? 6000 : 15_000
  const t0 = Date.now()
  const fleet = await createFleet({ ...init, interval: 1000, mdns: false, gateway: {}, seed: 7 })
  const startS = (Date.now() - t0) / 1000
  try {
    // Readings counted by when they were made (their sampling time), not when this thread heard of them: a
    // worker tells its readings in batches, late by as much as its event loop is (hundreds of ms when overloaded).
    const made: number[] = []
    let windowStart = Infinity
    fleet.on('reading', (r) => { if (r.time >= windowStart) made.push(r.time) })
    const w = await processWindow(warmupMs, windowMs, () => { windowStart = Date.now(); return { stats: fleet.stats(), verifies: countVerifies() } })
    const windowEnd = windowStart + w.wallS * 1000
    const { stats: before, verifies } = w.start
    const checks = verifies()
    // With workers: their stats and flow as of now; a worker too busy to answer leaves its last answer (said in the run).
    const refreshed = await fleet.refresh().then(() => true, () => false)
    const flow = fleet.flow()
    const wall = w.wallS
    const after = fleet.stats()
    const rss = process.memoryUsage().rss
    const devices = init.devices as number
    // refresh() above had each worker send the readings it made up to its answer: every one made in the window is in.
    const inWindow = made.filter((t) => t < windowEnd).length
    const perSecond = inWindow / wall
    // The schedule: each device one reading per interval (1 s).
    const schedule = perSecond / devices
    return {
      devices,
      transport: init.transport,
      verification: after.verification,
      // Worker threads the devices ran in (the gateway in the main thread), when more than one.
      ...(after.workers === undefined ? {} : { workers: after.workers, workers_answered: refreshed }),
      sustained: schedule >= MIN_SCHEDULE && after.deliveryRatio >= MIN_DELIVERY,
      start_s: round(startS, 1),
      readings_per_s: round(perSecond, 1),
      schedule_ratio: round(schedule, 4),
      delivery_ratio: round(after.deliveryRatio, 5),
      missing: after.missing,
      // Every Ed25519 signature check in the process (frames, acks, declarations) per reading produced.
      // With workers the count sees the main thread only (the gateway's checks): left out.
      ...(after.workers === undefined ? { verifies_per_reading: round(checks / Math.max(1, inWindow), 2) } : {}),
      ...(after.sharedChecks === undefined ? {} : { shared_checks_per_reading: round((after.sharedChecks.shared - (before.sharedChecks?.shared ?? 0)) / Math.max(1, inWindow), 2) }),
      cpu_cores_used: round(w.cpuMicros / 1e6 / wall, 3),
      cpu_ms_per_device_per_s: round(w.cpuMicros / 1e3 / wall / devices, 3),
      // The main thread's garbage-collection pauses, as a share of the process's CPU (with workers, theirs are left out).
      gc_pause_share_of_cpu: round(w.gcPauseMs / Math.max(1, w.cpuMicros / 1e3), 3),
      rss_mb: Math.round(rss / 2 ** 20),
      // The whole process (devices, gateway, broker, runtime) divided by the devices: an upper bound.
      memory_kb_per_device: Math.round(rss / 1024 / devices),
      // The main thread's (with workers: the gateway's alone; the workers' loops are not sampled).
      event_loop_delay_ms: w.eventLoopDelayMs,
      machine_load_1min: w.machineLoad1min,
      flow
    }
  } finally {
    await fleet.stop()
    if (global.gc !== undefined) global.gc()
  }
}
