/**
 * The attacker of the adversarial suite, as a child process on a namespace host (run from the
 * build: dist/test/adversarial/attacker-child.js '{"host": …, "fleet": …}'). It is a node with its
 * own valid key (open mode), so it links like anyone, and then sends whatever it likes over its
 * authenticated links: routing messages no honest node would send, floods of frames, frames
 * whose CBOR no honest encoder would write. It also opens raw TCP connections (half-open, HELLO
 * floods), runs Sybil identities (announced on mDNS or not) and queries mDNS. Driven over IPC
 * with the protocol of test/helpers/mesh-proc.ts; every command answers with what it did, and
 * `alink` events say when a link of its own opened or closed (and why).
 */
import { createHash, generateKeyPairSync, randomBytes, sign as cryptoSign } from 'node:crypto'
import { createRequire } from 'node:module'
import { connect, type Socket } from 'node:net'
import {
  MSG, MeshNode, SERVICE_DOMAIN, createMdnsDiscovery, createMdnsResponder, createTcpTransport, decodeMessage, encodeData, encodeMessage,
  type Link, type MdnsDiscovery, type MdnsResponder, type RoutingMessage, type Transport
} from '../../mesh/index.js'
import {
  ALG_ED25519, HEADER_ALG, HEADER_CONTENT_TYPE, HEADER_KID, concatBytes, cborHead, deviceIdFromBytes, deviceIdFromPublicKey, deviceIdToBytes, encodeCbor, encodeFrame, generateKeyPair,
  sigStructure, type DeviceId, type Ed25519, type KeyPair
} from '../../shared/index.js'
import { nodeEd25519 } from '../../shared/node.js'

interface AttackerConfig { host: string, fleet: string }
/** One entry of INTEREST (mesh/routing/messages.ts). */
type InterestEntry = Extract<RoutingMessage, { kind: typeof MSG.INTEREST }>['entries'][number]
const config = JSON.parse(process.argv[2] ?? '{}') as AttackerConfig
const send = (m: Record<string, unknown>): void => { process.send?.(m) }
process.on('disconnect', () => process.exit(0))

const keys = generateKeyPair()
const MAX_SEQ = Number.MAX_SAFE_INTEGER
/** Entries per routing message: the most an honest node sends (messages.ts MAX_ENTRIES). */
const PER_MESSAGE = 200

interface MdnsRecord { name: string, type: string, ttl: number }

/** An identity the attacker holds: its transport, and its links by the id at the other end. */
interface Identity { keys: KeyPair, transport: Transport, links: Map<DeviceId, Link>, discovery?: MdnsDiscovery }

const main: Identity = { keys, transport: createTcpTransport({}, { keys }), links: new Map() }
const sybils: Identity[] = []
let responder: MdnsResponder | undefined
/**
 * What arrived on the main identity's links: counts by kind, and the subscribers heard of in INTEREST
 * (the last claim of each with a declaration: version, distance, proof, the signed declaration and key).
 */
const heard = { kinds: {} as Record<string, number>, subscribers: new Map<DeviceId, InterestEntry>() }
/** Frames kept by `capture`, by origin. */
const captured = new Map<DeviceId, Uint8Array[]>()
/** An honest node of the attacker's (`capture`): it subscribes like anyone, and keeps what it gets. */
let listener: MeshNode | undefined
/** Fresh origins made ahead of the attack (`prepareOrigins`): a KEY message and the frames it names, per batch. */
const prepared: Array<{ key: Uint8Array, frames: Uint8Array[] }> = []
/** Invented subscribers made ahead of the attack (`prepareSubscribers`), sent first by an INTEREST flood. */
const preparedSubscribers: InterestEntry[] = []
let seq = Date.now() * 1000

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

function attach (identity: Identity, link: Link): void {
  const peer = link.remote.id
  identity.links.set(peer, link)
  send({ ev: 'alink', self: identity.keys.id, peer, up: true, t: Date.now() })
  link.on('close', (info) => {
    if (identity.links.get(peer) === link) identity.links.delete(peer)
    const error = info.error === undefined ? undefined : String((info.error as { code?: string }).code ?? info.error.message)
    send({ ev: 'alink', self: identity.keys.id, peer, up: false, t: Date.now(), reason: info.reason, ...(error === undefined ? {} : { error }) })
  })
  if (identity !== main) return
  link.on('message', (bytes) => {
    let message: RoutingMessage
    try { message = decodeMessage(bytes) } catch { return }
    heard.kinds[message.kind] = (heard.kinds[message.kind] ?? 0) + 1
    if (message.kind === MSG.INTEREST) {
      for (const e of message.entries) {
        const subscriber = deviceIdFromBytes(e.kid)
        if (subscriber !== keys.id && e.hops < 64 && e.declaration !== undefined) heard.subscribers.set(subscriber, e)
      }
    }
  })
}

function target (m: Record<string, unknown>): Link {
  const link = main.links.get(m.to as string)
  if (link === undefined || !link.open) throw new Error(`no open link to ${String(m.to)}`)
  return link
}

/** Sends as fast as the link takes: waits for `drain` when its queue is full. False once the link closed, or when `deadline` (wall ms) passed. */
async function push (link: Link, bytes: Uint8Array, deadline = Infinity): Promise<boolean> {
  while (link.open && !link.writable && Date.now() < deadline) await Promise.race([link.next('drain'), sleep(200)])
  if (!link.open || !link.writable) return false
  try { link.send(bytes) } catch { return link.open }
  return true
}

/** A frame signed by `signer` with the next sequence number (valid unless `ed` forges the signature). */
function frame (signer: KeyPair, v: number, ed?: Ed25519): { seq: number, bytes: Uint8Array } {
  const s = ++seq
  return { seq: s, bytes: encodeFrame({ keys: signer, seq: s, records: [{ n: 'x', v }], ...(ed === undefined ? {} : { ed25519: ed }) }) }
}

/** Signs like Ed25519 but writes random bytes: every frame a bad signature, at no cost to us. */
const forger: Ed25519 = { name: 'node', getPublicKey: (sk) => nodeEd25519.getPublicKey(sk), sign: () => randomBytes(64), verify: () => false }

// ---- hand-written CBOR (RFC 8949), for frames no honest encoder writes ----

const text = (s: string): Uint8Array => { const b = Buffer.from(s, 'utf8'); return concatBytes(cborHead(3, b.length), b) }
const uint = (n: number): Uint8Array => encodeCbor(n)
const map = (entries: Array<[Uint8Array, Uint8Array]>, head = cborHead(5, entries.length)): Uint8Array => concatBytes(head, ...entries.flat())
const array = (items: Uint8Array[]): Uint8Array => concatBytes(cborHead(4, items.length), ...items)
const bstr = (b: Uint8Array): Uint8Array => concatBytes(cborHead(2, b.length), b)
const nint = (n: number): Uint8Array => encodeCbor(n)
const float64 = (n: number): Uint8Array => { const b = Buffer.alloc(9); b[0] = 0xfb; b.writeDoubleBE(n, 1); return b }

/** A COSE_Sign1 over exactly these protected-header and payload bytes, validly signed by `signer` (RFC 9052 §4.4). */
function sign1 (signer: KeyPair | ((message: Uint8Array) => Uint8Array), protectedBytes: Uint8Array, payload: Uint8Array): Uint8Array {
  const message = sigStructure(protectedBytes, payload)
  const signature = typeof signer === 'function' ? signer(message) : nodeEd25519.sign(message, signer.secretKey)
  return concatBytes(Uint8Array.of(0xd2, 0x84), bstr(protectedBytes), Uint8Array.of(0xa0), bstr(payload), bstr(signature))
}

/**
 * A fresh origin and one frame of it, as an honest device would sign it, made with node:crypto's
 * key objects directly (a few times faster than going through raw secret keys): 66,000 of them
 * take seconds, not minutes.
 */
function freshOrigin (): { publicKey: Uint8Array, frame: Uint8Array } {
  const pair = generateKeyPairSync('ed25519')
  const publicKey = new Uint8Array(pair.publicKey.export({ format: 'der', type: 'spki' }).subarray(12))
  const kid = bstr(deviceIdToBytes(deviceIdFromPublicKey(publicKey)))
  const header = map([[uint(1), nint(ALG_ED25519)], [uint(4), kid]])
  const payload = array([map([[nint(-3), float64(Date.now() / 1000)], [text('seq'), uint(1)], [uint(0), text('x')], [uint(2), uint(1)]])])
  return { publicKey, frame: sign1((message) => cryptoSign(null, message, pair.privateKey), header, payload) }
}

/**
 * An invented subscriber of '#' as INTEREST carries it: a fresh key, its signed declaration
 * (mesh/routing/declaration.ts: COSE_Sign1 with content type 65000 over [version, filters,
 * anchor, N]) and the proof of distance 0 (SEAD: e_0 of a chain of N = 64, mesh/routing/chain.ts).
 * Valid in every part, so the node pays the signature check and keeps the subscriber.
 */
function inventedSubscriber (): InterestEntry {
  const pair = generateKeyPairSync('ed25519')
  const publicKey = new Uint8Array(pair.publicKey.export({ format: 'der', type: 'spki' }).subarray(12))
  const kid = deviceIdToBytes(deviceIdFromPublicKey(publicKey))
  const proof = new Uint8Array(randomBytes(16))
  let anchor = proof
  for (let i = 0; i < 64; i++) anchor = new Uint8Array(createHash('sha256').update(anchor).digest().subarray(0, 16))
  const header = map([[uint(HEADER_ALG), nint(ALG_ED25519)], [uint(HEADER_CONTENT_TYPE), uint(65_000)], [uint(HEADER_KID), bstr(kid)]])
  const payload = encodeCbor([1, ['#'], anchor, 64])
  const declaration = sign1((message) => cryptoSign(null, message, pair.privateKey), header, payload)
  return { kid, version: 1, hops: 0, proof, declaration, publicKey }
}

/** The frames of the strict-input row of the issue: each validly signed, each something RFC 9052 §3 / RFC 8949 / RFC 8428 refuse. */
function crafted (variant: string, signer: KeyPair, s: number): Uint8Array {
  const kid = bstr(deviceIdToBytes(signer.id))
  const header = map([[uint(1), nint(ALG_ED25519)], [uint(4), kid]])
  const bt = (): [Uint8Array, Uint8Array] => [nint(-3), float64(Date.now() / 1000)]
  const seqEntry = (n = s): [Uint8Array, Uint8Array] => [text('seq'), uint(n)]
  const record = (entries: Array<[Uint8Array, Uint8Array]>): Uint8Array => array([map(entries)])
  const plain = record([bt(), seqEntry(), [uint(0), text('x')], [uint(2), uint(1)]])
  switch (variant) {
    // RFC 8428 §4.5.1: a name of letters, digits and ":./_-" only; `watch` and resolvePack throw on "a b".
    case 'bad-name': return sign1(signer, header, record([bt(), seqEntry(), [uint(0), text('a b')], [uint(2), uint(1)]]))
    // RFC 9052 §3: duplicate labels in a header map: the message must not be processed.
    case 'dup-alg': return sign1(signer, map([[uint(1), nint(ALG_ED25519)], [uint(1), nint(-8)], [uint(4), kid]]), plain)
    case 'dup-kid': return sign1(signer, map([[uint(1), nint(ALG_ED25519)], [uint(4), bstr(randomBytes(16))], [uint(4), kid]]), plain)
    // RFC 8949 §5.6 / RFC 8428 §6: duplicate keys in a SenML record (a second seq, a second value).
    case 'dup-seq': return sign1(signer, header, record([bt(), seqEntry(s + 1_000_000), seqEntry(), [uint(0), text('x')], [uint(2), uint(1)]]))
    case 'dup-value': return sign1(signer, header, record([bt(), seqEntry(), [uint(0), text('x')], [uint(2), uint(1)], [uint(2), uint(2)]]))
    // RFC 8949 §3.1: text strings are UTF-8; 0xff never occurs in UTF-8.
    case 'bad-utf8': return sign1(signer, header, record([bt(), seqEntry(), [uint(0), text('x')], [uint(3), Uint8Array.of(0x63, 0x61, 0xff, 0xfe)]]))
    // RFC 8428 §6: labels are integers or text; 2.0 as a float is neither (cbor-x reads it as 2, "v").
    case 'float-label': return sign1(signer, header, record([bt(), seqEntry(), [uint(0), text('x')], [Uint8Array.of(0xf9, 0x40, 0x00), uint(1)]]))
    // RFC 8949 §4.2.1: preferred serialization: 1 written as 0x18 0x01, a map of 4 with a one-byte length.
    case 'non-preferred': {
      const entries: Array<[Uint8Array, Uint8Array]> = [bt(), seqEntry(), [uint(0), text('x')], [uint(2), Uint8Array.of(0x18, 0x01)]]
      return sign1(signer, header, array([map(entries, Uint8Array.of(0xb8, 0x04))]))
    }
    default: throw new Error(`unknown variant ${variant}`)
  }
}

// ---- raw TCP: half-open connections and HELLO floods (mesh/links/handshake.ts) ----

/** A HELLO as an initiator sends it (kind 1, version 1, seq, nonce, ephemeral key, public key), with random keys, length-prefixed. */
function hello (): Uint8Array {
  const body = concatBytes(Uint8Array.of(1, 1), randomBytes(8), randomBytes(32), randomBytes(32), randomBytes(32))
  body[2] = body[3] = 0 // a dial sequence below 2^53
  const prefix = Buffer.alloc(4)
  prefix.writeUInt32BE(body.length)
  return concatBytes(prefix, body)
}

const raw = new Set<Socket>()

/** `count` TCP connections to `host:port` that never send a byte, held for `durationMs` (and after, until `leave`). */
async function halfOpen ({ host, port, count, durationMs }: { host: string, port: number, count: number, durationMs: number }): Promise<unknown> {
  const end = Date.now() + durationMs
  let opened = 0
  let refused = 0
  let closedByPeer = 0
  let open = 0
  let maxOpen = 0
  const one = (): void => {
    const socket = connect({ host, port })
    let connected = false
    raw.add(socket)
    opened++
    socket.on('connect', () => { connected = true; open++; maxOpen = Math.max(maxOpen, open) })
    socket.on('error', () => { if (!connected) refused++ })
    socket.on('close', () => {
      raw.delete(socket)
      if (connected) { open--; closedByPeer++ }
    })
  }
  for (let i = 0; i < count; i++) { one(); if (i % 50 === 49) await sleep(5) }
  await sleep(Math.max(0, end - Date.now()))
  return { opened, refused, closedByPeer, maxOpen, open }
}

interface FloodInit { host: string, port: number, count: number, durationMs: number, concurrency: number }

/**
 * HELLOs from fresh random identities, `concurrency` connections at a time, each closed once the
 * REPLY came (or after 2 s): `count` of them, for `durationMs` at most. Counts the REPLYs, each
 * of which cost the responder a signature before the initiator proved anything.
 */
async function helloFlood ({ host, port, count, durationMs, concurrency }: FloodInit): Promise<unknown> {
  const end = Date.now() + durationMs
  let hellos = 0
  let started = 0
  let replies = 0
  let refusedConnections = 0
  const one = async (): Promise<void> => {
    while (Date.now() < end && started++ < count) {
      await new Promise<void>((resolve) => {
        const socket = connect({ host, port })
        raw.add(socket)
        let got = 0
        const done = (): void => { raw.delete(socket); socket.destroy(); resolve() }
        socket.setTimeout(2000, done)
        socket.on('connect', () => { hellos++; socket.write(hello()) })
        socket.on('data', (chunk) => { got += chunk.length; if (got >= 4 + 162) { replies++; done() } }) // REPLY: 162 bytes
        socket.on('error', () => { refusedConnections++; done() })
        socket.on('close', done)
      })
    }
  }
  await Promise.all(Array.from({ length: concurrency }, one))
  return { hellos, replies, refusedConnections }
}

// ---- commands ----

async function dial (identity: Identity, host: string, port: number, id?: string): Promise<Link> {
  const link = await identity.transport.dial({ host, port }, id === undefined ? {} : { expectedId: id })
  attach(identity, link)
  return link
}

/** Commands; `id` is the IPC call's own, so a peer's id is passed as `peer` (and a link's far end as `to`). */
const handlers: Record<string, (m: Record<string, unknown>) => Promise<unknown>> = {
  info: async () => ({ id: keys.id }),
  link: async ({ host, port, peer }) => ({ peer: (await dial(main, host as string, port as number, peer as string | undefined)).remote.id }),
  links: async () => [...main.links.keys()],
  /**
   * Links an honest node of ours (its own key, subscribed to '#') to `host:port` and keeps every
   * frame it receives, as any subscriber may: the frames a replay sends again later.
   */
  capture: async ({ host, port }) => {
    listener ??= new MeshNode({ host: config.host, fleet: config.fleet, mdns: false, announceLinks: 0 }, { keys: generateKeyPair() })
    if (!listener.running) {
      await listener.start()
      void (async () => {
        for await (const d of (listener as MeshNode).subscribe('#', { buffer: 10_000 })) {
          const list = captured.get(d.origin) ?? []
          if (list.length < 2000) list.push(d.frame.slice())
          captured.set(d.origin, list)
        }
      })()
    }
    listener.addPeer(`${host as string}:${port as number}`)
    return { id: listener.id }
  },
  heard: async () => ({ kinds: heard.kinds, subscribers: [...heard.subscribers.keys()] }),
  captured: async () => Object.fromEntries([...captured].map(([origin, frames]) => [origin, frames.length])),
  /** One WANT for a range of `origin`'s sequence numbers. */
  want: async (m) => {
    const kid = deviceIdToBytes(m.origin as string)
    return { sent: await push(target(m), encodeMessage({ kind: MSG.WANT, entries: [{ kid, from: m.from as number, to: m.upto as number }] })) }
  },
  /**
   * INTEREST for every subscriber heard of, the claims a relay would need to take its route
   * (mesh/routing/interest.ts): the highest version and distance 0, with the subscriber's own
   * declaration (of a lower version) or none; the version heard at distance 0 with a made-up
   * proof; a newer version withdrawn ("unreachable"); and the claim heard, repeated as our own.
   * Each kind in its own message, `rounds` times `everyMs` apart.
   */
  hijack: async (m) => {
    const link = target(m)
    const rounds = (m.rounds as number | undefined) ?? 15
    let sent = 0
    for (let r = 0; r < rounds; r++) {
      const variants: InterestEntry[][] = [[], [], [], [], []]
      for (const e of heard.subscribers.values()) {
        const proof = randomBytes(16)
        const signed = { declaration: e.declaration, publicKey: e.publicKey }
        variants[0]?.push({ kid: e.kid, version: MAX_SEQ, hops: 0, proof, ...signed })
        variants[1]?.push({ kid: e.kid, version: MAX_SEQ, hops: 0, proof })
        variants[2]?.push({ kid: e.kid, version: e.version, hops: 0, proof, ...signed })
        variants[3]?.push({ kid: e.kid, version: e.version + 1, hops: 64, proof })
        variants[4]?.push({ ...e })
      }
      for (const entries of variants) if (entries.length > 0 && await push(link, encodeMessage({ kind: MSG.INTEREST, entries }))) sent++
      if (r < rounds - 1) await sleep((m.everyMs as number | undefined) ?? 1000)
    }
    return { sent, subscribers: heard.subscribers.size }
  },
  /**
   * `count` invented peers (PEERS), subscribers (INTEREST) or keys (KEY), PER_MESSAGE a message, as
   * fast as the link takes them (for `durationMs` at most).
   */
  flood: async (m) => {
    const link = target(m)
    const count = m.count as number
    const started = Date.now()
    const end = started + ((m.durationMs as number | undefined) ?? 60_000)
    const addresses = [config.host] // our own host's closed ports: a node that dials one is refused at once
    let messages = 0
    let entries = 0
    while (entries < count && link.open && Date.now() < end) {
      const n = Math.min(PER_MESSAGE, count - entries)
      const message: RoutingMessage = m.kind === 'peers'
        ? { kind: MSG.PEERS, peers: Array.from({ length: n }, (_, i) => ({ id: deviceIdFromBytes(randomBytes(16)), port: 1024 + i, addresses })) }
        : m.kind === 'interest'
          ? { kind: MSG.INTEREST, entries: Array.from({ length: n }, () => preparedSubscribers.pop() ?? inventedSubscriber()) }
          : { kind: MSG.KEY, keys: Array.from({ length: n }, () => randomBytes(32)) }
      if (!await push(link, encodeMessage(message), end)) break
      messages++
      entries += n
      if (messages % 20 === 0) await new Promise((resolve) => setImmediate(resolve))
    }
    return { messages, entries, ms: Date.now() - started, open: link.open }
  },
  /**
   * Frames as fast as the link takes them for `durationMs`: `valid` (signed by us), `badsig`
   * (forged signatures), `unknown` (signed by keys we never tell; the node holds them and asks).
   */
  data: async (m) => {
    const link = target(m)
    const kind = m.kind as 'valid' | 'badsig' | 'unknown'
    const strangers = kind === 'unknown' ? Array.from({ length: 2048 }, () => generateKeyPair()) : []
    const end = Date.now() + (m.durationMs as number)
    let sent = 0
    while (Date.now() < end && link.open) {
      const signer = kind === 'unknown' ? strangers[sent % strangers.length] as KeyPair : keys
      const f = frame(signer, sent, kind === 'badsig' ? forger : undefined)
      if (!await push(link, encodeData(1, f.bytes), end)) break
      sent++
      if (sent % 64 === 0) await new Promise((resolve) => setImmediate(resolve))
    }
    return { sent, open: link.open }
  },
  /**
   * One crafted frame per variant (signed with our key), then a valid control frame; answers their
   * sequence numbers. With `via` (Sybil ids, one per variant), variant i goes over Sybil i's link, so
   * each neighbour sends the node one refused frame: the node's score bans a neighbour after a few.
   */
  frames: async (m) => {
    const link = target(m)
    const via = m.via as string[] | undefined
    const seqs: Record<string, number> = {}
    for (const [i, variant] of (m.variants as string[]).entries()) {
      const s = ++seq
      seqs[variant] = s
      const sybil = via === undefined ? undefined : sybils.find((y) => y.keys.id === via[i])?.links.get(m.to as string)
      if (via !== undefined && sybil?.open !== true) throw new Error(`Sybil ${String(via[i])} has no open link to ${String(m.to)}`)
      await push(sybil ?? link, encodeData(1, crafted(variant, keys, s)))
    }
    const control = frame(keys, 1)
    await push(link, encodeData(1, control.bytes))
    return { seqs, control: control.seq }
  },
  /**
   * Invents `count` subscribers ahead of the attack, which an INTEREST flood sends first (then it
   * invents more as it goes): as an attacker would, and so that the flood does not depend on how
   * much CPU a loaded machine leaves the attacker while it floods.
   */
  prepareSubscribers: async ({ count }) => {
    for (let i = 0; i < (count as number); i++) {
      preparedSubscribers.push(inventedSubscriber())
      if (i % 200 === 199) await new Promise((resolve) => setImmediate(resolve))
    }
    return { prepared: preparedSubscribers.length }
  },
  /** Prepares `count` fresh origins (a key each, and one frame each signed with it) for `origins`. */
  prepareOrigins: async ({ count }) => {
    prepared.length = 0
    for (let i = 0; i < (count as number); i += PER_MESSAGE) {
      const batch = Array.from({ length: Math.min(PER_MESSAGE, (count as number) - i) }, freshOrigin)
      prepared.push({ key: encodeMessage({ kind: MSG.KEY, keys: batch.map((o) => o.publicKey) }), frames: batch.map((o) => encodeData(1, o.frame)) })
      await new Promise((resolve) => setImmediate(resolve))
    }
    return { batches: prepared.length }
  },
  /** The prepared origins, as fast as the link takes them: each batch's KEY, then a frame from each (for `durationMs` at most). */
  origins: async (m) => {
    const link = target(m)
    const started = Date.now()
    const end = started + ((m.durationMs as number | undefined) ?? 60_000)
    let sent = 0
    for (const batch of prepared) {
      if (!await push(link, batch.key, end)) break
      for (const f of batch.frames) {
        if (!await push(link, f, end)) break
        sent++
      }
      await new Promise((resolve) => setImmediate(resolve))
    }
    return { sent, ms: Date.now() - started, open: link.open }
  },
  /** Sends again the first `count` frames of `origin` captured earlier, to `to` (at `host:port`). */
  replay: async (m) => {
    // A link lost during the flood is dialed again at `host:port` (a node that keeps us out refuses it).
    let link = main.links.get(m.to as string)
    let relinked: string | undefined
    if (link?.open !== true) {
      try {
        link = await dial(main, m.host as string, m.port as number, m.to as string)
        relinked = 'yes'
      } catch (err) {
        return { sent: 0, relinked: `refused: ${String((err as { code?: string }).code ?? (err as Error).message)}` }
      }
    }
    const frames = (captured.get(m.origin as string) ?? []).slice(0, (m.count as number | undefined) ?? 10)
    const deadline = Date.now() + 10_000 // a node that stopped reading has had its chance
    let sent = 0
    for (const f of frames) if (await push(link, encodeData(1, f), deadline)) sent++
    return { sent, frames: frames.length, ...(relinked === undefined ? {} : { relinked }) }
  },
  /**
   * `count` Sybil identities, each with its own key and listening transport, linked to `host:port`
   * and kept idle; with `announce`, each is also announced on mDNS (so the target may pick them).
   */
  sybils: async ({ host, port, peer, count, announce }) => {
    if (announce === true) { responder ??= createMdnsResponder({}); await responder.start() }
    let linked = 0
    const ids: string[] = []
    for (let i = 0; i < (count as number); i++) {
      const k = generateKeyPair()
      const identity: Identity = { keys: k, transport: createTcpTransport({}, { keys: k }), links: new Map() }
      sybils.push(identity)
      ids.push(k.id)
      const address = await identity.transport.listen({ host: config.host, port: 0 })
      identity.transport.on('link', (link) => { attach(identity, link) })
      if (announce === true && responder !== undefined) {
        const name = `sybil-${k.id.slice(0, 8)}`
        identity.discovery = createMdnsDiscovery({ identity: k, port: address.port, name, fleet: config.fleet, browse: false }, { responder })
        await identity.discovery.start()
      }
      try { await dial(identity, host as string, port as number, peer as string); linked++ } catch { /* refused: counted by `linked` */ }
    }
    await sleep(500)
    return { ids, linked, open: sybils.reduce((n, s) => n + [...s.links.values()].filter((l) => l.open).length, 0) }
  },
  sybilLinks: async () => sybils.reduce((n, s) => n + [...s.links.values()].filter((l) => l.open).length, 0),
  halfOpen: async (m) => await halfOpen(m as never),
  helloFlood: async (m) => await helloFlood(m as unknown as FloodInit),
  /**
   * Tries to link again with the main key, `attempts` times `everyMs` apart: how each went
   * (`refused`: the dial failed; `dropped`: linked, then closed within `holdMs`; `kept`).
   */
  redial: async ({ host, port, peer, attempts, everyMs, holdMs }) => {
    const results: string[] = []
    for (let i = 0; i < (attempts as number); i++) {
      try {
        const link = await dial(main, host as string, port as number, peer as string)
        await Promise.race([link.next('close'), sleep((holdMs as number | undefined) ?? 1000)])
        results.push(link.open ? 'kept' : 'dropped')
        if (link.open) break
      } catch (err) {
        results.push(`refused:${String((err as { code?: string }).code ?? (err as Error).message)}`)
      }
      await sleep(everyMs as number)
    }
    return results
  },
  /** What an mDNS browser hears for `durationMs` after asking for iotmesh services (name, type, TTL of every record). */
  mdnsQuery: async ({ durationMs }) => {
    const make = createRequire(import.meta.url)('multicast-dns') as (o?: object) => {
      on: (e: string, l: (p: { answers?: MdnsRecord[], additionals?: MdnsRecord[] }) => void) => void
      query: (q: object) => void
      destroy: (cb: () => void) => void
    }
    const mdns = make()
    const records: Array<{ name: string, type: string, ttl: number }> = []
    mdns.on('response', (p) => { for (const r of [...(p.answers ?? []), ...(p.additionals ?? [])]) records.push({ name: r.name, type: r.type, ttl: r.ttl }) })
    mdns.query({ questions: [{ name: SERVICE_DOMAIN, type: 'PTR' }] })
    await sleep(durationMs as number)
    await new Promise<void>((resolve) => { mdns.destroy(resolve) })
    return records
  },
  /** Closes every link and socket of ours (the attacker leaves). */
  leave: async () => {
    for (const link of main.links.values()) link.destroy()
    for (const s of sybils) for (const link of s.links.values()) link.destroy()
    await listener?.stop()
    for (const socket of raw) socket.destroy()
    return {}
  }
}

process.on('message', (m: Record<string, unknown>) => {
  const handler = handlers[m.cmd as string]
  if (handler === undefined) { send({ id: m.id, ok: false, err: `unknown command ${String(m.cmd)}` }); return }
  handler(m).then((res) => { send({ id: m.id, ok: true, res }) }, (err: Error) => { send({ id: m.id, ok: false, err: String(err.stack ?? err) }) })
})
await main.transport.listen({ host: config.host, port: 0 })
main.transport.on('link', (link) => { attach(main, link) })
send({ ev: 'ready', id: keys.id })
