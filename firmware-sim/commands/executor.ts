import { existsSync } from 'node:fs'
import {
  Commanders, decodeCommand, encodeResult, isMeshError, meshError, systemClock, verifySigned,
  type Clock, type Command, type DeviceId, type Ed25519, type ErrorCode, type KeyPair
} from '../../shared/index.js'
import { TokenBucket } from '../../mesh/index.js'
import type { Actuator, ActuatorState } from './actuators.js'
import { memoryJournal, type CommandJournal } from './journal.js'

/**
 * What a device does with a command (shared/command.ts), in an order that spends nothing on a
 * sender before it has proven something:
 *
 *   1. decode (strict, bounded);  2. for this device? (ERR_WRONG_TARGET);  3. is the issuer a
 *   commander at all? (ERR_NOT_ALLOWED);  4. has the issuer's rate a token? (ERR_RATE_LIMITED);
 *   refusals up to here are counted, never answered: a signed answer costs a signature, which
 *   nobody unproven may make this device spend;
 *   5. the signature, with the commander's key (ERR_BAD_SIGNATURE, not answered either);
 *   6. executed before? the same signed result again, nothing executed twice;
 *   7. expired? (ERR_EXPIRED)  8. issued too far ahead of a synchronized clock? (ERR_CLOCK_SKEW)
 *   9. this action allowed to this issuer? (ERR_NOT_ALLOWED)  10. an actuator for it?
 *   (ERR_UNKNOWN_ACTION)  11. arguments? (ERR_BAD_ARGS): each of 7–11 answered with a signed result;
 *   12. the result signed and recorded in the journal (durably), then the actuator acts.
 *
 * Time: a command is fresh while its expiry is ahead of max(this device's clock, the journal's
 * floor) less `skew`. On a device whose clock is not synchronized (no RTC, no network time yet),
 * a command issued ahead of its clock is accepted, so an authorized commander's time moves the
 * floor forward; on a synchronized one it is refused beyond `skew` (ERR_CLOCK_SKEW).
 */

export interface ExecutorInit {
  /** Commands per second one issuer may have executed (default 5, burst 20). */
  rate?: { rate: number, burst: number }
  /** Clock tolerance, seconds (default 2). */
  skew?: number
  /**
   * Whether the wall clock is synchronized. Default: on Linux, systemd-timesyncd's flag file
   * /run/systemd/timesync/synchronized if that service runs; true otherwise.
   */
  clockSynced?: boolean | (() => boolean)
}

export interface ExecutorComponents {
  keys: KeyPair
  commanders?: Commanders
  journal?: CommandJournal
  actuators?: Iterable<Actuator>
  clock?: Clock
  ed25519?: Ed25519
}

export type Outcome =
  | { verdict: 'executed' | 'repeated', command: Command, result: Uint8Array, state: ActuatorState }
  | { verdict: 'refused', code: ErrorCode, command?: Command, result?: Uint8Array }

export interface ExecutorCounters {
  executed: number
  repeated: number
  refused: Partial<Record<ErrorCode, number>>
}

/** Every device answers this with its actuators' state (commanders allowed it only). */
const STATE_GET = 'state/get'

/** What a device does with a command: checked in an order that spends nothing on an unproven sender, executed once, answered signed. */
export class CommandExecutor {
  readonly counters: ExecutorCounters = { executed: 0, repeated: 0, refused: {} }
  readonly #keys: KeyPair
  readonly #commanders: Commanders
  readonly #journal: CommandJournal
  readonly #actuators = new Map<string, Actuator>()
  readonly #clock: Clock
  readonly #ed: Ed25519 | undefined
  readonly #rate: { rate: number, burst: number }
  readonly #skew: number
  readonly #synced: () => boolean
  /** One per commander that sent a command (never more than the commanders file lists). */
  readonly #buckets = new Map<DeviceId, TokenBucket>()

  constructor (init: ExecutorInit, components: ExecutorComponents) {
    this.#keys = components.keys
    this.#commanders = components.commanders ?? new Commanders()
    this.#journal = components.journal ?? memoryJournal()
    for (const a of components.actuators ?? []) for (const action of a.actions) this.#actuators.set(action, a)
    this.#clock = components.clock ?? systemClock
    this.#ed = components.ed25519
    this.#rate = init.rate ?? { rate: 5, burst: 20 }
    this.#skew = init.skew ?? 2
    const synced = init.clockSynced ?? defaultClockSynced
    this.#synced = typeof synced === 'function' ? synced : () => synced
  }

  /** Every actuator's state. */
  state (): ActuatorState {
    const out: ActuatorState = {}
    for (const a of new Set(this.#actuators.values())) Object.assign(out, a.state())
    return out
  }

  /** Judges and, when allowed, executes one command. Never throws for anything in `bytes`. */
  handle (bytes: Uint8Array): Outcome {
    let command: Command
    try {
      command = decodeCommand(bytes)
    } catch (err) {
      return this.#refuse(isMeshError(err) ? err.code : 'ERR_BAD_COMMAND')
    }
    if (command.target !== this.#keys.id) return this.#refuse('ERR_WRONG_TARGET', command)
    const commander = this.#commanders.get(command.issuer)
    if (commander === undefined) return this.#refuse('ERR_NOT_ALLOWED', command)
    const now = this.#clock.now()
    const bucket = this.#bucket(command.issuer, now)
    if (bucket.tokens(now) < 1) return this.#refuse('ERR_RATE_LIMITED', command)
    try {
      verifySigned(command, command.issuer, commander.publicKey, this.#ed)
    } catch (err) {
      return this.#refuse(isMeshError(err) ? err.code : 'ERR_BAD_SIGNATURE', command)
    }
    bucket.take(1, now)
    const done = this.#journal.get(command.issuer, command.id)
    if (done !== undefined) {
      this.counters.repeated++
      return { verdict: 'repeated', command, result: done.result, state: this.state() }
    }
    const refusal = this.#judge(command)
    if (refusal !== undefined) return this.#answerRefusal(refusal, command)
    let planned: ActuatorState
    let actuator: Actuator | undefined
    try {
      actuator = command.action === STATE_GET ? undefined : this.#actuators.get(command.action)
      if (command.action !== STATE_GET && actuator === undefined) throw meshError('ERR_UNKNOWN_ACTION', `no actuator answers ${command.action}`)
      planned = actuator === undefined ? {} : actuator.plan(command.action, command.args)
    } catch (err) {
      return this.#answerRefusal(isMeshError(err) ? err.code : 'ERR_BAD_ARGS', command)
    }
    const state = { ...this.state(), ...planned }
    const result = this.#sign(command, 'ok', state)
    try {
      this.#journal.record({ issuer: command.issuer, id: command.id, issuedAt: command.issuedAt, expiresAt: command.expiresAt, result }, this.#clock.wall() / 1000)
    } catch (err) {
      return this.#refuse(isMeshError(err) ? err.code : 'ERR_JOURNAL', command)
    }
    actuator?.apply(planned)
    this.counters.executed++
    return { verdict: 'executed', command, result, state }
  }

  /** Time and authorization of a verified command: a code, or undefined when it may run. */
  #judge (command: Command): ErrorCode | undefined {
    const clock = this.#clock.wall() / 1000
    const now = Math.max(clock, this.#journal.floor)
    if (command.expiresAt < now - this.#skew) return 'ERR_EXPIRED'
    if (command.issuedAt > clock + this.#skew && this.#synced()) return 'ERR_CLOCK_SKEW'
    if (!this.#commanders.allowed(command.issuer, command.action)) return 'ERR_NOT_ALLOWED'
    return undefined
  }

  #bucket (issuer: DeviceId, now: number): TokenBucket {
    let bucket = this.#buckets.get(issuer)
    if (bucket === undefined) this.#buckets.set(issuer, bucket = new TokenBucket(this.#rate.rate, this.#rate.burst, now))
    return bucket
  }

  #sign (command: Command, status: string, state?: ActuatorState): Uint8Array {
    return encodeResult({
      keys: this.#keys, issuer: command.issuer, id: command.id, status, time: this.#clock.wall() / 1000,
      ...(state === undefined ? {} : { state }), ...(this.#ed === undefined ? {} : { ed25519: this.#ed })
    })
  }

  #refuse (code: ErrorCode, command?: Command): Outcome {
    this.counters.refused[code] = (this.counters.refused[code] ?? 0) + 1
    return command === undefined ? { verdict: 'refused', code } : { verdict: 'refused', code, command }
  }

  /** A refusal of a verified command from a commander: answered with a signed result. */
  #answerRefusal (code: ErrorCode, command: Command): Outcome {
    this.counters.refused[code] = (this.counters.refused[code] ?? 0) + 1
    return { verdict: 'refused', code, command, result: this.#sign(command, code) }
  }
}

const TIMESYNC_FLAG = '/run/systemd/timesync/synchronized'
const TIMESYNC_DIR = '/run/systemd/timesync'

/** systemd-timesyncd touches its flag file once the clock is synchronized; without that service, assume a clock that is. */
function defaultClockSynced (): boolean {
  return !existsSync(TIMESYNC_DIR) || existsSync(TIMESYNC_FLAG)
}
