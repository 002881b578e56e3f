import { actuatorStates, publicKeyText, resolvePack, type ActuatorStates, type DeviceId, type SenmlPack } from '../shared/index.js'
import type { CloneInfo, DeviceInfo, DeviceKey, StoredReading } from './device-info.js'
import type { DropEvent, Reading, StatusEvent } from './ingest.js'
import type { DropReason, Path } from './reasons.js'
import type { CredentialInfo } from './trust.js'
import { SeqGaps, jumpKind } from './seq-gaps.js'

export type { CloneInfo, DeviceInfo, DeviceKey, DevicePath, StoredReading } from './device-info.js'

/**
 * What the gateway knows about each device: presence (retained status and last will), the paths
 * its readings arrive by, sequence gaps, failures, and a bounded history of its readings for the
 * HTTP API. Memory is bounded: `maxDevices` entries (least recently active first out) of
 * `historySize` readings each.
 */

export interface DeviceRegistryInit {
  /** Readings kept per device. Default 256. */
  historySize?: number
  /** Devices kept. Default 10,000. */
  maxDevices?: number
  /** A path counts towards "both" while it was seen within this many ms of the latest reading. Default 60 s. */
  pathWindowMs?: number
  /** A device without an online status counts as online while the mesh brought one of its readings within this many ms. Default 60 s. */
  presenceMs?: number
  /**
   * A forward jump in sequence numbers larger than this is taken as a restart (a fresh in-memory
   * sequence starts from the clock), not as lost readings. Default 1,000,000.
   */
  restartJump?: number
  /**
   * How long a skipped sequence number may take to arrive (outbox, catch-up, the other path)
   * before it counts in `seqGaps` (gateway/seq-gaps.ts). Default 120 s.
   */
  gapSettleMs?: number
  /** The devices' sequence-file block (firmware-sim `sequenceBlock`): a jump to the first number of a block is a restart. Default 1,000. */
  sequenceBlock?: number
}

interface Entry {
  info: DeviceInfo
  history: StoredReading[]
  pathSeen: Partial<Record<Path, number>>
  /** The MQTT client that announced the device online (its duplicates count as its broker path). */
  claimedBy?: string
  /** The next forward jump in seq follows a restart: skipped numbers are not losses (shared/sequence.ts reserves blocks). */
  restartPending: boolean
  /** Sampling time of the reading the actuators' state came from (a late catch-up reading does not replace it). */
  actuatorsTime?: number
  /** Numbers skipped and not (yet) filled in: gateway/seq-gaps.ts. */
  gaps: SeqGaps
}

/** What the gateway knows of each device: last reading, status, path, restarts and sequence gaps. */
export class DeviceRegistry {
  readonly #devices = new Map<DeviceId, Entry>()
  readonly #historySize: number
  readonly #maxDevices: number
  readonly #pathWindowMs: number
  readonly #presenceMs: number
  readonly #restartJump: number
  readonly #gapSettleMs: number
  readonly #sequenceBlock: number
  readonly #now: () => number
  /** Devices changed since the last `takeChanged()` (the durable store writes them behind). */
  readonly #changed = new Set<DeviceId>()
  /** Rotated keys: old id → the id of the key that replaced it (DeviceInfo.keys). */
  readonly #successor = new Map<DeviceId, DeviceId>()
  evictions = 0

  readonly #credential: ((id: DeviceId) => CredentialInfo | undefined) | undefined

  constructor (init: DeviceRegistryInit = {}, components: { now?: () => number, credential?: (id: DeviceId) => CredentialInfo | undefined } = {}) {
    this.#credential = components.credential
    this.#historySize = Math.max(1, init.historySize ?? 256)
    this.#maxDevices = Math.max(1, init.maxDevices ?? 10_000)
    this.#pathWindowMs = init.pathWindowMs ?? 60_000
    this.#presenceMs = init.presenceMs ?? 60_000
    this.#restartJump = init.restartJump ?? 1_000_000
    this.#gapSettleMs = init.gapSettleMs ?? 120_000
    this.#sequenceBlock = init.sequenceBlock ?? 1000
    this.#now = components.now ?? Date.now
  }

  get size (): number { return this.#devices.size }

  get (id: DeviceId): DeviceInfo | undefined {
    const entry = this.#devices.get(this.current(id))
    return entry === undefined ? undefined : this.#shown(this.#snapshot(entry))
  }

  list (): DeviceInfo[] {
    const now = this.#now()
    return [...this.#devices.values()].map((e) => this.#shown(this.#snapshot(e, now)))
  }

  /** A snapshot with what is computed when shown (the credential state). */
  #shown (info: DeviceInfo): DeviceInfo {
    const credential = this.#credential?.(info.id)
    return credential === undefined ? info : { ...info, credential }
  }

  /** True while the device's readings came through the mesh within the path window. */
  onMesh (id: DeviceId): boolean {
    const at = this.#devices.get(id)?.pathSeen.mesh
    return at !== undefined && this.#now() - at <= this.#pathWindowMs
  }

  /** Readings of `id` sampled after `since` (seconds since the epoch), oldest first, at most `limit`. */
  readings (id: DeviceId, options: { since?: number, limit?: number } = {}): StoredReading[] | undefined {
    const entry = this.#devices.get(this.current(id))
    if (entry === undefined) return undefined
    const since = options.since ?? -Infinity
    const out = entry.history.filter((r) => r.time > since)
    return options.limit === undefined ? out : out.slice(Math.max(0, out.length - options.limit))
  }

  applyStatus (event: StatusEvent): void {
    if (this.#successor.has(event.deviceId)) return // a retired key's (retained) status says nothing of the device now
    const entry = this.#touch(event.deviceId)
    const { info } = entry
    const status = event.status
    if (status === undefined) {
      delete info.status
      return
    }
    if (status.state === 'online') {
      // A restart is an online status after an earlier one (online, or offline by its will): a
      // device's first status is none, even when its mesh readings came before it (a hybrid device).
      if (info.status !== undefined) {
        info.restarts++
        entry.restartPending = true
      }
      info.status = 'online'
      info.pk = publicKeyText(status.publicKey)
      if (status.name !== undefined) info.name = status.name
      if (event.from !== undefined) entry.claimedBy = event.from
    } else {
      info.status = 'offline'
    }
    info.lastSeen = this.#now()
  }

  /** A name from elsewhere (a DNS-SD instance name): kept only while the device has none; true when applied. */
  applyName (id: DeviceId, name: string): boolean {
    if (this.#successor.has(id) || this.#devices.get(id)?.info.name !== undefined || name.length === 0 || name.length > 64) return false
    this.#touch(id).info.name = name
    return true
  }

  /** A public key learned from elsewhere (DNS-SD, the roster): the device becomes known. */
  applyKey (id: DeviceId, publicKey: Uint8Array): void {
    if (this.#successor.has(id)) return
    const entry = this.#touch(id)
    entry.info.pk = publicKeyText(publicKey)
  }

  recordReading (reading: Reading): void {
    const entry = this.#touch(this.current(reading.origin))
    const { info } = entry
    if (info.lastSeq === undefined) {
      info.lastSeq = reading.seq
    } else if (reading.seq > info.lastSeq) {
      const skipped = reading.seq - info.lastSeq - 1
      if (skipped > this.#restartJump && !entry.restartPending) info.restarts++
      if (skipped > 0) {
        const kind = jumpKind(info.lastSeq, reading.seq, { block: this.#sequenceBlock, restartJump: this.#restartJump, restartKnown: entry.restartPending })
        entry.gaps.skipped(info.lastSeq + 1, reading.seq - 1, kind, this.#now())
      }
      info.lastSeq = reading.seq
    } else {
      // A late arrival (inside the replay window) fills the number it skipped before.
      entry.gaps.late(reading.seq, this.#now())
    }
    entry.restartPending = false
    info.readings++
    info.lastSeen = reading.receivedAt
    this.#seenOn(entry, reading.path, reading.receivedAt)
    this.#actuators(entry, reading)
    if (reading.deviceTopic === 'config') applyConfigState(info, reading.records)
    entry.history.push({ seq: reading.seq, time: reading.time, receivedAt: reading.receivedAt, path: reading.path, deviceTopic: reading.deviceTopic, records: reading.records })
    if (entry.history.length > this.#historySize) entry.history.splice(0, entry.history.length - this.#historySize)
  }

  /**
   * Counts a drop against a device the registry already knows (an unknown id never creates an
   * entry). A duplicate is a reading that also came by another path: a hybrid device publishes to
   * the broker and the mesh, and the gateway keeps the first copy. The duplicate's path then
   * counts as seen (the device shows `both`) when it is trustworthy: a mesh copy (the router
   * verified it and it was new to the mesh), or a broker copy from the MQTT connection that
   * announced the device (any in external mode, where the gateway sees no connections).
   */
  recordDrop (drop: DropEvent): void {
    if (drop.deviceId === undefined) return
    const id = this.current(drop.deviceId)
    const entry = this.#devices.get(id)
    if (entry === undefined) return
    this.#changed.add(id)
    entry.info.drops[drop.reason] = (entry.info.drops[drop.reason] ?? 0) + 1
    if (drop.reason === 'bad_signature') {
      entry.info.signatureFailures++
      entry.info.lastSignatureFailure = this.#now()
    }
    if (drop.reason === 'cloned_identity') {
      const now = this.#now()
      const clone: CloneInfo = entry.info.clone ?? { code: 'ERR_CLONED_IDENTITY', copies: 0, since: now, last: now }
      clone.copies++
      clone.last = now
      if (drop.seq !== undefined) clone.seq = drop.seq
      entry.info.clone = clone
    }
    if (drop.reason === 'duplicate' && drop.path !== undefined && entry.info.readings > 0) {
      const trusted = drop.path === 'mesh' || drop.from === undefined || drop.from === entry.claimedBy
      if (trusted) this.#seenOn(entry, drop.path, this.#now())
    }
  }

  /** Marks every device offline (the embedded broker stopped, the external one went away). */
  markAllOffline (): void {
    for (const entry of this.#devices.values()) {
      if (entry.info.status === 'online') entry.info.status = 'offline'
      delete entry.pathSeen.mesh
      this.#changed.add(entry.info.id)
    }
  }

  /** The devices changed since the last call, as the API shows them (for the durable store). */
  takeChanged (): DeviceInfo[] {
    const now = this.#now()
    const out: DeviceInfo[] = []
    for (const id of this.#changed) {
      const entry = this.#devices.get(id)
      if (entry !== undefined) out.push(this.#snapshot(entry, now))
    }
    this.#changed.clear()
    return out
  }

  /**
   * Puts back devices saved by an earlier run (least recently active first): counters, names,
   * keys and sequence numbers. Presence is not restored: a device is online again when it says
   * so or its readings arrive. Devices already known are left as they are.
   */
  restore (devices: Iterable<DeviceInfo>): void {
    const all = [...devices]
    // Rotations first, from the saved key lists: a retired key's own saved entry is not brought back (its readings are counted in its successor's).
    for (const saved of all) this.#learnKeys(saved.keys)
    for (const saved of all) {
      if (this.#devices.has(saved.id) || this.#successor.has(saved.id)) continue
      const entry = this.#touch(saved.id)
      const { status: _status, online: _online, path: _path, credential: _credential, seqPending: _pending, ...kept } = saved
      entry.info = { ...kept, online: false, drops: { ...saved.drops } }
      this.#changed.delete(saved.id)
    }
  }

  /** The id of the device's current key: `id` itself unless a rotation replaced it (followed to the last key). */
  current (id: DeviceId): DeviceId {
    let at = id
    for (let hops = 0; hops < 64; hops++) {
      const next = this.#successor.get(at)
      if (next === undefined) return at
      at = next
    }
    return at
  }

  /** Every key id of the device `id` is a key of, oldest first (just `id` when it never rotated). */
  keyIds (id: DeviceId): DeviceId[] {
    const current = this.current(id)
    return this.#devices.get(current)?.info.keys?.map((k) => k.id) ?? [current]
  }

  /**
   * A rotation the fleet's owners signed (a verified revocation "rotated": shared/fleet.ts): `old`
   * and `successor` are one device from now on. Its entry is kept under the successor's id, with
   * the old key's counters, name and readings, and `keys` listing both; the old key's entry goes
   * (one row on the dashboard). Idempotent: a rotation known already, or one whose successor lists
   * the old key already (restored from the store), changes nothing but removing the old entry.
   * Returns true when it changed anything.
   */
  rotate (old: DeviceId, successor: DeviceId, retiredAt: number): boolean {
    if (old === successor || this.current(successor) === old) return false
    const known = this.#successor.get(old) === successor
    this.#successor.set(old, successor)
    const from = this.#devices.get(old)
    const target = this.current(successor)
    const entry = this.#touch(target)
    const keys = entry.info.keys ?? [{ id: target, ...(entry.info.pk === undefined ? {} : { pk: entry.info.pk }) }]
    if (from !== undefined) {
      this.#devices.delete(old)
      this.#changed.delete(old)
    }
    if (keys.some((k) => k.id === old)) return !known || from !== undefined
    const before: DeviceKey[] = from?.info.keys ?? [{ id: old, ...(from?.info.pk === undefined ? {} : { pk: from.info.pk }) }]
    entry.info.keys = [...before.slice(0, -1), { ...(before[before.length - 1] as DeviceKey), retiredAt }, ...keys]
    if (from !== undefined) merge(entry, from, this.#historySize, this.#now())
    return true
  }

  #learnKeys (keys: DeviceKey[] | undefined): void {
    if (keys === undefined) return
    for (let i = 0; i + 1 < keys.length; i++) {
      const [a, b] = [keys[i], keys[i + 1]]
      if (a !== undefined && b !== undefined && a.id !== b.id) this.#successor.set(a.id, b.id)
    }
  }

  #actuators (entry: Entry, reading: Reading): void {
    if (reading.time < (entry.actuatorsTime ?? -Infinity)) return
    let states: ActuatorStates
    try { states = actuatorStates(resolvePack(reading.records, reading.time)) } catch { return }
    const names = Object.keys(states)
    if (names.length === 0) return
    entry.actuatorsTime = reading.time
    const known = entry.info.actuators ??= {}
    for (const name of names) known[name] = { ...known[name], ...states[name] }
  }

  #seenOn (entry: Entry, path: Path, at: number): void {
    entry.pathSeen[path] = Math.max(at, entry.pathSeen[path] ?? -Infinity)
    const recent = (Object.entries(entry.pathSeen) as Array<[Path, number]>).filter(([, seen]) => at - seen <= this.#pathWindowMs).map(([p]) => p)
    entry.info.path = recent.length > 1 ? 'both' : path
  }

  #snapshot (entry: Entry, now = this.#now()): DeviceInfo {
    const mesh = entry.pathSeen.mesh
    const online = entry.info.status === 'online' || (mesh !== undefined && now - mesh <= this.#presenceMs)
    const pending = entry.gaps.pending(now)
    const { seqPending: _pending, ...info } = entry.info
    return {
      ...info,
      online,
      seqGaps: entry.info.seqGaps + entry.gaps.lost(now),
      ...(pending === 0 ? {} : { seqPending: pending }),
      drops: { ...entry.info.drops },
      ...(entry.info.clone === undefined ? {} : { clone: { ...entry.info.clone } }),
      ...(entry.info.actuators === undefined ? {} : { actuators: structuredClone(entry.info.actuators) }),
      ...(entry.info.keys === undefined ? {} : { keys: entry.info.keys.map((k) => k.id === entry.info.id && entry.info.pk !== undefined ? { ...k, pk: entry.info.pk } : { ...k }) })
    }
  }

  #touch (id: DeviceId): Entry {
    let entry = this.#devices.get(id)
    if (entry === undefined) {
      if (this.#devices.size >= this.#maxDevices) {
        this.#devices.delete(this.#devices.keys().next().value as DeviceId)
        this.evictions++
      }
      entry = { info: { id, online: false, readings: 0, seqGaps: 0, restarts: 0, signatureFailures: 0, drops: {} }, history: [], pathSeen: {}, restartPending: false, gaps: new SeqGaps({ settleMs: this.#gapSettleMs }) }
    } else {
      this.#devices.delete(id) // re-inserted below: Map order is least recently active first
    }
    this.#devices.set(id, entry)
    this.#changed.add(id)
    return entry
  }
}

/** An old key's entry into its successor's (a rotation): counts add up, its history comes first, what the new key has not said yet is kept. */
function merge (entry: Entry, from: Entry, historySize: number, now: number): void {
  const [to, old] = [entry.info, from.info]
  to.readings += old.readings
  to.seqGaps += old.seqGaps + from.gaps.close(now)
  to.restarts += old.restarts
  to.signatureFailures += old.signatureFailures
  for (const [reason, n] of Object.entries(old.drops) as Array<[DropReason, number]>) to.drops[reason] = (to.drops[reason] ?? 0) + n
  to.name ??= old.name
  to.lastSeen = Math.max(to.lastSeen ?? -Infinity, old.lastSeen ?? -Infinity)
  if (!Number.isFinite(to.lastSeen)) delete to.lastSeen
  to.config ??= old.config
  to.actuators ??= old.actuators
  entry.history = [...from.history, ...entry.history].sort((a, b) => a.time - b.time)
  if (entry.history.length > historySize) entry.history.splice(0, entry.history.length - historySize)
}

/** The device's report of its signed configuration (records config_version, config_restart, config_refused_version, config_refused). */
function applyConfigState (info: DeviceInfo, records: SenmlPack): void {
  const field = (n: string): { v?: number, vs?: string } | undefined => records.find((r) => r.n === n) as { v?: number, vs?: string } | undefined
  const version = field('config_version')?.v
  if (typeof version !== 'number') return
  const restart = field('config_restart')?.vs
  const refusedVersion = field('config_refused_version')?.v
  const reason = field('config_refused')?.vs
  info.config = {
    version,
    ...(restart === undefined ? {} : { restart }),
    ...(typeof refusedVersion === 'number' && reason !== undefined ? { refused: { version: refusedVersion, reason } } : {})
  }
}
