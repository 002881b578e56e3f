import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { isMeshError } from '../../../shared/index.js'
import { FrameDecoder, encodeFrame } from '../../../mesh/links/framing.js'

function split (bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b)
  const out: Buffer[] = []
  let at = 0
  for (const point of points) {
    out.push(bytes.subarray(at, point))
    at = point
  }
  out.push(bytes.subarray(at))
  return out
}

describe('length-prefixed framing', () => {
  it('decode(encode(frames)) = frames, however the stream is cut', () => {
    fc.assert(fc.property(
      fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }),
      fc.array(fc.nat(), { maxLength: 30 }),
      (frames, cuts) => {
        const stream = Buffer.concat(frames.map((f) => encodeFrame(f)))
        const seen: Buffer[] = []
        const decoder = new FrameDecoder(300, (body) => { seen.push(Buffer.from(body)) })
        for (const chunk of split(stream, cuts)) decoder.push(chunk)
        expect(seen).toEqual(frames.map((f) => Buffer.from(f)))
        expect(decoder.bufferedBytes).toBe(0)
      }))
  })

  it('refuses an oversized length as soon as the header is in, without allocating it', () => {
    const decoder = new FrameDecoder(1024, () => { throw new Error('no frame expected') })
    decoder.push(Buffer.from([0xff, 0xff]))
    let caught: unknown
    try {
      decoder.push(Buffer.from([0xff, 0xff, 1, 2, 3]))
    } catch (err) {
      caught = err
    }
    expect(isMeshError(caught, 'ERR_FRAME_TOO_LARGE')).toBe(true)
    expect(decoder.bufferedBytes).toBe(0)
    decoder.push(encodeFrame(new Uint8Array(3))) // stopped: ignores the rest
  })

  it('hands out whole frames inside a chunk as views, and assembles split ones', () => {
    const stream = Buffer.concat([encodeFrame(Buffer.from('abc')), encodeFrame(Buffer.from('defgh'))])
    const seen: Buffer[] = []
    const decoder = new FrameDecoder(16, (body) => { seen.push(body) })
    decoder.push(stream.subarray(0, 10))
    expect(seen[0]!.buffer).toBe(stream.buffer) // a view, no copy
    decoder.push(stream.subarray(10))
    expect(seen.map(String)).toEqual(['abc', 'defgh'])
  })

  it('pauses after a frame and resumes with the rest, in order', () => {
    const stream = Buffer.concat(['a', 'b', 'c', 'd'].map((s) => encodeFrame(Buffer.from(s))))
    const seen: string[] = []
    const decoder = new FrameDecoder(16, (body) => {
      seen.push(String(body))
      decoder.pause()
    })
    decoder.push(stream.subarray(0, 7))
    decoder.push(stream.subarray(7))
    expect(seen).toEqual(['a'])
    expect(decoder.bufferedBytes).toBe(stream.length - 5)
    decoder.resume()
    expect(seen).toEqual(['a', 'b'])
    decoder.onFrame = (body) => { seen.push(String(body)) }
    decoder.resume()
    expect(seen).toEqual(['a', 'b', 'c', 'd'])
  })
})
