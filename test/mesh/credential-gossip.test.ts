import { describe, expect, it, onTestFinished } from 'vitest'
import { cosign, encodeCommand, enroll, parseFleetPolicy, toBase64url, type KeyPair } from '../../shared/index.js'
import { COMMAND_FILTER, MeshNode, encodeMessage, MSG, type DropInfo } from '../../mesh/index.js'
import { createMemoryNetwork, type MemoryNetwork } from '../../mesh/testing.js'
import { Inbox, LINK, ROUTING, addr, linked, seededKeys, until } from '../helpers/memory-mesh.js'

/**
 * Credential gossip (mesh/routing/handlers/credential.ts): in a fleet closed by credential a node
 * checks a relayed frame's origin, which it never linked with, by a credential that travelled with
 * the frames (CRED, once per link, before the first frame); an unenrolled origin's frames are
 * refused with ERR_NO_CREDENTIAL. A command's issuer's credential travels with the command, so the
 * target knows the roles of a commander several hops away (what a role grant is judged on).
 */

const alice = seededKeys(851)
const bob = seededKeys(852)
const policy = parseFleetPolicy({ fleet: 'default', threshold: 2, owners: [alice, bob].map((o: KeyPair) => ({ key: toBase64url(o.publicKey) })) })
let cti = 0
const credentialOf = (keys: KeyPair, roles: string[] = []): Uint8Array =>
  cosign(enroll({ policy, publicKey: keys.publicKey, roles, cti: Uint8Array.of(++cti, 8, 5, 1), owners: [alice] }), policy, bob)

interface Enrolled { credential?: Uint8Array, requireCredentials?: boolean, checkOrigins?: boolean }

/** A node of the fleet on an in-memory network whose handshake shows and checks credentials (as the TCP transport's does). */
async function node (net: MemoryNetwork, name: string, keys: KeyPair, peers: string[], init: Enrolled): Promise<MeshNode> {
  const ref: { node?: MeshNode } = {}
  const credential = init.credential === undefined ? {} : { credential: init.credential }
  const transport = net.createTransport({ ...LINK, ...credential, admit: (peer) => { ref.node?.credentials?.check(peer) } }, { keys })
  const n = ref.node = new MeshNode({
    name, host: name, mdns: false, peers, dialTarget: 0, announceLinks: 0, link: LINK, ...credential,
    ...(init.requireCredentials === undefined ? {} : { requireCredentials: init.requireCredentials }),
    ...(init.checkOrigins === undefined ? {} : { checkOrigins: init.checkOrigins }),
    routing: { ...ROUTING, fleetPolicy: policy, keyWait: 300 }
  }, { keys, transport })
  onTestFinished(async () => { await n.stop() })
  await n.start()
  return n
}

describe('credentials travel with what needs them', () => {
  it('a 3-hop line: the far subscriber accepts an enrolled origin\'s frames and refuses an unenrolled one\'s (ERR_NO_CREDENTIAL)', async () => {
    const net = createMemoryNetwork({ seed: 71 })
    const [eKeys, uKeys, r1Keys, r2Keys, sKeys] = [seededKeys(861), seededKeys(862), seededKeys(863), seededKeys(864), seededKeys(865)]
    // s checks relayed origins; r1 and r2 are relays that take peers without credentials (an open edge, a misconfigured relay).
    const s = await node(net, 's', sKeys, [], { credential: credentialOf(sKeys), checkOrigins: true })
    const r2 = await node(net, 'r2', r2Keys, [addr(s)], { credential: credentialOf(r2Keys), requireCredentials: false })
    const r1 = await node(net, 'r1', r1Keys, [addr(r2)], { credential: credentialOf(r1Keys), requireCredentials: false })
    const e = await node(net, 'e', eKeys, [addr(r1)], { credential: credentialOf(eKeys) })
    const u = await node(net, 'u', uKeys, [addr(r1)], {})
    await linked(r1, e.id, u.id, r2.id)
    await linked(s, r2.id)
    const inbox = new Inbox(s)
    const drops: DropInfo[] = []
    s.on('drop', (info) => { drops.push(info) })
    await until(() => e.routeTo(s.id) !== undefined && u.routeTo(s.id) !== undefined, 'routes to s')
    for (let i = 0; i < 5; i++) {
      e.publish('telemetry', [{ n: 't', v: i }])
      u.publish('telemetry', [{ n: 't', v: i }])
    }
    await inbox.waitFor(e.id, 5)
    await until(() => drops.filter((d) => d.code === 'ERR_NO_CREDENTIAL' && d.origin === u.id).length >= 5, 'u\'s five frames refused at s')
    expect(inbox.from(u.id)).toHaveLength(0)
    // s never linked with e: e's credential came by gossip (r1 verified it at e's handshake, r2 from r1, s from r2), verified once.
    expect(s.links.has(e.id)).toBe(false)
    expect(s.credentials?.credentialOf(e.id)?.device).toBe(e.id)
    expect(s.counters.credentials).toBeGreaterThanOrEqual(1)
    expect(s.credentials?.credentialOf(u.id)).toBeUndefined()
    // r2 does not check origins (a transport passed in, no checkOrigins): it relayed u's frames, as such a relay does.
    expect(r2.counters.rejected.ERR_NO_CREDENTIAL ?? 0).toBe(0)
  })

  it('a flood of forged credentials (owner kids, bad signatures) beside an honest publisher: checked a bounded number of times, the flooder banned', async () => {
    const net = createMemoryNetwork({ seed: 72 })
    const [eKeys, rKeys, sKeys, mallory] = [seededKeys(871), seededKeys(872), seededKeys(873), seededKeys(874)]
    const s = await node(net, 's', sKeys, [], { credential: credentialOf(sKeys), checkOrigins: true })
    const r = await node(net, 'r', rKeys, [addr(s)], { credential: credentialOf(rKeys), requireCredentials: false, checkOrigins: true })
    const e = await node(net, 'e', eKeys, [addr(r)], { credential: credentialOf(eKeys) })
    await linked(r, e.id, s.id)
    const inbox = new Inbox(s)
    await until(() => e.routeTo(s.id) !== undefined, 'a route to s')
    let n = 0
    const honest = setInterval(() => { e.publish('telemetry', [{ n: 't', v: n++ }]) }, 20)
    try {
      await inbox.waitFor(e.id, 5)
      const link = await net.createTransport(LINK, { keys: mallory }).dial(r.address!)
      await linked(r, mallory.id)
      // Each names alice and bob as signers with mallory's signatures: each costs up to two checks until the sender is banned.
      const forged = (i: number): Uint8Array => enroll({ policy, publicKey: mallory.publicKey, cti: Uint8Array.of(99, i & 0xff, i >> 8), owners: [{ ...mallory, id: alice.id }, { ...mallory, id: bob.id }] })
      for (let i = 0; i < 50 && link.open; i++) link.send(encodeMessage({ kind: MSG.CRED, credentials: Array.from({ length: 40 }, (_, j) => forged(i * 40 + j)) }))
      await until(() => !r.links.has(mallory.id), 'the flooder banned')
      const refused = r.credentials?.counters.refused.ERR_NOT_OWNER ?? 0
      expect(refused).toBeGreaterThan(0)
      expect(refused).toBeLessThan(200) // the ban comes long before the CRED budget (10,000 at once) would
      expect(r.credentials?.credentialOf(mallory.id)).toBeUndefined()
      const got = inbox.from(e.id).length
      await inbox.waitFor(e.id, got + 5)
    } finally {
      clearInterval(honest)
    }
  })

  it('a command\'s issuer\'s credential reaches its target with the command, two hops away (what a role grant is judged on)', async () => {
    const net = createMemoryNetwork({ seed: 73 })
    const [tKeys, rKeys, cKeys] = [seededKeys(881), seededKeys(882), seededKeys(883)]
    const t = await node(net, 't', tKeys, [], { credential: credentialOf(tKeys), checkOrigins: true })
    const r = await node(net, 'r', rKeys, [addr(t)], { credential: credentialOf(rKeys) })
    const c = await node(net, 'c', cKeys, [addr(r)], { credential: credentialOf(cKeys, ['operator']) })
    await linked(r, t.id, c.id)
    const roles: string[][] = []
    onTestFinished(t.serveCommands((_signed, command) => { roles.push(t.credentials?.credentialOf(command.issuer)?.roles ?? []); return undefined }))
    await until(() => c.interest().some((x) => x.subscriber === t.id && x.filters.includes(COMMAND_FILTER)), 'a route for commands to t')
    expect(t.credentials?.credentialOf(c.id)).toBeUndefined()
    await c.command(encodeCommand({ keys: cKeys, target: t.id, action: 'relay/set', args: { on: true }, id: 1, ttl: 10 }), { timeoutMs: 300 }).catch(() => {})
    await until(() => roles.length > 0, 'the command at t')
    expect(roles[0]).toEqual(['operator'])
    expect(t.links.has(c.id)).toBe(false)
  })
})
