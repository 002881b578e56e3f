import { describe, expect, it, onTestFinished } from 'vitest'
import {
  cosign, deviceRoot, encodeCommand, enroll, parseCommanders, parseFleetPolicy, signCommandGrants, toBase64url, type FleetPolicy, type GrantInput, type KeyPair
} from '../../shared/index.js'
import { COMMAND_FILTER, MeshNode } from '../../mesh/index.js'
import type { Device } from '../../firmware-sim/index.js'
import { LINK, ROUTING, Waiter, addressOf, keysFor, meshInit, startDevice } from './device-support.js'
import { tempDir } from './support.js'

/**
 * An enrolled device takes who may command it from the owners' grant policy (firmware-sim/device/grants.ts),
 * which reaches it through the mesh as configurations do: a key grant lets a commander in, a role
 * grant lets in a commander whose credential carries the role, an empty policy keeps everyone out
 * (the commanders file no longer counts once a policy is held); an older policy replayed by a
 * neighbour is refused (ERR_CONFIG_STALE, counted) and a forged newer one is dropped by the mesh
 * (ERR_NOT_OWNER), while an honest device's readings keep flowing; the policy survives a restart.
 */

const alice = keysFor(901)
const bob = keysFor(902)
const mallory = keysFor(903)
const policy = parseFleetPolicy({ fleet: 'default', threshold: 2, owners: [alice, bob].map((o: KeyPair) => ({ key: toBase64url(o.publicKey) })) })
const credentialOf = (keys: KeyPair, roles: string[] = [], p: FleetPolicy = policy): Uint8Array =>
  cosign(enroll({ policy: p, publicKey: keys.publicKey, name: `d${keys.id.slice(0, 4)}`, roles, cti: keys.publicKey.slice(0, 8), owners: [alice] }), p, bob)
const grantsV = (version: number, grants: GrantInput[]): Uint8Array => cosign(signCommandGrants({ policy, version, grants, owners: [alice] }), policy, bob)

let nextId = 9000
const relay = (issuer: KeyPair, target: string, on = true): Uint8Array => encodeCommand({ keys: issuer, target, action: 'relay/set', args: { on }, id: nextId++, ttl: 10 })

describe('an enrolled device obeys the owners\' grant policy', () => {
  it('grants through the mesh let a commander in, by key and by role; revoking keeps it out; replays and forgeries change nothing', async () => {
    // Real TCP links on loopback (in the test's own network namespace): credentials are shown and checked only in the TCP handshake.
    const waiter = new Waiter()
    const timer = setInterval(waiter.kick, 20)
    onTestFinished(() => { clearInterval(timer) })
    const node = async (host: string, keys: KeyPair, init: Partial<ConstructorParameters<typeof MeshNode>[0]>): Promise<MeshNode> => {
      const n = new MeshNode({ name: host, host: '127.0.0.1', mdns: false, dialTarget: 0, announceLinks: 0, link: LINK, routing: ROUTING, ...init }, { keys })
      onTestFinished(async () => { await n.stop() })
      await n.start()
      return n
    }
    const owner = await node('owner', alice, { routing: { ...ROUTING, fleetPolicy: policy } })
    const dataDir = await tempDir()
    const keys = keysFor(911)
    const commanderKeys = keysFor(912)
    const start = async (): Promise<Device> => {
      const { device } = await startDevice({
        name: 'lamp', mode: 'mesh', sensors: 'battery', interval: 60_000, actuators: ['relay'], groups: ['kitchen'], dataDir, fleetFile: policy,
        credential: credentialOf(keys), commanders: parseCommanders({ commanders: [{ key: toBase64url(commanderKeys.publicKey), actions: ['#'] }] }),
        mesh: meshInit('127.0.0.1', [addressOf(owner)])
      }, { keys }, waiter)
      device.on('grants', waiter.kick)
      return device
    }
    let device = await start()
    // The honest publisher: an enrolled device whose readings the owner's node receives throughout.
    const pubKeys = keysFor(913)
    const { device: publisher } = await startDevice({
      name: 'meter', mode: 'mesh', sensors: 'battery', interval: 100, fleetFile: policy, credential: credentialOf(pubKeys), mesh: meshInit('127.0.0.1', [addressOf(device.node)])
    }, { keys: pubKeys }, waiter)
    const readings: number[] = []
    const sub = owner.subscribe(`${deviceRoot('default', publisher.id)}/#`, { buffer: 1024 })
    void (async () => { for await (const d of sub) { readings.push(d.time); waiter.kick() } })()
    onTestFinished(() => { sub.close() })
    // The commander: enrolled with the role "hub", linked to the lamp (which verifies its credential at the handshake).
    const commander = await node('commander', commanderKeys, { peers: [addressOf(device.node)], credential: credentialOf(commanderKeys, ['hub']) })
    await waiter.until(() => commander.interest().some((s) => s.subscriber === device.id && s.filters.includes(COMMAND_FILTER)), 'a route for commands to the lamp')
    const status = async (): Promise<string> => {
      try { return (await commander.command(relay(commanderKeys, device.id), { timeoutMs: 800 })).status } catch (err) { return (err as { code: string }).code }
    }

    // No policy yet: the commanders file decides, as on a device that is not enrolled.
    expect(device.grantState).toEqual({ version: undefined, counters: { applied: 0, refused: {} } })
    expect(await status()).toBe('ok')

    // v1: an empty policy. From now on the policy alone decides: the file's commander is out.
    expect(owner.configure(grantsV(1, []))).toBe('added')
    await waiter.until(() => device.grantState?.version === 1, 'v1 at the lamp')
    const refusedBefore = device.counters.commands?.refused.ERR_NOT_ALLOWED ?? 0
    expect(await status()).toBe('ERR_TIMEOUT') // no grant names it: refused without an answer, as a stranger
    expect(device.counters.commands?.refused.ERR_NOT_ALLOWED).toBe(refusedBefore + 1)

    // v2: a key grant for relay actions on the lamp's id.
    const v2 = grantsV(2, [{ to: commanderKeys.publicKey, actions: ['relay/#'], on: [device.id] }])
    expect(owner.configure(v2)).toBe('added')
    await waiter.until(() => device.grantState?.version === 2, 'v2 at the lamp')
    expect(await status()).toBe('ok')
    expect(device.actuatorState).toEqual({ relay: true })
    const lightSet = encodeCommand({ keys: commanderKeys, target: device.id, action: 'light/set', args: { on: true }, id: nextId++, ttl: 10 })
    await expect(commander.command(lightSet, { timeoutMs: 2000 })).resolves.toMatchObject({ status: 'ERR_NOT_ALLOWED' }) // named, but not for this action

    // v3: a role grant on the group instead: the commander's credential carries "hub".
    expect(owner.configure(grantsV(3, [{ to: 'role:hub', actions: ['#'], on: ['group:kitchen'] }]))).toBe('added')
    await waiter.until(() => device.grantState?.version === 3, 'v3 at the lamp')
    expect(await status()).toBe('ok')

    // v4 revokes every grant: the commander is out again.
    expect(owner.configure(grantsV(4, [{ to: 'role:admin', actions: ['#'], on: ['*'] }]))).toBe('added')
    await waiter.until(() => device.grantState?.version === 4, 'v4 at the lamp')
    expect(await status()).toBe('ERR_TIMEOUT')

    // A hostile insider (enrolled; a fleet file of its own that also trusts mallory) replays v2, then forges v99.
    const hostileKeys = keysFor(914)
    const hostilePolicy = parseFleetPolicy({ fleet: 'default', threshold: 1, owners: [alice, bob, mallory].map((o) => ({ key: toBase64url(o.publicKey) })) })
    const hostile = new MeshNode({ name: 'hostile', host: '127.0.0.1', mdns: false, dialTarget: 0, announceLinks: 0, link: LINK, routing: { ...ROUTING, fleetPolicy: hostilePolicy },
      credential: credentialOf(hostileKeys), requireCredentials: false, peers: [addressOf(device.node)] }, { keys: hostileKeys })
    onTestFinished(async () => { await hostile.stop() })
    expect(hostile.configure(v2)).toBe('added')
    const drops: string[] = []
    device.node?.on('drop', ({ code, from }) => { if (from === hostileKeys.id) { drops.push(code); waiter.kick() } })
    await hostile.start()
    await waiter.until(() => device.grantState?.counters.refused.ERR_CONFIG_STALE === 1, 'the replayed v2 refused as stale')
    const forged = signCommandGrants({ policy: hostilePolicy, version: 99, grants: [{ to: commanderKeys.publicKey, actions: ['#'], on: ['*'] }], owners: [mallory] })
    await waiter.until(() => hostile.configure(forged) === 'added', 'the forgery taken by the hostile node (after the lamp\'s v4)')
    await waiter.until(() => drops.includes('ERR_NOT_OWNER'), 'the forgery refused by the lamp\'s node')
    expect(device.grantState?.version).toBe(4)
    expect(await status()).toBe('ERR_TIMEOUT')

    // The honest publisher's readings kept arriving throughout, and keep arriving.
    const seen = readings.length
    expect(seen).toBeGreaterThan(10)
    await waiter.until(() => readings.length >= seen + 5, 'more readings from the honest publisher')

    // The policy is kept in the data directory: after a restart, v4 still decides.
    await device.stop()
    device = await start()
    expect(device.grantState?.version).toBe(4)
  }, 60_000)
})
