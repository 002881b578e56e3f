import { concatBytes } from '../../shared/index.js'
/**
 * CBOR at the byte level, for making inputs a strict decoder must refuse: heads of any width
 * (preferred or not), indefinite lengths, raw text bytes, maps with repeated keys. And a lenient
 * walk that finds the heads of an item, so a mutation can rewrite one (RFC 8949 §3).
 */

/** A head of `major` with argument `arg` in `width` argument bytes (0: in the initial byte, only for arg < 24). */
export function head (major: number, arg: number | bigint, width: 0 | 1 | 2 | 4 | 8 = preferredWidth(arg)): Uint8Array {
  const m = major << 5
  if (width === 0) return Uint8Array.of(m | Number(arg))
  const info = { 1: 24, 2: 25, 4: 26, 8: 27 }[width]
  const out = new Uint8Array(1 + width)
  out[0] = m | info
  let v = BigInt(arg)
  for (let i = width; i >= 1; i--) {
    out[i] = Number(v & 0xffn)
    v >>= 8n
  }
  return out
}

/** The width of the shortest head for `arg` (RFC 8949 §4.2.1). */
export function preferredWidth (arg: number | bigint): 0 | 1 | 2 | 4 | 8 {
  const v = BigInt(arg)
  return v < 24n ? 0 : v < 0x100n ? 1 : v < 0x10000n ? 2 : v < 0x100000000n ? 4 : 8
}

/** Concatenation, as the codec does it (shared/bytes.ts). */
export const cat = concatBytes

/** One head found by `walkHeads`: where it is, what it says, and where the item's own bytes end. */
export interface HeadInfo {
  at: number
  major: number
  info: number
  arg: number
  /** Just past the head. */
  next: number
  /** Just past the whole item (strings: their content; containers: every item inside). */
  end: number
  /** For maps: where each entry (key and value) starts, and the end of the last. */
  entries?: number[]
}

/**
 * Every head of the CBOR item(s) in `bytes`, in order, as far as they parse (leniently: any width,
 * indefinite lengths, any tag). Stops quietly at the first thing it cannot read.
 */
export function walkHeads (bytes: Uint8Array, maxHeads = 4096): HeadInfo[] {
  const out: HeadInfo[] = []
  let offset = 0
  const item = (depth: number): number => {
    if (offset >= bytes.length || out.length >= maxHeads || depth > 32) throw new Error('stop')
    const at = offset
    const initial = bytes[offset] as number
    const major = initial >> 5
    const info = initial & 0x1f
    let arg = info
    offset++
    if (info >= 24 && info <= 27) {
      const size = 1 << (info - 24)
      if (offset + size > bytes.length) throw new Error('stop')
      arg = 0
      for (let i = 0; i < size; i++) arg = arg * 256 + (bytes[offset + i] as number)
      offset += size
    } else if (info > 27 && info !== 31) throw new Error('stop')
    const h: HeadInfo = { at, major, info, arg, next: offset, end: offset }
    out.push(h)
    const indefinite = info === 31
    if (major === 2 || major === 3) {
      if (indefinite) {
        while (offset < bytes.length && bytes[offset] !== 0xff) item(depth + 1)
        offset++
      } else {
        if (offset + arg > bytes.length) throw new Error('stop')
        offset += arg
      }
    } else if (major === 4 || major === 5) {
      const per = major === 5 ? 2 : 1
      if (major === 5) h.entries = []
      if (indefinite) {
        while (offset < bytes.length && bytes[offset] !== 0xff) {
          h.entries?.push(offset)
          for (let k = 0; k < per; k++) item(depth + 1)
        }
        offset++
      } else {
        for (let i = 0; i < arg; i++) {
          h.entries?.push(offset)
          for (let k = 0; k < per; k++) item(depth + 1)
        }
      }
      h.entries?.push(offset)
    } else if (major === 6) {
      item(depth + 1)
    }
    h.end = offset
    return offset
  }
  try {
    while (offset < bytes.length) item(0)
  } catch {
    // as far as it parses
  }
  return out
}
