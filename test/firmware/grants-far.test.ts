import { describe, expect, it, onTestFinished } from 'vitest'
import { cosign, encodeCommand, enroll, parseFleetPolicy, signCommandGrants, toBase64url, type FleetPolicy, type GrantInput, type KeyPair } from '../../shared/index.js'
import { COMMAND_FILTER, MeshNode } from '../../mesh/index.js'
import { LINK, ROUTING, Waiter, addressOf, keysFor, meshInit, startDevice } from './device-support.js'
import { tempDir } from './support.js'

/**
 * A role grant reaches a commander that never linked with the device (issue 13, "role grants need
 * the issuer's credential"): the commander's credential travels with its command (CRED before the
 * first CMD of an issuer on each link, mesh/routing/handlers/credential.ts), so the device knows
 * its roles two hops away. Before, only a commander linked to the device had its roles known, and
 * this one was refused without an answer (ERR_TIMEOUT).
 */

const alice = keysFor(931)
const bob = keysFor(932)
const policy = parseFleetPolicy({ fleet: 'default', threshold: 2, owners: [alice, bob].map((o: KeyPair) => ({ key: toBase64url(o.publicKey) })) })
const credentialOf = (keys: KeyPair, roles: string[] = [], p: FleetPolicy = policy): Uint8Array =>
  cosign(enroll({ policy: p, publicKey: keys.publicKey, name: `d${keys.id.slice(0, 4)}`, roles, cti: keys.publicKey.slice(0, 8), owners: [alice] }), p, bob)
const grantsV = (version: number, grants: GrantInput[]): Uint8Array => cosign(signCommandGrants({ policy, version, grants, owners: [alice] }), policy, bob)

let nextId = 9500
const relay = (issuer: KeyPair, target: string): Uint8Array => encodeCommand({ keys: issuer, target, action: 'relay/set', args: { on: true }, id: nextId++, ttl: 10 })

describe('a role grant for a commander two hops away', () => {
  it('lets in the holder of the role through a relay, and not a commander without it', async () => {
    // Real TCP links on loopback (in the test's own network namespace): credentials are shown and checked in the TCP handshake.
    const waiter = new Waiter()
    const timer = setInterval(waiter.kick, 20)
    onTestFinished(() => { clearInterval(timer) })
    const node = async (host: string, keys: KeyPair, init: Partial<ConstructorParameters<typeof MeshNode>[0]>): Promise<MeshNode> => {
      const n = new MeshNode({ name: host, host: '127.0.0.1', mdns: false, dialTarget: 0, announceLinks: 0, link: LINK, routing: { ...ROUTING, fleetPolicy: policy }, ...init }, { keys })
      onTestFinished(async () => { await n.stop() })
      await n.start()
      return n
    }
    const relayNode = await node('relay', keysFor(940), { credential: credentialOf(keysFor(940)) })
    const keys = keysFor(941)
    const { device } = await startDevice({
      name: 'lamp', mode: 'mesh', sensors: 'battery', interval: 60_000, actuators: ['relay'], dataDir: await tempDir(), fleetFile: policy,
      credential: credentialOf(keys), mesh: meshInit('127.0.0.1', [addressOf(relayNode)])
    }, { keys }, waiter)
    device.on('grants', waiter.kick)
    const hubKeys = keysFor(942)
    const plainKeys = keysFor(943)
    const hub = await node('hub', hubKeys, { peers: [addressOf(relayNode)], credential: credentialOf(hubKeys, ['hub']) })
    const plain = await node('plain', plainKeys, { peers: [addressOf(relayNode)], credential: credentialOf(plainKeys, ['viewer']) })
    for (const c of [hub, plain]) await waiter.until(() => c.interest().some((s) => s.subscriber === device.id && s.filters.includes(COMMAND_FILTER) && s.hops === 2), 'a 2-hop route for commands to the lamp')
    expect(hub.links.has(device.id)).toBe(false)
    const status = async (commander: MeshNode, issuer: KeyPair): Promise<string> => {
      try { return (await commander.command(relay(issuer, device.id), { timeoutMs: 1500 })).status } catch (err) { return (err as { code: string }).code }
    }
    expect(relayNode.configure(grantsV(1, [{ to: 'role:hub', actions: ['relay/#'], on: ['*'] }]))).toBe('added')
    await waiter.until(() => device.grantState?.version === 1, 'v1 at the lamp')
    expect(await status(hub, hubKeys)).toBe('ok')
    expect(device.actuatorState).toEqual({ relay: true })
    expect(await status(plain, plainKeys)).toBe('ERR_TIMEOUT') // its credential arrived too, without the role: refused unanswered, as a stranger
    expect(device.counters.commands?.refused.ERR_NOT_ALLOWED).toBeGreaterThanOrEqual(1) // once per copy the client resent
  }, 60_000)
})
