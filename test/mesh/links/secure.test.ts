import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { isMeshError } from '../../../shared/index.js'
import { FrameDecoder } from '../../../mesh/links/framing.js'
import { FRAME_OVERHEAD, ReceiveCipher, SendCipher, deriveSessionKeys } from '../../../mesh/links/secure.js'

const key = new Uint8Array(32).fill(9)

function bodies (frames: Buffer[]): Buffer[] {
  const out: Buffer[] = []
  const decoder = new FrameDecoder(1 << 20, (body) => { out.push(Buffer.from(body)) })
  for (const frame of frames) decoder.push(frame)
  return out
}

function codeOf (fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return isMeshError(err) ? err.code : String(err)
  }
  return undefined
}

describe('link cipher state (ChaCha20-Poly1305, counter nonces)', () => {
  it('opens what it sealed, in order, with the type byte inside', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 200 })), { maxLength: 10 }), (messages) => {
      const tx = new SendCipher(key)
      const rx = new ReceiveCipher(key)
      const frames = messages.map(([type, msg]) => tx.seal(type, msg))
      frames.forEach((frame, i) => { expect(frame.length).toBe(messages[i]![1].length + FRAME_OVERHEAD) })
      bodies(frames).forEach((body, i) => {
        const plain = rx.open(body)
        expect(plain[0]).toBe(messages[i]![0])
        expect(new Uint8Array(plain.subarray(1))).toEqual(messages[i]![1])
      })
    }))
  })

  it('fails to open any frame with a flipped byte, a replayed frame, or a reordered one', () => {
    const tx = new SendCipher(key)
    const [first, second] = bodies([tx.seal(0, Buffer.from('twenty-one degrees')), tx.seal(0, Buffer.from('22'))]) as [Buffer, Buffer]
    for (let i = 0; i < first.length; i++) {
      const copy = Buffer.from(first)
      copy[i]! ^= 0x80
      expect(codeOf(() => new ReceiveCipher(key).open(copy)), `byte ${i}`).toBe('ERR_DECRYPT')
    }
    const rx = new ReceiveCipher(key)
    rx.open(first)
    expect(codeOf(() => rx.open(first))).toBe('ERR_DECRYPT') // replay: the nonce moved on
    expect(codeOf(() => new ReceiveCipher(key).open(second))).toBe('ERR_DECRYPT') // out of order
    expect(codeOf(() => rx.open(Buffer.alloc(5)))).toBe('ERR_DECRYPT') // shorter than a tag
  })

  it('derives distinct keys per direction, bound to the transcript', () => {
    const secret = randomBytes(32)
    const a = deriveSessionKeys(secret, Buffer.alloc(32, 1))
    const b = deriveSessionKeys(secret, Buffer.alloc(32, 2))
    expect(Buffer.from(a.initiatorToResponder)).not.toEqual(Buffer.from(a.responderToInitiator))
    expect(Buffer.from(a.initiatorToResponder)).not.toEqual(Buffer.from(b.initiatorToResponder))
    expect(a.confirm.length).toBe(32)
  })
})
