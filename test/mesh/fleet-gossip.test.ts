import { describe, expect, it } from 'vitest'
import {
  cosign, parseFleetPolicy, readFleetFile, revoke, signFleetFile, toBase64url, verifyFleetFile, FleetFileChain,
  type FleetPolicy, type KeyPair
} from '../../shared/index.js'
import { encodeMessage, MSG, type DropInfo, type FleetInfo } from '../../mesh/index.js'
import { createMemoryNetwork } from '../../mesh/testing.js'
import { kindOf } from '../../mesh/routing/budget.js'
import { Inbox, LINK, addr, linked, seededKeys, startNode, until } from '../helpers/memory-mesh.js'

/**
 * The fleet file spreads by gossip (mesh/routing/handlers/fleet.ts, shared/fleet-file.ts): an
 * owner rotation signed by the threshold of the CURRENT owners reaches every node of a multi-hop
 * mesh and is in force there (revocations are judged by the new owners); a late joiner is handed
 * the chain and catches up file by file; a forged, short-signed, malformed or older file is refused
 * with its code beside an honest publisher and subscriber that keep working.
 */

const alice = seededKeys(801)
const bob = seededKeys(802)
const carol = seededKeys(803)
const dave = seededKeys(804)
const mallory = seededKeys(805)
const owners = (...keys: KeyPair[]): Array<{ key: string }> => keys.map((o) => ({ key: toBase64url(o.publicKey) }))
const v0 = parseFleetPolicy({ fleet: 'default', threshold: 2, owners: owners(alice, bob) })
const routing = { fleetPolicy: v0 }
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

/** The next fleet file, signed by `signers` (owners of `current`, the first signs, the rest co-sign). */
function next (current: FleetPolicy, version: number, nextOwners: KeyPair[], signers: KeyPair[], threshold = 2): Uint8Array {
  const [first, ...rest] = signers
  let bytes = signFleetFile({ current, version, next: { threshold, owners: nextOwners }, owners: [first as KeyPair] })
  for (const s of rest) bytes = cosign(bytes, current, s)
  return bytes
}
// alice's key rotates to carol (v1), then dave joins as a third owner (v2).
const v1 = next(v0, 1, [carol, bob], [alice, bob])
const p1 = parseFleetPolicy({ fleet: 'default', threshold: 2, owners: owners(carol, bob), version: 1 })
const v2 = next(p1, 2, [carol, bob, dave], [carol, bob])

describe('signed fleet files', () => {
  it('verify against the file in force: version above it, its owners\' threshold; every check but the signatures first', () => {
    expect(verifyFleetFile(v1, v0)).toMatchObject({ version: 1, threshold: 2, owners: [{ id: carol.id }, { id: bob.id }] })
    expect(readFleetFile(v2, 'default').version).toBe(2)
    const code = (fn: () => unknown): string | undefined => { try { fn() } catch (err) { return (err as { code: string }).code } return undefined }
    expect(code(() => verifyFleetFile(v2, v0))).toBe('ERR_TOO_FEW_OWNERS') // signed by carol and bob; under v0 only bob is an owner
    expect(code(() => verifyFleetFile(v1, p1))).toBe('ERR_FLEET_STALE')
    expect(code(() => verifyFleetFile(signFleetFile({ current: v0, version: 1, next: { threshold: 1, owners: [alice] }, owners: [alice] }), v0))).toBe('ERR_TOO_FEW_OWNERS')
    expect(code(() => verifyFleetFile(Uint8Array.of(1, 2, 3), v0))).toBe('ERR_BAD_FLEET_FILE')
    const other = parseFleetPolicy({ fleet: 'other', owners: owners(alice) })
    expect(code(() => verifyFleetFile(signFleetFile({ current: other, next: { threshold: 1, owners: [bob] }, owners: [alice] }), v0))).toBe('ERR_UNKNOWN_FLEET')
    expect(code(() => signFleetFile({ current: v0, next: { threshold: 3, owners: [alice, bob] }, owners: [alice] }))).toBe('ERR_BAD_ARGUMENT')
    // The chain: v2 alone does not follow v0; v1 then v2 does, and the same bytes again cost nothing.
    const chain = new FleetFileChain(v0)
    expect(code(() => chain.add(v2))).toBe('ERR_TOO_FEW_OWNERS')
    expect(chain.add(v1).verdict).toBe('added')
    expect(chain.add(v2).verdict).toBe('added')
    expect(chain.add(v1).verdict).toBe('known')
    expect(chain.policy).toMatchObject({ version: 2, owners: [{ id: carol.id }, { id: bob.id }, { id: dave.id }] })
    expect(chain.all().map(hex)).toEqual([v1, v2].map(hex))
  })

  it('FLEET is kind 13, in the control lane, with its own budget', () => {
    expect(MSG.FLEET).toBe(13)
    expect(kindOf(encodeMessage({ kind: MSG.FLEET, files: [] }))).toBe('fleet')
    expect(kindOf(encodeMessage({ kind: MSG.CRED, credentials: [] }))).toBe('cred')
  })
})

describe('the fleet file spreads through the mesh', () => {
  it('an owner rotation reaches every node over 3 hops and is in force there; a late joiner catches up file by file', async () => {
    const net = createMemoryNetwork({ seed: 61 })
    const a = await startNode(net, 'a', seededKeys(811), [], { routing })
    const b = await startNode(net, 'b', seededKeys(812), [addr(a)], { routing })
    const c = await startNode(net, 'c', seededKeys(813), [addr(b)], { routing })
    const d = await startNode(net, 'd', seededKeys(814), [addr(c)], { routing })
    await linked(b, a.id, c.id)
    await linked(c, d.id)
    const seen: FleetInfo[] = []
    d.on('fleet', (info) => { seen.push(info) })
    const inbox = new Inbox(d)
    await until(() => d.routeTo(d.id) !== undefined || a.routeTo(d.id) !== undefined, 'a route from a to d')
    a.publish('telemetry', [{ n: 't', v: 1 }])
    await inbox.waitFor(a.id, 1)

    expect(a.updateFleet(v1)).toBe('added')
    await until(() => [b, c, d].every((n) => n.fleetPolicy?.version === 1), 'v1 in force at b, c and d', 3000)
    expect(d.fleetPolicy?.owners.map((o) => o.id)).toEqual([carol.id, bob.id])
    expect(seen).toMatchObject([{ version: 1, from: c.id }])
    expect(a.updateFleet(v1)).toBe('known')

    // In force: a revocation signed by alice (no longer an owner) and bob is short; one by carol and bob spreads.
    const victim = seededKeys(899).id
    const byOld = cosign(revoke({ policy: v0, device: victim, reason: 'stolen', owners: [alice] }), v0, bob)
    expect(d.revoke(byOld)).toBe('ERR_TOO_FEW_OWNERS')
    const byNew = cosign(revoke({ policy: p1, device: victim, reason: 'stolen', owners: [carol] }), p1, bob)
    expect(d.revoke(byNew)).toBe('added')
    await until(() => a.revoked(victim), 'the new owners\' revocation at a')

    // v2 (signed by the owners of v1) from the far end; a newcomer still at v0 gets v1 then v2 when it links.
    expect(d.updateFleet(v2)).toBe('added')
    await until(() => [a, b, c].every((n) => n.fleetPolicy?.version === 2), 'v2 back at a')
    const e = await startNode(net, 'e', seededKeys(815), [addr(b)], { routing })
    await until(() => e.fleetPolicy?.version === 2, 'the chain handed to a late joiner')
    expect(e.fleetFiles().map(hex)).toEqual([v1, v2].map(hex))
    expect(e.counters.fleetFiles).toBe(2)
    // The honest publisher and subscriber carried on.
    a.publish('telemetry', [{ n: 't', v: 2 }])
    await inbox.waitFor(a.id, 2)
  })

  it('a forged, short-signed, malformed or older file is refused with its code beside an honest publisher and subscriber; a flood meets the budget', async () => {
    const net = createMemoryNetwork({ seed: 62 })
    const a = await startNode(net, 'a', seededKeys(821), [], { routing })
    const b = await startNode(net, 'b', seededKeys(822), [addr(a)], { routing })
    const c = await startNode(net, 'c', seededKeys(823), [addr(b)], { routing })
    await linked(b, a.id, c.id)
    const inbox = new Inbox(c, `iotmesh/default/${a.id}/#`)
    await until(() => a.routeTo(c.id) !== undefined, 'a route from a to c')
    let n = 0
    const honest = setInterval(() => { a.publish('telemetry', [{ n: 't', v: n++ }]) }, 20)
    try {
      await inbox.waitFor(a.id, 5)
      const transport = net.createTransport(LINK, { keys: mallory })
      const link = await transport.dial(b.address!)
      await linked(b, mallory.id)
      const drops: DropInfo[] = []
      b.on('drop', (info) => { if (info.from === mallory.id) drops.push(info) })
      const own = parseFleetPolicy({ fleet: 'default', owners: owners(mallory) })
      const forged = signFleetFile({ current: own, version: 7, next: { threshold: 1, owners: [mallory] }, owners: [mallory] })
      const short = signFleetFile({ current: v0, version: 7, next: { threshold: 1, owners: [mallory] }, owners: [alice] })
      link.send(encodeMessage({ kind: MSG.FLEET, files: [forged, short, Uint8Array.of(1, 2, 3)] }))
      await until(() => drops.length >= 3, 'all three refused at b')
      expect(drops.map((x) => x.code).sort()).toEqual(['ERR_BAD_FLEET_FILE', 'ERR_NOT_OWNER', 'ERR_TOO_FEW_OWNERS'])
      expect([a, b, c].map((x) => x.fleetPolicy?.version ?? 0)).toEqual([0, 0, 0])

      // The honest rotation, then a replay of an older valid file: refused as stale, no signature checked, no blame.
      expect(a.updateFleet(v1)).toBe('added')
      await until(() => c.fleetPolicy?.version === 1, 'v1 at c')
      expect(a.updateFleet(v2)).toBe('added')
      await until(() => c.fleetPolicy?.version === 2, 'v2 at c')
      expect(c.updateFleet(v1)).toBe('known') // the very bytes held in the chain
      const replayed = next(v0, 1, [alice, bob, mallory], [alice, bob]) // valid once, under v0
      expect(c.updateFleet(replayed)).toBe('ERR_FLEET_STALE')
      drops.length = 0
      link.send(encodeMessage({ kind: MSG.FLEET, files: [replayed] }))
      await until(() => drops.length >= 1, 'the replay refused at b')
      expect(drops[0]?.code).toBe('ERR_FLEET_STALE')
      expect(b.fleetPolicy?.owners.map((o) => o.id)).toEqual([carol.id, bob.id, dave.id])

      // Forged files cost their sender: after a few it is banned and its link closed.
      for (let i = 0; i < 20 && link.open; i++) link.send(encodeMessage({ kind: MSG.FLEET, files: [forged] }))
      await until(() => !b.links.has(mallory.id), 'the forger banned')
      expect(b.counters.bans).toBeGreaterThanOrEqual(1)
      // A flood of stale files (no blame, no signature checked): the FLEET budget reads 32 at once, then 1 a second; the rest are dropped unread.
      const flooder = seededKeys(806)
      const flood = await net.createTransport(LINK, { keys: flooder }).dial(b.address!)
      await linked(b, flooder.id)
      const staleBefore = b.counters.rejected.ERR_FLEET_STALE ?? 0
      for (let i = 0; i < 200; i++) flood.send(encodeMessage({ kind: MSG.FLEET, files: [replayed] }))
      // Seen: 32 read and refused as stale, 21 dropped unread, then the flooder banned for going over its budget.
      await until(() => !flood.open, 'the flooder banned for going over its budget')
      expect(b.counters.overBudget.fleet ?? 0).toBeGreaterThan(0)
      expect((b.counters.rejected.ERR_FLEET_STALE ?? 0) - staleBefore).toBeLessThanOrEqual(33)
      // The honest publisher and subscriber carried on throughout, and carry on.
      const got = inbox.from(a.id).length
      await inbox.waitFor(a.id, got + 5)
      expect(c.fleetPolicy?.version).toBe(2)
    } finally {
      clearInterval(honest)
    }
  })
})
