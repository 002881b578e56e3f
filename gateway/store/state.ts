import { systemClock, type Clock, type DeviceId, type TimerHandle } from '../../shared/index.js'
import type { DeviceRegistry } from '../devices.js'
import type { Ingest, Reading } from '../ingest.js'
import type { GatewayStore, RetentionInit, StoredReading } from './store.js'

/**
 * What ties the gateway to its store (gateway/store/store.ts):
 *   - at start, the saved replay windows go back into the ingest's verifier (shared/replay.ts
 *     `restore`), the keys of known devices into its key store, and the devices into the
 *     registry: a frame accepted before the restart is a duplicate after it, whoever replays it
 *     (an attacker with a capture, or mesh catch-up re-offering what the gateway already had);
 *   - every accepted reading is recorded before the gateway publishes it anywhere
 *     (`record`, called first by the gateway's reading listener);
 *   - every `flushMs` the changed devices are written, every `pruneMs` retention is applied;
 *   - at stop, the last changes are written, pending writes awaited, the database closed.
 */

export interface StateInit {
  retention?: RetentionInit
  /** How often changed devices are written. Default 1000 ms. */
  flushMs?: number
  /** How often retention runs. Default 60 s. */
  pruneMs?: number
}

export interface StateComponents {
  ingest: Ingest
  devices: DeviceRegistry
  clock?: Clock
  /** Told about a write that failed (the gateway goes on; the reading stays delivered). */
  onError?: (err: unknown) => void
}

export interface StateCounters {
  /** Readings written. */
  recorded: number
  /** Readings another gateway sharing the database had stored already. */
  alreadyStored: number
  /** Writes that failed. */
  errors: number
  /** Replay windows and devices restored at start. */
  restoredOrigins: number
  restoredDevices: number
  /** Readings deleted by retention. */
  pruned: number
}

/** Keeps the gateway's readings, replay windows and devices in a store, and restores them at start. */
export class GatewayState {
  readonly store: GatewayStore
  readonly counters: StateCounters = { recorded: 0, alreadyStored: 0, errors: 0, restoredOrigins: 0, restoredDevices: 0, pruned: 0 }
  readonly #init: StateInit
  readonly #c: StateComponents
  readonly #clock: Clock
  readonly #pending = new Set<Promise<unknown>>()
  #timers: TimerHandle[] = []
  #running = false

  constructor (store: GatewayStore, init: StateInit, components: StateComponents) {
    this.store = store
    this.#init = init
    this.#c = components
    this.#clock = components.clock ?? systemClock
  }

  /** Opens the store and restores what it holds. Call before any traffic is admitted. */
  async start (): Promise<void> {
    if (this.#running) return
    await this.store.open()
    const verifier = this.#c.ingest.verifier
    let loaded: Awaited<ReturnType<GatewayStore['load']>>
    try {
      loaded = await this.store.load({ window: verifier.replay.window, maxDevices: 100_000 })
    } catch (err) {
      await this.store.close().catch(() => {})
      throw err
    }
    const { origins, devices } = loaded
    const keys = new Map(devices.map((d) => [d.id, d.pk]))
    for (const saved of origins) {
      verifier.replay.restore({ origin: saved.origin, high: saved.high, seen: saved.seen, floor: saved.floor, ...(saved.known ? { trust: 'pin' as const } : {}) })
      const pk = keys.get(saved.origin)
      // A known device's key is pinned again (as it was when it became known); the id must derive from it.
      if (saved.known && pk !== undefined && verifier.learnKey(Buffer.from(pk, 'base64url'), saved.origin, 'pin').result === 'added') this.#c.ingest.counters.keysLearned++
    }
    this.#c.devices.restore(devices)
    this.#c.devices.takeChanged()
    this.counters.restoredOrigins = origins.length
    this.counters.restoredDevices = devices.length
    this.#running = true
    this.#every(this.#init.flushMs ?? 1000, () => { this.#track(this.store.saveDevices(this.#c.devices.takeChanged())) })
    this.#every(this.#init.pruneMs ?? 60_000, () => { this.#track(this.prune()) })
  }

  /**
   * Records an accepted reading: true when it is kept (committed, or stored already by another
   * gateway sharing the database), false when the write failed (counted and reported through
   * `onError`, never thrown). A synchronous store (SQLite) answers at once; otherwise (PostgreSQL)
   * a promise answers when the commit did. The gateway acknowledges the device's PUBLISH and
   * passes the reading on only once it is kept (gateway/authorize.ts), so nothing reaches a
   * subscriber, and no device drops a reading from its outbox, that a restarted gateway would not
   * know it accepted. Stopped: true (nothing is kept any more, and nothing waits).
   */
  record (reading: Reading): boolean | Promise<boolean> {
    if (!this.#running) return true
    const known = this.#c.ingest.verifier.known(reading.origin)
    const row: StoredReading = {
      origin: reading.origin,
      seq: reading.seq,
      time: reading.time,
      receivedAt: reading.receivedAt,
      path: reading.path,
      topic: reading.deviceTopic,
      frame: reading.frame
    }
    const kept = (stored: boolean): true => {
      if (stored) this.counters.recorded++
      else this.counters.alreadyStored++
      return true
    }
    const failed = (err: unknown): false => {
      this.counters.errors++
      this.#c.onError?.(err)
      return false
    }
    if (this.store.recordSync !== undefined) {
      try {
        return kept(this.store.recordSync(row, known))
      } catch (err) {
        return failed(err)
      }
    }
    const written = this.store.record(row, known).then(kept, failed)
    this.#pending.add(written)
    void written.finally(() => { this.#pending.delete(written) })
    return written
  }

  /**
   * A device token's id, claimed in the store (auth.ts `claimToken`): false when any gateway
   * sharing the store, or this one before a restart, took it already. A store that fails says
   * true (the error is counted and reported): the process's own memory has judged the token.
   */
  claimToken (device: DeviceId, cti: string, untilS: number): boolean | Promise<boolean> {
    if (!this.#running) return true
    const failed = (err: unknown): true => { this.counters.errors++; this.#c.onError?.(err); return true }
    if (this.store.claimTokenSync !== undefined) {
      try { return this.store.claimTokenSync(device, cti, untilS) } catch (err) { return failed(err) }
    }
    return this.store.claimToken(device, cti, untilS).catch(failed)
  }

  /** Resolves when every write issued so far has settled (SQLite: at once; PostgreSQL: when committed). */
  async settled (): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending])
  }

  /** Applies retention now. */
  async prune (): Promise<number> {
    const deleted = await this.store.prune(this.#clock.wall(), this.#init.retention)
    this.counters.pruned += deleted
    return deleted
  }

  /** Writes the last changes, waits for pending writes, closes the store. Idempotent. */
  async stop (): Promise<void> {
    if (!this.#running) return
    this.#running = false
    for (const timer of this.#timers) this.#clock.clearTimeout(timer)
    this.#timers = []
    this.#track(this.store.saveDevices(this.#c.devices.takeChanged()))
    await Promise.allSettled([...this.#pending])
    await this.store.close()
  }

  #every (ms: number, work: () => void): void {
    const index = this.#timers.length
    const tick = (): void => {
      if (!this.#running) return
      work()
      this.#timers[index] = this.#clock.setTimeout(tick, ms)
    }
    this.#timers.push(this.#clock.setTimeout(tick, ms))
  }

  #track (promise: Promise<unknown>): Promise<void> {
    const tracked: Promise<void> = promise.then(() => {}, (err: unknown) => {
      this.counters.errors++
      this.#c.onError?.(err)
    }).finally(() => { this.#pending.delete(tracked) })
    this.#pending.add(tracked)
    return tracked
  }
}
