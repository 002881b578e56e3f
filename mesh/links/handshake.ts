import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import {
  MAX_CREDENTIAL_BYTES, PUBLIC_KEY_LENGTH, SIGNATURE_LENGTH, deviceIdFromPublicKey, isMeshError, meshError,
  type Ed25519, type ErrorCode, type KeyPair, type MeshError, type Random
} from '../../shared/index.js'
import { checkAuthorized, checkExpected, checkNotSelf } from './checks.js'
import { deriveSessionKeys } from './secure.js'
import { generateEphemeral, x25519, X25519_BYTES, type EphemeralKey } from './x25519.js'
import type { Admit, Authorize, RemotePeer } from './types.js'

/**
 * The link handshake as a pure state machine: bytes in, bytes out, no sockets or timers.
 * SIGMA-I in the Noise XX spirit, four messages:
 *
 *   HELLO   I→R  kind 1 | version | seq(8) | nonceI(32) | ephI(32) | pkI(32) [| extensions]
 *   REPLY   R→I  kind 2 | version | nonceR(32) | ephR(32) | pkR(32) | sigR(64) [| extensions]
 *   AUTH    I→R  kind 3 | version | reserved(1) = 0 | sigI(64)
 *   FINISH  R→I  kind 4 | version | verdict(1) | mac(32)
 *   REFUSE  either way, instead of the next message: kind 0x7f | version | len(1) | error code (ASCII)
 *
 * sigR = Ed25519(skR, "iotmesh link v1 responder proof" || H(prologue || HELLO || REPLY without sigR, extensions included))
 * sigI = Ed25519(skI, "iotmesh link v1 initiator proof" || H(prologue || HELLO || REPLY || AUTH without sigI))
 * Each signature covers both nonces, both ephemeral keys, both identities and the version, so no
 * message can be spliced into another session or replayed. Session keys come from HKDF-SHA256 over
 * X25519(ephI, ephR) salted with H(whole transcript); FINISH is an HMAC under a derived key, so the
 * initiator knows the responder holds the same keys (key confirmation, as TLS 1.3's Finished).
 * Device ids derive from the public keys, so proving a key proves the id. `seq` is the initiator's
 * dial sequence (u64 big-endian), used only to pick one of two links between the same devices
 * (`registry.ts`); it is signed like everything else.
 * The first two bytes of every message, and the whole REFUSE layout, never change between versions.
 *
 * Extensions (issue 13) follow the fixed fields of HELLO and REPLY, only when there is one to send:
 * entries `type(1) | length(2, big-endian) | value`, each type at most once, unknown types skipped.
 *   type 1  the sender's enrollment credential (shared/fleet.ts: a COSE_Sign CWT, at most 2,048 bytes)
 *   type 2  the sender's instance id: 16 random bytes drawn once per process start (mesh/clones.ts);
 *           a MeshNode sends it by default (MeshNodeInit.instance false: not)
 * HELLO's are covered by both signatures (the whole HELLO is in both transcripts), REPLY's by sigR.
 * A node that sends none sends exactly the messages of before, so a peer without a credential
 * links with older nodes as ever; a HELLO or REPLY with extensions is refused (malformed) by a
 * node older than this layout. The responder checks the initiator's credential (`admit`) before it
 * signs its REPLY, so a peer without one in a closed fleet costs it no signature.
 */

export const PROTOCOL_VERSION = 1
/** Handshake messages are small; a larger frame before the handshake completes is refused. */
export const MAX_HANDSHAKE_BYTES = 256 + 3 + MAX_CREDENTIAL_BYTES + 3 + 16

const KIND_HELLO = 1
const KIND_REPLY = 2
const KIND_AUTH = 3
const KIND_FINISH = 4
const KIND_REFUSE = 0x7f
const NONCE = 32
const MAC = 32
const SEQ = 8
const HELLO_BYTES = 2 + SEQ + NONCE + X25519_BYTES + PUBLIC_KEY_LENGTH
const REPLY_BYTES = 2 + NONCE + X25519_BYTES + PUBLIC_KEY_LENGTH + SIGNATURE_LENGTH
const AUTH_BYTES = 2 + 1 + SIGNATURE_LENGTH
const FINISH_BYTES = 2 + 1 + MAC
const EXT_CREDENTIAL = 1
const EXT_INSTANCE = 2
const INSTANCE_BYTES = 16

const PROLOGUE = Buffer.from('iotmesh/link/1')
const LABEL_RESPONDER = Buffer.from('iotmesh link v1 responder proof')
const LABEL_INITIATOR = Buffer.from('iotmesh link v1 initiator proof')
const LABEL_FINISH = Buffer.from('iotmesh link v1 finish')

/** Codes a refusal may carry; anything else the peer says reads as ERR_HANDSHAKE (as an older peer reads ERR_BUSY and ERR_BANNED). */
const TELLABLE: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'ERR_HANDSHAKE', 'ERR_PROTOCOL_VERSION', 'ERR_PEER_KEY_MISMATCH', 'ERR_NOT_IN_ROSTER', 'ERR_BUSY', 'ERR_BANNED',
  // closed fleets by credential (mesh/credentials.ts): the refused side can log why
  'ERR_CLONED_IDENTITY', 'ERR_REVOKED', 'ERR_NO_CREDENTIAL', 'ERR_BAD_CREDENTIAL', 'ERR_CREDENTIAL_EXPIRED', 'ERR_CREDENTIAL_MISMATCH', 'ERR_NOT_OWNER', 'ERR_TOO_FEW_OWNERS', 'ERR_UNKNOWN_FLEET'
])

/** Accepted, or refused because the responder keeps another link to the same device. */
export type Verdict = 'accept' | 'duplicate'

export interface HandshakeConfig {
  keys: KeyPair
  ed25519: Ed25519
  random: Random
  authorize?: Authorize
  /** This node's enrollment credential, shown to every peer (extension type 1). */
  credential?: Uint8Array
  /** This node's instance id (16 bytes, new at each process start: extension type 2). */
  instance?: Uint8Array
  /** Decides on a peer and the credential it showed (mesh/credentials.ts); throws the refusal's MeshError. */
  admit?: Admit
  /** Initiator only: what discovery announced. */
  expectedId?: string
  expectedPublicKey?: Uint8Array
}

export interface SessionSecrets {
  readonly send: Uint8Array
  readonly receive: Uint8Array
}

function hash (...parts: Uint8Array[]): Buffer {
  const h = createHash('sha256').update(PROLOGUE)
  for (const part of parts) h.update(part)
  return h.digest()
}

function finishMac (key: Uint8Array, verdict: number, transcript: Uint8Array): Buffer {
  return createHmac('sha256', key).update(LABEL_FINISH).update(Uint8Array.of(verdict)).update(transcript).digest()
}

function malformed (what: string): MeshError {
  return meshError('ERR_HANDSHAKE', `malformed handshake message: ${what}`)
}

function encodeExtensions (config: HandshakeConfig): Uint8Array {
  const { credential, instance } = config
  if (credential !== undefined && credential.length > MAX_CREDENTIAL_BYTES) throw meshError('ERR_BAD_CREDENTIAL', `this node's credential is ${credential.length} bytes, more than ${MAX_CREDENTIAL_BYTES}`)
  if (instance !== undefined && instance.length !== INSTANCE_BYTES) throw meshError('ERR_BAD_ARGUMENT', `an instance id is ${INSTANCE_BYTES} bytes`)
  const entries: Array<[number, Uint8Array]> = []
  if (credential !== undefined) entries.push([EXT_CREDENTIAL, credential])
  if (instance !== undefined) entries.push([EXT_INSTANCE, instance])
  const out = new Uint8Array(entries.reduce((n, [, v]) => n + 3 + v.length, 0))
  let at = 0
  for (const [type, value] of entries) {
    out[at] = type
    new DataView(out.buffer).setUint16(at + 1, value.length)
    out.set(value, at + 3)
    at += 3 + value.length
  }
  return out
}

/** The extensions after a message's fixed fields (copied out of `bytes`). */
function decodeExtensions (bytes: Uint8Array): { credential?: Uint8Array, instance?: Uint8Array } {
  const seen = new Set<number>()
  let credential: Uint8Array | undefined
  let instance: Uint8Array | undefined
  for (let at = 0; at < bytes.length;) {
    if (at + 3 > bytes.length) throw malformed('a truncated extension header')
    const type = bytes[at] as number
    const length = (bytes[at + 1] as number) << 8 | (bytes[at + 2] as number)
    if (at + 3 + length > bytes.length) throw malformed(`extension ${type} runs past the message`)
    if (seen.has(type)) throw malformed(`extension ${type} twice`)
    seen.add(type)
    if (type === EXT_CREDENTIAL) {
      if (length === 0 || length > MAX_CREDENTIAL_BYTES) throw malformed(`a credential of ${length} bytes`)
      credential = new Uint8Array(bytes.subarray(at + 3, at + 3 + length))
    }
    if (type === EXT_INSTANCE) {
      if (length !== INSTANCE_BYTES) throw malformed(`an instance id of ${length} bytes`)
      instance = new Uint8Array(bytes.subarray(at + 3, at + 3 + length))
    }
    at += 3 + length
  }
  return { ...(credential === undefined ? {} : { credential }), ...(instance === undefined ? {} : { instance }) }
}

function admitPeer (config: HandshakeConfig, peer: RemotePeer): void {
  if (config.admit === undefined) return
  config.admit(peer)
}

/** Checks kind, version and length (at least `length` when `extensible`); a REFUSE from the peer becomes the error it names. */
function expectMessage (msg: Uint8Array, kind: number, length: number, extensible = false): void {
  if (msg.length < 2) throw malformed(`${msg.length} bytes`)
  if (msg[0] === KIND_REFUSE) throw readRefusal(msg)
  if (msg[1] !== PROTOCOL_VERSION) {
    throw meshError('ERR_PROTOCOL_VERSION', `the peer speaks link protocol version ${String(msg[1])}; this node speaks ${PROTOCOL_VERSION} (upgrade the older device)`, { details: { remoteVersion: msg[1], supported: [PROTOCOL_VERSION] } })
  }
  if (msg[0] !== kind) throw meshError('ERR_HANDSHAKE', `unexpected handshake message kind ${String(msg[0])}, expected ${kind}`)
  if (extensible ? msg.length < length : msg.length !== length) throw malformed(`kind ${kind} must be ${extensible ? 'at least ' : ''}${length} bytes, got ${msg.length}`)
}

function readRefusal (msg: Uint8Array): MeshError {
  const length = msg[2] ?? 0
  const text = Buffer.from(msg.subarray(3, 3 + length)).toString('latin1')
  const code: ErrorCode = TELLABLE.has(text as ErrorCode) ? text as ErrorCode : 'ERR_HANDSHAKE'
  return meshError(code, `the peer refused the link: ${code}`, { details: { remote: true, remoteVersion: msg[1] } })
}

/** The REFUSE message telling the peer why, or undefined when the error is not ours to tell. */
export function refusalFor (err: unknown): Uint8Array | undefined {
  if (!isMeshError(err) || !TELLABLE.has(err.code) || err.details?.remote === true) return undefined
  const code = Buffer.from(err.code, 'latin1')
  return Uint8Array.from([KIND_REFUSE, PROTOCOL_VERSION, code.length, ...code])
}

function verifySignature (config: HandshakeConfig, label: Buffer, transcript: Uint8Array, signature: Uint8Array, publicKey: Uint8Array, role: string): void {
  const message = Buffer.concat([label, transcript])
  if (!config.ed25519.verify(signature, message, publicKey)) {
    throw meshError('ERR_HANDSHAKE', `the ${role}'s proof does not verify: it does not hold the key it claims, or a handshake message was altered`)
  }
}

function remoteFrom (publicKey: Uint8Array, extensions: { credential?: Uint8Array, instance?: Uint8Array } = {}): RemotePeer {
  const key = new Uint8Array(publicKey)
  return { id: deviceIdFromPublicKey(key), publicKey: key, ...extensions }
}

/** The dialing side. Call hello(), readReply(), auth(), readFinish() in order; any step may throw a MeshError. */
export class InitiatorHandshake {
  readonly #config: HandshakeConfig
  readonly #ephemeral: EphemeralKey
  #step = 0
  #hello: Uint8Array | undefined
  #reply: Uint8Array | undefined
  #auth: Uint8Array | undefined
  #remote: RemotePeer | undefined

  constructor (config: HandshakeConfig) {
    this.#config = config
    this.#ephemeral = generateEphemeral(config.random)
  }

  #advance (from: number): void {
    if (this.#step !== from) throw meshError('ERR_HANDSHAKE', `handshake step ${from + 1} out of order (at step ${this.#step})`)
    this.#step++
  }

  /** `seq`: this node's dial sequence, a safe integer that grows with every dial and across restarts. */
  hello (seq: number): Uint8Array {
    this.#advance(0)
    const extensions = encodeExtensions(this.#config)
    const msg = new Uint8Array(HELLO_BYTES + extensions.length)
    msg.set(extensions, HELLO_BYTES)
    msg[0] = KIND_HELLO
    msg[1] = PROTOCOL_VERSION
    new DataView(msg.buffer).setBigUint64(2, BigInt(seq))
    msg.set(this.#config.random.bytes(NONCE), 2 + SEQ)
    msg.set(this.#ephemeral.publicKey, 2 + SEQ + NONCE)
    msg.set(this.#config.keys.publicKey, 2 + SEQ + NONCE + X25519_BYTES)
    this.#hello = msg
    return msg
  }

  /** Verifies the responder's proof, then what discovery announced, then the roster, then its credential (`admit`). */
  readReply (msg: Uint8Array): RemotePeer {
    this.#advance(1)
    expectMessage(msg, KIND_REPLY, REPLY_BYTES, true)
    const keyAt = 2 + NONCE + X25519_BYTES
    const extensions = msg.subarray(REPLY_BYTES)
    const remote = remoteFrom(msg.subarray(keyAt, keyAt + PUBLIC_KEY_LENGTH), decodeExtensions(extensions))
    const signed = hash(this.#hello as Uint8Array, msg.subarray(0, keyAt + PUBLIC_KEY_LENGTH), extensions)
    verifySignature(this.#config, LABEL_RESPONDER, signed, msg.subarray(keyAt + PUBLIC_KEY_LENGTH, REPLY_BYTES), remote.publicKey, 'responder')
    checkNotSelf(remote, this.#config.keys.publicKey)
    checkExpected(remote, this.#config)
    checkAuthorized(remote, this.#config.authorize)
    admitPeer(this.#config, remote)
    this.#reply = new Uint8Array(msg)
    this.#remote = remote
    return remote
  }

  auth (): Uint8Array {
    this.#advance(2)
    const msg = new Uint8Array(AUTH_BYTES)
    msg[0] = KIND_AUTH
    msg[1] = PROTOCOL_VERSION
    const signed = hash(this.#hello as Uint8Array, this.#reply as Uint8Array, msg.subarray(0, 3))
    msg.set(this.#config.ed25519.sign(Buffer.concat([LABEL_INITIATOR, signed]), this.#config.keys.secretKey), 3)
    this.#auth = msg
    return msg
  }

  readFinish (msg: Uint8Array): { verdict: Verdict, secrets: SessionSecrets, remote: RemotePeer } {
    this.#advance(3)
    expectMessage(msg, KIND_FINISH, FINISH_BYTES)
    const reply = this.#reply as Uint8Array
    const transcript = hash(this.#hello as Uint8Array, reply, this.#auth as Uint8Array)
    const ephR = reply.subarray(2 + NONCE, 2 + NONCE + X25519_BYTES)
    const keys = deriveSessionKeys(x25519(this.#ephemeral, ephR), transcript)
    const verdict = msg[2] as number
    const mac = finishMac(keys.confirm, verdict, transcript)
    if (verdict > 1 || !timingSafeEqual(mac, msg.subarray(3))) throw meshError('ERR_HANDSHAKE', 'the responder\'s FINISH does not authenticate: it derived other session keys, or the message was altered')
    return {
      verdict: verdict === 0 ? 'accept' : 'duplicate',
      secrets: { send: keys.initiatorToResponder, receive: keys.responderToInitiator },
      remote: this.#remote as RemotePeer
    }
  }
}

/** The listening side. Call readHello(), reply(), readAuth(), finish() in order; any step may throw a MeshError. */
export class ResponderHandshake {
  readonly #config: HandshakeConfig
  /** Made in reply(), not before: a connection that never gets a REPLY (half-open, over budget) costs no key. */
  #ephemeral: EphemeralKey | undefined
  #step = 0
  #hello: Uint8Array | undefined
  #reply: Uint8Array | undefined
  #transcript: Uint8Array | undefined
  #claimed: RemotePeer | undefined

  constructor (config: HandshakeConfig) {
    this.#config = config
  }

  #advance (from: number): void {
    if (this.#step !== from) throw meshError('ERR_HANDSHAKE', `handshake step ${from + 1} out of order (at step ${this.#step})`)
    this.#step++
  }

  /** The identity the initiator claims (proven only by readAuth()) and its dial sequence. */
  readHello (msg: Uint8Array): { claimed: RemotePeer, seq: number } {
    this.#advance(0)
    expectMessage(msg, KIND_HELLO, HELLO_BYTES, true)
    this.#hello = new Uint8Array(msg)
    const keyAt = 2 + SEQ + NONCE + X25519_BYTES
    this.#claimed = remoteFrom(msg.subarray(keyAt, keyAt + PUBLIC_KEY_LENGTH), decodeExtensions(msg.subarray(HELLO_BYTES)))
    checkNotSelf(this.#claimed, this.#config.keys.publicKey)
    const seq = Number(new DataView(this.#hello.buffer).getBigUint64(2))
    return { claimed: this.#claimed, seq }
  }

  /**
   * Decides on the claimed peer and the credential it showed (`admit`: throws the refusal, and
   * nothing is signed), then signs the REPLY. The claim is proven by readAuth(): a credential
   * admitted here binds the claimed key, so an initiator that cannot prove that key gets no link.
   */
  reply (): Uint8Array {
    this.#advance(1)
    admitPeer(this.#config, this.#claimed as RemotePeer)
    const ephemeral = this.#ephemeral = generateEphemeral(this.#config.random) // drawn before the nonce, as it always was
    const extensions = encodeExtensions(this.#config)
    const msg = new Uint8Array(REPLY_BYTES + extensions.length)
    msg[0] = KIND_REPLY
    msg[1] = PROTOCOL_VERSION
    msg.set(this.#config.random.bytes(NONCE), 2)
    msg.set(ephemeral.publicKey, 2 + NONCE)
    const keyAt = 2 + NONCE + X25519_BYTES
    msg.set(this.#config.keys.publicKey, keyAt)
    msg.set(extensions, REPLY_BYTES)
    const signed = hash(this.#hello as Uint8Array, msg.subarray(0, keyAt + PUBLIC_KEY_LENGTH), extensions)
    msg.set(this.#config.ed25519.sign(Buffer.concat([LABEL_RESPONDER, signed]), this.#config.keys.secretKey), keyAt + PUBLIC_KEY_LENGTH)
    this.#reply = msg
    return msg
  }

  /** Verifies the initiator's proof, then the roster; returns the proven peer. */
  readAuth (msg: Uint8Array): RemotePeer {
    this.#advance(2)
    expectMessage(msg, KIND_AUTH, AUTH_BYTES)
    const remote = this.#claimed as RemotePeer
    const hello = this.#hello as Uint8Array
    const reply = this.#reply as Uint8Array
    verifySignature(this.#config, LABEL_INITIATOR, hash(hello, reply, msg.subarray(0, 3)), msg.subarray(3), remote.publicKey, 'initiator')
    checkAuthorized(remote, this.#config.authorize)
    this.#transcript = hash(hello, reply, msg)
    return remote
  }

  finish (verdict: Verdict): { message: Uint8Array, secrets: SessionSecrets } {
    this.#advance(3)
    const transcript = this.#transcript as Uint8Array
    const ephI = (this.#hello as Uint8Array).subarray(2 + SEQ + NONCE, 2 + SEQ + NONCE + X25519_BYTES)
    const keys = deriveSessionKeys(x25519(this.#ephemeral as EphemeralKey, ephI), transcript)
    const code = verdict === 'accept' ? 0 : 1
    const message = new Uint8Array(FINISH_BYTES)
    message[0] = KIND_FINISH
    message[1] = PROTOCOL_VERSION
    message[2] = code
    message.set(finishMac(keys.confirm, code, transcript), 3)
    return { message, secrets: { send: keys.responderToInitiator, receive: keys.initiatorToResponder } }
  }
}
