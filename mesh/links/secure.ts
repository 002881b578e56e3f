import { createCipheriv, createDecipheriv, hkdfSync } from 'node:crypto'
import { meshError } from '../../shared/index.js'
import { FRAME_HEADER_BYTES } from './framing.js'

/**
 * Cipher state of an established link: ChaCha20-Poly1305 (RFC 8439) through node:crypto, one key
 * and one 96-bit counter nonce per direction. The nonce is 32 zero bits followed by a 64-bit
 * little-endian counter, as in Noise (§5.1, "ChaChaPoly"). A frame body is
 * `ciphertext(record) || tag(16)`; a record (`record.ts`) carries one or more messages, so the
 * fixed cost of an AEAD operation (~3 µs in node:crypto, whatever the size) is paid once per
 * batch rather than once per 100-byte reading, as TLS records carry many application writes.
 */

export const KEY_BYTES = 32
export const TAG_BYTES = 16
export const NONCE_BYTES = 12
/** Bytes a sealed frame adds to its record: length prefix and tag. */
export const FRAME_OVERHEAD = FRAME_HEADER_BYTES + TAG_BYTES

const CIPHER = 'chacha20-poly1305'
/** Far below 2^64; a link never gets here (2^48 frames), but a counter must never wrap. */
const MAX_COUNTER = 2 ** 48

function nextNonce (nonce: Buffer, counter: number): void {
  nonce.writeUInt32LE(counter >>> 0, 4)
  nonce.writeUInt32LE(Math.floor(counter / 0x1_0000_0000), 8)
}

export class SendCipher {
  readonly #key: Buffer
  readonly #nonce = Buffer.alloc(NONCE_BYTES)
  #counter = 0

  constructor (key: Uint8Array) {
    this.#key = Buffer.from(key)
  }

  /** A whole wire frame: u32 length, then the sealed record. `record` is consumed before this returns. */
  seal (record: Uint8Array): Buffer {
    if (this.#counter >= MAX_COUNTER) throw meshError('ERR_LINK_CLOSED', 'the link has sent 2^48 frames and must be re-established with fresh keys')
    nextNonce(this.#nonce, this.#counter++)
    const cipher = createCipheriv(CIPHER, this.#key, this.#nonce, { authTagLength: TAG_BYTES })
    const bodyLength = record.length + TAG_BYTES
    // node:crypto cannot encrypt into a caller's buffer: one allocation for the ciphertext, one
    // for the frame it is copied into (a single write per frame).
    const sealed = cipher.update(record)
    cipher.final()
    const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + bodyLength)
    out.writeUInt32BE(bodyLength, 0)
    sealed.copy(out, FRAME_HEADER_BYTES)
    cipher.getAuthTag().copy(out, FRAME_HEADER_BYTES + record.length)
    return out
  }
}

export class ReceiveCipher {
  readonly #key: Buffer
  readonly #nonce = Buffer.alloc(NONCE_BYTES)
  #counter = 0

  constructor (key: Uint8Array) {
    this.#key = Buffer.from(key)
  }

  /** The record in a frame body; throws ERR_DECRYPT for anything that does not authenticate. */
  open (body: Buffer): Buffer {
    if (body.length < TAG_BYTES) throw meshError('ERR_DECRYPT', `a link frame of ${body.length} bytes is shorter than its authentication tag`)
    if (this.#counter >= MAX_COUNTER) throw meshError('ERR_DECRYPT', 'the receive nonce counter is exhausted')
    nextNonce(this.#nonce, this.#counter++)
    const split = body.length - TAG_BYTES
    const decipher = createDecipheriv(CIPHER, this.#key, this.#nonce, { authTagLength: TAG_BYTES })
    decipher.setAuthTag(body.subarray(split))
    const plain = decipher.update(body.subarray(0, split))
    try {
      decipher.final()
    } catch (err) {
      throw meshError('ERR_DECRYPT', `link frame #${this.#counter - 1} failed authentication (tampered, truncated or out of order); the link is destroyed`, { cause: err })
    }
    return plain
  }
}

export interface SessionKeys {
  initiatorToResponder: Uint8Array
  responderToInitiator: Uint8Array
  /** Keys the handshake's FINISH MAC (key confirmation, as TLS 1.3's Finished). */
  confirm: Uint8Array
}

const KEYS_INFO = Buffer.from('iotmesh link v1 keys')

/** HKDF-SHA256 (RFC 5869) over the X25519 shared secret, salted with the transcript hash. */
export function deriveSessionKeys (sharedSecret: Uint8Array, transcriptHash: Uint8Array): SessionKeys {
  const okm = new Uint8Array(hkdfSync('sha256', sharedSecret, transcriptHash, KEYS_INFO, 3 * KEY_BYTES))
  return {
    initiatorToResponder: okm.subarray(0, KEY_BYTES),
    responderToInitiator: okm.subarray(KEY_BYTES, 2 * KEY_BYTES),
    confirm: okm.subarray(2 * KEY_BYTES)
  }
}
