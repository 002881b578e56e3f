import { describe, expect, it } from 'vitest'
import { cosign, parseFleetPolicy, revoke, signFleetFile, toBase64url, type KeyPair } from '../../shared/index.js'
import { Waiter, gateway, keysFor } from '../firmware/device-support.js'

/**
 * The gateway follows a newer signed fleet file its mesh node takes (mesh/routing/handlers/fleet.ts):
 * its broker's revocations, its configuration guard and its trust (the API's owners) judge by the
 * new owners from then on.
 */

const [alice, bob, carol] = [keysFor(981), keysFor(982), keysFor(983)]
const owners = (...keys: KeyPair[]): Array<{ key: string }> => keys.map((o) => ({ key: toBase64url(o.publicKey) }))
const v0 = parseFleetPolicy({ fleet: 'default', threshold: 2, owners: owners(alice, bob) })
const p1 = parseFleetPolicy({ fleet: 'default', threshold: 2, owners: owners(carol, bob), version: 1 })
const v1 = cosign(signFleetFile({ current: v0, version: 1, next: { threshold: 2, owners: [carol, bob] }, owners: [alice] }), v0, bob)

describe('the gateway follows the fleet file the mesh brings', () => {
  it('its broker revocations, configuration guard and trust take the new owners', async () => {
    const waiter = new Waiter()
    const { gateway: gw } = await gateway(waiter, { fleetPolicy: v0, mesh: { host: '127.0.0.1', mdns: false, dialTarget: 0, announceLinks: 0 } }, { keys: keysFor(984) })
    expect(gw.mesh?.updateFleet(v1)).toBe('added')
    expect(gw.trust?.policy.version).toBe(1)
    expect(gw.configs.policy?.version).toBe(1)
    expect(gw.revocations?.set.policy.owners.map((o) => o.id)).toEqual([carol.id, bob.id])
    const victim = keysFor(985).id
    expect(() => gw.revocations?.set.add(cosign(revoke({ policy: v0, device: victim, reason: 'lost', owners: [alice] }), v0, bob))).toThrow(/owner signatures/)
    expect(gw.revocations?.set.add(cosign(revoke({ policy: p1, device: victim, reason: 'lost', owners: [carol] }), p1, bob)).verdict).toBe('added')
  }, 30_000)
})
