import { randomBytes } from 'node:crypto'
import { createServer, type AddressInfo, type Server } from 'node:net'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { encodeFrame, generateKeyPair } from '../../shared/index.js'
import { SERVICE_DOMAIN, createTcpTransport, encodeData, encodeTxt, txtStrings } from '../../mesh/index.js'
import { describeNet } from '../helpers/netns.js'
import { closeRaw, rawMdns, uniqueFleet, type RawMdns, type RawRecord } from '../helpers/mdns.js'
import { MeshProcs, assertFreshBuild, type MeshProc } from '../helpers/mesh-proc.js'

/**
 * Bad actors against real processes: an impostor on mDNS/DNS-SD, and forged or replayed frames
 * sent down a real authenticated TCP link. (routing.test.ts covers each refusal in memory; here
 * one real case of each.) Three devices on loopback with mDNS, all linked to each other.
 */

const tag = randomBytes(3).toString('hex')

interface Info { peerId: string, publicKey: string, addrs: string[] }

/** An instance's DNS-SD records, as a raw responder announces them (RFC 6763 §4–§6). */
function instance (name: string, txt: Record<string, string>, port: number, ttl = 120): RawRecord[] {
  const fqdn = `${name}.${SERVICE_DOMAIN}`
  const host = `${name}.local`
  return [
    { name: SERVICE_DOMAIN, type: 'PTR', ttl, data: fqdn },
    { name: fqdn, type: 'SRV', ttl, data: { port, target: host } },
    { name: fqdn, type: 'TXT', ttl, data: txtStrings(txt).map((s) => Buffer.from(s)) },
    { name: host, type: 'A', ttl, data: '127.0.0.1' }
  ]
}

describeNet('bad actors against mesh processes', () => {
  const procs = new MeshProcs()
  const fleet = uniqueFleet('e2e-adversary')
  let nodes: MeshProc[] = []
  let infos: Info[] = []
  let mdns: RawMdns | undefined
  const announced: RawRecord[] = []
  /** Where the impostor's announcements point: every connection to it is counted. */
  let trap: Server
  let trapped = 0

  beforeAll(async () => {
    assertFreshBuild()
    trap = createServer((socket) => { trapped++; socket.destroy() })
    await new Promise<void>((resolve) => { trap.listen(0, '127.0.0.1', resolve) })
    nodes = await Promise.all(['A', 'B', 'C'].map(async (label) => await procs.fork(label, {
      IOTMESH_CHILD_MDNS: '1', IOTMESH_CHILD_FLEET: fleet, IOTMESH_CHILD_NAME: `e2e-adv-${label}-${tag}`, IOTMESH_CHILD_EVENTS: '1'
    })))
    infos = await Promise.all(nodes.map(async (n) => await n.call<Info>('info')))
    const signal = AbortSignal.timeout(15_000)
    for (const node of nodes) await node.linked(nodes.filter((o) => o !== node).map((o) => o.id), signal)
  }, 30_000)

  afterAll(async () => {
    // Goodbyes (TTL 0), so that no other browser in this namespace keeps the impostor's names.
    if (mdns !== undefined && announced.length > 0) mdns.respond({ answers: announced.map((r) => ({ ...r, ttl: 0 })) })
    if (mdns !== undefined) await closeRaw(mdns)
    await procs.killAll()
    await new Promise<void>((resolve) => { trap?.close(() => { resolve() }) })
  })

  /** The peers each node lists: exactly the two real devices, linked, at their real ports. */
  async function onlyRealPeers (): Promise<void> {
    for (const node of nodes) {
      const peers = await node.call<Array<{ id: string, linked: boolean, port: number }>>('peers')
      const expected = nodes.filter((o) => o !== node).map((o) => ({ id: o.id, linked: true, port: Number(infos[nodes.indexOf(o)]?.addrs[0]?.split(':')[1]) }))
      expect(peers.map(({ id, linked, port }) => ({ id, linked, port })).sort((x, y) => x.id < y.id ? -1 : 1)).toEqual(expected.sort((x, y) => x.id < y.id ? -1 : 1))
    }
  }

  it("an impostor announcing A's id on mDNS, with its own key or with A's, is counted and never dialed", async () => {
    const [a, b, c] = nodes as [MeshProc, MeshProc, MeshProc]
    const [infoA] = infos as [Info]
    mdns = await rawMdns()
    const impostor = generateKeyPair()
    const port = (trap.address() as AddressInfo).port
    // A's id with the impostor's key: the key does not derive to the id (TXT check).
    const mismatch = instance(`impostor-${tag}`, { ...encodeTxt({ id: a.id, publicKey: impostor.publicKey, fleet }) }, port)
    // A's TXT copied whole (it is public): a second instance claiming an id that A's instance holds.
    const twin = instance(`twin-${tag}`, { ...encodeTxt({ id: a.id, publicKey: impostor.publicKey, fleet }), pk: infoA.publicKey }, port)
    announced.push(...mismatch, ...twin)
    mdns.respond({ answers: [...mismatch, ...twin] })
    const signal = AbortSignal.timeout(10_000)
    for (const node of [b, c]) {
      const state = await node.state((s) => (s.invalid['key-mismatch'] ?? 0) >= 1 && (s.invalid['duplicate-id'] ?? 0) >= 1, signal, `${node.label}: both announcements refused`)
      // duplicate-id is judged within our fleet only; key-mismatch before the fleet is read, so
      // another test file's malformed announcements on this loopback may add to it.
      expect(state.invalid['duplicate-id']).toBe(1)
    }
    // A refuses the one with the wrong key; the twin claims A's own id, which A ignores as its own.
    await a.state((s) => (s.invalid['key-mismatch'] ?? 0) >= 1, signal, 'A: the wrong key refused')
    await onlyRealPeers()
    expect(trapped).toBe(0)
    // A's link is still A's: readings from A still flow.
    const seq = await a.publish(1)
    for (const node of [b, c]) await node.received(a.id, [seq], signal)
  })

  it('a frame with one flipped byte and replayed frames, sent down a real TCP link, are refused with their codes and not relayed', async () => {
    const [a, b, c] = nodes as [MeshProc, MeshProc, MeshProc]
    const attackerKeys = generateKeyPair()
    const attacker = createTcpTransport({}, { keys: attackerKeys })
    try {
      const [host, port] = (infos[1]?.addrs[0] as string).split(':') as [string, string]
      const link = await attacker.dial({ host, port: Number(port) }, { expectedId: b.id })
      const signal = AbortSignal.timeout(10_000)
      await b.linked([attackerKeys.id], signal)
      const frame = (seq: number, v: number): Uint8Array => encodeFrame({ keys: attackerKeys, seq, records: [{ n: 'x', v }] })
      const send = (bytes: Uint8Array): void => { link.send(encodeData(1, bytes)) }
      const before = await b.call<{ relayed: number, duplicates: number, rejected: Record<string, number> }>('counters')
      const mark = b.events.length // events come in order with replies: later ones are after this counters snapshot
      const drops = (): Array<Record<string, unknown>> => b.events.slice(mark).filter((e) => e.ev === 'drop')

      const first = frame(1, 1)
      const recent = frame(5000, 2)
      send(first) // valid: relayed to A and C
      send(recent) // valid, and moves the replay window (1024) past seq 1
      const flipped = frame(6000, 3)
      flipped[flipped.length - 10] = (flipped[flipped.length - 10] as number) ^ 0x01 // inside the signature
      send(flipped)
      send(first) // replayed, older than the window
      send(recent) // replayed, within the window: a duplicate, dropped silently (other bytes for seq 5000 would be a clone)
      send(frame(6001, 4)) // valid: the control, sent last on the same link
      for (const node of [a, b, c]) await node.received(attackerKeys.id, [6001], signal)

      // Only what the attacker sent. (A late copy of seq 1 that A or C relays back to B after 5000 is
      // refused as ERR_REPLAY too: the window cannot tell a copy of an old frame from a replay of it.)
      expect(drops().filter((e) => e.from === attackerKeys.id).map(({ code, origin, seq, from }) => ({ code, origin, seq, from }))).toEqual([
        { code: 'ERR_BAD_SIGNATURE', origin: attackerKeys.id, seq: 6000, from: attackerKeys.id },
        { code: 'ERR_REPLAY', origin: attackerKeys.id, seq: 1, from: attackerKeys.id }
      ])
      // B relays in order on each link: had it relayed a refused frame, it would have arrived before the control.
      for (const node of [a, b, c]) expect(node.seqsFrom(attackerKeys.id), node.label).toEqual([1, 5000, 6001])
      const after = await b.call<{ relayed: number, duplicates: number, rejected: Record<string, number> }>('counters')
      expect(after.relayed - before.relayed).toBe(3)
      // At least the replayed 5000 (A and C may also hand B copies of what B gave them: the mesh is a triangle).
      expect(after.duplicates - before.duplicates).toBeGreaterThanOrEqual(1)
      expect(after.rejected.ERR_BAD_SIGNATURE).toBe((before.rejected.ERR_BAD_SIGNATURE ?? 0) + 1)
      expect(after.rejected.ERR_REPLAY).toBe((before.rejected.ERR_REPLAY ?? 0) + drops().filter((e) => e.code === 'ERR_REPLAY').length)
      expect(link.open).toBe(true) // refused frames are dropped, the link carries on
    } finally {
      await attacker.close()
    }
  })
})
