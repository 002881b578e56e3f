import {
  Commanders, decodeCommand, decodeResult, isMeshError, keyMatchesId, verifySigned,
  type Clock, type Command, type CommandResult, type DeviceId, type Ed25519, type ErrorCode, type PublicKey
} from '../shared/index.js'
import type { DropReason } from './reasons.js'
import type { GatewayTrust } from './trust.js'

/**
 * What the gateway lets through on the command topics (shared/topics.ts), decided before the
 * broker forwards anything, as it decides for readings (gateway/ingest.ts, gateway/authorize.ts):
 *
 *   iotmesh/<fleet>/<target>/cmd/<action>    a command (shared/command.ts), forwarded only when
 *     1. it decodes (strict, bounded)                                   command_malformed
 *     2. it is signed for <target>                                      command_wrong_target (ERR_WRONG_TARGET)
 *     3. it signs <action>                                              command_wrong_action (ERR_TOPIC_MISMATCH)
 *     3a. its issuer is not revoked by the fleet's owners               revoked (ERR_REVOKED)
 *     4. its issuer is a commander (--commanders), the gateway itself, or
 *        (with a grant policy held) a key the policy grants, or a device
 *        whose current credential the gateway saw                         command_unknown_issuer (ERR_NOT_ALLOWED)
 *     5. the issuer is allowed that action: with a grant policy held
 *        (gateway/trust.ts), by the policy, for this target               command_not_granted (ERR_NOT_ALLOWED)
 *        without one, by the commanders file                             command_not_allowed (ERR_NOT_ALLOWED)
 *     6. it has not expired by the gateway's clock (less `skew`)        command_expired (ERR_EXPIRED)
 *     7. the same (issuer, id) was not forwarded in the last 500 ms     command_repeat (ERR_RATE_LIMITED)
 *     8. its signature holds with the issuer's key                      command_bad_signature (ERR_BAD_SIGNATURE)
 *   iotmesh/<fleet>/<target>/result/<issuer> a result, forwarded only when it decodes
 *     (result_malformed), is signed by <target> and answers <issuer> (result_mismatch), <target>'s
 *     key is known (result_unknown_signer) and the signature holds (result_bad_signature).
 *
 * Checks 1–7 cost a lookup or a comparison; the signature (~60 µs) comes last, so nobody makes the
 * gateway spend one on a message that a comparison refuses. Check 7 is the mesh relays' rule
 * (mesh/routing/commands.ts): an issuer's retransmission goes through (the device answers a repeat
 * from its journal), but a replayed command, which anyone who saw it can send, reaches the device at
 * most twice a second instead of as fast as a client can publish: a replay flood would otherwise
 * spend the genuine issuer's rate at the device and starve its next commands. Remembered: the
 * forwarded (issuer, id) pairs of the last 500 ms, at most `maxRecent` (4,096); beyond it the
 * oldest are forgotten early, which lets a repeat through sooner, never a forgery. The device checks everything again
 * (firmware-sim/commands/executor.ts): the gateway keeps bad commands off the wire and out of
 * other subscribers' hands, it is not what makes a device safe.
 *
 * The gateway's own key may command anything (it signs `set/` requests and `gateway.command`);
 * without a commanders file it is the only issuer forwarded. With the fleet's grant policy held
 * (issue 13, "Grants"), the policy decides for every issuer, the gateway included: an enrolled device
 * obeys the policy alone (firmware-sim/device/grants.ts), so a command it grants nobody would only
 * spend the wire and the device's work. The gateway refuses only what no grant can allow (check 5,
 * GatewayTrust.judge); the device stays the authority. No sockets, no timers: pure checks.
 */

export type GuardVerdict =
  | { ok: true, command: Command }
  | { ok: true, result: CommandResult }
  | { ok: false, reason: DropReason, code?: ErrorCode, message: string }

export interface CommandGuardInit {
  /** Who may command what (shared/commanders.ts). Default: nobody but the gateway. */
  commanders?: Commanders | undefined
  /** Clock tolerance for expiry, seconds. Default 2 (as the device's). */
  skew?: number | undefined
  /** The same (issuer, id) is forwarded again no sooner than this, ms. Default 500. */
  repeatMs?: number
  /** Forwarded (issuer, id) pairs remembered for that. Default 4,096. */
  maxRecent?: number
}

export interface CommandGuardComponents {
  /** The gateway's own identity: it may command anything. */
  self: { id: DeviceId, publicKey: PublicKey }
  /** The gateway's device key store (a result is checked with its signer's key). */
  keyOf: (id: DeviceId) => PublicKey | undefined
  clock: Clock
  ed25519?: Ed25519 | undefined
  /** The fleet's trust (revocations, the grant policy): with a fleet file (gateway/trust.ts). */
  trust?: (() => GatewayTrust | undefined) | undefined
}

/** Checks a command before the gateway forwards it, cheapest checks first and the signature last; a replayed command goes through at most twice a second. */
export class CommandGuard {
  readonly commanders: Commanders
  readonly #skew: number
  readonly #c: CommandGuardComponents
  readonly #repeatMs: number
  readonly #maxRecent: number
  /** `${issuer}#${id}` → when it was last forwarded (ms, monotonic); insertion order is age order. */
  readonly #recent = new Map<string, number>()

  constructor (init: CommandGuardInit, components: CommandGuardComponents) {
    this.commanders = init.commanders ?? new Commanders()
    this.#skew = init.skew ?? 2
    this.#c = components
    this.#repeatMs = init.repeatMs ?? 500
    this.#maxRecent = Math.max(1, init.maxRecent ?? 4096)
  }

  /** The public key of an issuer the gateway forwards commands of, if any. */
  issuerKey (id: DeviceId): PublicKey | undefined {
    return id === this.#c.self.id ? this.#c.self.publicKey : this.commanders.get(id)?.publicKey ?? this.#c.trust?.()?.issuerKey(id)
  }

  /** Why the fleet's grant policy refuses `issuer` `action` on `target` (undefined: no policy held, or some grant may allow it). */
  notGranted (issuer: DeviceId, action: string, target: DeviceId): string | undefined {
    return this.#c.trust?.()?.judge(issuer, action, target)
  }

  /** A publish on iotmesh/<fleet>/<target>/cmd/<action>. */
  command (target: DeviceId, action: string, payload: Uint8Array): GuardVerdict {
    let command: Command
    try {
      command = decodeCommand(payload)
    } catch (err) {
      return refuse('command_malformed', `a command on …/${target}/cmd/${action}: ${(err as Error).message}`, codeOf(err, 'ERR_BAD_COMMAND'))
    }
    const of = `command ${command.issuer}#${command.id}`
    if (command.target !== target) return refuse('command_wrong_target', `${of} is signed for ${command.target}, published on ${target}'s topic`)
    if (command.action !== action) return refuse('command_wrong_action', `${of} signs the action ${command.action}, published on …/cmd/${action}`)
    const trust = this.#c.trust?.()
    const revocation = trust?.revoked(command.issuer)
    if (revocation !== undefined) return refuse('revoked', `${of}: ${command.issuer} was revoked by the fleet's owners (${revocation.reason})`)
    const key = this.issuerKey(command.issuer)
    if (key === undefined) return refuse('command_unknown_issuer', `${of}: ${command.issuer} is not in the gateway's commanders file (--commanders)${trust?.grantsVersion === undefined ? '' : ' nor granted by the fleet\'s grant policy'}`)
    if (trust?.grantsVersion !== undefined) {
      // The policy decides (check 5 with a policy held): the device, enrolled, obeys nothing else.
      const why = trust.judge(command.issuer, action, target)
      if (why !== undefined) return refuse('command_not_granted', `${of}: ${why}`, 'ERR_NOT_ALLOWED')
    } else if (command.issuer !== this.#c.self.id && !this.commanders.allowed(command.issuer, action)) {
      const patterns = (this.commanders.get(command.issuer)?.actions ?? []).join(', ')
      return refuse('command_not_allowed', `${of}: ${command.issuer} is not allowed ${action} (its patterns: ${patterns})`)
    }
    const now = this.#c.clock.wall() / 1000
    if (command.expiresAt < now - this.#skew) {
      return refuse('command_expired', `${of} expired ${(now - command.expiresAt).toFixed(1)} s ago by the gateway's clock`)
    }
    const seen = `${command.issuer}#${command.id}`
    const at = this.#c.clock.now()
    const last = this.#recent.get(seen)
    if (last !== undefined && at - last < this.#repeatMs) {
      return refuse('command_repeat', `${of} again ${Math.round(at - last)} ms after it was forwarded: a repeat goes through at most every ${this.#repeatMs} ms`)
    }
    try {
      verifySigned(command, command.issuer, key, this.#c.ed25519)
    } catch (err) {
      return refuse('command_bad_signature', `${of}: ${(err as Error).message}`, codeOf(err, 'ERR_BAD_SIGNATURE'))
    }
    this.#remember(seen, at)
    return { ok: true, command }
  }

  #remember (key: string, at: number): void {
    this.#recent.delete(key)
    this.#recent.set(key, at)
    for (const [k, t] of this.#recent) {
      if (this.#recent.size <= this.#maxRecent && at - t < this.#repeatMs) break
      this.#recent.delete(k)
    }
  }

  /** A publish on iotmesh/<fleet>/<target>/result/<issuer>. */
  result (target: DeviceId, issuer: DeviceId, payload: Uint8Array): GuardVerdict {
    let result: CommandResult
    try {
      result = decodeResult(payload)
    } catch (err) {
      return refuse('result_malformed', `a result on …/${target}/result/${issuer}: ${(err as Error).message}`, codeOf(err, 'ERR_BAD_COMMAND'))
    }
    const of = `result of ${result.issuer}#${result.id}`
    if (result.target !== target) return refuse('result_mismatch', `${of} is signed by ${result.target}, published on ${target}'s topic`)
    if (result.issuer !== issuer) return refuse('result_mismatch', `${of} answers ${result.issuer}, published for ${issuer}`)
    const key = this.#c.keyOf(target)
    if (key === undefined || !keyMatchesId(key, target)) return refuse('result_unknown_signer', `${of}: the gateway knows no key of ${target}`)
    try {
      verifySigned(result, target, key, this.#c.ed25519)
    } catch (err) {
      return refuse('result_bad_signature', `${of} from ${target}: ${(err as Error).message}`, codeOf(err, 'ERR_BAD_SIGNATURE'))
    }
    return { ok: true, result }
  }
}

function refuse (reason: DropReason, message: string, code?: ErrorCode): GuardVerdict {
  return code === undefined ? { ok: false, reason, message } : { ok: false, reason, message, code }
}

function codeOf (err: unknown, fallback: ErrorCode): ErrorCode {
  return isMeshError(err) ? err.code : fallback
}
