import { publicKeyText, type DeviceId, type SenmlPack } from '../shared/index.js'
import type { DropEvent, Reading, StatusEvent } from './ingest.js'
import type { DropReason, Path } from './reasons.js'

/**
 * What the gateway knows about each device: presence (retained status and last will), the paths
 * its readings arrive by, sequence gaps, failures, and a bounded history of its readings for the
 * HTTP API. Memory is bounded: `maxDevices` entries (least recently active first out) of
 * `historySize` readings each.
 */

export type DevicePath = Path | 'both'

export interface StoredReading {
  seq: number
  /** Sampling time, seconds since the epoch. */
  time: number
  /** When the gateway accepted it, ms since the epoch. */
  receivedAt: number
  path: Path
  deviceTopic: string
  records: SenmlPack
}

/** A device as the API shows it (plain JSON). */
export interface DeviceInfo {
  id: DeviceId
  name?: string
  /** base64url public key, once known. */
  pk?: string
  online: boolean
  /** Last reading or status, ms since the epoch. */
  lastSeen?: number
  /** Paths seen within `pathWindowMs` of the last reading: broker, mesh or both. */
  path?: DevicePath
  readings: number
  /** Highest sequence number accepted. */
  lastSeq?: number
  /** Sequence numbers skipped between consecutive accepted readings and never filled in. */
  seqGaps: number
  /** Online statuses that followed earlier activity (a reconnect or a restart). */
  restarts: number
  signatureFailures: number
  /** Drops attributed to this device, by reason. */
  drops: Partial<Record<DropReason, number>>
}

export interface DeviceRegistryInit {
  /** Readings kept per device. Default 256. */
  historySize?: number
  /** Devices kept. Default 10,000. */
  maxDevices?: number
  /** A path counts towards "both" while it was seen within this many ms of the latest reading. Default 60 s. */
  pathWindowMs?: number
}

interface Entry {
  info: DeviceInfo
  history: StoredReading[]
  pathSeen: Partial<Record<Path, number>>
  /** The next forward jump in seq follows a restart: skipped numbers are not losses (shared/sequence.ts reserves blocks). */
  restartPending: boolean
}

export class DeviceRegistry {
  readonly #devices = new Map<DeviceId, Entry>()
  readonly #historySize: number
  readonly #maxDevices: number
  readonly #pathWindowMs: number
  readonly #now: () => number
  evictions = 0

  constructor (init: DeviceRegistryInit = {}, components: { now?: () => number } = {}) {
    this.#historySize = Math.max(1, init.historySize ?? 256)
    this.#maxDevices = Math.max(1, init.maxDevices ?? 10_000)
    this.#pathWindowMs = init.pathWindowMs ?? 60_000
    this.#now = components.now ?? Date.now
  }

  get size (): number { return this.#devices.size }

  get (id: DeviceId): DeviceInfo | undefined {
    const entry = this.#devices.get(id)
    return entry === undefined ? undefined : snapshot(entry.info)
  }

  list (): DeviceInfo[] {
    return [...this.#devices.values()].map((e) => snapshot(e.info))
  }

  /** Readings of `id` sampled after `since` (seconds since the epoch), oldest first, at most `limit`. */
  readings (id: DeviceId, options: { since?: number, limit?: number } = {}): StoredReading[] | undefined {
    const entry = this.#devices.get(id)
    if (entry === undefined) return undefined
    const since = options.since ?? -Infinity
    const out = entry.history.filter((r) => r.time > since)
    return options.limit === undefined ? out : out.slice(Math.max(0, out.length - options.limit))
  }

  applyStatus (event: StatusEvent): void {
    const entry = this.#touch(event.deviceId)
    const { info } = entry
    const status = event.status
    if (status === undefined) {
      info.online = false
      return
    }
    if (status.state === 'online') {
      if (info.lastSeen !== undefined && (info.readings > 0 || info.online)) {
        info.restarts++
        entry.restartPending = true
      }
      info.online = true
      info.pk = publicKeyText(status.publicKey)
      if (status.name !== undefined) info.name = status.name
    } else {
      info.online = false
    }
    info.lastSeen = this.#now()
  }

  /** A public key learned from elsewhere (DNS-SD, the roster): the device becomes known. */
  applyKey (id: DeviceId, publicKey: Uint8Array): void {
    const entry = this.#touch(id)
    entry.info.pk = publicKeyText(publicKey)
  }

  recordReading (reading: Reading): void {
    const entry = this.#touch(reading.origin)
    const { info } = entry
    if (info.lastSeq === undefined) {
      info.lastSeq = reading.seq
    } else if (reading.seq > info.lastSeq) {
      if (!entry.restartPending) info.seqGaps += reading.seq - info.lastSeq - 1
      info.lastSeq = reading.seq
    } else {
      // A late arrival inside the replay window fills a gap counted before.
      info.seqGaps = Math.max(0, info.seqGaps - 1)
    }
    entry.restartPending = false
    info.readings++
    info.lastSeen = reading.receivedAt
    entry.pathSeen[reading.path] = reading.receivedAt
    const recent = (Object.entries(entry.pathSeen) as Array<[Path, number]>).filter(([, at]) => reading.receivedAt - at <= this.#pathWindowMs).map(([p]) => p)
    info.path = recent.length > 1 ? 'both' : reading.path
    entry.history.push({ seq: reading.seq, time: reading.time, receivedAt: reading.receivedAt, path: reading.path, deviceTopic: reading.deviceTopic, records: reading.records })
    if (entry.history.length > this.#historySize) entry.history.splice(0, entry.history.length - this.#historySize)
  }

  /** Counts a drop against a device the registry already knows (an unknown id never creates an entry). */
  recordDrop (drop: DropEvent): void {
    if (drop.deviceId === undefined) return
    const entry = this.#devices.get(drop.deviceId)
    if (entry === undefined) return
    entry.info.drops[drop.reason] = (entry.info.drops[drop.reason] ?? 0) + 1
    if (drop.reason === 'bad_signature') entry.info.signatureFailures++
  }

  /** Marks every device offline (the embedded broker stopped, the external one went away). */
  markAllOffline (): void {
    for (const entry of this.#devices.values()) entry.info.online = false
  }

  #touch (id: DeviceId): Entry {
    let entry = this.#devices.get(id)
    if (entry === undefined) {
      if (this.#devices.size >= this.#maxDevices) {
        this.#devices.delete(this.#devices.keys().next().value as DeviceId)
        this.evictions++
      }
      entry = { info: { id, online: false, readings: 0, seqGaps: 0, restarts: 0, signatureFailures: 0, drops: {} }, history: [], pathSeen: {}, restartPending: false }
    } else {
      this.#devices.delete(id) // re-inserted below: Map order is least recently active first
    }
    this.#devices.set(id, entry)
    return entry
  }
}

function snapshot (info: DeviceInfo): DeviceInfo {
  return { ...info, drops: { ...info.drops } }
}
