import { meshError } from '../../shared/index.js'

/**
 * The plaintext of one encrypted frame: a record of items, each `type(1) | length(u32 BE) | payload`.
 * Messages sent within one turn of the event loop share a record (`tcp-link.ts`), so encryption runs once per batch.
 * Types: data, ping and pong (a u32 token), close. Unknown types are skipped, for forward
 * compatibility.
 */
export const ITEM_DATA = 0
export const ITEM_PING = 1
export const ITEM_PONG = 2
export const ITEM_CLOSE = 3
export const ITEM_HEADER_BYTES = 5

/** A reusable buffer that collects items until the link seals it. */
export class RecordBuilder {
  readonly #buffer: Buffer
  #length = 0

  constructor (capacity: number) {
    this.#buffer = Buffer.allocUnsafe(capacity)
  }

  get length (): number {
    return this.#length
  }

  /** True when an item with `payloadLength` bytes still fits. */
  fits (payloadLength: number): boolean {
    return this.#length + ITEM_HEADER_BYTES + payloadLength <= this.#buffer.length
  }

  /** Copies the item in (the caller may reuse `payload` at once). Check `fits` first. */
  append (type: number, payload: Uint8Array): void {
    const at = this.#length
    this.#buffer[at] = type
    this.#buffer.writeUInt32BE(payload.length, at + 1)
    this.#buffer.set(payload, at + ITEM_HEADER_BYTES)
    this.#length = at + ITEM_HEADER_BYTES + payload.length
  }

  /** The record so far, as a view valid until the next append; empties the builder. */
  take (): Buffer {
    const record = this.#buffer.subarray(0, this.#length)
    this.#length = 0
    return record
  }
}

/** Calls `onItem` for each item of a decrypted record; payloads are views into `record`. */
export function readRecord (record: Buffer, maxPayload: number, onItem: (type: number, payload: Buffer) => void): void {
  let at = 0
  while (at < record.length) {
    if (record.length - at < ITEM_HEADER_BYTES) throw meshError('ERR_FRAME_TOO_LARGE', `a record ends ${record.length - at} bytes into an item header`)
    const type = record[at] as number
    const length = record.readUInt32BE(at + 1)
    at += ITEM_HEADER_BYTES
    if (length > maxPayload || length > record.length - at) {
      throw meshError('ERR_FRAME_TOO_LARGE', `a record item claims ${length} bytes; ${Math.min(maxPayload, record.length - at)} are allowed there`, { details: { length, limit: maxPayload } })
    }
    onItem(type, record.subarray(at, at + length))
    at += length
  }
}
