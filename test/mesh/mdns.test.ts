import dgram from 'node:dgram'
import { randomBytes } from 'node:crypto'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { generateKeyPair, toBase64url, type KeyPair } from '../../shared/index.js'
import {
  MDNS_MAX_PACKET_BYTES, SERVICE_DOMAIN, ServiceCache, browsePeers, createMdnsDiscovery, createMdnsResponder, encodeTxt, hostNameFor, txtStrings,
  type InvalidReason, type MdnsDiscovery, type MdnsDiscoveryInit, type MdnsPeerInfo, type MdnsResponder
} from '../../mesh/discovery/index.js'
import { describeNet } from '../helpers/netns.js'
import { fixedRandom } from '../helpers/random.js'
import { ManualClock, closeRaw, rawMdns, sniff, uniqueFleet, waitForLoss, waitForPeers, type RawMdns, type RawRecord } from '../helpers/mdns.js'

/**
 * DNS-SD over mDNS on real sockets, inside the private namespace test/run.sh makes (loopback
 * only). Test files run in parallel in that namespace, so every test browses a fleet of its own.
 * The LAN of namespace hosts, and python-zeroconf, are in mdns-lan.test.ts.
 */

const tag = randomBytes(3).toString('hex')
let nextPort = 7100

type Device = MdnsDiscovery & { readonly keys: KeyPair, readonly port: number }

function device (init: Partial<MdnsDiscoveryInit> & { fleet: string }, responder?: MdnsResponder): Device {
  const keys = generateKeyPair()
  const port = nextPort++
  const discovery = createMdnsDiscovery({ identity: keys, port, ...init }, responder === undefined ? {} : { responder })
  onTestFinished(async () => { await discovery.stop() })
  return Object.assign(discovery, { keys, port })
}

async function sharedResponder (): Promise<MdnsResponder> {
  const responder = createMdnsResponder()
  onTestFinished(async () => { await responder.stop() })
  await responder.start()
  return responder
}

async function raw (): Promise<RawMdns> {
  const mdns = await rawMdns()
  onTestFinished(async () => { await closeRaw(mdns) })
  return mdns
}

/** The records of one instance, as a raw responder announces them. */
function instance (name: string, txt: Uint8Array[], ttl: number, port = 7999): { answers: RawRecord[], additionals: RawRecord[] } {
  const fqdn = `${name}.${SERVICE_DOMAIN}`
  const host = `${name}.local`
  return {
    answers: [{ name: SERVICE_DOMAIN, type: 'PTR', ttl, data: fqdn }],
    additionals: [
      { name: fqdn, type: 'SRV', ttl, data: { port, target: host } },
      { name: fqdn, type: 'TXT', ttl, data: txt.map((s) => Buffer.from(s)) },
      { name: host, type: 'A', ttl, data: '127.0.0.1' }
    ]
  }
}

describeNet('DNS-SD over mDNS, devices in one namespace', () => {
  it('lets several devices in one process see each other with their own port and TXT, never themselves', async () => {
    const fleet = uniqueFleet('one-ns')
    const shared = await sharedResponder()
    // Two devices with a socket each and three sharing one responder: one host name for all.
    const devices = [0, 1, 2, 3, 4].map((i) => device({ fleet, name: `dev-${i}-${tag}` }, i >= 2 ? shared : undefined))
    await Promise.all(devices.map(async (d) => { await d.start() }))
    const signal = AbortSignal.timeout(10_000)
    for (const d of devices) {
      const others = devices.filter((o) => o !== d)
      const found = await waitForPeers(d, others.map((o) => o.keys.id), signal) as MdnsPeerInfo[]
      expect(found).toEqual(others.map((o) => ({
        source: 'mdns',
        key: o.keys.id,
        id: o.keys.id,
        publicKey: o.keys.publicKey,
        name: o.name,
        fleet,
        version: 1,
        port: o.port,
        host: hostNameFor(o.keys.id),
        addresses: ['127.0.0.1'] // a loopback-only host has no address records: the packet's source
      })))
      expect(d.peers().some((p) => p.key === d.keys.id)).toBe(false) // its own announcement is ignored
      expect(d.counters.found).toBe(4)
      expect(d.counters.errors).toBe(0)
    }
  })

  it('parses each response once into one cache per shared responder, however many discoveries browse on it (issue 15)', async () => {
    const fleet = uniqueFleet('one-parse')
    const shared = await sharedResponder()
    let responses = 0
    const unsubscribe = shared.subscribe({ response: () => { responses++ } })
    onTestFinished(unsubscribe)
    const ingest = vi.spyOn(ServiceCache.prototype, 'ingest')
    onTestFinished(() => { ingest.mockRestore() })
    const devices = [0, 1, 2, 3].map((i) => device({ fleet, name: `once-${i}-${tag}` }, shared))
    await Promise.all(devices.map(async (d) => { await d.start() }))
    const signal = AbortSignal.timeout(10_000)
    for (const d of devices) await waitForPeers(d, devices.filter((o) => o !== d).map((o) => o.keys.id), signal)
    // Four discoveries, one parse of each response (before: one per discovery, four times as many).
    expect(responses).toBeGreaterThan(0)
    expect(ingest.mock.calls.length).toBeLessThanOrEqual(responses)
    expect(shared.counters.ingested).toBe(ingest.mock.calls.length)
    // A discovery joining later starts from what the shared cache holds: no query needed to see them.
    const late = device({ fleet, name: `once-late-${tag}`, announce: false }, shared)
    await late.start()
    expect(late.peers().map((p) => p.key).sort()).toEqual(devices.map((d) => d.keys.id).sort())
  })

  it('bounds the shared cache by the responder\'s maxInstances, and tells every discovery on it what was refused', async () => {
    const fleet = uniqueFleet('bounded')
    const shared = createMdnsResponder({ maxInstances: 3 })
    onTestFinished(async () => { await shared.stop() })
    await shared.start()
    const observers = [0, 1].map((i) => device({ fleet, name: `bound-${i}-${tag}`, announce: false }, shared))
    await Promise.all(observers.map(async (d) => { await d.start() }))
    const refused = observers.map(async (d) => await new Promise<void>((resolve) => {
      d.on('invalid', (event) => { if (event.reason === 'cache-full') resolve() })
    }))
    const mdns = await raw()
    const keys = generateKeyPair()
    const records = Array.from({ length: 6 }, (_, i) => instance(`flood-${i}-${tag}`, txtStrings(encodeTxt({ ...keys, fleet })), 120))
    mdns.respond({ answers: records.flatMap((r) => r.answers), additionals: records.flatMap((r) => r.additionals) })
    await Promise.race([Promise.all(refused), new Promise((_resolve, reject) => AbortSignal.timeout(10_000).addEventListener('abort', () => { reject(new Error('no cache-full event')) }))])
    expect(shared.browser(SERVICE_DOMAIN).size).toBeLessThanOrEqual(3)
    mdns.respond({ answers: records.flatMap((r) => [...r.answers, ...r.additionals]).map((r) => ({ ...r, ttl: 0 })) })
  })

  it('renames a device whose name is taken (RFC 6762 §9) so that both are seen', async () => {
    const fleet = uniqueFleet('conflict')
    const first = device({ fleet, name: `same-${tag}`, browse: false })
    await first.start()
    const second = device({ fleet, name: `same-${tag}`, browse: false })
    await second.start()
    expect(first.name).toBe(`same-${tag}`)
    expect(second.name).toBe(`same-${tag} (2)`)
    const observer = device({ fleet, announce: false })
    await observer.start()
    const found = await waitForPeers(observer, [first.keys.id, second.keys.id], AbortSignal.timeout(10_000)) as MdnsPeerInfo[]
    expect(found.map((p) => p.name)).toEqual([`same-${tag}`, `same-${tag} (2)`])
  })

  it('drops a device at once when it says goodbye (RFC 6762 §10.1), long before its TTL', async () => {
    const fleet = uniqueFleet('goodbye')
    const observer = device({ fleet, announce: false })
    const leaving = device({ fleet, browse: false })
    await Promise.all([observer.start(), leaving.start()])
    const signal = AbortSignal.timeout(10_000)
    await waitForPeers(observer, [leaving.keys.id], signal)
    const lost = waitForLoss(observer, leaving.keys.id, signal)
    const stoppedAt = performance.now()
    await leaving.stop()
    const elapsed = await lost - stoppedAt
    // The SRV record's TTL is 120 s; a goodbye is honoured after RFC 6762 §10.1's one second.
    expect(elapsed).toBeGreaterThanOrEqual(900)
    expect(elapsed).toBeLessThan(3_000)
  })

  it('a crash withdraws the announcement without a goodbye: no TTL 0 on the wire, and peers keep it until its records expire', async () => {
    const fleet = uniqueFleet('crash')
    const observer = device({ fleet, announce: false })
    const crashing = device({ fleet, browse: false, name: `crash-${tag}` })
    const leaving = device({ fleet, browse: false, name: `leave-${tag}` })
    await Promise.all([observer.start(), crashing.start(), leaving.start()])
    const signal = AbortSignal.timeout(15_000)
    await waitForPeers(observer, [crashing.keys.id, leaving.keys.id], signal)
    // An independent listener on the group: every record sent with TTL 0 (a goodbye, RFC 6762 §10.1), by instance.
    const listener = await raw()
    const goodbyes = new Set<string>()
    listener.on('response', (packet: { answers?: RawRecord[], additionals?: RawRecord[] }) => {
      for (const r of [...packet.answers ?? [], ...packet.additionals ?? []]) {
        for (const who of [`crash-${tag}`, `leave-${tag}`]) if (r.ttl === 0 && JSON.stringify(r).includes(who)) goodbyes.add(who)
      }
    })
    await crashing.stop({ goodbye: false })
    await leaving.stop() // the control: the same listener hears a goodbye
    await waitForLoss(observer, leaving.keys.id, signal)
    await new Promise((resolve) => setTimeout(resolve, 1500))
    expect([...goodbyes]).toEqual([`leave-${tag}`])
    expect(observer.peers().map((p) => p.key)).toEqual([crashing.keys.id]) // until its 120 s records expire
  })

  it('drops a device that vanishes without goodbye when its records expire', async () => {
    const fleet = uniqueFleet('expiry')
    const observer = device({ fleet, announce: false })
    await observer.start()
    const ghost = generateKeyPair()
    const mdns = await raw()
    const signal = AbortSignal.timeout(10_000)
    // Announced once with a 2 s TTL; the raw responder then never answers (a device that crashed).
    const announcedAt = performance.now()
    mdns.respond(instance(`ghost-${tag}`, txtStrings(encodeTxt({ ...ghost, fleet })), 2))
    await waitForPeers(observer, [ghost.id], signal)
    const elapsed = await waitForLoss(observer, ghost.id, signal) - announcedAt
    expect(elapsed).toBeGreaterThanOrEqual(1_900)
    expect(elapsed).toBeLessThan(4_000)
    expect(observer.counters.lost).toBe(1)
  })

  it('drops a crashed device after its 120 s SRV TTL, on an injected clock', async () => {
    const fleet = uniqueFleet('clock')
    const clock = new ManualClock()
    const observer = createMdnsDiscovery({ identity: generateKeyPair(), port: 1, fleet, announce: false }, { clock, random: fixedRandom(0.5) })
    onTestFinished(async () => { await observer.stop() })
    await observer.start()
    const ghost = generateKeyPair()
    const mdns = await raw()
    // bonjour-service's TTLs: SRV and A 120 s, TXT 4500 s, PTR 28800 s. Then silence.
    const records = instance(`crashed-${tag}`, txtStrings(encodeTxt({ ...ghost, fleet })), 120)
    records.answers[0] = { ...records.answers[0] as RawRecord, ttl: 28800 }
    mdns.respond(records)
    await waitForPeers(observer, [ghost.id], AbortSignal.timeout(10_000))
    const lost: string[] = []
    observer.on('peer:lost', (key) => lost.push(key))
    clock.advance(119_000) // refresh queries at 80-95 % go unanswered
    expect(lost).toEqual([])
    clock.advance(1_000)
    expect(lost).toEqual([ghost.id])
    expect(observer.peers()).toEqual([])
  })

  it('browses once for iotmesh peers (CLI), filtered by fleet, and can be aborted', async () => {
    const fleet = uniqueFleet('browse')
    const [a, b] = [device({ fleet, name: `browse-a-${tag}`, browse: false }), device({ fleet: `${fleet}-other`, name: `browse-b-${tag}`, browse: false })]
    await Promise.all([a.start(), b.start()])
    const rows = await browsePeers({ timeoutMs: 1_200, fleet })
    expect(rows).toEqual([expect.objectContaining({ name: a.name, id: a.keys.id, port: a.port, fleet, keyMatches: true, valid: true, addresses: ['127.0.0.1'] })])
    await expect(browsePeers({ timeoutMs: 10_000, signal: AbortSignal.timeout(100) })).rejects.toMatchObject({ code: 'ERR_ABORTED' })
    await expect(browsePeers({ signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ERR_ABORTED' })
  })

  it('answers a browse for 250 instances of one responder in messages within 9000 bytes, without EMSGSIZE', async () => {
    const sniffer = await sniff()
    onTestFinished(async () => { await sniffer.close() })
    const fleet = uniqueFleet('many')
    const responder = await sharedResponder()
    // Unsplit, this answer would be about 70 KB: past EMSGSIZE even on loopback (NETWORK.md).
    const devices = Array.from({ length: 250 }, (_, i) => device({ fleet, name: `many-${i}-${tag}`, browse: false }, responder))
    await Promise.all(devices.map(async (d) => { await d.start() }))
    const observer = device({ fleet, announce: false })
    await observer.start()
    await waitForPeers(observer, devices.map((d) => d.keys.id), AbortSignal.timeout(20_000))
    expect(responder.counters).toMatchObject({ errors: 0, dropped: 0 })
    expect(responder.counters.splits).toBeGreaterThan(0)
    expect(sniffer.sizes.length).toBeGreaterThan(250)
    expect(Math.max(...sniffer.sizes)).toBeLessThanOrEqual(MDNS_MAX_PACKET_BYTES - 28)
    expect(observer.counters.errors).toBe(0)
  })

  it('counts malformed announcements by reason, ignores its own id, and keeps running', async () => {
    const fleet = uniqueFleet('malformed')
    const observer = device({ fleet, announce: false })
    await observer.start()
    const [alice, bob, valid] = [generateKeyPair(), generateKeyPair(), generateKeyPair()]
    const good = (keys: KeyPair, extra: Record<string, string | undefined> = {}): Uint8Array[] =>
      txtStrings(Object.fromEntries(Object.entries({ ...encodeTxt({ ...keys, fleet }), ...extra }).filter(([, v]) => v !== undefined)) as Record<string, string>)
    const cases: Array<[string, Uint8Array[], InvalidReason]> = [
      ['mismatch', good(alice, { pk: toBase64url(bob.publicKey) }), 'key-mismatch'],
      ['nopk', good(alice, { pk: undefined }), 'missing-key'],
      ['badpk', good(alice, { pk: '%%%' }), 'bad-pk'],
      ['txtvers', good(alice, { txtvers: '9' }), 'txtvers'],
      ['version', good(alice, { v: 'latest' }), 'bad-version'],
      ['huge', [...good(alice), ...Array.from({ length: 6 }, (_, i) => new TextEncoder().encode(`x${i}=${'y'.repeat(240)}`))], 'oversized'],
      ['binary', [Uint8Array.of(0xff, 0x3d, 0x00)], 'malformed'],
      ['twin', good(valid), 'duplicate-id'] // a second instance claiming `valid`'s id
    ]
    const mdns = await raw()
    const seen = new Set<InvalidReason>()
    const allSeen = new Promise<void>((resolve) => {
      observer.on('invalid', (event) => { seen.add(event.reason); if (seen.size === cases.length) resolve() })
    })
    // Garbage on the wire first: it must be dropped and counted, not crash anyone.
    const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true })
    onTestFinished(() => { socket.close() })
    await new Promise<void>((resolve) => { socket.bind(0, resolve) })
    socket.setMulticastInterface('127.0.0.1')
    await new Promise<void>((resolve, reject) => { socket.send(randomBytes(64), 5353, '224.0.0.251', (err) => { if (err === null) resolve(); else reject(err) }) })
    const records = [
      instance(`valid-${tag}`, good(valid), 120),
      ...cases.map(([name, txt]) => instance(`${name}-${tag}`, txt, 120)),
      instance(`self-${tag}`, good(observer.keys), 120) // someone announcing the observer's own id
    ]
    mdns.respond({ answers: records.flatMap((r) => r.answers), additionals: records.flatMap((r) => r.additionals) })
    await Promise.race([allSeen, new Promise((_resolve, reject) => AbortSignal.timeout(10_000).addEventListener('abort', () => { reject(new Error(`saw only ${[...seen].join(', ')}`)) }))])
    const [found] = await waitForPeers(observer, [valid.id], AbortSignal.timeout(5_000))
    expect(found).toMatchObject({ name: `valid-${tag}`, port: 7999 })
    expect(observer.peers().map((p) => p.key)).toEqual([valid.id]) // not its own id, nor any invalid one
    const expected = Object.fromEntries(cases.map(([, , reason]) => [reason, 1]))
    expect(observer.counters.invalid).toMatchObject(expected)
    expect(observer.started).toBe(true)
    // Goodbyes, so that other test files' browsers drop these names.
    mdns.respond({ answers: records.flatMap((r) => [...r.answers, ...r.additionals]).map((r) => ({ ...r, ttl: 0 })) })
  })
})

describe('mDNS discovery configuration', () => {
  it('refuses a key that does not derive to the id, and bad names or ports, before any socket opens', () => {
    const [alice, bob] = [generateKeyPair(), generateKeyPair()]
    expect(() => createMdnsDiscovery({ identity: { id: alice.id, publicKey: bob.publicKey }, port: 7000 })).toThrow(expect.objectContaining({ code: 'ERR_WRONG_KEY' }))
    expect(() => createMdnsDiscovery({ identity: alice, port: 0 })).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }))
    expect(() => createMdnsDiscovery({ identity: alice, port: 7000, name: 'x'.repeat(64) })).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }))
    expect(() => createMdnsDiscovery({ identity: alice, port: 7000, fleet: '' })).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }))
    expect(createMdnsDiscovery({ identity: alice, port: 7000 }).name).toBe(`iotmesh-${alice.id.slice(0, 8)}`)
  })
})
