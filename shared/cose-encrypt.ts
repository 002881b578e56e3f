import { sha256 } from '@noble/hashes/sha2.js'
import { bytesEqual, concatBytes, toHex } from './bytes.js'
import { DEFAULT_CBOR_LIMITS, cborHead, decodeCbor, encodeCbor, type CborLimits } from './cbor.js'
import { HEADER_ALG, HEADER_KID, encodeHeader, type HeaderMap } from './cose.js'
import { defaultCosePrimitives, type AeadName, type CosePrimitives } from './crypto/cose-primitives.js'
import { meshError } from './errors.js'
import { systemRandom, type Random } from './random.js'

/**
 * COSE_Encrypt (RFC 9052 §5.1) to a set of readers, each holding an X25519 key (RFC 7748):
 *
 *   COSE_Encrypt = 96([ protected: bstr .cbor {1 (alg): 1 A128GCM | 3 A256GCM | 24 ChaCha20/Poly1305},
 *                       unprotected: {5 (IV): 12 bytes},
 *                       ciphertext: bstr (ciphertext || 16-byte tag, RFC 9053 §4.1, §4.3),
 *                       recipients: [+ COSE_recipient] ])
 *   COSE_recipient = [ protected: bstr .cbor {1 (alg): -29 ECDH-ES + A128KW},
 *                      unprotected: {-1 (ephemeral key): {1 kty: 1 OKP, -1 crv: 4 X25519, -2 x: 32 bytes},
 *                                    4 (kid): the reader's 8-byte key id},
 *                      ciphertext: the content key wrapped with AES key wrap (RFC 3394), 24 or 40 bytes ]
 *
 * A fresh random content key (CEK) and IV per message. Several readers need key agreement with key
 * wrap (RFC 9052 §8.5.5; RFC 9053 §6.4, ECDH-ES + A128KW, alg -29): direct key agreement (ECDH-ES +
 * HKDF-256, -25) derives the CEK itself, so "there MUST be only one recipient" (RFC 9052 §8.5.4);
 * iotmesh uses -29 for one reader too, so every frame has one shape. Each recipient has its own
 * ephemeral X25519 key (RFC 9053 §6.3.1: ephemeral-static), and the key-encryption key is
 *   KEK = HKDF-SHA-256(salt: none, IKM: X25519(ephemeral, reader), info: COSE_KDF_Context, L: 16)
 *   COSE_KDF_Context = [AlgorithmID: -3 (A128KW), PartyUInfo: [nil, nil, nil], PartyVInfo: [nil, nil, nil],
 *                       SuppPubInfo: [keyDataLength: 128, protected: the recipient's protected header bytes]]
 * (RFC 9053 §5.1, §5.2, §6.3.1). The content is sealed with the AEAD over
 *   Enc_structure = ["Encrypt", the body's protected header bytes, external_aad] (RFC 9052 §5.3).
 *
 * A reader's key id is the first 8 bytes of SHA-256 over its X25519 public key (`readerKid`).
 * Decoding is strict and bounded: at most MAX_READERS recipients, fixed sizes for every key, IV and
 * wrapped key, MAX_ENCRYPTED_BYTES in all; every byte is assumed hostile.
 */

export const COSE_ENCRYPT_TAG = 96
export const HEADER_IV = 5
/** RFC 9053 §6.3.1: the ephemeral key of a recipient, a COSE_Key, in its unprotected header. */
export const HEADER_EPHEMERAL_KEY = -1
export const ALG_A128GCM = 1
export const ALG_A256GCM = 3
export const ALG_CHACHA20_POLY1305 = 24
export const ALG_A128KW = -3
export const ALG_ECDH_ES_A128KW = -29
export type ContentAlg = typeof ALG_A128GCM | typeof ALG_A256GCM | typeof ALG_CHACHA20_POLY1305
export const CONTENT_ALGS: Readonly<Record<ContentAlg, { cipher: AeadName, keyBytes: number, name: string }>> = {
  [ALG_A128GCM]: { cipher: 'aes-128-gcm', keyBytes: 16, name: 'A128GCM' },
  [ALG_A256GCM]: { cipher: 'aes-256-gcm', keyBytes: 32, name: 'A256GCM' },
  [ALG_CHACHA20_POLY1305]: { cipher: 'chacha20-poly1305', keyBytes: 32, name: 'ChaCha20/Poly1305' }
}
export const MAX_READERS = 16
export const READER_KID_BYTES = 8
export const X25519_KEY_BYTES = 32
export const IV_BYTES = 12
const TAG_BYTES = 16
const KEK_BYTES = 16
/** Most bytes of a COSE_Encrypt: a frame (8192 bytes) holds it. */
export const MAX_ENCRYPTED_BYTES = 8192
const LIMITS: CborLimits = { ...DEFAULT_CBOR_LIMITS, maxBytes: MAX_ENCRYPTED_BYTES, maxStringBytes: MAX_ENCRYPTED_BYTES, maxItems: 16 * MAX_READERS + 16 }
const HEADER_LIMITS: CborLimits = { ...DEFAULT_CBOR_LIMITS, maxBytes: 64, maxItems: 8, maxDepth: 2 }

/** A reader's public part: what a device encrypts to. */
export interface ReaderPublic {
  readonly kid: Uint8Array
  readonly publicKey: Uint8Array
}
/** A reader's key pair: what decrypts. */
export interface ReaderKey extends ReaderPublic {
  readonly secretKey: Uint8Array
}

export interface CoseRecipient {
  readonly protectedBytes: Uint8Array
  readonly kid: Uint8Array
  readonly ephemeral: Uint8Array
  readonly wrapped: Uint8Array
}

export interface CoseEncrypt {
  readonly bytes: Uint8Array
  readonly protectedBytes: Uint8Array
  readonly alg: ContentAlg
  readonly iv: Uint8Array
  readonly ciphertext: Uint8Array
  readonly recipients: readonly CoseRecipient[]
}

/** The first 8 bytes of SHA-256 over a reader's X25519 public key: the kid a recipient names. */
export function readerKid (publicKey: Uint8Array): Uint8Array {
  if (publicKey.length !== X25519_KEY_BYTES) throw meshError('ERR_BAD_KEY', `an X25519 public key is ${X25519_KEY_BYTES} bytes, got ${publicKey.length}`)
  return sha256(publicKey).slice(0, READER_KID_BYTES)
}

/** A reader's id as people read it: its kid in hex (16 characters). */
export function readerId (reader: ReaderPublic | Uint8Array): string {
  return toHex(reader instanceof Uint8Array ? readerKid(reader) : reader.kid)
}

/** A reader's public key (X25519) with its key id: what readings are encrypted to. */
export function readerPublic (publicKey: Uint8Array): ReaderPublic {
  return { kid: readerKid(publicKey), publicKey }
}

/** A reader key from its 32-byte X25519 private key. */
export function readerKeyFromSecret (secretKey: Uint8Array, primitives: CosePrimitives = defaultCosePrimitives()): ReaderKey {
  const publicKey = primitives.x25519Public(secretKey)
  return { kid: readerKid(publicKey), publicKey, secretKey }
}

/** A new reader key (X25519: any 32 random bytes are a private key, RFC 7748 §5). */
export function generateReaderKey (random: Random = systemRandom, primitives?: CosePrimitives): ReaderKey {
  return readerKeyFromSecret(random.bytes(X25519_KEY_BYTES), primitives)
}

/** RFC 9053 §5.2 COSE_KDF_Context for ECDH-ES + A128KW: the KEK is for A128KW (-3), 128 bits. */
export function kdfContext (recipientProtected: Uint8Array): Uint8Array {
  return encodeCbor([ALG_A128KW, [null, null, null], [null, null, null], [KEK_BYTES * 8, recipientProtected]])
}

/** RFC 9052 §5.3 Enc_structure for a COSE_Encrypt. */
export function encStructure (protectedBytes: Uint8Array, externalAad: Uint8Array): Uint8Array {
  return encodeCbor(['Encrypt', protectedBytes, externalAad])
}

function kek (p: CosePrimitives, shared: Uint8Array, recipientProtected: Uint8Array): Uint8Array {
  // RFC 9053 §6.3.1: HKDF with SHA-256, no salt (RFC 5869 §2.2: HashLen zeros).
  return p.hkdfSha256(shared, kdfContext(recipientProtected), KEK_BYTES)
}

const RECIPIENT_PROTECTED = encodeHeader(new Map([[HEADER_ALG, ALG_ECDH_ES_A128KW]]))

export interface EncryptInput {
  plaintext: Uint8Array
  readers: readonly ReaderPublic[]
  /** Content algorithm (default A128GCM). */
  alg?: ContentAlg
  /** Bound to the ciphertext, not carried (RFC 9052 §4.3): an iotmesh frame passes its signed header. */
  externalAad?: Uint8Array
  /** Where the CEK, IV and ephemeral keys come from (default the system's secure source). */
  random?: Random
  primitives?: CosePrimitives
}

/** Builds a tagged COSE_Encrypt to `readers` (1 to MAX_READERS, one entry per kid). */
export function encryptCose (input: EncryptInput): Uint8Array {
  const p = input.primitives ?? defaultCosePrimitives()
  const random = input.random ?? systemRandom
  const alg = input.alg ?? ALG_A128GCM
  const spec = CONTENT_ALGS[alg]
  if (spec === undefined) throw meshError('ERR_UNSUPPORTED_ALG', `content alg ${String(alg)} is not A128GCM (1), A256GCM (3) or ChaCha20/Poly1305 (24)`)
  const readers = dedupe(input.readers)
  if (readers.length === 0 || readers.length > MAX_READERS) throw meshError('ERR_BAD_ARGUMENT', `a COSE_Encrypt here has 1 to ${MAX_READERS} readers, got ${readers.length}`)
  const cek = random.bytes(spec.keyBytes)
  const iv = random.bytes(IV_BYTES)
  const protectedBytes = encodeHeader(new Map([[HEADER_ALG, alg]]))
  const ciphertext = p.seal(spec.cipher, cek, iv, encStructure(protectedBytes, input.externalAad ?? new Uint8Array(0)), input.plaintext)
  const recipients = readers.map((reader) => {
    const ephemeralSecret = random.bytes(X25519_KEY_BYTES)
    const ephemeral = p.x25519Public(ephemeralSecret)
    const wrapped = p.wrap(kek(p, p.x25519(ephemeralSecret, reader.publicKey), RECIPIENT_PROTECTED), cek)
    const unprotected = new Map<number, unknown>([[HEADER_EPHEMERAL_KEY, new Map<number, unknown>([[1, 1], [-1, 4], [-2, ephemeral]])], [HEADER_KID, reader.kid]])
    return [RECIPIENT_PROTECTED, unprotected, wrapped]
  })
  const bytes = concatBytes(cborHead(6, COSE_ENCRYPT_TAG), encodeCbor([protectedBytes, new Map([[HEADER_IV, iv]]), ciphertext, recipients]))
  if (bytes.length > MAX_ENCRYPTED_BYTES) throw meshError('ERR_FRAME_TOO_LARGE', `the COSE_Encrypt is ${bytes.length} bytes, over ${MAX_ENCRYPTED_BYTES}`)
  return bytes
}

function dedupe (readers: readonly ReaderPublic[]): ReaderPublic[] {
  const seen = new Set<string>()
  return readers.filter((r) => {
    const id = toHex(r.kid)
    return !seen.has(id) && seen.add(id) !== undefined
  })
}

function bad (message: string): Error {
  return meshError('ERR_NOT_COSE_ENCRYPT', message)
}

function headerMap (bytes: Uint8Array, what: string): HeaderMap {
  if (bytes.length === 0) return new Map()
  const value = decodeCbor(bytes, HEADER_LIMITS)
  if (!(value instanceof Map)) throw bad(`the ${what} protected header is not a map`)
  return value as HeaderMap
}

function onlyLabels (header: HeaderMap, allowed: ReadonlyArray<number | string>, what: string): void {
  for (const label of header.keys()) if (!allowed.includes(label)) throw bad(`the ${what} header has label ${String(label)}, which iotmesh does not use (RFC 9052 §3: unknown labels are refused here)`)
}

/** Parses a tagged COSE_Encrypt without decrypting it. Throws ERR_NOT_COSE_ENCRYPT, ERR_UNSUPPORTED_ALG or a CBOR code. */
export function decodeCoseEncrypt (bytes: Uint8Array): CoseEncrypt {
  if (bytes.length === 0 || bytes.length > MAX_ENCRYPTED_BYTES) throw bad(`a COSE_Encrypt here is 1 to ${MAX_ENCRYPTED_BYTES} bytes, got ${bytes.length}`)
  if (bytes[0] !== 0xd8 || bytes[1] !== COSE_ENCRYPT_TAG) throw bad('expected CBOR tag 96 (COSE_Encrypt, RFC 9052 §5.1)')
  const value = decodeCbor(bytes, { ...LIMITS, allowedTopTags: [COSE_ENCRYPT_TAG] }) as { tag?: number, value?: unknown }
  const array = value?.tag === COSE_ENCRYPT_TAG ? value.value : undefined
  if (!Array.isArray(array) || array.length !== 4) throw bad('a COSE_Encrypt is an array of 4 items')
  const [protectedBytes, unprotected, ciphertext, recipients] = array as unknown[]
  if (!(protectedBytes instanceof Uint8Array) || !(unprotected instanceof Map) || !(ciphertext instanceof Uint8Array) || !Array.isArray(recipients)) {
    throw bad('a COSE_Encrypt is [protected bstr, unprotected map, ciphertext bstr, [recipients]]')
  }
  const header = headerMap(protectedBytes, 'COSE_Encrypt')
  onlyLabels(header, [HEADER_ALG], 'COSE_Encrypt protected')
  onlyLabels(unprotected as HeaderMap, [HEADER_IV], 'COSE_Encrypt unprotected')
  const alg = header.get(HEADER_ALG)
  if (typeof alg !== 'number' || !(alg in CONTENT_ALGS)) {
    throw meshError('ERR_UNSUPPORTED_ALG', `content alg ${String(alg)} is not A128GCM (1), A256GCM (3) or ChaCha20/Poly1305 (24)`)
  }
  const iv = unprotected.get(HEADER_IV)
  if (!(iv instanceof Uint8Array) || iv.length !== IV_BYTES) throw bad(`the IV (label 5) is ${IV_BYTES} bytes in the unprotected header`)
  if (ciphertext.length < TAG_BYTES) throw bad('the ciphertext is shorter than its tag')
  if (recipients.length === 0 || recipients.length > MAX_READERS) throw bad(`a COSE_Encrypt here has 1 to ${MAX_READERS} recipients, this one ${recipients.length}`)
  const keyBytes = CONTENT_ALGS[alg as ContentAlg].keyBytes
  const seen = new Set<string>()
  const parsed = recipients.map((entry): CoseRecipient => {
    if (!Array.isArray(entry) || entry.length !== 3 || !(entry[0] instanceof Uint8Array) || !(entry[1] instanceof Map) || !(entry[2] instanceof Uint8Array)) {
      throw bad('a COSE_recipient is [protected bstr, unprotected map, wrapped key bstr] without nested recipients')
    }
    const rp = headerMap(entry[0], 'COSE_recipient')
    onlyLabels(rp, [HEADER_ALG], 'COSE_recipient protected')
    if (rp.get(HEADER_ALG) !== ALG_ECDH_ES_A128KW) throw meshError('ERR_UNSUPPORTED_ALG', `recipient alg ${String(rp.get(HEADER_ALG))} is not ECDH-ES + A128KW (-29)`)
    const ru = entry[1] as HeaderMap
    onlyLabels(ru, [HEADER_EPHEMERAL_KEY, HEADER_KID], 'COSE_recipient unprotected')
    const kid = ru.get(HEADER_KID)
    if (!(kid instanceof Uint8Array) || kid.length !== READER_KID_BYTES) throw bad(`a recipient names its reader: kid (label 4), ${READER_KID_BYTES} bytes`)
    const hex = toHex(kid)
    if (seen.has(hex)) throw meshError('ERR_DUPLICATE_KEY', `reader ${hex} is a recipient twice`)
    seen.add(hex)
    const epk = ru.get(HEADER_EPHEMERAL_KEY)
    const x = epk instanceof Map && epk.size === 3 && epk.get(1) === 1 && epk.get(-1) === 4 ? epk.get(-2) : undefined
    if (!(x instanceof Uint8Array) || x.length !== X25519_KEY_BYTES) throw bad('the ephemeral key (label -1) is {1: 1 (OKP), -1: 4 (X25519), -2: 32 bytes}')
    if (entry[2].length !== keyBytes + 8) throw bad(`a wrapped ${keyBytes}-byte content key is ${keyBytes + 8} bytes (RFC 3394), got ${entry[2].length}`)
    return { protectedBytes: entry[0], kid, ephemeral: x, wrapped: entry[2] }
  })
  return { bytes, protectedBytes, alg: alg as ContentAlg, iv, ciphertext, recipients: parsed }
}

/**
 * Decrypts with a reader's key: ERR_NOT_A_READER when no recipient names its kid, ERR_DECRYPT when
 * the key unwrap or the AEAD fails (the bytes were changed, another key, another external_aad).
 */
export function decryptCose (message: CoseEncrypt | Uint8Array, reader: ReaderKey, options: { externalAad?: Uint8Array, primitives?: CosePrimitives } = {}): Uint8Array {
  const p = options.primitives ?? defaultCosePrimitives()
  const m = message instanceof Uint8Array ? decodeCoseEncrypt(message) : message
  const mine = m.recipients.find((r) => bytesEqual(r.kid, reader.kid))
  if (mine === undefined) throw meshError('ERR_NOT_A_READER', `reader ${toHex(reader.kid)} is not among the ${m.recipients.length} readers this was encrypted to`)
  const cek = p.unwrap(kek(p, p.x25519(reader.secretKey, mine.ephemeral), mine.protectedBytes), mine.wrapped)
  const spec = CONTENT_ALGS[m.alg]
  if (cek.length !== spec.keyBytes) throw meshError('ERR_DECRYPT', `the content key is ${cek.length} bytes, ${spec.name} takes ${spec.keyBytes}`)
  return p.open(spec.cipher, cek, m.iv, encStructure(m.protectedBytes, options.externalAad ?? new Uint8Array(0)), m.ciphertext)
}
