/** Helpers for the fleet simulator tests. Not a test file itself. */
import { onTestFinished } from 'vitest'
import type { DeviceId } from '../../shared/index.js'
import { LINKS_TOPIC } from '../../shared/index.js'
import { Fleet, type FleetInit } from '../../firmware-sim/index.js'
import type { Path } from '../../gateway/index.js'
import { Waiter } from './device-support.js'

export { Waiter }

/** A reading as the fleet announced it, with the wall-clock time it was announced. */
export interface Published { device: number, origin: DeviceId, seq: number, at: number }
/** A reading as the gateway first accepted it (the fleet's `delivered` event). */
export interface Arrival { origin: DeviceId, seq: number, path: string, receivedAt: number }

export const keyOf = (r: { origin: DeviceId, seq: number }): string => `${r.origin}/${r.seq}`

/**
 * What a fleet did, from its own events and its gateway's: every reading published, its first
 * arrival at the gateway, every drop at the gateway (from when the fleet runs), and on which
 * path each device's frames reached the gateway (accepted or dropped as a duplicate). Every event
 * kicks `waiter`.
 */
export interface FleetLog {
  readonly fleet: Fleet
  readonly waiter: Waiter
  readonly published: Published[]
  readonly arrived: Map<string, Arrival>
  readonly drops: Array<{ reason: string, deviceId?: DeviceId, seq?: number, path?: string, at: number }>
  /** Devices (by origin) some frame of which reached the gateway on the mesh. */
  readonly onMesh: Set<DeviceId>
  /** Readings of `from` (default all published so far) that have not reached the gateway. */
  missing: (from?: readonly Published[]) => Published[]
  /** Published readings of one device, in order. */
  of: (device: number) => Published[]
}

/** Starts a fleet (stopped when the test ends) and records what it does. */
export async function startFleet (init: FleetInit): Promise<FleetLog> {
  const waiter = new Waiter()
  const fleet = new Fleet(init)
  onTestFinished(async () => { await fleet.stop() })
  const published: Published[] = []
  const arrived = new Map<string, Arrival>()
  const drops: FleetLog['drops'] = []
  const onMesh = new Set<DeviceId>()
  fleet.on('reading', (r) => { published.push({ device: r.device, origin: r.origin, seq: r.seq, at: Date.now() }); waiter.kick() })
  fleet.on('delivered', (d) => { arrived.set(keyOf(d), d); waiter.kick() })
  await fleet.start()
  // Attached once the fleet runs: what happened before is in the gateway's counters.
  fleet.gateway?.on('reading', (r) => {
    if (r.path === 'mesh' && r.deviceTopic !== LINKS_TOPIC) onMesh.add(r.origin)
  })
  fleet.gateway?.on('drop', (d) => {
    drops.push({ reason: d.reason, ...(d.deviceId === undefined ? {} : { deviceId: d.deviceId }), ...(d.seq === undefined ? {} : { seq: d.seq }), ...(d.path === undefined ? {} : { path: d.path }), at: Date.now() })
    if (d.reason === 'duplicate' && d.path === 'mesh' && d.deviceId !== undefined) onMesh.add(d.deviceId)
    waiter.kick()
  })
  return {
    fleet,
    waiter,
    published,
    arrived,
    drops,
    onMesh,
    missing: (from = published) => from.filter((p) => !arrived.has(keyOf(p))),
    of: (device) => published.filter((p) => p.device === device)
  }
}

/** Longest time without an arrival from `origin` within [from, to], edges included (ms). */
export function longestGap (log: FleetLog, origin: DeviceId, from: number, to: number, path?: Path): number {
  const times = [...log.arrived.values()]
    .filter((a) => a.origin === origin && (path === undefined || a.path === path) && a.receivedAt >= from && a.receivedAt <= to)
    .map((a) => a.receivedAt)
    .sort((a, b) => a - b)
  const points = [from, ...times, to]
  let gap = 0
  for (let i = 1; i < points.length; i++) gap = Math.max(gap, (points[i] as number) - (points[i - 1] as number))
  return gap
}
