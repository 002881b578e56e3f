import type { Clock, DeviceId } from '../../shared/index.js'
import type { BanCheck } from './types.js'

/**
 * Peers kept out for a while, by device id and/or network address, each ban with its expiry
 * (by the clock's `now()`). The connection manager owns one: it does not dial a banned peer and
 * closes its links; the TCP transport asks it before any work for a connection (by address) and
 * before signing anything (by the id a HELLO claims). Bounded: past `maxEntries`, the ban that
 * ends soonest goes. Expiry is checked on lookup, so no timer runs for it. An address ban on a
 * loopback address keeps out every process of this host.
 */
export interface BanEntry {
  readonly id?: DeviceId
  readonly address?: string
  /** The clock's `now()` (ms) at which the ban ends. */
  readonly until: number
  /** Why, in a word (`score`, `manual`…). */
  readonly reason: string
}

export interface BanOptions {
  /** Until when (the clock's now(), ms); or */
  until?: number
  /** for how long from now, ms (default 60 s). */
  forMs?: number
  reason?: string
}

export interface BanListInit {
  /** Bans kept at most (default 1,024). */
  maxEntries?: number
}

export const DEFAULT_BAN_MS = 60_000

export class BanList implements BanCheck {
  readonly #clock: Clock
  readonly #max: number
  readonly #entries = new Map<string, BanEntry>()

  constructor (init: BanListInit, clock: Clock) {
    this.#clock = clock
    this.#max = Math.max(1, init.maxEntries ?? 1024)
  }

  /** Bans `target` (an id, an address, or both: either then matches). A longer existing ban is kept. */
  ban (target: { id?: DeviceId, address?: string }, options: BanOptions = {}): BanEntry {
    const now = this.#clock.now()
    const until = options.until ?? now + (options.forMs ?? DEFAULT_BAN_MS)
    const entry: BanEntry = { id: target.id, address: target.address === '' ? undefined : target.address, until, reason: options.reason ?? 'manual' }
    for (const key of keys(target)) {
      const known = this.#live(key, now)
      if (known !== undefined && known.until >= until) continue
      if (known === undefined && this.#entries.size >= this.#max) this.#makeRoom(now)
      this.#entries.set(key, entry)
    }
    return entry
  }

  /** Lifts the bans on `target`'s id and address; true if there was one. */
  unban (target: { id?: DeviceId, address?: string }): boolean {
    let found = false
    for (const key of keys(target)) found = this.#entries.delete(key) || found
    return found
  }

  /** The ban that keeps `peer` out now, by its id or its address. */
  find (peer: { id?: DeviceId, address?: string }): BanEntry | undefined {
    const now = this.#clock.now()
    for (const key of keys(peer)) {
      const entry = this.#live(key, now)
      if (entry !== undefined) return entry
    }
    return undefined
  }

  banned (peer: { id?: DeviceId, address?: string }): boolean {
    return this.find(peer) !== undefined
  }

  /** Bans in force now (an id-and-address ban once). */
  list (): BanEntry[] {
    const now = this.#clock.now()
    return [...new Set([...this.#entries.keys()].map((key) => this.#live(key, now)).filter((e) => e !== undefined))]
  }

  /** Bans in force now. */
  get size (): number {
    return this.list().length
  }

  #live (key: string, now: number): BanEntry | undefined {
    const entry = this.#entries.get(key)
    if (entry === undefined) return undefined
    if (entry.until > now) return entry
    this.#entries.delete(key)
    return undefined
  }

  /** Drops expired bans, else the one that ends soonest. */
  #makeRoom (now: number): void {
    let soonest: [string, BanEntry] | undefined
    for (const [key, entry] of this.#entries) {
      if (entry.until <= now) this.#entries.delete(key)
      else if (soonest === undefined || entry.until < soonest[1].until) soonest = [key, entry]
    }
    if (this.#entries.size >= this.#max && soonest !== undefined) this.#entries.delete(soonest[0])
  }
}

function keys (peer: { id?: DeviceId, address?: string }): string[] {
  const out: string[] = []
  if (peer.id !== undefined) out.push(`id ${peer.id}`)
  if (peer.address !== undefined && peer.address !== '') out.push(`address ${peer.address}`)
  return out
}
