import { describe, expect, it } from 'vitest'
import { cosign, parseFleetPolicy, signFleetConfig, toBase64url, type KeyPair } from '../../shared/index.js'
import { encodeMessage, MSG, type ConfigInfo, type DropInfo } from '../../mesh/index.js'
import { createMemoryNetwork } from '../../mesh/testing.js'
import { kindOf } from '../../mesh/routing/budget.js'
import { Inbox, LINK, addr, linked, seededKeys, startNode, until } from '../helpers/memory-mesh.js'

/**
 * Signed configurations in the mesh (mesh/routing/handlers/config.ts): a configuration made at one
 * node reaches every node by gossip, each keeping only the highest valid version per target; a
 * lower one goes no further; one short of the owners' threshold or signed by no owner goes nowhere
 * and costs its sender; a late joiner is handed the set when it links; a flood of forged ones
 * beside an honest publisher and subscriber changes nothing and gets the flooder banned.
 */

const alice = seededKeys(701)
const bob = seededKeys(702)
const policy = parseFleetPolicy({ fleet: 'default', threshold: 2, owners: [alice, bob].map((o: KeyPair) => ({ key: toBase64url(o.publicKey) })) })
const routing = { fleetPolicy: policy }
const config = (target: string, version: number, interval = 1000 * version): Uint8Array =>
  cosign(signFleetConfig({ policy, target, version, settings: { interval }, owners: [alice] }), policy, bob)

describe('signed configurations spread through the mesh', () => {
  it('CONFIG is kind 11 with its own budget', () => {
    expect(MSG.CONFIG).toBe(11)
    expect(kindOf(encodeMessage({ kind: MSG.CONFIG, configs: [] }))).toBe('config')
  })

  it('a new version reaches every node over 3 hops; a lower one goes no further; a late joiner is handed the highest', async () => {
    const net = createMemoryNetwork({ seed: 51 })
    const a = await startNode(net, 'a', seededKeys(711), [], { routing })
    const b = await startNode(net, 'b', seededKeys(712), [addr(a)], { routing })
    const c = await startNode(net, 'c', seededKeys(713), [addr(b)], { routing })
    const d = await startNode(net, 'd', seededKeys(714), [addr(c)], { routing })
    await linked(b, a.id, c.id)
    await linked(c, d.id)
    const seen: ConfigInfo[] = []
    d.on('config', (info) => { seen.push(info) })
    const v2 = config('group:kitchen', 2)
    expect(a.configure(v2)).toBe('added')
    await until(() => [b, c, d].every((n) => n.configs().length === 1), 'v2 at b, c and d', 3000)
    expect(seen).toMatchObject([{ verdict: 'added', target: 'group:kitchen', version: 2, config: { settings: { interval: 2000 } } }])
    expect(a.configure(v2)).toBe('known')
    // An older version handed to a: it holds v2, so it keeps v2 and passes nothing on.
    expect(a.configure(config('group:kitchen', 1))).toBe('stale')
    const v3 = config('group:kitchen', 3)
    expect(d.configure(v3)).toBe('added')
    await until(() => a.configs()[0]?.length === v3.length && Buffer.from(a.configs()[0] ?? []).equals(v3), 'v3 back at a', 3000)
    expect([a, b, c, d].map((n) => n.configs())).toEqual([[v3], [v3], [v3], [v3]])
    const e = await startNode(net, 'e', seededKeys(715), [addr(b)], { routing })
    await until(() => e.configs().length === 1, 'the highest handed to a late joiner')
    expect(e.configs()).toEqual([v3])
    expect(e.counters.configs).toBe(1)
  })

  it('one short of the threshold, or signed by no owner, goes nowhere and counts against its sender; a node without a fleet file ignores them', async () => {
    const net = createMemoryNetwork({ seed: 52 })
    const a = await startNode(net, 'a', seededKeys(721), [], { routing })
    const b = await startNode(net, 'b', seededKeys(722), [addr(a)], { routing })
    const open = await startNode(net, 'open', seededKeys(723), [addr(a)])
    await linked(a, b.id, open.id)
    const partial = signFleetConfig({ policy, target: 'group:kitchen', version: 9, settings: { interval: 500 }, owners: [alice] })
    expect(a.configure(partial)).toBe('ERR_TOO_FEW_OWNERS')
    const mallory = seededKeys(724)
    const transport = net.createTransport(LINK, { keys: mallory })
    const link = await transport.dial(b.address!)
    await linked(b, mallory.id)
    const drops: DropInfo[] = []
    b.on('drop', (info) => { if (info.from === mallory.id) drops.push(info) })
    const own = parseFleetPolicy({ fleet: 'default', owners: [{ key: toBase64url(mallory.publicKey) }] })
    const forged = signFleetConfig({ policy: own, target: 'group:kitchen', version: 99, settings: { interval: 100 }, owners: [mallory] })
    link.send(encodeMessage({ kind: MSG.CONFIG, configs: [forged, partial, Uint8Array.of(1, 2, 3)] }))
    await until(() => drops.length >= 3, 'all three refused at b')
    expect(drops.map((x) => x.code).sort()).toEqual(['ERR_BAD_CONFIG', 'ERR_NOT_OWNER', 'ERR_TOO_FEW_OWNERS'])
    expect(b.configs()).toEqual([])
    const full = cosign(partial, policy, bob)
    expect(open.configure(full)).toBe('ignored')
    expect(a.configure(full)).toBe('added')
    await until(() => b.configs().length === 1, 'the full one at b')
    expect(open.configs()).toEqual([])
    await transport.close()
  })

  it('a flood of forged configurations beside an honest publisher and subscriber: nothing kept, the flooder banned, every reading delivered', async () => {
    const net = createMemoryNetwork({ seed: 53 })
    const a = await startNode(net, 'a', seededKeys(731), [], { routing })
    const b = await startNode(net, 'b', seededKeys(732), [addr(a)], { routing })
    const c = await startNode(net, 'c', seededKeys(733), [addr(b)], { routing })
    await linked(b, a.id, c.id)
    const honest = config('group:kitchen', 1)
    expect(a.configure(honest)).toBe('added')
    const inbox = new Inbox(c)
    await until(() => a.wanted(), 'c\'s subscription at a')
    const mallory = seededKeys(734)
    const transport = net.createTransport(LINK, { keys: mallory })
    const link = await transport.dial(b.address!)
    await linked(b, mallory.id)
    // Configurations of ever higher versions for every group Mallory can name, signed by a "fleet" of her own.
    const own = parseFleetPolicy({ fleet: 'default', owners: [{ key: toBase64url(mallory.publicKey) }] })
    const forged = Array.from({ length: 200 }, (_, i) => signFleetConfig({ policy: own, target: i % 2 === 0 ? 'group:kitchen' : `group:g${i}`, version: 1000 + i, settings: { interval: 100 }, owners: [mallory] }))
    let published = 0
    const publishing = setInterval(() => { a.publish('telemetry', [{ n: 'temp', v: published++ }]) }, 20)
    for (let k = 0; k < 20 && link.open; k++) link.send(encodeMessage({ kind: MSG.CONFIG, configs: forged }))
    await until(() => !link.open, 'the flooder disconnected (its score below the threshold)', 5000)
    await new Promise((resolve) => setTimeout(resolve, 300))
    clearInterval(publishing)
    await inbox.waitFor(a.id, published)
    expect([a, b, c].map((n) => n.configs())).toEqual([[honest], [honest], [honest]])
    expect(b.counters.bans).toBeGreaterThanOrEqual(1)
    await transport.close()
  })
})
