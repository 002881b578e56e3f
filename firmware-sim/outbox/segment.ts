import * as zlib from 'node:zlib'

/**
 * The on-disk format of an outbox segment: an 8-byte magic, then records appended one after the
 * other, each one write(2):
 *
 *     u32 BE   n        length of the frame
 *     u32 BE   crc      CRC-32 (ISO-HDLC, as zlib) of the 8 seq bytes and the n frame bytes
 *     u64 BE   seq      the frame's sequence number (< 2^53)
 *     n bytes  frame    the signed frame, as put
 *
 * A record cut short by a crash (SIGKILL or power loss mid-append) fails the length or CRC check
 * at the end of the file: a torn tail, discarded. A record that fails its check with good records
 * after it is damage (bit rot, a bad sector): the scan skips it and finds the next record by
 * trying each later offset (length in bounds, seq < 2^53, CRC; a false match needs a CRC-32
 * collision, 2^-32 per try), so one flipped byte costs one record, never the ones after it.
 */

export const SEGMENT_MAGIC = new Uint8Array([0x69, 0x6f, 0x74, 0x6f, 0x62, 0x78, 0x00, 0x01]) // "iotobx" 0 1
export const RECORD_HEADER = 16
/** A frame is at most 8 KiB (shared/frame.ts limits); anything claiming more than this is garbage. */
export const MAX_RECORD_FRAME = 1024 * 1024

export function encodeRecord (seq: number, frame: Uint8Array): Uint8Array {
  const out = new Uint8Array(RECORD_HEADER + frame.length)
  const view = new DataView(out.buffer)
  view.setUint32(0, frame.length)
  view.setUint32(8, Math.floor(seq / 0x1_0000_0000))
  view.setUint32(12, seq >>> 0)
  out.set(frame, RECORD_HEADER)
  view.setUint32(4, crc32(out.subarray(8)))
  return out
}

export interface ScannedRecord {
  seq: number
  /** Offset of the record's header in the file. */
  offset: number
  /** Length of the frame. */
  length: number
}

/** Bytes the scan skipped between good records: a damaged record (or several). */
export interface ScanDamage {
  offset: number
  bytes: number
}

export interface ScanResult {
  /** False when the file does not start with the magic (and is longer than a torn magic). */
  ours: boolean
  records: ScannedRecord[]
  /** Bytes up to the end of the last good record (where the next append goes). */
  good: number
  /** True when bytes after `good` were not a complete, valid record. */
  torn: boolean
  /** Damaged stretches skipped between good records (a bad magic counts when records follow it). */
  damaged: ScanDamage[]
  /**
   * The bytes after the last good record look like a crash mid-append (a record cut short, or
   * zeros), not like damage: a complete record that fails its CRC there is damage too.
   */
  tornOnly: boolean
}

/** A record that checks out at `offset`, or undefined. */
function recordAt (bytes: Uint8Array, view: DataView, offset: number): ScannedRecord | undefined {
  if (offset + RECORD_HEADER > bytes.length) return undefined
  const length = view.getUint32(offset)
  const end = offset + RECORD_HEADER + length
  if (length > MAX_RECORD_FRAME || end > bytes.length) return undefined
  const high = view.getUint32(offset + 8)
  if (high >= 0x20_0000) return undefined // seq < 2^53
  if (view.getUint32(offset + 4) !== crc32(bytes.subarray(offset + 8, end))) return undefined
  return { seq: high * 0x1_0000_0000 + view.getUint32(offset + 12), offset, length }
}

/** True when the bytes from `offset` are what a crash mid-append leaves: a record cut short, or zeros. */
function tornTail (bytes: Uint8Array, view: DataView, offset: number): boolean {
  if (bytes.subarray(offset).every((b) => b === 0)) return true
  if (offset + RECORD_HEADER > bytes.length) return true
  const length = view.getUint32(offset)
  return length <= MAX_RECORD_FRAME && offset + RECORD_HEADER + length > bytes.length
}

/**
 * Reads a segment's bytes: every complete record whose CRC holds. A record that fails is skipped
 * up to the next one that holds (damage); what follows the last good record is the tail.
 */
export function scanSegment (bytes: Uint8Array): ScanResult {
  if (bytes.length < SEGMENT_MAGIC.length) {
    // Torn while the magic was written, or empty: nothing in it.
    const prefix = SEGMENT_MAGIC.subarray(0, bytes.length).every((b, i) => bytes[i] === b)
    return { ours: prefix, records: [], good: 0, torn: bytes.length > 0, damaged: [], tornOnly: true }
  }
  const magic = SEGMENT_MAGIC.every((b, i) => bytes[i] === b)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const records: ScannedRecord[] = []
  const damaged: ScanDamage[] = []
  let offset = SEGMENT_MAGIC.length
  let good = magic ? offset : 0
  while (offset < bytes.length) {
    const record = recordAt(bytes, view, offset)
    if (record !== undefined) {
      records.push(record)
      offset = good = record.offset + RECORD_HEADER + record.length
      continue
    }
    let next = offset + 1
    while (next < bytes.length && recordAt(bytes, view, next) === undefined) next++
    if (next >= bytes.length) break // nothing good after it: the tail
    damaged.push({ offset, bytes: next - offset })
    offset = next
  }
  if (!magic) {
    // The first bytes are not the magic: not ours, unless good records follow (then the magic is damage).
    if (records.length === 0) return { ours: false, records: [], good: 0, torn: true, damaged: [], tornOnly: false }
    damaged.unshift({ offset: 0, bytes: SEGMENT_MAGIC.length })
  }
  const torn = good < bytes.length
  return { ours: true, records, good, torn, damaged, tornOnly: !torn || tornTail(bytes, view, good) }
}

/** `seg-<first seq, 16 digits>.log`: names sort in seq order. */
export function segmentName (firstSeq: number): string {
  return `seg-${String(firstSeq).padStart(16, '0')}.log`
}

export const SEGMENT_PATTERN = /^seg-(\d{16})\.log$/

let table: Uint32Array | undefined

/** CRC-32 (the zlib/PNG one): node:zlib's since Node 20.15, else a table-driven fallback. */
export function crc32 (data: Uint8Array): number {
  const native = (zlib as { crc32?: (data: Uint8Array) => number }).crc32
  if (typeof native === 'function') return native(data) >>> 0
  table ??= Uint32Array.from({ length: 256 }, (_, n) => {
    let c = n
    for (let k = 0; k < 8; k++) c = (c & 1) !== 0 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    return c >>> 0
  })
  let c = 0xffffffff
  for (const byte of data) c = (table[(c ^ byte) & 0xff] as number) ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}
