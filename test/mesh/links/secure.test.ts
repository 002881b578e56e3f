import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { isMeshError } from '../../../shared/index.js'
import { FrameDecoder } from '../../../mesh/links/framing.js'
import { FRAME_OVERHEAD, ReceiveCipher, SendCipher, deriveSessionKeys } from '../../../mesh/links/secure.js'
import { ITEM_DATA, RecordBuilder, readRecord } from '../../../mesh/links/record.js'

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

describe('link cipher state (ChaCha20-Poly1305, RFC 8439, counter nonces)', () => {
  it('opens what it sealed, in order', () => {
    fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 10 }), (records) => {
      const tx = new SendCipher(key)
      const rx = new ReceiveCipher(key)
      const frames = records.map((record) => tx.seal(record))
      frames.forEach((frame, i) => { expect(frame.length).toBe(records[i]!.length + FRAME_OVERHEAD) })
      bodies(frames).forEach((body, i) => { expect(new Uint8Array(rx.open(body))).toEqual(records[i]) })
    }))
  })

  it('never shows the plaintext in the sealed frame', () => {
    const marker = Buffer.from('temperature=21.5C')
    const frame = new SendCipher(key).seal(Buffer.concat([marker, marker]))
    expect(frame.includes(marker)).toBe(false)
  })

  it('fails to open any frame with a flipped byte, a replayed frame, or a reordered one', () => {
    const tx = new SendCipher(key)
    const [first, second] = bodies([tx.seal(Buffer.from('twenty-one degrees')), tx.seal(Buffer.from('22'))]) as [Buffer, Buffer]
    for (let i = 0; i < first.length; i++) {
      const copy = Buffer.from(first)
      copy[i]! ^= 0x80
      expect(codeOf(() => new ReceiveCipher(key).open(copy)), `byte ${i}`).toBe('ERR_DECRYPT')
    }
    const rx = new ReceiveCipher(key)
    rx.open(first)
    expect(codeOf(() => rx.open(first))).toBe('ERR_DECRYPT') // replay: the nonce moved on
    expect(codeOf(() => new ReceiveCipher(key).open(second))).toBe('ERR_DECRYPT') // out of order
    expect(codeOf(() => rx.open(Buffer.alloc(15)))).toBe('ERR_DECRYPT') // shorter than a tag
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

describe('records (the plaintext of a frame)', () => {
  it('reads back the items written, as views, and skips unknown types', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 100 })), { maxLength: 20 }), (items) => {
      const builder = new RecordBuilder(64 * 1024)
      for (const [type, payload] of items) builder.append(type, payload)
      const seen: Array<[number, Uint8Array]> = []
      readRecord(Buffer.from(builder.take()), 100, (type, payload) => { seen.push([type, new Uint8Array(payload)]) })
      expect(seen).toEqual(items)
      expect(builder.length).toBe(0)
    }))
  })

  it('refuses items that claim more than the limit or than the record holds', () => {
    const builder = new RecordBuilder(1024)
    builder.append(ITEM_DATA, new Uint8Array(50))
    const record = Buffer.from(builder.take())
    expect(codeOf(() => readRecord(record, 49, () => {}))).toBe('ERR_FRAME_TOO_LARGE')
    expect(codeOf(() => readRecord(record.subarray(0, 30), 100, () => {}))).toBe('ERR_FRAME_TOO_LARGE')
    expect(codeOf(() => readRecord(record.subarray(0, 3), 100, () => {}))).toBe('ERR_FRAME_TOO_LARGE')
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      const code = codeOf(() => readRecord(Buffer.from(bytes), 100, () => {}))
      if (code !== undefined) expect(code).toBe('ERR_FRAME_TOO_LARGE')
    }))
  })
})
