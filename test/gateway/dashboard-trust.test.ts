import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'
import {
  GRANTS_TARGET, configTopic, cosign, enroll, onlineStatus, parseFleetPolicy, revoke, signCommandGrants, statusTopic, toBase64url, type KeyPair
} from '../../shared/index.js'
import type { DeviceInfo, Gateway, StatusEvent } from '../../gateway/index.js'
import { revocationTopic } from '../../gateway/revocations.js'
import { SKIPPED_WITHOUT_CHROMIUM, hasChromium, openBrowser, warnWithoutChromium } from '../helpers/browser.js'
import { describeNet } from '../helpers/netns.js'
import { connectClient, mqttUrl, nextEvent, seededKeys, startGateway } from './support.js'

/**
 * The fleet's trust on the HTTP API and the dashboard (issue 13; gateway/trust.ts, GET /api/fleet,
 * `credential` on GET /api/devices, gateway/dashboard/trust.js): each device's credential state
 * (enrolled by which owners and until when, expired, revoked with the owners' reason, invalid with
 * its code, none), the fleet's revocations and the grant policy's version, in JSON and in headless
 * Chromium, updated live when a revocation or a new policy arrives.
 */

const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url))
warnWithoutChromium('dashboard-trust.test.ts')

const ownerA = seededKeys(431)
const ownerB = seededKeys(432)
const mallory = seededKeys(433)
const policy = parseFleetPolicy({ fleet: 'default', threshold: 2, owners: [{ key: toBase64url(ownerA.publicKey), name: 'ana' }, { key: toBase64url(ownerB.publicKey), name: 'ben' }] })
const mallorys = parseFleetPolicy({ fleet: 'default', threshold: 1, owners: [{ key: toBase64url(mallory.publicKey) }] })
const kitchen = seededKeys(441) // enrolled, roles hub
const cellar = seededKeys(442) // enrolled, expired
const garage = seededKeys(443) // enrolled, revoked
const shed = seededKeys(444) // no credential
const attic = seededKeys(445) // a credential no owner signed
const now = (): number => Math.floor(Date.now() / 1000)
let cti = 0
const credentialOf = (keys: KeyPair, init: { roles?: string[], issuedAt?: number, lifetime?: number, policy?: typeof policy, owners?: KeyPair[] } = {}): Uint8Array =>
  enroll({ policy: init.policy ?? policy, publicKey: keys.publicKey, name: 'x', roles: init.roles ?? [], cti: Uint8Array.of(++cti), owners: init.owners ?? [ownerA, ownerB], ...(init.issuedAt === undefined ? {} : { issuedAt: init.issuedAt }), ...(init.lifetime === undefined ? {} : { lifetime: init.lifetime }) })
const revocationOf = (keys: KeyPair, reason: string): Buffer => Buffer.from(cosign(revoke({ policy, device: keys.id, reason, owners: [ownerA] }), policy, ownerB))
const grants = (version: number): Buffer => Buffer.from(signCommandGrants({ policy, version, owners: [ownerA, ownerB], grants: [{ to: 'role:hub', actions: ['relay/#'], on: ['*'], name: 'hubs' }] }))

async function fleetWithDevices (gateway: Gateway): Promise<void> {
  const url = mqttUrl(gateway)
  const devices: Array<[KeyPair, Uint8Array | undefined]> = [
    [kitchen, credentialOf(kitchen, { roles: ['hub'] })],
    [cellar, credentialOf(cellar, { issuedAt: now() - 7200, lifetime: 3600 })],
    [garage, credentialOf(garage)],
    [shed, undefined],
    [attic, credentialOf(attic, { policy: mallorys, owners: [mallory] })]
  ]
  for (const [keys, credential] of devices) {
    const client = await connectClient(url) // one connection claims one device (its online status)
    const applied = nextEvent<StatusEvent>(gateway, 'status', (e) => e.deviceId === keys.id)
    await client.client.publishAsync(statusTopic('default', keys.id), onlineStatus({ publicKey: keys.publicKey, name: keys === kitchen ? 'kitchen' : undefined, ...(credential === undefined ? {} : { credential }) }), { qos: 1, retain: true })
    await applied
  }
  const owner = await connectClient(url)
  await owner.client.publishAsync(revocationTopic('default', garage.id), revocationOf(garage, 'stolen from the garage'), { qos: 1, retain: true })
  await owner.client.publishAsync(configTopic('default', GRANTS_TARGET), grants(3), { qos: 1, retain: true })
}

async function getJson (gateway: Gateway, path: string): Promise<Record<string, unknown>> {
  const res = await fetch(`http://127.0.0.1:${gateway.ports.http ?? 0}${path}`)
  expect(res.status).toBe(200)
  return await res.json() as Record<string, unknown>
}

describeNet('the fleet\'s trust on the API and the dashboard', () => {
  it('GET /api/devices shows each device\'s credential state; GET /api/fleet the owners, revocations and grant policy; nothing of it without a fleet file', async () => {
    const gateway = await startGateway({ fleetPolicy: policy, http: { host: '127.0.0.1', port: 0 } })
    await fleetWithDevices(gateway)
    const devices = new Map(((await getJson(gateway, '/api/devices')).devices as DeviceInfo[]).map((d) => [d.id, d]))
    expect(devices.get(kitchen.id)?.credential).toMatchObject({ state: 'enrolled', owners: ['ana', 'ben'], roles: ['hub'], source: 'status', expiresAt: expect.any(Number) })
    expect(devices.get(cellar.id)?.credential).toMatchObject({ state: 'expired', owners: ['ana', 'ben'] })
    expect(devices.get(garage.id)?.credential).toMatchObject({ state: 'revoked', reason: 'stolen from the garage', owners: ['ana', 'ben'], revokedAt: expect.any(Number) })
    expect(devices.get(shed.id)?.credential).toEqual({ state: 'none' })
    expect(devices.get(attic.id)?.credential).toEqual({ state: 'invalid', code: 'ERR_NOT_OWNER' })
    expect((await getJson(gateway, `/api/devices/${kitchen.id}`)).credential).toMatchObject({ state: 'enrolled' })
    expect(await getJson(gateway, '/api/fleet')).toEqual({
      fleet: 'default',
      fleetFile: true,
      threshold: 2,
      owners: [{ id: ownerA.id, name: 'ana' }, { id: ownerB.id, name: 'ben' }],
      revocations: [{ device: garage.id, reason: 'stolen from the garage', issuedAt: expect.any(Number), owners: ['ana', 'ben'] }],
      grants: { version: 3, issuedAt: expect.any(Number), grants: [{ to: 'role:hub', actions: ['relay/#'], on: ['*'], name: 'hubs' }] }
    })
    expect(gateway.summary().trust).toEqual({ revocations: 1, grants: 3 }) // the live stream's summary (the dashboard's header)

    const plain = await startGateway({ http: { host: '127.0.0.1', port: 0 } })
    const client = await connectClient(mqttUrl(plain))
    await client.client.publishAsync(statusTopic('default', kitchen.id), onlineStatus({ publicKey: kitchen.publicKey, credential: credentialOf(kitchen) }), { qos: 1, retain: true })
    expect(await getJson(plain, '/api/fleet')).toEqual({ fleet: 'default', fleetFile: false, revocations: [], grants: null })
    expect(((await getJson(plain, '/api/devices')).devices as DeviceInfo[])[0]).not.toHaveProperty('credential')
  })

  it.skipIf(!hasChromium)(`the dashboard shows it in headless Chromium and follows a revocation and a new grant policy live${SKIPPED_WITHOUT_CHROMIUM}`, async () => {
    const gateway = await startGateway({ fleetPolicy: policy, http: { host: '127.0.0.1', port: 0 }, live: { flushMs: 50, sweepMs: 200 } })
    await fleetWithDevices(gateway)
    const page = await openBrowser({ width: 1440, height: 1100 })
    const pageErrors: string[] = []
    page.on('pageerror', (err) => pageErrors.push(err.message))
    page.on('console', (message) => { if (message.type() === 'error') pageErrors.push(message.text()) })
    await page.goto(`http://127.0.0.1:${gateway.ports.http ?? 0}/`)
    const cell = (keys: KeyPair): string => `#fleet tr[data-id="${keys.id}"] [data-col="cred"]`
    await page.waitForSelector(cell(attic))
    expect(await page.textContent(cell(kitchen))).toBe('enrolled')
    expect(await page.getAttribute(cell(kitchen), 'title')).toMatch(/^enrolled by ana, ben, until \d{4}-\d\d-\d\d; roles hub$/)
    expect(await page.textContent(cell(cellar))).toBe('expired')
    expect(await page.textContent(cell(garage))).toBe('revoked')
    expect(await page.getAttribute(cell(garage), 'title')).toMatch(/^revoked: stolen from the garage/)
    await page.waitForSelector(`#fleet tr.revoked[data-id="${garage.id}"]`)
    expect(await page.textContent(cell(shed))).toBe('none')
    expect(await page.getAttribute(cell(attic), 'title')).toBe('invalid credential: ERR_NOT_OWNER')
    await page.waitForSelector('#trust[data-grants="3"]')
    expect(await page.textContent('#trust-grants')).toBe('version 3, 1 grant')
    expect(await page.textContent('#trust-owners')).toBe('2 of 2: ana, ben')
    expect(await page.textContent(`#revocations li[data-id="${garage.id}"] .reason`)).toBe('stolen from the garage')
    // The detail of the selected device.
    await page.click(`#fleet tr[data-id="${kitchen.id}"]`)
    await page.waitForFunction(() => [...document.querySelectorAll('#detail dt')].some((dt) => dt.textContent === 'credential'))
    expect(await page.evaluate(() => [...document.querySelectorAll('#detail dt')].find((dt) => dt.textContent === 'credential')?.nextElementSibling?.textContent)).toMatch(/^enrolled by ana, ben, until/)
    await page.evaluate(() => { (window as unknown as { noReload: boolean }).noReload = true })

    // Live: the kitchen is revoked and a newer grant policy arrives; nothing is reloaded.
    const owner = await connectClient(mqttUrl(gateway))
    await owner.client.publishAsync(revocationTopic('default', kitchen.id), revocationOf(kitchen, 'sold'), { qos: 1, retain: true })
    await owner.client.publishAsync(configTopic('default', GRANTS_TARGET), grants(4), { qos: 1, retain: true })
    await page.waitForSelector(`#fleet tr.revoked[data-id="${kitchen.id}"]`)
    expect(await page.textContent(cell(kitchen))).toBe('revoked')
    await page.waitForSelector('#trust[data-revocations="2"][data-grants="4"]')
    expect(await page.textContent(`#revocations li[data-id="${kitchen.id}"] .reason`)).toBe('sold')
    expect(await page.textContent(`#revocations li[data-id="${kitchen.id}"] .name`)).toBe('kitchen') // by its name where the table knows one
    expect(await page.evaluate(() => (window as unknown as { noReload?: boolean }).noReload)).toBe(true)
    expect(pageErrors).toEqual([])
    await mkdir(ARTIFACTS, { recursive: true })
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-trust.png'), fullPage: true })
  }, 60_000)
})
