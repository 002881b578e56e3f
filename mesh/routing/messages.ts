import {
  COMMAND_LIMITS, DEFAULT_CBOR_LIMITS, MAX_CONFIG_BYTES, MAX_CREDENTIAL_BYTES, MAX_FLEET_FILE_BYTES, DEVICE_ID_BYTES, cborHead, concatBytes, decodeCbor, encodeCbor, meshError, readHead, type CborLimits
} from '../../shared/index.js'
import { CHAIN_ELEMENT_BYTES } from './chain.js'
import { MAX_DECLARATION_BYTES } from './declaration.js'
import { MAX_ACK_BYTES } from './ack.js'
import { UNREACHABLE } from './claim.js'


/**
 * Routing messages, carried one per link message. Each is a CBOR array whose first element is
 * the kind; DATA is encoded and parsed by hand (it is the hot path), the rest through cbor-x.
 *
 *   HELLO  [0, version, fleet, listenPort, [address…]]   first message on every link
 *   DATA   [1, hops, frame]                               a signed telemetry frame
 *   DIGEST [2, full, [[kid, low, high]…]]                 what I hold per origin (catch-up, repair)
 *   WANT   [3, [[kid, from, to]…]]                        send me these (catch-up, repair)
 *   INTEREST [4, [[kid, version, hops, proof, declaration, publicKey]…]]
 *                                                         subscriptions, as a distance vector (interest.ts): the
 *                                                         sender's distance, its hash-chain proof (chain.ts), and
 *                                                         the subscriber's signed declaration (declaration.ts) and
 *                                                         key, left out ([kid, version, hops, proof]) when already
 *                                                         sent on this link for this version
 *   KEY    [5, [publicKey…]]                              keys of origins I am about to send (self-certifying)
 *   KEYREQ [6, [kid…]]                                    I hold frames whose signer I cannot verify
 *   PEERS  [7, [[id, port, [address…]]…]]                 peer exchange, for bootstrap peers
 *   ACK    [8, [[hops, ack]…]]                            signed end-to-end acknowledgements on their way to
 *                                                         their origins (ack.ts: a COSE_Sign1 of the subscriber)
 *   CMD    [9, [[hops, signed]…]]                         signed commands on their way to their targets, and signed
 *                                                         results on their way back (shared/command.ts, commands.ts)
 *   REVOKE [10, [revocation…]]                            owner-signed revocations (shared/fleet.ts), gossiped: each
 *                                                         node passes a new one on once (handlers/revoke.ts)
 *   CONFIG [11, [configuration…]]                         owner-signed device configurations (shared/fleet-config.ts),
 *                                                         gossiped: the highest version per target (handlers/config.ts)
 *   CRED   [12, [credential…]]                           owner-signed enrollment credentials (shared/fleet.ts) of origins
 *                                                         and command issuers, sent before the first frame or command of
 *                                                         each on a link, or asked for by KEYREQ (handlers/credential.ts)
 *   FLEET  [13, [fleet file…]]                           owner-signed fleet files (shared/fleet-file.ts), oldest first:
 *                                                         the highest valid version wins (handlers/fleet.ts)
 *   ROUTEREQ [14, [[kid, version, hops]…]]               I lost my route to these subscribers and hold this version of
 *                                                         each: a newer one, please (RFC 8966 §3.8.1.2's seqno request;
 *                                                         handlers/route-request.ts); `hops` left to travel
 */

export const MSG = { HELLO: 0, DATA: 1, DIGEST: 2, WANT: 3, INTEREST: 4, KEY: 5, KEYREQ: 6, PEERS: 7, ACK: 8, CMD: 9, REVOKE: 10, CONFIG: 11, CRED: 12, FLEET: 13, ROUTEREQ: 14 } as const

/**
 * The control plane: owner-signed revocations, configurations and fleet files. They go in each link's control
 * lane (links/lanes.ts, `SendOptions.control`), ahead of queued data, so a revocation spreads in
 * seconds on a busy mesh (issue 13). Each neighbour's are read at their own rate (budget.ts), and a
 * node passes on only new ones, so nobody can fill the lane with them.
 */
export const CONTROL_KINDS: ReadonlySet<number> = new Set([MSG.REVOKE, MSG.CONFIG, MSG.FLEET])

export interface DigestEntry { kid: Uint8Array, low: number, high: number }
export interface WantEntry { kid: Uint8Array, from: number, to: number }
export interface AckEntry { hops: number, ack: Uint8Array }
export interface CommandEntry { hops: number, signed: Uint8Array }
export interface PeerEntry { id: string, port: number, addresses: string[] }
export interface RouteRequestEntry { kid: Uint8Array, version: number, hops: number }
export interface InterestEntry { kid: Uint8Array, version: number, hops: number, proof: Uint8Array, declaration?: Uint8Array, publicKey?: Uint8Array }

export type RoutingMessage =
  | { kind: typeof MSG.HELLO, version: number, fleet: string, port: number, addresses: string[] }
  | { kind: typeof MSG.DATA, hops: number, frame: Uint8Array }
  | { kind: typeof MSG.DIGEST, full: boolean, entries: DigestEntry[] }
  | { kind: typeof MSG.WANT, entries: WantEntry[] }
  | { kind: typeof MSG.INTEREST, entries: InterestEntry[] }
  | { kind: typeof MSG.KEY, keys: Uint8Array[] }
  | { kind: typeof MSG.KEYREQ, kids: Uint8Array[] }
  | { kind: typeof MSG.PEERS, peers: PeerEntry[] }
  | { kind: typeof MSG.ACK, entries: AckEntry[] }
  | { kind: typeof MSG.CMD, entries: CommandEntry[] }
  | { kind: typeof MSG.REVOKE, revocations: Uint8Array[] }
  | { kind: typeof MSG.CONFIG, configs: Uint8Array[] }
  | { kind: typeof MSG.CRED, credentials: Uint8Array[] }
  | { kind: typeof MSG.FLEET, files: Uint8Array[] }
  | { kind: typeof MSG.ROUTEREQ, entries: RouteRequestEntry[] }

/** Largest revocation carried (one with 16 owner signatures is under 2 KiB). */
export const MAX_REVOCATION_BYTES = 4096

/** Most hops a ROUTEREQ may still travel (a route is at most UNREACHABLE - 1 long, claim.ts). */
export const MAX_REQUEST_HOPS = UNREACHABLE

/** Most entries in one DIGEST/WANT/INTEREST/KEY/PEERS message; longer lists are split. */
export const MAX_ENTRIES = 200
/** Messages whose entries vary in size (INTEREST) are split to stay under this many bytes (the link limit is 64 KiB). */
export const MAX_MESSAGE_PAYLOAD = 32 * 1024

const LIMITS: CborLimits = { ...DEFAULT_CBOR_LIMITS, maxBytes: 64 * 1024, maxStringBytes: 16 * 1024, maxItems: MAX_ENTRIES + 4, maxDepth: 5 }

export function encodeData (hops: number, frame: Uint8Array): Uint8Array {
  return concatBytes(Uint8Array.of(0x83, MSG.DATA), cborHead(0, hops), cborHead(2, frame.length), frame)
}

export function encodeMessage (message: RoutingMessage): Uint8Array {
  switch (message.kind) {
    case MSG.DATA: return encodeData(message.hops, message.frame)
    case MSG.HELLO: return encodeCbor([MSG.HELLO, message.version, message.fleet, message.port, message.addresses])
    case MSG.DIGEST: return encodeCbor([MSG.DIGEST, message.full, message.entries.map((e) => [e.kid, e.low, e.high])])
    case MSG.WANT: return encodeCbor([MSG.WANT, message.entries.map((e) => [e.kid, e.from, e.to])])
    case MSG.INTEREST:
      return encodeCbor([MSG.INTEREST, message.entries.map((e) => e.declaration === undefined || e.publicKey === undefined
        ? [e.kid, e.version, e.hops, e.proof]
        : [e.kid, e.version, e.hops, e.proof, e.declaration, e.publicKey])])
    case MSG.KEY: return encodeCbor([MSG.KEY, message.keys])
    case MSG.KEYREQ: return encodeCbor([MSG.KEYREQ, message.kids])
    case MSG.PEERS: return encodeCbor([MSG.PEERS, message.peers.map((p) => [p.id, p.port, p.addresses])])
    case MSG.ACK: return encodeCbor([MSG.ACK, message.entries.map((e) => [e.hops, e.ack])])
    case MSG.CMD: return encodeCbor([MSG.CMD, message.entries.map((e) => [e.hops, e.signed])])
    case MSG.REVOKE: return encodeCbor([MSG.REVOKE, message.revocations])
    case MSG.CONFIG: return encodeCbor([MSG.CONFIG, message.configs])
    case MSG.CRED: return encodeCbor([MSG.CRED, message.credentials])
    case MSG.FLEET: return encodeCbor([MSG.FLEET, message.files])
    case MSG.ROUTEREQ: return encodeCbor([MSG.ROUTEREQ, message.entries.map((e) => [e.kid, e.version, e.hops])])
  }
}

const bad = (what: string): never => { throw meshError('ERR_BAD_CBOR', `malformed routing message: ${what}`) }
const isBytes = (v: unknown, length?: number): v is Uint8Array => v instanceof Uint8Array && (length === undefined || v.length === length)
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0
/** A device id on the wire: the 16 bytes of a COSE kid (shared/identity.ts DEVICE_ID_BYTES). */
const isKid = (v: unknown): v is Uint8Array => isBytes(v, DEVICE_ID_BYTES)
const list = (v: unknown): unknown[] => Array.isArray(v) ? v : bad('expected a list')

/**
 * Parses one routing message; throws MeshError for anything malformed. The DATA frame is a view into `bytes`.
 * Strict as every CBOR iotmesh reads (shared/cbor.ts): preferred heads, valid UTF-8, no maps with
 * duplicate or non-label keys; the hand-parsed DATA head goes through the same readHead.
 */
export function decodeMessage (bytes: Uint8Array): RoutingMessage {
  if (bytes[0] === 0x83 && bytes[1] === MSG.DATA) {
    const hops = readHead(bytes, 2)
    const frame = readHead(bytes, hops.next)
    if (hops.major !== 0 || frame.major !== 2 || frame.next + frame.arg !== bytes.length) bad('DATA')
    return { kind: MSG.DATA, hops: hops.arg, frame: bytes.subarray(frame.next) }
  }
  const value = decodeCbor(bytes, LIMITS)
  if (!Array.isArray(value) || !isCount(value[0])) return bad('not a [kind, …] array')
  const [kind, a, b, c, d] = value as unknown[]
  switch (kind) {
    case MSG.HELLO:
      if (!isCount(a) || typeof b !== 'string' || !isCount(c) || !Array.isArray(d) || !d.every((x) => typeof x === 'string')) return bad('HELLO')
      return { kind, version: a, fleet: b, port: c, addresses: d as string[] }
    case MSG.DIGEST:
      if (typeof a !== 'boolean') return bad('DIGEST')
      return { kind, full: a, entries: list(b).map((e) => { const [kid, low, high] = list(e); return isKid(kid) && isCount(low) && isCount(high) && low <= high ? { kid, low, high } : bad('DIGEST entry') }) }
    case MSG.WANT:
      return { kind, entries: list(a).map((e) => { const [kid, from, to] = list(e); return isKid(kid) && isCount(from) && isCount(to) && from <= to ? { kid, from, to } : bad('WANT entry') }) }
    case MSG.KEYREQ:
      return { kind, kids: list(a).map((k) => isKid(k) ? k : bad('kid')) }
    case MSG.INTEREST:
      return {
        kind,
        entries: list(a).map((e) => {
          const fields = list(e)
          const [kid, version, hops, proof, declaration, publicKey] = fields
          const ok = isBytes(kid, 16) && isCount(version) && isCount(hops) && isBytes(proof, CHAIN_ELEMENT_BYTES)
          if (ok && fields.length === 4) return { kid, version, hops, proof }
          const declared = fields.length === 6 && isBytes(declaration) && declaration.length <= MAX_DECLARATION_BYTES && isBytes(publicKey, 32)
          return ok && declared ? { kid, version, hops, proof, declaration, publicKey } : bad('INTEREST entry')
        })
      }
    case MSG.KEY:
      return { kind, keys: list(a).map((k) => isBytes(k, 32) ? k : bad('public key')) }
    case MSG.PEERS:
      return { kind, peers: list(a).map((e) => { const [id, port, addrs] = list(e); return typeof id === 'string' && isCount(port) && Array.isArray(addrs) && addrs.every((x) => typeof x === 'string') ? { id, port, addresses: addrs as string[] } : bad('PEERS entry') }) }
    case MSG.ACK:
      return {
        kind,
        entries: list(a).map((e) => {
          const [hops, ack] = list(e)
          return isCount(hops) && isBytes(ack) && ack.length <= MAX_ACK_BYTES ? { hops, ack } : bad('ACK entry')
        })
      }
    case MSG.CMD:
      return {
        kind,
        entries: list(a).map((e) => {
          const [hops, signed] = list(e)
          return isCount(hops) && isBytes(signed) && signed.length <= COMMAND_LIMITS.maxBytes ? { hops, signed } : bad('CMD entry')
        })
      }
    case MSG.REVOKE:
      return { kind, revocations: list(a).map((r) => isBytes(r) && r.length <= MAX_REVOCATION_BYTES ? r : bad('REVOKE entry')) }
    case MSG.CONFIG:
      return { kind, configs: list(a).map((c) => isBytes(c) && c.length <= MAX_CONFIG_BYTES ? c : bad('CONFIG entry')) }
    case MSG.CRED:
      return { kind, credentials: list(a).map((c) => isBytes(c) && c.length <= MAX_CREDENTIAL_BYTES ? c : bad('CRED entry')) }
    case MSG.FLEET:
      return { kind, files: list(a).map((f) => isBytes(f) && f.length <= MAX_FLEET_FILE_BYTES ? f : bad('FLEET entry')) }
    case MSG.ROUTEREQ:
      return {
        kind,
        entries: list(a).map((e) => {
          const [kid, version, hops] = list(e)
          return isKid(kid) && isCount(version) && isCount(hops) && hops <= MAX_REQUEST_HOPS ? { kid, version, hops } : bad('ROUTEREQ entry')
        })
      }
    default:
      return bad(`unknown kind ${String(kind)}`)
  }
}

/** Splits a list into chunks of at most MAX_ENTRIES and, when `size` is given, of at most MAX_MESSAGE_PAYLOAD bytes by that estimate. */
export function chunks<T> (items: T[], size?: (item: T) => number): T[][] {
  const out: T[][] = []
  let chunk: T[] = []
  let bytes = 0
  for (const item of items) {
    const n = size?.(item) ?? 0
    if (chunk.length >= MAX_ENTRIES || (chunk.length > 0 && bytes + n > MAX_MESSAGE_PAYLOAD)) {
      out.push(chunk)
      chunk = []
      bytes = 0
    }
    chunk.push(item)
    bytes += n
  }
  if (chunk.length > 0) out.push(chunk)
  return out
}
