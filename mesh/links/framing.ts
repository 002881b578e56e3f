import { meshError } from '../../shared/index.js'

/**
 * Length-prefixed framing on a byte stream: every frame is a u32 big-endian body length and the
 * body. The decoder checks the claimed length against the limit as soon as the four header bytes
 * are in, so a hostile length never makes it allocate: it throws ERR_FRAME_TOO_LARGE and the
 * owner destroys the connection. Whole frames inside one chunk are handed out as views, without
 * copying; only a frame split across chunks is assembled into its own buffer. `pause()` from
 * inside `onFrame` stops decoding right after that frame and keeps the rest for `resume()`: the
 * handshake reads one message at a time, then hands the same decoder to the link.
 */

export const FRAME_HEADER_BYTES = 4

export type FrameHandler = (body: Buffer) => void

export class FrameDecoder {
  /** Largest body accepted; may change between frames (the handshake uses a smaller limit). */
  maxFrameBytes: number
  /** Called once per frame, in order; may replace itself or call `stop()`. */
  onFrame: FrameHandler
  readonly #header = Buffer.alloc(FRAME_HEADER_BYTES)
  #headerFilled = 0
  #body: Buffer | undefined
  #bodyFilled = 0
  #stopped = false
  #paused = false
  #backlog: Buffer[] = []

  constructor (maxFrameBytes: number, onFrame: FrameHandler) {
    this.maxFrameBytes = maxFrameBytes
    this.onFrame = onFrame
  }

  /** Drops buffered bytes and ignores everything pushed afterwards. */
  stop (): void {
    this.#stopped = true
    this.#body = undefined
    this.#backlog = []
  }

  /** Stops after the current frame; later bytes wait for `resume()`. */
  pause (): void {
    this.#paused = true
  }

  /** Decodes what waited while paused (may throw, as `push`). */
  resume (): void {
    this.#paused = false
    while (!this.#paused && !this.#stopped && this.#backlog.length > 0) this.#decode(this.#backlog.shift() as Buffer)
  }

  /** Bytes held for an incomplete frame (bounded by the header plus `maxFrameBytes`). */
  get bufferedBytes (): number {
    let backlog = 0
    for (const chunk of this.#backlog) backlog += chunk.length
    return this.#headerFilled + this.#bodyFilled + backlog
  }

  /** Decodes a chunk, calling `onFrame` for each complete frame; throws ERR_FRAME_TOO_LARGE. */
  push (chunk: Buffer): void {
    if (this.#stopped) return
    if (this.#paused) this.#backlog.push(chunk)
    else this.#decode(chunk)
  }

  #decode (chunk: Buffer): void {
    let offset = 0
    const end = chunk.length
    while (offset < end && !this.#stopped) {
      if (this.#paused) {
        this.#backlog.unshift(chunk.subarray(offset))
        return
      }
      if (this.#body !== undefined) {
        const take = Math.min(this.#body.length - this.#bodyFilled, end - offset)
        chunk.copy(this.#body, this.#bodyFilled, offset, offset + take)
        this.#bodyFilled += take
        offset += take
        if (this.#bodyFilled === this.#body.length) {
          const body = this.#body
          this.#body = undefined
          this.#bodyFilled = 0
          this.onFrame(body)
        }
        continue
      }
      let length: number
      if (this.#headerFilled === 0 && end - offset >= FRAME_HEADER_BYTES) {
        length = chunk.readUInt32BE(offset)
        offset += FRAME_HEADER_BYTES
      } else {
        const take = Math.min(FRAME_HEADER_BYTES - this.#headerFilled, end - offset)
        chunk.copy(this.#header, this.#headerFilled, offset, offset + take)
        this.#headerFilled += take
        offset += take
        if (this.#headerFilled < FRAME_HEADER_BYTES) return
        this.#headerFilled = 0
        length = this.#header.readUInt32BE(0)
      }
      if (length > this.maxFrameBytes) {
        this.stop()
        throw meshError('ERR_FRAME_TOO_LARGE', `a peer sent a frame header claiming ${length} bytes; the limit is ${this.maxFrameBytes}`, { details: { length, limit: this.maxFrameBytes } })
      }
      if (end - offset >= length) {
        const body = chunk.subarray(offset, offset + length)
        offset += length
        this.onFrame(body)
      } else {
        this.#body = Buffer.allocUnsafe(length)
        this.#bodyFilled = 0
      }
    }
  }
}

/** One frame (header and body) in a fresh buffer: for handshake messages, off the hot path. */
export function encodeFrame (body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length)
  out.writeUInt32BE(body.length, 0)
  out.set(body, FRAME_HEADER_BYTES)
  return out
}
