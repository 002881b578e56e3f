import { DEFAULT_CBOR_LIMITS, decodeCbor, encodeCbor, type CborLimits } from './cbor.js'
import { ALG_ED25519, HEADER_ALG, HEADER_CONTENT_TYPE, HEADER_KID, decodeSign1, signSign1, verifySign1, type Sign1 } from './cose.js'
import { meshError } from './errors.js'
import { DEVICE_ID_BYTES, deviceIdFromBytes, deviceIdToBytes, keyMatchesId, type DeviceId, type KeyPair } from './identity.js'
import type { Ed25519, PublicKey } from './crypto/ed25519.js'
import { defaultEd25519 } from './crypto/ed25519-default.js'

/**
 * Commands and their results: what one device (or person) asks another to do, and the answer, in
 * the same envelope as readings (shared/frame.ts), a tagged COSE_Sign1 (RFC 9052 §4.2) with Ed25519
 * (RFC 9864 §2.2):
 *
 *   command: protected = { 1 (alg): -19, 3 (content type): 65002, 4 (kid): the issuer's 16 device-id bytes }
 *            payload   = { 1: target device id (16 bytes), 2: action (text, e.g. "relay/set"),
 *                          3: arguments (any CBOR, optional), 4: command id (uint, unique per issuer),
 *                          5: issued at, 6: expires at (seconds since the epoch) }
 *   result:  protected = { 1: -19, 3: 65003, 4: the target's kid }
 *            payload   = { 1: issuer device id (16 bytes), 2: command id, 3: status ("ok" or an error
 *                          code), 4: resulting state (a map, optional), 5: answered at }
 *
 * The content type (RFC 9052 §3.1, label 3) tells them apart under the signature: a CoAP
 * Content-Format in the experimental range (RFC 7252 §12.3), as for the mesh's own signed messages
 * (declarations 65000, acks 65001: mesh/routing/); a telemetry frame carries none and a SenML array
 * as payload, so no command can be read as a reading, a result or an ack, or the other way round. Everything a command means is signed: its target (a command for device A cannot
 * be replayed to device B), its action, its arguments, and its lifetime. Maps use integer keys,
 * encoded deterministically (RFC 8949 §4.2.1) by shared/cbor.ts; decoding is strict (duplicate keys,
 * non-preferred heads and invalid UTF-8 are refused) and bounded (`COMMAND_LIMITS`).
 *
 * A command id is unique per issuer (the issuer's clock in microseconds, like sequence numbers:
 * shared/sequence.ts), so (issuer, id) names one command everywhere; what a device executed it
 * remembers by that pair until the command expires (firmware-sim/commands/journal.ts).
 */

export const COMMAND_CONTENT_TYPE = 65_002
export const RESULT_CONTENT_TYPE = 65_003

/** A command lives 5 s unless its issuer says otherwise, and never more than 60 s. */
export const DEFAULT_COMMAND_TTL_S = 5
export const MAX_COMMAND_TTL_S = 60
/** Most bytes of a command or result; of a command's arguments; of an action name. */
export const COMMAND_LIMITS: CborLimits = { ...DEFAULT_CBOR_LIMITS, maxBytes: 4096 }
export const MAX_ARGS_BYTES = 1024
export const MAX_ACTION_BYTES = 64
/** An action: lower-case levels of letters, digits, "_" and "-", separated by "/" (no MQTT wildcards). */
const ACTION_PATTERN = /^[a-z0-9_-]+(\/[a-z0-9_-]+)*$/
/** A status: "ok", or an error code. */
const STATUS_PATTERN = /^(ok|ERR_[A-Z0-9_]{1,60})$/

export interface Command extends Sign1 {
  readonly issuer: DeviceId
  readonly target: DeviceId
  readonly action: string
  /** The arguments as decoded CBOR (maps are `Map`s); undefined when none were given. */
  readonly args: unknown
  readonly id: number
  /** Seconds since the epoch. */
  readonly issuedAt: number
  readonly expiresAt: number
}

export interface CommandResult extends Sign1 {
  /** Who answered (the command's target). */
  readonly target: DeviceId
  /** Who asked. */
  readonly issuer: DeviceId
  readonly id: number
  readonly status: string
  readonly state: ReadonlyMap<string, unknown> | undefined
  readonly time: number
}

export interface EncodeCommandInput {
  keys: KeyPair
  target: DeviceId
  action: string
  args?: unknown
  id: number
  /** Seconds since the epoch (default now). */
  issuedAt?: number
  /** Lifetime in seconds (default 5, at most 60). */
  ttl?: number
  ed25519?: Ed25519
}

/** The action name if it is one a command may carry; throws ERR_BAD_COMMAND otherwise. */
export function checkAction (action: unknown): string {
  if (typeof action !== 'string' || action.length > MAX_ACTION_BYTES || !ACTION_PATTERN.test(action)) { // ASCII by the pattern: length is bytes
    throw meshError('ERR_BAD_COMMAND', `${JSON.stringify(action)} is not an action: lower-case levels of letters, digits, "_" or "-" separated by "/", at most ${MAX_ACTION_BYTES} bytes`)
  }
  return action
}

function checkId (id: unknown): number {
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) throw meshError('ERR_BAD_COMMAND', `a command id is a non-negative integer, got ${String(id)}`)
  return id
}

function checkTime (t: unknown, what: string): number {
  if (typeof t !== 'number' || !Number.isFinite(t) || t < 0) throw meshError('ERR_BAD_COMMAND', `${what} is a time in seconds since the epoch, got ${String(t)}`)
  return t
}

function checkLifetime (issuedAt: number, expiresAt: number): void {
  if (!(expiresAt > issuedAt) || expiresAt - issuedAt > MAX_COMMAND_TTL_S) {
    throw meshError('ERR_BAD_COMMAND', `a command lives more than 0 and at most ${MAX_COMMAND_TTL_S} s; this one ${(expiresAt - issuedAt).toFixed(3)} s`)
  }
}

function headerOf (keys: KeyPair, contentType: number): Map<number, unknown> {
  return new Map<number, unknown>([[HEADER_ALG, ALG_ED25519], [HEADER_CONTENT_TYPE, contentType], [HEADER_KID, deviceIdToBytes(keys.id)]])
}

/** A signed command (COSE_Sign1, RFC 9052) from the issuer's key, ready to send. */
export function encodeCommand (input: EncodeCommandInput): Uint8Array {
  const issuedAt = checkTime(input.issuedAt ?? Date.now() / 1000, 'issued-at')
  const expiresAt = issuedAt + (input.ttl ?? DEFAULT_COMMAND_TTL_S)
  checkLifetime(issuedAt, expiresAt)
  const payload = new Map<number, unknown>([[1, deviceIdToBytes(input.target)], [2, checkAction(input.action)]])
  if (input.args !== undefined) {
    const args = encodeCbor(input.args)
    if (args.length > MAX_ARGS_BYTES) throw meshError('ERR_BAD_COMMAND', `the arguments are ${args.length} bytes, over the ${MAX_ARGS_BYTES}-byte limit`)
    payload.set(3, input.args)
  }
  payload.set(4, checkId(input.id)).set(5, issuedAt).set(6, expiresAt)
  const bytes = signSign1({ protectedHeader: headerOf(input.keys, COMMAND_CONTENT_TYPE), payload: encodeCbor(payload), secretKey: input.keys.secretKey, ...(input.ed25519 === undefined ? {} : { ed25519: input.ed25519 }) })
  decodeCommand(bytes) // check as the target will: never sign what the target refuses
  return bytes
}

export interface EncodeResultInput {
  keys: KeyPair
  issuer: DeviceId
  id: number
  status: string
  state?: ReadonlyMap<string, unknown> | Record<string, unknown>
  /** Seconds since the epoch (default now). */
  time?: number
  ed25519?: Ed25519
}

/** A device's signed answer to a command (COSE_Sign1, RFC 9052). */
export function encodeResult (input: EncodeResultInput): Uint8Array {
  if (!STATUS_PATTERN.test(input.status)) throw meshError('ERR_BAD_COMMAND', `a status is "ok" or an error code, got ${JSON.stringify(input.status)}`)
  const payload = new Map<number, unknown>([[1, deviceIdToBytes(input.issuer)], [2, checkId(input.id)], [3, input.status]])
  if (input.state !== undefined) payload.set(4, input.state instanceof Map ? input.state : new Map(Object.entries(input.state)))
  payload.set(5, checkTime(input.time ?? Date.now() / 1000, 'the answer time'))
  const bytes = signSign1({ protectedHeader: headerOf(input.keys, RESULT_CONTENT_TYPE), payload: encodeCbor(payload), secretKey: input.keys.secretKey, ...(input.ed25519 === undefined ? {} : { ed25519: input.ed25519 }) })
  decodeResult(bytes)
  return bytes
}

/** The COSE_Sign1, its kid and its payload map, when the content type is `contentType`. */
function open (bytes: Uint8Array, contentType: number, keys: readonly number[]): { sign1: Sign1, kid: DeviceId, fields: Map<unknown, unknown> } {
  const sign1 = decodeSign1(bytes, COMMAND_LIMITS)
  const kid = sign1.protectedHeader.get(HEADER_KID)
  if (!(kid instanceof Uint8Array) || kid.length !== DEVICE_ID_BYTES) throw meshError('ERR_BAD_HEADER', `the signer's ${DEVICE_ID_BYTES}-byte device id is the kid (label 4) of the protected header`)
  const type = sign1.protectedHeader.get(HEADER_CONTENT_TYPE)
  if (type !== contentType) throw meshError('ERR_BAD_COMMAND', `the content type (label 3) is ${JSON.stringify(type)}, not ${contentType}`)
  const fields = decodeCbor(sign1.payload, COMMAND_LIMITS)
  if (!(fields instanceof Map)) throw meshError('ERR_BAD_COMMAND', 'the payload is not a CBOR map')
  for (const key of fields.keys()) if (!keys.includes(key as number)) throw meshError('ERR_BAD_COMMAND', `the payload has an unknown key ${String(key)}`)
  return { sign1, kid: deviceIdFromBytes(kid), fields }
}

function idField (value: unknown, what: string): DeviceId {
  if (!(value instanceof Uint8Array) || value.length !== DEVICE_ID_BYTES) throw meshError('ERR_BAD_COMMAND', `${what} is a ${DEVICE_ID_BYTES}-byte device id`)
  return deviceIdFromBytes(value)
}

/** Parses a command without verifying its signature. Throws MeshError (ERR_BAD_COMMAND, ERR_BAD_HEADER, CBOR codes). */
export function decodeCommand (bytes: Uint8Array): Command {
  const { sign1, kid, fields } = open(bytes, COMMAND_CONTENT_TYPE, [1, 2, 3, 4, 5, 6])
  const issuedAt = checkTime(fields.get(5), 'issued-at (5)')
  const expiresAt = checkTime(fields.get(6), 'expires-at (6)')
  checkLifetime(issuedAt, expiresAt)
  const args = fields.get(3)
  if (args !== undefined && encodeCbor(args).length > MAX_ARGS_BYTES) throw meshError('ERR_BAD_COMMAND', `the arguments are over the ${MAX_ARGS_BYTES}-byte limit`)
  return {
    ...sign1,
    issuer: kid,
    target: idField(fields.get(1), 'the target (1)'),
    action: checkAction(fields.get(2)),
    args,
    id: checkId(fields.get(4)),
    issuedAt,
    expiresAt
  }
}

/** Parses a result without verifying its signature. */
export function decodeResult (bytes: Uint8Array): CommandResult {
  const { sign1, kid, fields } = open(bytes, RESULT_CONTENT_TYPE, [1, 2, 3, 4, 5])
  const status = fields.get(3)
  if (typeof status !== 'string' || !STATUS_PATTERN.test(status)) throw meshError('ERR_BAD_COMMAND', 'the status (3) is "ok" or an error code')
  const state = fields.get(4)
  if (state !== undefined && (!(state instanceof Map) || [...state.keys()].some((k) => typeof k !== 'string'))) {
    throw meshError('ERR_BAD_COMMAND', 'the state (4) is a map with text keys')
  }
  return {
    ...sign1,
    target: kid,
    issuer: idField(fields.get(1), 'the issuer (1)'),
    id: checkId(fields.get(2)),
    status,
    state: state as ReadonlyMap<string, unknown> | undefined,
    time: checkTime(fields.get(5), 'the answer time (5)')
  }
}

/** Which of the two a signed message is, by its content type; undefined for anything else. Never throws. */
export function commandKindOf (bytes: Uint8Array): 'command' | 'result' | undefined {
  try {
    const type = decodeSign1(bytes, COMMAND_LIMITS).protectedHeader.get(HEADER_CONTENT_TYPE)
    return type === COMMAND_CONTENT_TYPE ? 'command' : type === RESULT_CONTENT_TYPE ? 'result' : undefined
  } catch {
    return undefined
  }
}

/** Throws ERR_WRONG_KEY when `publicKey` is not the signer's, ERR_BAD_SIGNATURE when the signature fails. */
export function verifySigned (message: Sign1 & { bytes: Uint8Array }, signer: DeviceId, publicKey: PublicKey, ed25519: Ed25519 = defaultEd25519): void {
  if (!keyMatchesId(publicKey, signer)) throw meshError('ERR_WRONG_KEY', `the public key given does not derive to the signer ${signer}`)
  if (!verifySign1(message, publicKey, ed25519)) throw meshError('ERR_BAD_SIGNATURE', `the signature of ${signer}'s message does not verify`)
}
