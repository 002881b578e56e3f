import type { DeviceId } from '../../shared/index.js'

/**
 * Where commands and their results go (handlers/command.ts is the handler, shared/command.ts the
 * wire format). A command travels towards its target like a frame towards a subscriber: the target
 * declares COMMAND_FILTER in its signed declaration (interest.ts), so every node has a route to it.
 * Its result comes back over the path the command took: each node on the way remembers, for the
 * command's (issuer, id), the neighbour it came from and the one it went to, for the command's
 * lifetime (at most 60 s, shared/command.ts MAX_COMMAND_TTL_S).
 *
 * No signature is checked on the way: the target checks the command (it alone knows its
 * commanders), the issuer the result. What a neighbour can make this node do is bounded instead:
 *   - its rate, the 'cmd' budget of its link (budget.ts);
 *   - what it may have in flight: at most `maxPerNeighbour` commands not yet answered remembered on
 *     its behalf, and `maxPending` in all (oldest first out), so one neighbour cannot push out
 *     everyone's paths. A command whose result came back is no longer in flight: its path is kept
 *     apart until its end (at most `maxPending` of them, oldest first out, never at the expense of
 *     one in flight), for its repeats, and counts against nobody's share. (Counted until its end, an
 *     issuer's own commands stopped at 256 in one command lifetime, 15 s: the bench lost some, issue 12.)
 *   - repeats: a command (or a result) is forwarded again only after `repeatMs`, so an honest
 *     issuer's retransmission passes and a replay flood does not;
 *   - results: only for a command that passed here, and only from the neighbour it was sent to.
 */

/** The filter a node that executes commands adds to its signed declaration. Starts with "$": no wildcard matches it, no frame has it (MQTT 3.1.1 §4.7.2). */
export const COMMAND_FILTER = '$iotmesh/cmd'

export interface CommandRoutesInit {
  /** Most commands whose path is remembered (default 4096). */
  maxPending?: number
  /** Most of those one neighbour may have sent (default 256). */
  maxPerNeighbour?: number
  /** A command or result with the same (issuer, id) is forwarded again no sooner than this, ms (default 500). */
  repeatMs?: number
}

export const COMMAND_ROUTE_DEFAULTS = { maxPending: 4096, maxPerNeighbour: 256, repeatMs: 500 } as const

/** The neighbour a command came from (undefined: issued here), where it went (undefined: executed here), and until when its path lives. */
export interface CommandPath {
  readonly from: DeviceId | undefined
  to: DeviceId | undefined
  /** The command's target: the only signer whose result goes back. */
  target: DeviceId | undefined
  readonly until: number
  /** When the command, and its result, were last forwarded (-Infinity: never). */
  sentAt: number
  answeredAt: number
}

/** A command's (issuer, id): what names it everywhere. */
export const commandKey = (issuer: DeviceId, id: number): string => `${issuer} ${id}`

export class CommandRoutes {
  readonly options: Required<CommandRoutesInit>
  /** key → path of a command in flight (no result yet), oldest first. */
  readonly #paths = new Map<string, CommandPath>()
  /** key → path of a command answered (its result passed here), oldest answer first. */
  readonly #answered = new Map<string, CommandPath>()
  /** Paths remembered on behalf of each neighbour ('' for this node's own commands). */
  readonly #perNeighbour = new Map<DeviceId | '', number>()

  constructor (init: CommandRoutesInit = {}) {
    this.options = {
      maxPending: Math.max(1, init.maxPending ?? COMMAND_ROUTE_DEFAULTS.maxPending),
      maxPerNeighbour: Math.max(1, init.maxPerNeighbour ?? COMMAND_ROUTE_DEFAULTS.maxPerNeighbour),
      repeatMs: init.repeatMs ?? COMMAND_ROUTE_DEFAULTS.repeatMs
    }
  }

  get size (): number { return this.#paths.size + this.#answered.size }

  /** Commands in flight on behalf of `from` (undefined: this node's own). */
  inFlight (from: DeviceId | undefined): number { return this.#perNeighbour.get(from ?? '') ?? 0 }

  get (key: string): CommandPath | undefined { return this.#paths.get(key) ?? this.#answered.get(key) }

  /** The command's result passed here: its path is kept for repeats until its end, no longer in flight (no one's share). */
  answered (key: string): void {
    const path = this.#paths.get(key)
    if (path === undefined) return
    this.#delete(key)
    this.#answered.set(key, path)
    if (this.#answered.size > this.options.maxPending) this.#answered.delete(this.#answered.keys().next().value as string)
  }

  /**
   * The path of a command arriving from `from` (undefined: issued here), living `lifetimeMs` from
   * `now`: 'new' (remembered), 'repeat' (known, and due to be forwarded again), 'recent' (known,
   * forwarded less than `repeatMs` ago: not again) or 'full' (its neighbour has too many in flight).
   */
  open (key: string, from: DeviceId | undefined, lifetimeMs: number, now: number): { verdict: 'new' | 'repeat' | 'recent' | 'full', path?: CommandPath } {
    this.#expire(now)
    const known = this.get(key)
    if (known !== undefined) {
      return { verdict: now - known.sentAt >= this.options.repeatMs ? 'repeat' : 'recent', path: known }
    }
    const who = from ?? ''
    const count = this.#perNeighbour.get(who) ?? 0
    if (count >= this.options.maxPerNeighbour) return { verdict: 'full' }
    if (this.#paths.size >= this.options.maxPending) this.#delete(this.#paths.keys().next().value as string)
    const path: CommandPath = { from, to: undefined, target: undefined, until: now + lifetimeMs, sentAt: -Infinity, answeredAt: -Infinity }
    this.#paths.set(key, path)
    this.#perNeighbour.set(who, count + 1)
    return { verdict: 'new', path }
  }

  /** A neighbour went away: the paths that ran through it lead nowhere now (results sent back towards it are dropped). */
  forgetVia (peer: DeviceId): void {
    for (const [key, path] of this.#paths) if (path.from === peer || path.to === peer) this.#delete(key)
    for (const [key, path] of this.#answered) if (path.from === peer || path.to === peer) this.#answered.delete(key)
  }

  clear (): void {
    this.#paths.clear()
    this.#answered.clear()
    this.#perNeighbour.clear()
  }

  /** Drops paths past their lifetime, oldest first (lifetimes differ, so one still alive may shelter older dead ones until its own end: at most 60 s). */
  #expire (now: number): void {
    for (const [key, path] of this.#paths) {
      if (path.until > now) break
      this.#delete(key)
    }
    for (const [key, path] of this.#answered) {
      if (path.until > now) break
      this.#answered.delete(key)
    }
  }

  #delete (key: string): void {
    const path = this.#paths.get(key)
    if (path === undefined) return
    this.#paths.delete(key)
    const who = path.from ?? ''
    const count = (this.#perNeighbour.get(who) ?? 1) - 1
    if (count <= 0) this.#perNeighbour.delete(who)
    else this.#perNeighbour.set(who, count)
  }
}
