import fc from 'fast-check'
import { encodeData } from '../../mesh/routing/messages.js'
import {
  ALG_ED25519, HEADER_ALG, HEADER_KID, decodeSign1, defaultEd25519, deviceIdToBytes, encodeCbor, mulberry32, sigStructure,
  type KeyPair
} from '../../shared/index.js'
import { cat, head, walkHeads } from './cbor-bytes.js'
import type { Corpus } from './corpus.js'

/**
 * The inputs: random bytes, mutations of valid frames and routing messages (bit flips, byte
 * edits, truncation, extension, splices, head rewrites, repeated map entries), validly re-signed
 * mutations (so they get past the signature to the SenML checks and the handlers), and structured
 * CBOR from fast-check arbitraries, at the value level (through the encoder) and at the byte level
 * (heads of any width, indefinite lengths, raw text bytes, repeated keys).
 *
 * Every input has a `kind` (what it looks like) that decides the targets it is fed to: a frame to
 * the frame decoders, the verifier and, wrapped in DATA, the routing handlers; a message to the
 * message decoder and the handlers; raw bytes to all of them.
 */

export type InputKind = 'frame' | 'message' | 'raw'
export interface Input { kind: InputKind, source: string, bytes: Uint8Array }

type Rng = () => number

const INTERESTING_BYTES = [0x00, 0x01, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1f, 0x20, 0x3f, 0x40, 0x5f, 0x60, 0x7f, 0x80, 0x81, 0x9f, 0xa0, 0xbf, 0xc0, 0xd2, 0xd8, 0xed, 0xf4, 0xf5, 0xf6, 0xf7, 0xf9, 0xfa, 0xfb, 0xff]
const INTERESTING_ARGS: Array<number | bigint> = [0, 1, 2, 15, 16, 17, 23, 24, 31, 127, 128, 200, 201, 255, 256, 1000, 1024, 4096, 8191, 8192, 65535, 65536, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 2n ** 64n - 1n]

const pick = <T>(rng: Rng, items: readonly T[]): T => items[Math.floor(rng() * items.length)] as T
const int = (rng: Rng, max: number): number => Math.floor(rng() * max)

function randomBytes (rng: Rng, length: number): Uint8Array {
  const out = new Uint8Array(length)
  for (let i = 0; i < length; i++) out[i] = rng() < 0.3 ? pick(rng, INTERESTING_BYTES) : int(rng, 256)
  return out
}

/** Lengths mostly small, sometimes near the limits (8 KiB frames, 64 KiB messages). */
function randomLength (rng: Rng): number {
  const r = rng()
  if (r < 0.6) return int(rng, 48)
  if (r < 0.9) return int(rng, 400)
  if (r < 0.98) return int(rng, 9000)
  return int(rng, 66_000)
}

/** One mutation of `bytes` (which it does not modify); `other` is a second seed for splices. */
function mutateOnce (rng: Rng, bytes: Uint8Array, other: Uint8Array): Uint8Array {
  const n = bytes.length
  const at = int(rng, n + 1)
  switch (int(rng, 11)) {
    case 0: { // flip one bit
      if (n === 0) return bytes
      const out = bytes.slice()
      const i = int(rng, n)
      out[i] = (out[i] as number) ^ (1 << int(rng, 8))
      return out
    }
    case 1: { // set a byte to an interesting or random value
      if (n === 0) return bytes
      const out = bytes.slice()
      out[int(rng, n)] = rng() < 0.6 ? pick(rng, INTERESTING_BYTES) : int(rng, 256)
      return out
    }
    case 2: return bytes.subarray(0, at) // truncate
    case 3: return cat(bytes, randomBytes(rng, 1 + int(rng, 16))) // extend
    case 4: return cat(bytes.subarray(0, at), randomBytes(rng, 1 + int(rng, 8)), bytes.subarray(at)) // insert
    case 5: return cat(bytes.subarray(0, at), bytes.subarray(Math.min(n, at + 1 + int(rng, 16)))) // delete a range
    case 6: { // duplicate a range in place
      const len = 1 + int(rng, 32)
      return cat(bytes.subarray(0, at), bytes.subarray(at, at + len), bytes.subarray(at))
    }
    case 7: return cat(bytes.subarray(0, at), other.subarray(int(rng, other.length + 1))) // splice with another seed
    case 8: case 9: return rewriteHead(rng, bytes)
    default: return repeatEntry(rng, bytes)
  }
}

/** Rewrites one head: another argument (preferred width or not), another major type, or an indefinite length. */
function rewriteHead (rng: Rng, bytes: Uint8Array): Uint8Array {
  const heads = walkHeads(bytes)
  if (heads.length === 0) return bytes
  const h = pick(rng, heads)
  const r = rng()
  let replacement: Uint8Array
  if (r < 0.35) {
    replacement = head(h.major, pick(rng, INTERESTING_ARGS))
  } else if (r < 0.65) { // the same argument in a longer head than needed
    const widths = ([1, 2, 4, 8] as const).filter((w) => BigInt(h.arg) < 2n ** BigInt(8 * w))
    replacement = head(h.major, h.arg, pick(rng, widths))
  } else if (r < 0.85) {
    replacement = head(int(rng, 8), Math.min(h.arg, 23))
  } else {
    replacement = Uint8Array.of((h.major << 5) | 31) // indefinite
  }
  return cat(bytes.subarray(0, h.at), replacement, bytes.subarray(h.next))
}

/** Copies one entry of a map to its end and counts it: a repeated key (RFC 9052 §3). */
function repeatEntry (rng: Rng, bytes: Uint8Array): Uint8Array {
  const maps = walkHeads(bytes).filter((h) => h.major === 5 && h.info < 28 && (h.entries?.length ?? 0) >= 2)
  if (maps.length === 0) return rewriteHead(rng, bytes)
  const m = pick(rng, maps)
  const entries = m.entries as number[]
  const i = int(rng, entries.length - 1)
  const entry = bytes.subarray(entries[i] as number, entries[i + 1] as number)
  const last = entries[entries.length - 1] as number
  return cat(bytes.subarray(0, m.at), head(5, m.arg + 1), bytes.subarray(m.next, last), entry, bytes.subarray(last))
}

export function mutate (rng: Rng, bytes: Uint8Array, other: Uint8Array): Uint8Array {
  let out = bytes
  const rounds = 1 + (rng() < 0.5 ? 0 : int(rng, 4))
  for (let i = 0; i < rounds; i++) out = mutateOnce(rng, out, other)
  return out
}

/** A COSE_Sign1 over the exact `protectedBytes` and `payload`, validly signed (RFC 9052 §4.4). */
export function signRaw (signer: KeyPair, protectedBytes: Uint8Array, payload: Uint8Array, unprotected: Uint8Array = Uint8Array.of(0xa0)): Uint8Array {
  const signature = defaultEd25519.sign(sigStructure(protectedBytes, payload), signer.secretKey)
  return cat(Uint8Array.of(0xd2, 0x84), head(2, protectedBytes.length), protectedBytes, unprotected, head(2, payload.length), payload, head(2, signature.length), signature)
}

const protectedFor = (signer: KeyPair): Uint8Array => encodeCbor(new Map<number, unknown>([[HEADER_ALG, ALG_ED25519], [HEADER_KID, deviceIdToBytes(signer.id)]]))

// ---- structured CBOR (fast-check) ----

const SENML_LABELS: Array<number | string> = [-6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 'seq', 'x', 'x_', 'tp']
const nameChar = fc.constantFrom(...'aZ09:./_-'.split(''), ' ', 'é', '\u0000', '\uD800', '#', '+')
const text = fc.oneof(fc.array(nameChar, { maxLength: 8 }).map((c) => c.join('')), fc.string({ maxLength: 12 }), fc.string({ unit: 'grapheme', maxLength: 6 }))
const number = fc.oneof(
  fc.integer(), fc.maxSafeInteger(), fc.double(),
  fc.constantFrom(0, -0, 1, -1, 23, 24, 255, 256, 2 ** 28, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 1e13, 8.64e12, 1.7e308, -1.7e308, Number.NaN, Infinity, -Infinity, 1_767_225_600)
)
const scalar = fc.oneof(number, text, fc.boolean(), fc.constant(null), fc.constant(undefined), fc.uint8Array({ maxLength: 20 }))

/** Any CBOR value cbor-x can write: nested arrays and maps with keys of every type. */
const value = fc.letrec((tie) => ({
  v: fc.oneof({ depthSize: 'small', withCrossShrink: true },
    scalar,
    fc.array(tie('v'), { maxLength: 5 }),
    fc.array(fc.tuple(fc.oneof(scalar, fc.constantFrom<number | string>(...SENML_LABELS)), tie('v')), { maxLength: 5 }).map((e) => new Map(e)))
})).v

const senmlRecord = fc.array(fc.tuple(fc.constantFrom(...SENML_LABELS), fc.oneof(scalar, value)), { maxLength: 7 }).map((e) => new Map<unknown, unknown>(e))
const senmlFirst = fc.tuple(fc.oneof(number, fc.constant(1_767_225_600)), fc.oneof(fc.maxSafeNat(), number), senmlRecord)
  .map(([bt, seq, rest]) => new Map<unknown, unknown>([[-3, bt], ['seq', seq], ...rest]))
const senmlPack = fc.tuple(senmlFirst, fc.array(senmlRecord, { maxLength: 4 })).map(([first, rest]) => [first, ...rest])
const headerMap = fc.array(fc.tuple(fc.oneof(fc.constantFrom<unknown>(1, 3, 4, 'tp', 1.0, -1), scalar), fc.oneof(scalar, value)), { maxLength: 5 }).map((e) => new Map(e))
const kid = fc.oneof(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.uint8Array({ maxLength: 20 }))
const count = fc.oneof(fc.nat(10), fc.maxSafeNat(), fc.constantFrom(0, 1, 2 ** 32, 2 ** 53 - 1), number)
const messageValue = fc.oneof(
  fc.tuple(fc.constant(0), count, text, count, fc.array(text, { maxLength: 4 })),
  fc.tuple(fc.constant(2), fc.boolean(), fc.array(fc.tuple(kid, count, count), { maxLength: 4 })),
  fc.tuple(fc.constant(3), fc.array(fc.tuple(kid, count, count), { maxLength: 4 })),
  fc.tuple(fc.constant(4), fc.array(fc.tuple(kid, count, count, fc.oneof(fc.array(text, { maxLength: 3 }), fc.uint8Array({ maxLength: 40 })), fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ maxLength: 33 })), { maxLength: 4 })),
  fc.tuple(fc.constant(5), fc.array(fc.uint8Array({ minLength: 31, maxLength: 33 }), { maxLength: 4 })),
  fc.tuple(fc.constant(6), fc.array(kid, { maxLength: 4 })),
  fc.tuple(fc.constant(7), fc.array(fc.tuple(text, count, fc.array(text, { maxLength: 3 })), { maxLength: 4 })),
  fc.tuple(fc.nat(12), value, value),
  value
)

/** CBOR written token by token, in any head width, with indefinite lengths, raw text bytes and repeated keys. */
const rawItem: fc.Arbitrary<Uint8Array> = fc.letrec<{ item: Uint8Array }>((tie) => ({
  item: fc.oneof({ depthSize: 'small' },
    fc.tuple(fc.constantFrom(0, 1, 7), fc.constantFrom(...INTERESTING_ARGS), fc.constantFrom<0 | 1 | 2 | 4 | 8 | undefined>(undefined, undefined, 1, 2, 4, 8))
      .map(([major, arg, width]) => major === 7 && width === undefined ? Uint8Array.of(0xe0 | (Number(arg) & 0x1f)) : headOrShort(major, arg, width)),
    fc.tuple(fc.constantFrom(2, 3), fc.uint8Array({ maxLength: 12 }), fc.constantFrom<0 | 1 | 2 | undefined>(undefined, undefined, 1, 2))
      .map(([major, content, width]) => cat(headOrShort(major, content.length, width), content)),
    fc.array(tie('item'), { maxLength: 4 }).map((items) => cat(head(4, items.length), ...items)),
    fc.array(tie('item'), { maxLength: 4 }).map((items) => cat(Uint8Array.of(0x9f), ...items, Uint8Array.of(0xff))),
    fc.array(fc.tuple(tie('item'), tie('item')), { maxLength: 3 }).map((entries) => cat(head(5, entries.length), ...entries.flat())),
    fc.tuple(tie('item'), tie('item')).map(([k, v]) => cat(head(5, 2), k, v, k, v)),
    fc.tuple(fc.constantFrom(0, 1, 2, 18, 24, 55799), tie('item')).map(([tag, item]) => cat(head(6, tag), item))
  )
})).item

function headOrShort (major: number, arg: number | bigint, width: 0 | 1 | 2 | 4 | 8 | undefined): Uint8Array {
  if (width === undefined || BigInt(arg) >= 2n ** BigInt(8 * Math.max(width, 1))) return head(major, arg)
  return head(major, arg, width)
}

/** Encodes a structured value, or undefined when cbor-x cannot (then the generator draws again). */
function encodeOrUndefined (v: unknown): Uint8Array | undefined {
  try {
    return encodeCbor(v)
  } catch {
    return undefined
  }
}

/** The source kinds and their weights (out of 100). */
export const SOURCES = {
  'random-bytes': 10,
  'mutated-frame': 18,
  'resigned-payload': 14,
  'resigned-header': 4,
  'mutated-message': 18,
  'structured-senml': 10,
  'structured-header': 3,
  'structured-message': 10,
  'raw-cbor': 8,
  'raw-cbor-signed': 5
} as const
export type Source = keyof typeof SOURCES

/**
 * An endless, seeded stream of inputs. Value-level structured inputs are drawn from fast-check in
 * batches (one seed per batch, derived from the stream's), so a run with the same seed replays.
 */
export class Inputs {
  readonly #rng: Rng
  readonly #corpus: Corpus
  readonly #seed: number
  readonly #buffers = new Map<string, { items: unknown[], batch: number }>()
  readonly #table: Source[] = []

  constructor (corpus: Corpus, seed: number) {
    this.#rng = mulberry32(seed)
    this.#corpus = corpus
    this.#seed = seed
    for (const [source, weight] of Object.entries(SOURCES) as Array<[Source, number]>) for (let i = 0; i < weight; i++) this.#table.push(source)
  }

  next (): Input {
    const rng = this.#rng
    const source = pick(rng, this.#table)
    const c = this.#corpus
    const seedFrame = (): Corpus['frames'][number] => pick(rng, c.frames)
    const seedAny = (): Uint8Array => rng() < 0.5 ? seedFrame().bytes : pick(rng, c.messages)
    switch (source) {
      case 'random-bytes': {
        const prefix = pick(rng, [new Uint8Array(0), new Uint8Array(0), Uint8Array.of(0xd2, 0x84), Uint8Array.of(0x83, 0x01), Uint8Array.of(0x82)])
        return { kind: 'raw', source, bytes: cat(prefix, randomBytes(rng, randomLength(rng))) }
      }
      case 'mutated-frame':
        return { kind: 'frame', source, bytes: mutate(rng, seedFrame().bytes, seedAny()) }
      case 'resigned-payload': {
        const { bytes, signer } = seedFrame()
        const sign1 = decodeSign1(bytes)
        return { kind: 'frame', source, bytes: signRaw(signer, sign1.protectedBytes, mutate(rng, sign1.payload, decodeSign1(seedFrame().bytes).payload)) }
      }
      case 'resigned-header': {
        const { bytes, signer } = seedFrame()
        const sign1 = decodeSign1(bytes)
        return { kind: 'frame', source, bytes: signRaw(signer, mutate(rng, sign1.protectedBytes, protectedFor(pick(rng, c.signers))), sign1.payload) }
      }
      case 'mutated-message':
        return { kind: 'message', source, bytes: mutate(rng, pick(rng, c.messages), seedAny()) }
      case 'structured-senml': {
        const signer = pick(rng, c.signers)
        const payload = this.#draw('senml', senmlPack)
        return { kind: 'frame', source, bytes: signRaw(signer, protectedFor(signer), payload) }
      }
      case 'structured-header': {
        const signer = pick(rng, c.signers)
        const header = this.#draw('header', headerMap)
        return { kind: 'frame', source, bytes: signRaw(signer, header, decodeSign1(seedFrame().bytes).payload) }
      }
      case 'structured-message':
        return { kind: 'message', source, bytes: this.#draw('message', messageValue) }
      case 'raw-cbor': {
        const item = this.#draw('raw', rawItem, false)
        return { kind: 'raw', source, bytes: rng() < 0.5 ? item : cat(Uint8Array.of(0x82, int(rng, 9)), item) }
      }
      case 'raw-cbor-signed': {
        const signer = pick(rng, c.signers)
        const item = this.#draw('raw', rawItem, false)
        return rng() < 0.7
          ? { kind: 'frame', source, bytes: signRaw(signer, protectedFor(signer), cat(Uint8Array.of(0x81), item)) }
          : { kind: 'frame', source, bytes: signRaw(signer, protectedFor(signer), decodeSign1(seedFrame().bytes).payload, item) }
      }
    }
  }

  /** A frame-ish input as the handlers get it: in a DATA message, a small hop count. */
  static asData (bytes: Uint8Array, hops: number): Uint8Array {
    return encodeData(hops, bytes)
  }

  /** The next value from a fast-check arbitrary, encoded (or, for byte-level arbitraries, as drawn). */
  #draw (name: string, arb: fc.Arbitrary<unknown>, encode = true): Uint8Array {
    for (;;) {
      let buffer = this.#buffers.get(name)
      if (buffer === undefined || buffer.items.length === 0) {
        const batch = (buffer?.batch ?? -1) + 1
        buffer = { batch, items: fc.sample(arb, { seed: (this.#seed * 7919 + batch * 104_729 + name.length) | 0, numRuns: 500 }).reverse() }
        this.#buffers.set(name, buffer)
      }
      const v = buffer.items.pop()
      const bytes = encode ? encodeOrUndefined(v) : v as Uint8Array
      if (bytes !== undefined) return bytes
    }
  }
}
