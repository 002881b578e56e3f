import { MSG, encodeMessage } from '../../mesh/routing/messages.js'
import { Router } from '../../mesh/routing/router.js'
import { createMemoryNetwork } from '../../mesh/testing.js'
import type { Link } from '../../mesh/index.js'
import { signAck } from '../../mesh/routing/ack.js'
import {
  decodeSign1, deviceIdToBytes, encodeCommand, encodeFrame, enroll, keyPairFromSecret, parseFleetPolicy, publicKeyText, readerKeyFromSecret, readerPublic, revoke, seededRandom,
  signFleetConfig, signFleetFile, type FrameEncryption, type KeyPair, type SenmlRecord
} from '../../shared/index.js'

/**
 * The seeds the fuzzer mutates: valid frames of every shape iotmesh signs, and routing messages of
 * every kind as real nodes exchange them (captured from a small in-memory mesh, so they follow the
 * current wire format whatever it is), plus hand-made ones of the kinds whose shape is fixed.
 */

export interface Corpus {
  /** Signers whose keys the targets know (so mutated, re-signed frames reach verification and SenML). */
  signers: KeyPair[]
  /** Valid signed frames, and who signed each. */
  frames: Array<{ bytes: Uint8Array, signer: KeyPair }>
  /** Routing messages, each as sent on a link. */
  messages: Uint8Array[]
  /** How many messages of each kind were captured or made. */
  kinds: Record<string, number>
}

export const FUZZ_FLEET = 'fuzz'
const T = 1_767_225_600

export function corpusSigners (): KeyPair[] {
  return [1, 2, 3].map((seed) => keyPairFromSecret(Uint8Array.from({ length: 32 }, (_, i) => (seed * 31 + i) & 0xff)))
}

/** The reader the fuzzer's encrypted frames are encrypted to (with a second one), and that decodeFrame tries to decrypt with. */
export const FUZZ_READER = readerKeyFromSecret(Uint8Array.from({ length: 32 }, (_, i) => (7 * i + 3) & 0xff))
const OTHER_READER = readerKeyFromSecret(Uint8Array.from({ length: 32 }, (_, i) => (11 * i + 5) & 0xff))

function frames (signers: KeyPair[]): Corpus['frames'] {
  // Encrypted frames (COSE_Encrypt inside the signed frame: shared/cose-encrypt.ts), with seeded keys and IVs so a run replays.
  const encrypt = (seed: number, readers = [FUZZ_READER, OTHER_READER]): FrameEncryption => ({ readers: readers.map((r) => readerPublic(r.publicKey)), random: seededRandom(seed) })
  const shapes: Array<{ records: SenmlRecord[], topic?: string, time?: number, seq?: number, encrypt?: FrameEncryption }> = [
    { records: [{ n: 'temp', u: 'Cel', v: 21.5 }] },
    { records: [{ n: 'temp', u: 'Cel', v: 21.37 }, { n: 'hum', u: '%RH', v: 48.2 }, { n: 'press', u: 'Pa', v: 101325.4 }, { n: 'bat', u: '%EL', v: 87 }] },
    { records: [{ bn: 'env:', bu: 'Cel', n: 'temp', v: -3.5 }, { n: 'hum', u: '%RH', v: 40, t: -10 }, { n: 'door', vb: true }, { n: 'note', vs: 'ok' }, { n: 'blob', vd: Uint8Array.of(0, 1, 2, 255) }, { n: 'energy', u: 'J', s: 1234 }] },
    { records: [{ n: 'door', vb: false }], topic: 'events/door' },
    { records: [{ bn: 'urn:dev:mac:0024befffe804ff1:', bv: 10, n: 'v', v: 0.5, ut: 60 }], seq: 2 ** 40 + 7 },
    { records: [{ n: 'x', v: 1e300 }, { n: 'y', v: -0.000001 }, { n: 'z', vs: 'Ünïcödé 温度 🌡' }], time: 1.5 },
    { records: Array.from({ length: 30 }, (_, i) => ({ n: `s${i}`, v: i })) },
    { records: [{ n: 'temp', u: 'Cel', v: 20.5 }, { n: 'hum', u: '%RH', v: 41 }], encrypt: encrypt(1) },
    { records: [{ n: 'door', vb: true }], topic: 'events/door', encrypt: encrypt(2, [OTHER_READER]) }
  ]
  const out: Corpus['frames'] = []
  shapes.forEach((shape, i) => {
    const signer = signers[i % signers.length] as KeyPair
    out.push({ signer, bytes: encodeFrame({ keys: signer, seq: shape.seq ?? i + 1, time: shape.time ?? T + i, records: shape.records, topic: shape.topic, encrypt: shape.encrypt }) })
  })
  return out
}

/** Messages whose shape this module knows (the rest come from the capture). */
function handMade (signers: KeyPair[], frame: Uint8Array): Uint8Array[] {
  const kid = deviceIdToBytes((signers[0] as KeyPair).id)
  const kid2 = deviceIdToBytes((signers[1] as KeyPair).id)
  return [
    encodeMessage({ kind: MSG.HELLO, version: 1, fleet: FUZZ_FLEET, port: 4000, addresses: ['10.0.0.1', 'fe80::1'] }),
    encodeMessage({ kind: MSG.HELLO, version: 1, fleet: 'other-fleet', port: 0, addresses: [] }),
    encodeMessage({ kind: MSG.DATA, hops: 1, frame }),
    encodeMessage({ kind: MSG.DIGEST, full: true, entries: [{ kid, low: 1, high: 5 }, { kid: kid2, low: 100, high: 2 ** 40 }] }),
    encodeMessage({ kind: MSG.DIGEST, full: false, entries: [] }),
    encodeMessage({ kind: MSG.WANT, entries: [{ kid, from: 1, to: 3 }, { kid: kid2, from: 7, to: 7 }] }),
    encodeMessage({ kind: MSG.KEY, keys: signers.map((s) => s.publicKey) }),
    encodeMessage({ kind: MSG.KEYREQ, kids: [kid, kid2] }),
    encodeMessage({ kind: MSG.PEERS, peers: [{ id: (signers[1] as KeyPair).id, port: 4001, addresses: ['10.0.0.2'] }] }),
    // A route request (routing handlers/route-request.ts): a subscriber's version held, and hops left; seeded like the control kinds.
    encodeMessage({ kind: MSG.ROUTEREQ, entries: [{ kid, version: T * 1000, hops: 64 }, { kid: kid2, version: 0, hops: 1 }] }),
    ...controlSeeds(signers)
  ]
}

/** One message of each kind a small mesh of routers does not exchange by itself: ACK, CMD, REVOKE, CONFIG, CRED, FLEET (every handler gets a seed). */
function controlSeeds (signers: KeyPair[]): Uint8Array[] {
  const [a, b, owner] = signers as [KeyPair, KeyPair, KeyPair]
  const policy = parseFleetPolicy({ fleet: FUZZ_FLEET, threshold: 1, owners: [{ name: 'owner', key: publicKeyText(owner.publicKey) }] })
  return [
    encodeMessage({ kind: MSG.ACK, entries: [{ hops: 1, ack: signAck({ keys: b, origin: a.id, high: 40, holes: [[3, 5], [9, 9]], time: T }) }] }),
    encodeMessage({ kind: MSG.CMD, entries: [{ hops: 1, signed: encodeCommand({ keys: a, target: b.id, action: 'relay/set', args: { on: true }, id: 7, issuedAt: T, ttl: 5 }) }] }),
    encodeMessage({ kind: MSG.REVOKE, revocations: [revoke({ policy, device: b.id, reason: 'lost', issuedAt: T, owners: [owner] })] }),
    encodeMessage({ kind: MSG.CONFIG, configs: [signFleetConfig({ policy, target: a.id, version: 3, settings: { interval: 5000 }, issuedAt: T, owners: [owner] })] }),
    encodeMessage({ kind: MSG.CRED, credentials: [enroll({ policy, publicKey: a.publicKey, name: 'a', roles: ['sensor'], issuedAt: T, cti: Uint8Array.of(1, 2, 3, 4), owners: [owner] })] }),
    encodeMessage({ kind: MSG.FLEET, files: [signFleetFile({ current: policy, version: 1, next: { threshold: 1, owners: [{ name: 'b', publicKey: b.publicKey }] }, issuedAt: T, owners: [owner] })] })
  ]
}

/**
 * Three routers in a line (A - B - C) over in-memory links with some loss, until `count` messages
 * were recorded (or `maxMs` of real time passed): C subscribes, A and B publish; every message on
 * every link is recorded. Loss makes DIGEST, WANT and KEYREQ happen; B tells C the key of A (KEY);
 * INTEREST flows from C to A. The bytes depend on timing (times, sequence numbers), the count does
 * not: the seeded input stream picks among the seeds by index, so the same seed draws the same
 * sequence of choices on any machine.
 */
async function capture (signers: KeyPair[], count: number, maxMs: number): Promise<Uint8Array[]> {
  const network = createMemoryNetwork({ seed: 7, loss: 0.2 })
  const options = { fleet: FUZZ_FLEET, syncInterval: 40, graftDelay: 10, wantRetry: 40, interestRefresh: 150, keyWait: 200 }
  const [a, b, c] = signers.map((keys) => new Router(options, { keys })) as [Router, Router, Router]
  const transports = signers.map((keys) => network.createTransport({ keepaliveInterval: 60_000, keepaliveTimeout: 120_000 }, { keys }))
  const recorded: Uint8Array[] = []
  const tap = (link: Link): void => { link.on('message', (msg) => { recorded.push(new Uint8Array(msg)) }) }
  const routers = [a, b, c]
  transports.forEach((t, i) => { t.on('link', (link) => { tap(link); routers[i]?.addLink(link) }) })
  for (const r of routers) r.start()
  for (const t of transports) await t.listen()
  const join = async (from: number, to: number): Promise<void> => {
    const link = await transports[from]?.dial(transports[to]?.address as { host: string, port: number }) as Link
    tap(link)
    routers[from]?.addLink(link)
  }
  await join(1, 0)
  await join(2, 1)
  const sub = c.subscribe('#')
  a.sendPeers(b.id, [{ id: c.id, port: 4002, addresses: ['10.0.0.3'] }])
  const end = Date.now() + maxMs
  let i = 0
  while (recorded.length < count && Date.now() < end) {
    a.publish('telemetry', [{ n: 'temp', u: 'Cel', v: 20 + (i % 7) }])
    if (i % 3 === 0) b.publish('events/door', [{ n: 'door', vb: i % 2 === 0 }])
    i++
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  sub.close()
  for (const r of routers) r.stop()
  await Promise.all(transports.map(async (t) => { await t.close() }))
  return recorded.slice(0, count)
}

export async function buildCorpus (options: { capture?: number } = {}): Promise<Corpus> {
  const signers = corpusSigners()
  const f = frames(signers)
  const captured = await capture(signers, options.capture ?? 160, 10_000)
  const messages = [...handMade(signers, (f[0] as Corpus['frames'][number]).bytes), ...captured]
  const kinds: Record<string, number> = {}
  const names = Object.fromEntries(Object.entries(MSG).map(([k, v]) => [v, k]))
  for (const m of messages) {
    const kind = names[m[1] as number] ?? 'other'
    kinds[kind] = (kinds[kind] ?? 0) + 1
  }
  // Frames as they travel too: the DATA messages carry them.
  for (const { bytes } of f) decodeSign1(bytes) // every seed is valid (a broken seed would make the run meaningless)
  return { signers, frames: f, messages, kinds }
}
