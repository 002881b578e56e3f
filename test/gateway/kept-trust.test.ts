import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { cosign, parseFleetPolicy, revoke, signFleetFile, toBase64url, type KeyPair } from '../../shared/index.js'
import { Gateway, PostgresStore, SqliteStore, type GatewayStore } from '../../gateway/index.js'
import { fleetFileKey } from '../../gateway/kept-trust.js'
import { tempDir } from '../shared/support.js'
import { seededKeys } from './support.js'

/**
 * The gateway keeps the fleet files it followed and its revocations in its store (gateway/kept-trust.ts),
 * in SQLite and in PostgreSQL (when test/run.sh started one), and takes them again at start only when
 * they verify from the fleet file it was given: a row nobody but the owners could have made is taken,
 * one written into the database without their keys is refused with its code and changes nothing.
 */

const PG_URL = process.env.IOTMESH_PG_URL
const [alice, bob, carol, mallory] = [seededKeys(971), seededKeys(972), seededKeys(973), seededKeys(974)]
const owners = (...keys: KeyPair[]): Array<{ key: string }> => keys.map((o) => ({ key: toBase64url(o.publicKey) }))
const v0 = parseFleetPolicy({ fleet: 'default', threshold: 2, owners: owners(alice, bob) })
const v1 = cosign(signFleetFile({ current: v0, version: 1, next: { threshold: 2, owners: [carol, bob] }, owners: [alice] }), v0, bob)
const p1 = parseFleetPolicy({ fleet: 'default', threshold: 2, owners: owners(carol, bob), version: 1 })

type Place = () => GatewayStore
const kinds: Array<[string, () => Promise<Place>]> = [
  ['SQLite', async () => { const path = join(await tempDir(), 'gateway.db'); return () => new SqliteStore({ path, fleet: 'default' }) }],
  ...(PG_URL === undefined ? [] : [['PostgreSQL', async () => { const fleet = `k${Math.random().toString(36).slice(2, 10)}`; return () => new PostgresStore({ url: PG_URL, fleet }) }] as [string, () => Promise<Place>]])
]

async function start (store: GatewayStore): Promise<{ gateway: Gateway, errors: Array<{ code?: string }>, errorMessages: string[] }> {
  const gateway = new Gateway({ host: '127.0.0.1', port: 0, wsPort: false, homeassistant: false, fleetPolicy: v0, store, mesh: { host: '127.0.0.1', mdns: false, dialTarget: 0, announceLinks: 0 } }, { keys: seededKeys(975) })
  const errors: Array<{ code?: string }> = []
  const errorMessages: string[] = []
  gateway.on('storeError', (e) => { errors.push({ code: (e as { code?: string }).code }); errorMessages.push(e.message) })
  onTestFinished(async () => { await gateway.stop() })
  await gateway.start()
  return { gateway, errors, errorMessages }
}

describe.each(kinds)('the gateway\'s kept fleet files and revocations: %s', (_, makePlace) => {
  it('a restarted gateway takes back v1 and the new owners\' revocation, verified from v0; forged rows are refused with their code', async () => {
    const place = await makePlace()
    const first = await start(place())
    expect(first.gateway.mesh?.updateFleet(v1)).toBe('added')
    const victim = seededKeys(976).id
    expect(first.gateway.mesh?.revoke(cosign(revoke({ policy: p1, device: victim, reason: 'stolen', owners: [carol] }), p1, bob))).toBe('added')
    await first.gateway.keptTrust?.flushed()
    expect(first.gateway.keptTrust?.counters.kept).toBe(2)
    // Rows nobody could have made with the owners' keys: mallory's "v2" (she is no owner) and her revocation of an honest device.
    const store = first.gateway.state?.store as GatewayStore
    const forgedFile = signFleetFile({ current: { ...p1, threshold: 1, owners: parseFleetPolicy({ fleet: 'default', threshold: 1, owners: owners(mallory) }).owners }, version: 2, next: { threshold: 1, owners: [mallory] }, owners: [mallory] })
    await store.keepTrust?.({ kind: 'fleet-file', key: fleetFileKey(2), doc: forgedFile })
    const honest = seededKeys(977).id
    await store.keepTrust?.({ kind: 'revocation', key: honest, doc: revoke({ policy: parseFleetPolicy({ fleet: 'default', threshold: 1, owners: owners(mallory) }), device: honest, reason: 'forged', owners: [mallory] }) })
    await first.gateway.stop()

    const second = await start(place())
    expect(second.gateway.mesh?.fleetPolicy?.owners.map((o) => o.id)).toEqual([carol.id, bob.id])
    expect(second.gateway.trust?.policy.version).toBe(1)
    expect(second.gateway.configs.policy?.version).toBe(1)
    expect(second.gateway.revocations?.has(victim)).toBe(true)
    expect(second.gateway.mesh?.revoked(victim)).toBe(true)
    expect(second.gateway.revocations?.has(honest)).toBe(false)
    expect(second.gateway.keptTrust?.counters).toMatchObject({ restoredFleetFiles: 1, restoredRevocations: 1, refused: 2 })
    expect(second.errors.map((e) => e.code).sort()).toEqual(['ERR_NOT_OWNER', 'ERR_NOT_OWNER'])
  }, 30_000)
})

it('with the memory store nothing is kept: a restarted gateway is back on the fleet file it was given', async () => {
  const gateway = new Gateway({ host: '127.0.0.1', port: 0, wsPort: false, homeassistant: false, fleetPolicy: v0, mesh: { host: '127.0.0.1', mdns: false, dialTarget: 0, announceLinks: 0 } }, { keys: seededKeys(978) })
  onTestFinished(async () => { await gateway.stop() })
  await gateway.start()
  expect(gateway.keptTrust).toBeUndefined()
})
