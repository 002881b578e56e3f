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
 * A record cut short by a crash (SIGKILL or power loss mid-append) fails the length or CRC check;
 * the scan stops at the first such record and everything from there on is discarded.
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

export interface ScanResult {
  /** False when the file does not start with the magic (and is longer than a torn magic). */
  ours: boolean
  records: ScannedRecord[]
  /** Bytes up to the end of the last good record (where the next append goes). */
  good: number
  /** True when bytes after `good` were not a complete, valid record. */
  torn: boolean
}

/** Reads a segment's bytes: every complete record whose CRC holds, up to the first one that does not. */
export function scanSegment (bytes: Uint8Array): ScanResult {
  if (bytes.length < SEGMENT_MAGIC.length) {
    // Torn while the magic was written, or empty: nothing in it.
    const prefix = SEGMENT_MAGIC.subarray(0, bytes.length).every((b, i) => bytes[i] === b)
    return { ours: prefix, records: [], good: 0, torn: bytes.length > 0 }
  }
  if (!SEGMENT_MAGIC.every((b, i) => bytes[i] === b)) return { ours: false, records: [], good: 0, torn: true }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const records: ScannedRecord[] = []
  let offset = SEGMENT_MAGIC.length
  while (offset + RECORD_HEADER <= bytes.length) {
    const length = view.getUint32(offset)
    const end = offset + RECORD_HEADER + length
    if (length > MAX_RECORD_FRAME || end > bytes.length) break
    if (view.getUint32(offset + 4) !== crc32(bytes.subarray(offset + 8, end))) break
    const seq = view.getUint32(offset + 8) * 0x1_0000_0000 + view.getUint32(offset + 12)
    records.push({ seq, offset, length })
    offset = end
  }
  return { ours: true, records, good: offset, torn: offset < bytes.length }
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
