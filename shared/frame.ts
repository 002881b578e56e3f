import { DEFAULT_CBOR_LIMITS, decodeCbor, encodeCbor, type CborLimits } from './cbor.js'
import { ALG_ED25519, HEADER_ALG, HEADER_CONTENT_TYPE, HEADER_KID, decodeSign1, encodeHeader, signSign1, verifySign1, type HeaderMap, type Sign1 } from './cose.js'
import { checkStringLengths, encodePack, encodeProtected, encodeSign1, sigStructureOf } from './frame-encoder.js'
import { decodeCoseEncrypt, decryptCose, encryptCose, type ContentAlg, type CoseEncrypt, type ReaderKey, type ReaderPublic } from './cose-encrypt.js'
import type { CosePrimitives } from './crypto/cose-primitives.js'
import type { Random } from './random.js'
import { meshError } from './errors.js'
import { DEVICE_ID_BYTES, deviceIdFromBytes, deviceIdToBytes, keyMatchesId, type DeviceId, type KeyPair } from './identity.js'
import { TELEMETRY_LEVEL, checkDeviceTopic } from './topics.js'
import { MAX_TIME_SECONDS, checkPack, checkedRecord, recordFromCbor, recordToCbor, resolvePack, type ResolvedRecord, type SenmlPack, type SenmlRecord } from './senml.js'
import { SIGNATURE_LENGTH, type Ed25519, type PublicKey } from './crypto/ed25519.js'
import { defaultEd25519 } from './crypto/ed25519-default.js'
import { markSigned } from './verified.js'

/**
 * The iotmesh telemetry frame: a tagged COSE_Sign1 (RFC 9052 §4.2) whose
 *   protected header = { 1 (alg): -19 (Ed25519, RFC 9864), 4 (kid): the 16 device-id bytes }
 *   unprotected      = {}
 *   payload          = a SenML pack in CBOR (RFC 8428 §6), whose first record carries
 *                      bt (-3): the sampling time, seconds since the epoch, and
 *                      "seq": the per-origin sequence number (an RFC 8428 §4.4 extension label).
 *   and, when the reading is not plain telemetry, the protected header also carries
 *   "tp" (a text label, RFC 9052 §3): the device-relative topic, e.g. "events/door".
 * The origin (kid), sequence number and sampling time are all under the signature.
 *
 * An encrypted frame (encrypt-then-sign) has the same envelope, with
 *   protected header += { 3 (content type): 65020 (encrypted SenML), "seq": the sequence number,
 *                         "bt": the sampling time }, so relays, replay guards and acks work unread;
 *   payload          = a COSE_Encrypt (shared/cose-encrypt.ts) of the SenML pack above, to the
 *                      fleet's readers, whose external_aad is this frame's protected header bytes:
 *                      a ciphertext cannot be re-signed by another device, under another seq or topic.
 * Its `records` stay empty until a reader decrypts it (`decryptFrame`).
 * See README "Wire format" for an annotated example.
 */

export interface FrameLimits extends CborLimits {
  /** Most SenML records in one frame. */
  maxRecords: number
}

export const DEFAULT_FRAME_LIMITS: FrameLimits = { ...DEFAULT_CBOR_LIMITS, maxRecords: 128 }

export interface TelemetryFrame extends Sign1 {
  readonly origin: DeviceId
  readonly seq: number
  /** Sampling time, seconds since the Unix epoch (the pack's base time). */
  readonly time: number
  readonly records: SenmlPack
  /** Device-relative topic: "telemetry" unless the frame says otherwise. */
  readonly topic: string
  /** The COSE_Encrypt of an encrypted frame; `records` is empty until `decryptFrame`. */
  readonly encrypted?: CoseEncrypt
}

/** The content type (RFC 9052 §3.1) of an encrypted frame: SenML CBOR inside a COSE_Encrypt (RFC 7252 §12.3 experimental range). */
export const ENCRYPTED_SENML_CONTENT_FORMAT = 65_020
/** Protected-header labels of an encrypted frame's sequence number and sampling time (text labels, RFC 9052 §3). */
export const HEADER_SEQ = 'seq'
export const HEADER_TIME = 'bt'

/** Encrypt a frame's SenML to these readers (COSE_Encrypt, shared/cose-encrypt.ts). */
export interface FrameEncryption {
  readers: readonly ReaderPublic[]
  /** Content algorithm (default A128GCM). */
  alg?: ContentAlg
  random?: Random
  primitives?: CosePrimitives
}

/** The protected-header label of the device topic (a text label, RFC 9052 §3). */
export const HEADER_TOPIC = 'tp'

export interface EncodeFrameInput {
  keys: KeyPair
  seq: number
  /** Sampling time in seconds since the epoch; defaults to the first record's bt, then to now. */
  time?: number
  records: SenmlRecord[]
  /** Device-relative topic (default "telemetry"). */
  topic?: string
  /** Encrypt the readings to these readers (encrypt-then-sign); plain SenML when absent. */
  encrypt?: FrameEncryption
  ed25519?: Ed25519
}

export function encodeFrame (input: EncodeFrameInput, limits: FrameLimits = DEFAULT_FRAME_LIMITS): Uint8Array {
  if (plainFastPath(input, limits)) return signPlain(input, limits).bytes
  const frame = buildFrame(input, limits)
  decodeSign1(frame, limits) // check as receivers will: a device never signs a frame its peers refuse
  markSigned(frame, input.keys, input.ed25519 ?? defaultEd25519) // this process's own nodes need not verify it again (verified.ts)
  return frame
}

/**
 * `encodeFrame`, returning the frame as `decodeFrame` reads it (its `bytes` are the encoded frame):
 * for a publisher that uses its own frame at once (the mesh router delivers and forwards it).
 */
export function signFrame (input: EncodeFrameInput, limits: FrameLimits = DEFAULT_FRAME_LIMITS): TelemetryFrame {
  if (plainFastPath(input, limits)) return signPlain(input, limits)
  const frame = buildFrame(input, limits)
  const decoded = decodeFrame(frame, limits)
  markSigned(frame, input.keys, input.ed25519 ?? defaultEd25519)
  return decoded
}

/**
 * A plain frame within limits whose nesting and entry counts a receiver's scan cannot refuse (the
 * defaults and anything near them) takes the hand-written encoder (frame-encoder.ts); an encrypted
 * frame, or unusual limits, the generic path: cbor-x, then a full parse of the result.
 */
function plainFastPath (input: EncodeFrameInput, limits: FrameLimits): boolean {
  return input.encrypt === undefined && limits.maxDepth >= 3 && limits.maxItems >= Math.max(limits.maxRecords, 16)
}

/**
 * The plain frame, signed, as `decodeFrame` would read it back. Every check a receiver makes on
 * what it decodes is made here on the input, in the order the generic path makes them and with
 * the same codes (the records as recordFromCbor does, the pack as checkPack, the topic, the size,
 * then string lengths as the receiver's scan), so it never signs a frame its peers refuse; the
 * bytes are those of the generic path (test/shared/frame-encoder.test.ts), so the frame is not
 * parsed again.
 */
function signPlain (input: EncodeFrameInput, limits: FrameLimits): TelemetryFrame {
  const { keys, seq, records } = input
  checkInput(seq, records, limits)
  const first = records[0] as SenmlRecord
  const time = input.time ?? first.bt ?? Date.now() / 1000
  const pack: SenmlPack = [{ ...first, bt: time, seq }, ...records.slice(1)]
  const checked = pack.map(checkedRecord)
  checkPack(checked, time)
  const payload = encodePack(pack)
  const topic = input.topic === undefined || input.topic === TELEMETRY_LEVEL ? undefined : checkDeviceTopic(input.topic)
  const protectedBytes = encodeProtected(keys, topic)
  const length = 2 + headBytes(protectedBytes.length) + protectedBytes.length + 1 + headBytes(payload.length) + payload.length + 2 + SIGNATURE_LENGTH
  if (length > limits.maxBytes) throw meshError('ERR_FRAME_TOO_LARGE', `the frame is ${length} bytes, over the ${limits.maxBytes}-byte limit`)
  checkStringLengths(pack, limits)
  const ed = input.ed25519 ?? defaultEd25519
  const signature = ed.sign(sigStructureOf(protectedBytes, payload), keys.secretKey)
  const bytes = encodeSign1(protectedBytes, payload, signature)
  markSigned(bytes, keys, ed) // this process's own nodes need not verify it again (verified.ts)
  const protectedAt = 2 + headBytes(protectedBytes.length)
  const payloadAt = protectedAt + protectedBytes.length + 1 + headBytes(payload.length)
  const protectedHeader: HeaderMap = new Map<number | string, unknown>([[HEADER_ALG, ALG_ED25519], [HEADER_KID, bytes.slice(protectedAt + 5, protectedAt + 5 + DEVICE_ID_BYTES)]])
  if (topic !== undefined) protectedHeader.set(HEADER_TOPIC, topic)
  return {
    bytes,
    protectedBytes: bytes.subarray(protectedAt, protectedAt + protectedBytes.length),
    protectedHeader,
    unprotectedHeader: new Map(),
    payload: bytes.subarray(payloadAt, payloadAt + payload.length),
    signature: bytes.subarray(bytes.length - SIGNATURE_LENGTH),
    alg: ALG_ED25519,
    origin: keys.id,
    seq,
    time: checked[0]?.bt as number,
    records: checked,
    topic: topic ?? TELEMETRY_LEVEL
  }
}

/** Bytes of a CBOR head for a byte string of this length (RFC 8949 §3, preferred). */
function headBytes (length: number): number {
  return length < 24 ? 1 : length < 0x100 ? 2 : length < 0x10000 ? 3 : 5
}

function checkInput (seq: number, records: SenmlRecord[], limits: FrameLimits): void {
  if (!Number.isSafeInteger(seq) || seq < 0) throw meshError('ERR_BAD_ARGUMENT', `a sequence number is a non-negative integer, got ${seq}`)
  if (records.length === 0) throw meshError('ERR_BAD_SENML', 'a frame holds at least one SenML record')
  if (records.length > limits.maxRecords) throw meshError('ERR_TOO_MANY_RECORDS', `${records.length} records are over the ${limits.maxRecords}-record limit`)
}

function buildFrame (input: EncodeFrameInput, limits: FrameLimits): Uint8Array {
  const { keys, seq, records } = input
  checkInput(seq, records, limits)
  const first = records[0] as SenmlRecord
  const time = input.time ?? first.bt ?? Date.now() / 1000
  const pack: SenmlPack = [{ ...first, bt: time, seq }, ...records.slice(1)]
  // Validate exactly as a receiver will, so a device never signs a frame its peers refuse.
  const maps = pack.map(recordToCbor)
  maps.forEach((map, index) => recordFromCbor(map, index))
  checkPack(pack, time)
  let payload = encodeCbor(maps)
  const protectedHeader = new Map<number | string, unknown>([[HEADER_ALG, ALG_ED25519], [HEADER_KID, deviceIdToBytes(keys.id)]])
  if (input.topic !== undefined && input.topic !== TELEMETRY_LEVEL) protectedHeader.set(HEADER_TOPIC, checkDeviceTopic(input.topic))
  if (input.encrypt !== undefined) {
    protectedHeader.set(HEADER_CONTENT_TYPE, ENCRYPTED_SENML_CONTENT_FORMAT).set(HEADER_SEQ, seq).set(HEADER_TIME, time)
    const { readers, alg, random, primitives } = input.encrypt
    payload = encryptCose({ plaintext: payload, readers, alg, random, primitives, externalAad: encodeHeader(protectedHeader) })
  }
  const frame = signSign1({
    protectedHeader,
    payload,
    secretKey: keys.secretKey,
    ...(input.ed25519 === undefined ? {} : { ed25519: input.ed25519 })
  })
  if (frame.length > limits.maxBytes) throw meshError('ERR_FRAME_TOO_LARGE', `the frame is ${frame.length} bytes, over the ${limits.maxBytes}-byte limit`)
  return frame
}

/**
 * Parses a frame without verifying its signature (for dedup before verification). Everything a
 * consumer reads is checked here (strict CBOR in shared/cbor.ts, SenML records and their
 * resolution in shared/senml.ts), so a frame this accepts never makes `frameReadings` or
 * `resolvePack` throw. Throws MeshError with a stable code.
 */
export function decodeFrame (bytes: Uint8Array, limits: FrameLimits = DEFAULT_FRAME_LIMITS): TelemetryFrame {
  const sign1 = decodeSign1(bytes, limits)
  const kid = sign1.protectedHeader.get(HEADER_KID)
  if (!(kid instanceof Uint8Array) || kid.length !== DEVICE_ID_BYTES) {
    throw meshError('ERR_BAD_HEADER', `an iotmesh frame carries the ${DEVICE_ID_BYTES}-byte device id as kid (label 4) in the protected header`)
  }
  const topic = sign1.protectedHeader.get(HEADER_TOPIC) ?? TELEMETRY_LEVEL
  if (typeof topic !== 'string') throw meshError('ERR_BAD_HEADER', 'the protected header "tp" (topic) is not text')
  checkDeviceTopic(topic)
  if (sign1.protectedHeader.get(HEADER_CONTENT_TYPE) === ENCRYPTED_SENML_CONTENT_FORMAT) return encryptedFrame(sign1, deviceIdFromBytes(kid), topic)
  const pack = decodeCbor(sign1.payload, limits)
  if (!Array.isArray(pack) || pack.length === 0) throw meshError('ERR_BAD_SENML', 'the payload is not a non-empty SenML pack (a CBOR array of records)')
  if (pack.length > limits.maxRecords) throw meshError('ERR_TOO_MANY_RECORDS', `${pack.length} records are over the ${limits.maxRecords}-record limit`)
  const records = pack.map((map, index) => recordFromCbor(map, index))
  const first = records[0] as SenmlRecord
  if (first.seq === undefined) throw meshError('ERR_BAD_SENML', 'the first SenML record has no "seq"')
  if (first.bt === undefined) throw meshError('ERR_BAD_SENML', 'the first SenML record has no base time (bt)')
  // RFC 8428 §4.5.1, §4.6: every name resolves, every time is a date, every value stays finite, so
  // that no consumer (`watch`, the gateway, a device) ever throws on a frame a node accepted or relayed.
  checkPack(records, first.bt)
  // Built field by field: an object spread here costs more than the rest of the decoding.
  return {
    bytes: sign1.bytes,
    protectedBytes: sign1.protectedBytes,
    protectedHeader: sign1.protectedHeader,
    unprotectedHeader: sign1.unprotectedHeader,
    payload: sign1.payload,
    signature: sign1.signature,
    alg: sign1.alg,
    origin: deviceIdFromBytes(kid),
    seq: first.seq,
    time: first.bt,
    records,
    topic
  }
}

function encryptedFrame (sign1: Sign1, origin: DeviceId, topic: string): TelemetryFrame {
  const seq = sign1.protectedHeader.get(HEADER_SEQ)
  const time = sign1.protectedHeader.get(HEADER_TIME)
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) throw meshError('ERR_BAD_HEADER', 'an encrypted frame carries "seq", a non-negative integer, in its protected header')
  if (typeof time !== 'number' || !(Math.abs(time) <= MAX_TIME_SECONDS)) throw meshError('ERR_BAD_HEADER', 'an encrypted frame carries "bt", a date in seconds, in its protected header')
  const encrypted = decodeCoseEncrypt(sign1.payload)
  return {
    bytes: sign1.bytes,
    protectedBytes: sign1.protectedBytes,
    protectedHeader: sign1.protectedHeader,
    unprotectedHeader: sign1.unprotectedHeader,
    payload: sign1.payload,
    signature: sign1.signature,
    alg: sign1.alg,
    origin,
    seq,
    time,
    records: [],
    topic,
    encrypted
  }
}

/**
 * The frame with its readings, decrypted with a reader's key (the signature is not checked here:
 * a verifier admitted the frame first). A plain frame comes back as it is. Throws ERR_NOT_A_READER,
 * ERR_DECRYPT, or ERR_BAD_SENML when the plaintext is not the pack the header announced.
 */
export function decryptFrame (frame: TelemetryFrame, reader: ReaderKey, options: { limits?: FrameLimits, primitives?: CosePrimitives } = {}): TelemetryFrame {
  if (frame.encrypted === undefined || frame.records.length > 0) return frame
  const limits = options.limits ?? DEFAULT_FRAME_LIMITS
  const plaintext = decryptCose(frame.encrypted, reader, { externalAad: frame.protectedBytes, primitives: options.primitives })
  const pack = decodeCbor(plaintext, limits)
  if (!Array.isArray(pack) || pack.length === 0) throw meshError('ERR_BAD_SENML', 'the decrypted payload is not a non-empty SenML pack')
  if (pack.length > limits.maxRecords) throw meshError('ERR_TOO_MANY_RECORDS', `${pack.length} records are over the ${limits.maxRecords}-record limit`)
  const records = pack.map((map, index) => recordFromCbor(map, index))
  const first = records[0] as SenmlRecord
  if (first.seq !== frame.seq || first.bt !== frame.time) throw meshError('ERR_BAD_SENML', `the decrypted pack says seq ${String(first.seq)} at ${String(first.bt)}, the signed header ${frame.seq} at ${frame.time}`)
  checkPack(records, first.bt)
  return { ...frame, records }
}

/** Throws ERR_WRONG_KEY when the key is not the origin's, ERR_BAD_SIGNATURE when the signature fails. */
export function verifyFrame (frame: TelemetryFrame, publicKey: PublicKey, options: { ed25519?: Ed25519, checkId?: boolean } = {}): void {
  if (options.checkId !== false && !keyMatchesId(publicKey, frame.origin)) {
    throw meshError('ERR_WRONG_KEY', `the public key given does not derive to the frame's origin ${frame.origin}`)
  }
  if (!verifySign1(frame, publicKey, options.ed25519 ?? defaultEd25519)) {
    throw meshError('ERR_BAD_SIGNATURE', `the signature of frame ${frame.origin}#${frame.seq} does not verify`, { details: { origin: frame.origin, seq: frame.seq } })
  }
}

/** decodeFrame + verifyFrame. */
export function openFrame (bytes: Uint8Array, publicKey: PublicKey, options: { ed25519?: Ed25519, limits?: FrameLimits } = {}): TelemetryFrame {
  const frame = decodeFrame(bytes, options.limits)
  verifyFrame(frame, publicKey, options)
  return frame
}

/** The frame's records resolved (RFC 8428 §4.6), names without the base name. */
export function frameReadings (frame: TelemetryFrame): ResolvedRecord[] {
  return resolvePack(frame.records, frame.time)
}

/** SenML base name under which iotmesh publishes a device's readings as JSON. */
export function deviceBaseName (origin: DeviceId): string {
  return `${origin}:`
}
