import {
  ALG_ED25519, DEFAULT_CBOR_LIMITS, HEADER_ALG, HEADER_CONTENT_TYPE, HEADER_KID, decodeCbor, decodeSign1, deviceIdFromBytes, deviceIdToBytes,
  encodeCbor, isMeshError, signSign1, verifySign1,
  type DeviceId, type Ed25519, type ErrorCode, type KeyPair, type PublicKey, type Sign1
} from '../../shared/index.js'

/**
 * An end-to-end acknowledgement: a durable subscriber tells one origin which of its frames it
 * holds. A COSE_Sign1 (RFC 9052 §4.2) signed by the subscriber, so no relay can forge, raise or
 * replace one:
 *
 *   protected header = { 1 (alg): -19 (Ed25519, RFC 9864), 3 (content type): 65001, 4 (kid): subscriber id bytes }
 *   payload          = CBOR [origin, high, [[from, to]…], time]
 *
 * `origin` is the 16-byte id of the device acknowledged; `high` the highest sequence number the
 * subscriber holds of it; `[[from, to]…]` (at most MAX_HOLES ranges, ascending, disjoint, all
 * below `high`) the numbers below `high`, within the subscriber's replay window, that it does
 * not hold. The ack is cumulative: every number ≤ `high` outside the holes is held. A hole may be
 * a number the origin never used (sequence reservations skip numbers after a restart): the origin
 * knows which numbers it used, the subscriber does not, so holes are listed, not guessed. With
 * more holes than MAX_HOLES the subscriber lowers `high` to just below the first range it cannot
 * list. `time` is the subscriber's own monotonic counter (wall-clock ms at least): a relay
 * forwards, and an origin takes, only an ack newer than the last one of that (subscriber, origin).
 *
 * The content type, a CoAP Content-Format in the experimental range (RFC 7252 §12.3), keeps an ack
 * from being taken for a declaration (65000) or a telemetry frame.
 */

export const ACK_CONTENT_FORMAT = 65_001
/** Most hole ranges one ack lists. */
export const MAX_HOLES = 16
/** Largest ack in bytes (one with MAX_HOLES ranges of 8-byte numbers is under 400). */
export const MAX_ACK_BYTES = 512
/**
 * The filter a durable subscriber adds to its signed declaration (declaration.ts): every node then
 * knows, from the subscriber's own signature, that it acknowledges what it receives. An MQTT topic
 * starting with `$` is never matched by wildcards (MQTT 3.1.1 §4.7.2) and no frame has this
 * topic, so the filter routes nothing.
 */
export const DURABLE_FILTER = '$iotmesh/durable'

export interface Ack {
  readonly subscriber: DeviceId
  readonly origin: DeviceId
  readonly high: number
  readonly holes: ReadonlyArray<readonly [number, number]>
  readonly time: number
}

/** Signs an ack. */
export function signAck (input: {
  keys: KeyPair, origin: DeviceId, high: number, holes: ReadonlyArray<readonly [number, number]>, time: number, ed25519?: Ed25519
}): Uint8Array {
  const header: Array<[number, unknown]> = [[HEADER_ALG, ALG_ED25519], [HEADER_CONTENT_TYPE, ACK_CONTENT_FORMAT], [HEADER_KID, deviceIdToBytes(input.keys.id)]]
  return signSign1({
    protectedHeader: new Map<number, unknown>(header),
    payload: encodeCbor([deviceIdToBytes(input.origin), input.high, input.holes.map(([from, to]) => [from, to]), input.time]),
    secretKey: input.keys.secretKey,
    ed25519: input.ed25519
  })
}

export type Peeked = { ok: true, ack: Ack, sign1: Sign1 } | { ok: false, code: ErrorCode }

const LIMITS = { ...DEFAULT_CBOR_LIMITS, maxBytes: MAX_ACK_BYTES, maxItems: MAX_HOLES + 4, maxDepth: 4 }
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0

/** Parses an ack without verifying it (the signature is checked by `verifyAck`). Never throws. */
export function peekAck (bytes: Uint8Array): Peeked {
  if (bytes.length > MAX_ACK_BYTES) return { ok: false, code: 'ERR_BAD_ACK' }
  let sign1: Sign1
  let payload: unknown
  try {
    sign1 = decodeSign1(bytes, LIMITS)
    payload = decodeCbor(sign1.payload, LIMITS)
  } catch (err) {
    return { ok: false, code: isMeshError(err) ? err.code : 'ERR_BAD_ACK' }
  }
  const kid = sign1.protectedHeader.get(HEADER_KID)
  const typed = sign1.protectedHeader.get(HEADER_CONTENT_TYPE) === ACK_CONTENT_FORMAT
  if (!typed || !(kid instanceof Uint8Array) || kid.length !== 16) return { ok: false, code: 'ERR_BAD_ACK' }
  if (!Array.isArray(payload) || payload.length !== 4) return { ok: false, code: 'ERR_BAD_ACK' }
  const [origin, high, holes, time] = payload as unknown[]
  if (!(origin instanceof Uint8Array) || origin.length !== 16 || !isCount(high) || !isCount(time)) return { ok: false, code: 'ERR_BAD_ACK' }
  if (!Array.isArray(holes) || holes.length > MAX_HOLES) return { ok: false, code: 'ERR_BAD_ACK' }
  const ranges: Array<readonly [number, number]> = []
  let floor = -1
  for (const range of holes as unknown[]) {
    if (!Array.isArray(range) || range.length !== 2) return { ok: false, code: 'ERR_BAD_ACK' }
    const [from, to] = range as unknown[]
    if (!isCount(from) || !isCount(to) || from <= floor || to < from || to >= high) return { ok: false, code: 'ERR_BAD_ACK' }
    ranges.push([from, to])
    floor = to
  }
  return { ok: true, sign1, ack: { subscriber: deviceIdFromBytes(kid), origin: deviceIdFromBytes(origin), high, holes: ranges, time } }
}

/** True when the signature holds with the subscriber's key. Never throws. */
export function verifyAck (peeked: { sign1: Sign1 }, publicKey: PublicKey, ed25519?: Ed25519): boolean {
  try {
    return verifySign1(peeked.sign1, publicKey, ed25519)
  } catch {
    return false
  }
}

/** True when `ack` says its subscriber holds `seq`. */
export function covers (ack: Pick<Ack, 'high' | 'holes'>, seq: number): boolean {
  if (seq > ack.high) return false
  for (const [from, to] of ack.holes) if (seq >= from && seq <= to) return false
  return true
}

/**
 * What a subscriber acknowledges from the ranges of numbers it lacks (ascending and disjoint, as
 * ReplayGuard.gaps lists them): those below `high`, at most MAX_HOLES of them, and `high` lowered
 * below the first range that does not fit.
 */
export function ackOf (high: number, gaps: ReadonlyArray<readonly [number, number]>): { high: number, holes: Array<[number, number]> } {
  const holes: Array<[number, number]> = []
  for (const [from, to] of gaps) {
    if (from >= high) break
    if (holes.length === MAX_HOLES) return { high: from - 1, holes }
    holes.push([from, Math.min(to, high - 1)])
  }
  return { high, holes }
}
