import { describe, expect, it } from 'vitest'
import {
  Commanders, GRANTS_TARGET, cmdTopic, configTopic, enroll, encodeCommand, manualClock, parseFleetPolicy, signCommandGrants, systemClock, toBase64url, type GrantInput, type KeyPair
} from '../../shared/index.js'
import { GatewayTrust } from '../../gateway/trust.js'
import { CredentialCheck } from '../../mesh/index.js'
import type { DropEvent, Gateway } from '../../gateway/index.js'
import { describeNet } from '../helpers/netns.js'
import { startCommandDevice } from './command-device.js'
import { connectClient, mqttUrl, nextEvent, seededKeys, startGateway } from './support.js'

/**
 * The fleet's owner-signed grant policy at the gateway (issue 13, "Grants"; gateway/trust.ts,
 * gateway/commands-guard.ts check 5): once the gateway holds a policy (retained on
 * iotmesh/<fleet>/$config/$grants, or from the mesh), a command whose issuer the policy grants no
 * such action on that device is refused before it is forwarded (command_not_granted,
 * ERR_NOT_ALLOWED, counted), whoever the gateway's commanders file lists; the gateway's own commands
 * too (POST /api/devices/:id/commands: 403). Real embedded broker, a device judging commands with
 * the device's own executor (which would obey every issuer here: the gateway is what refuses).
 */

const ownerA = seededKeys(411)
const ownerB = seededKeys(412)
const cli = seededKeys(413) // granted relay/# on the device
const intruder = seededKeys(414) // in the gateway's commanders file, granted nothing
const target = seededKeys(415) // the device
const gatewayKeys = seededKeys(416)
const policy = parseFleetPolicy({ fleet: 'default', threshold: 2, owners: [ownerA, ownerB].map((o: KeyPair, i) => ({ key: toBase64url(o.publicKey), name: `owner-${i + 1}` })) })
const grantsV = (version: number, grants: GrantInput[]): Buffer => Buffer.from(signCommandGrants({ policy, version, grants, owners: [ownerA, ownerB] }))

let nextId = 1
const command = (issuer: KeyPair, action = 'relay/set'): Buffer =>
  Buffer.from(encodeCommand({ keys: issuer, target: target.id, action, args: { on: nextId % 2 === 0 }, id: nextId++, issuedAt: Date.now() / 1000 }))

async function post (gateway: Gateway, body: unknown): Promise<{ status: number, json: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${gateway.ports.http ?? 0}/api/devices/${target.id}/commands`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  return { status: res.status, json: await res.json() as Record<string, unknown> }
}

describeNet('grants at the gateway (embedded broker)', () => {
  it('refuses early what the policy grants nobody, counted, never forwarded; the granted issuer commands throughout, a flood of refused ones beside it', async () => {
    const commanders = new Commanders([cli, intruder].map((k) => ({ id: k.id, publicKey: k.publicKey, name: undefined, actions: ['relay/#'] })))
    const gateway = await startGateway({ fleetPolicy: policy, commanders, http: { host: '127.0.0.1', port: 0 } }, { keys: gatewayKeys })
    gateway.learnKey(target.publicKey)
    const url = mqttUrl(gateway)
    const device = await startCommandDevice(url, target, [cli, intruder, gatewayKeys].map((k) => ({ ...k, actions: ['#'] })))
    const publisher = await connectClient(url)
    const send = async (payload: Buffer, action = 'relay/set'): Promise<void> => { await publisher.client.publishAsync(cmdTopic('default', target.id, action), payload, { qos: 1 }) }

    // No policy held yet: the commanders file decides, as before.
    await send(command(intruder))
    expect((await device.nextOutcome()).verdict).toBe('executed')

    // The owners push a policy through the broker (retained on $config/$grants): only cli, only relay/#, only on this device.
    await publisher.client.publishAsync(configTopic('default', GRANTS_TARGET), grantsV(1, [{ to: cli.publicKey, actions: ['relay/#'], on: [target.id] }]), { qos: 1, retain: true })
    expect(gateway.trust?.grantsVersion).toBe(1)

    const refusal = nextEvent<DropEvent>(gateway, 'drop', (d) => d.reason === 'command_not_granted')
    await send(command(intruder))
    expect(await refusal).toMatchObject({ reason: 'command_not_granted', code: 'ERR_NOT_ALLOWED', deviceId: target.id })
    // The granted issuer, but an action it was not granted: refused too.
    await send(command(cli, 'light/set'), 'light/set')
    // A flood of ungranted commands (each fresh, each validly signed) beside the granted issuer's.
    const flood = Array.from({ length: 100 }, () => command(intruder))
    await Promise.all(flood.map(async (c) => { await send(c) }))
    const executed = device.nextOutcome()
    await send(command(cli))
    expect((await executed).verdict).toBe('executed')
    expect(device.outcomes.map((o) => o.verdict)).toEqual(['executed', 'executed']) // none of the 102 refused reached the device
    expect(gateway.counters.dropped.command_not_granted).toBe(102)
    expect(await gateway.metrics.metrics()).toMatch(/^iotmesh_gateway_dropped_total\{reason="command_not_granted"[^}]*\} 102$/m)

    // The gateway's own command: refused before it is sent (403), counted; the device saw nothing.
    const sentBefore = gateway.commands.counters.sent
    expect(await post(gateway, { action: 'relay/set', args: { on: true }, timeout: 1 })).toMatchObject({ status: 403, json: { code: 'ERR_NOT_ALLOWED' } })
    expect(gateway.commands.counters.sent).toBe(sentBefore)
    expect(gateway.counters.dropped.command_not_granted).toBe(103)

    // A newer policy grants the gateway relay/set on every device: its command goes through. An older one replayed changes nothing.
    await publisher.client.publishAsync(configTopic('default', GRANTS_TARGET), grantsV(2, [
      { to: cli.publicKey, actions: ['relay/#'], on: [target.id] }, { to: gatewayKeys.publicKey, actions: ['relay/set'], on: ['*'], name: 'gateway' }
    ]), { qos: 1, retain: true })
    expect(gateway.trust?.grantsVersion).toBe(2)
    expect(await post(gateway, { action: 'relay/set', args: { on: true }, timeout: 5 })).toMatchObject({ status: 200, json: { status: 'ok', issuer: gatewayKeys.id } })
    expect(device.outcomes.map((o) => o.verdict)).toEqual(['executed', 'executed', 'executed'])
  })
})

describe('GatewayTrust.judge: refuses only what no grant can allow', () => {
  const clock = systemClock
  const trustWith = (grants: GrantInput[], credentials: Record<string, Uint8Array> = {}): GatewayTrust => {
    const trust = new GatewayTrust(policy, { clock, revocation: () => undefined, revocations: () => [] })
    expect(trust.considerGrants(grantsV(1, grants))).toBe('applied')
    for (const [id, bytes] of Object.entries(credentials)) trust.noteStatusCredential(id as never, id === cli.id ? cli.publicKey : target.publicKey, bytes)
    return trust
  }

  it('with no policy held it has no say; a key grant is exact', () => {
    expect(new GatewayTrust(policy, { clock, revocation: () => undefined, revocations: () => [] }).judge(intruder.id, 'relay/set', target.id)).toBeUndefined()
    const trust = trustWith([{ to: cli.publicKey, actions: ['relay/+'], on: [target.id] }])
    expect(trust.judge(cli.id, 'relay/set', target.id)).toBeUndefined()
    expect(trust.judge(cli.id, 'relay/set', intruder.id)).toMatch(/grants/)
    expect(trust.judge(cli.id, 'light/set', target.id)).toMatch(/grants/)
    expect(trust.judge(intruder.id, 'relay/set', target.id)).toMatch(/grants/)
  })

  it('a group it cannot see counts as covering; a role counts unless a credential it verified says otherwise', () => {
    const hub = Buffer.from(enroll({ policy, publicKey: cli.publicKey, name: 'hub', roles: ['hub'], cti: Uint8Array.of(1), owners: [ownerA, ownerB] }))
    const plain = Buffer.from(enroll({ policy, publicKey: target.publicKey, name: 'sensor', roles: ['sensor'], cti: Uint8Array.of(2), owners: [ownerA, ownerB] }))
    const byGroup = trustWith([{ to: cli.publicKey, actions: ['#'], on: ['group:kitchen'] }])
    expect(byGroup.judge(cli.id, 'relay/set', target.id)).toBeUndefined()
    const byRole = trustWith([{ to: 'role:hub', actions: ['relay/#'], on: ['role:actuator'] }])
    expect(byRole.judge(cli.id, 'relay/set', target.id)).toBeUndefined() // nothing known of either: the device decides
    const known = trustWith([{ to: 'role:hub', actions: ['relay/#'], on: ['role:actuator'] }], { [cli.id]: hub, [target.id]: plain })
    expect(known.judge(cli.id, 'relay/set', target.id)).toMatch(/grants/) // the target's verified credential has no role actuator
    const knownOk = trustWith([{ to: 'role:hub', actions: ['relay/#'], on: ['*'] }], { [cli.id]: hub })
    expect(knownOk.judge(cli.id, 'relay/set', target.id)).toBeUndefined()
    expect(knownOk.judge(intruder.id, 'relay/set', target.id)).toBeUndefined() // its roles are unknown
    expect(knownOk.credentialOf(cli.id)).toMatchObject({ state: 'enrolled', owners: ['owner-1', 'owner-2'], roles: ['hub'], source: 'status' })
  })
})

describe('GatewayTrust: credentials in statuses', () => {
  it('checks each distinct credential once, at most 50 a second (200 at once): a flood of forged ones costs a bounded number of signature checks, a genuine one is checked once the budget refills', () => {
    const clock = manualClock({ wallStart: Date.now() })
    const trust = new GatewayTrust(policy, { clock, revocation: () => undefined, revocations: () => [] })
    const genuine = enroll({ policy, publicKey: cli.publicKey, roles: ['hub'], cti: Uint8Array.of(9), owners: [ownerA, ownerB] })
    for (let i = 0; i < 1000; i++) {
      // Each distinct, each with the owners' kids and a broken signature: each would cost owner signature checks.
      const forged = enroll({ policy, publicKey: cli.publicKey, cti: Uint8Array.of(i % 256, i >> 8, 1), owners: [ownerA] })
      forged[forged.length - 1] = (forged.at(-1) ?? 0) ^ 0x01
      trust.noteStatusCredential(cli.id, cli.publicKey, forged)
    }
    expect(trust.counters).toMatchObject({ credentialsChecked: 200, credentialsSkipped: 800 })
    trust.noteStatusCredential(cli.id, cli.publicKey, genuine)
    expect(trust.credentialOf(cli.id).state).not.toBe('enrolled') // over budget: not checked yet
    clock.advance(100) // 5 checks' worth
    trust.noteStatusCredential(cli.id, cli.publicKey, genuine)
    expect(trust.credentialOf(cli.id)).toMatchObject({ state: 'enrolled', roles: ['hub'] })
    trust.noteStatusCredential(cli.id, cli.publicKey, genuine) // the same again: no check
    expect(trust.counters.credentialsChecked).toBe(201)
  })

  it('hands each status credential that verified to its mesh node\'s cache, so the broker device\'s readings it bridges carry it (CRED); a forged one is not kept', () => {
    const clock = manualClock({ wallStart: Date.now() })
    const node = new CredentialCheck({ policy }, { revoked: () => false, clock })
    const trust = new GatewayTrust(policy, { clock, revocation: () => undefined, revocations: () => [], verified: (bytes, c) => { node.keep(bytes, c) } })
    const forged = enroll({ policy, publicKey: target.publicKey, cti: Uint8Array.of(7, 7), owners: [ownerA] })
    trust.noteStatusCredential(target.id, target.publicKey, forged) // one owner of two: ERR_TOO_FEW_OWNERS
    expect(node.bytesOf(target.id)).toBeUndefined()
    const genuine = enroll({ policy, publicKey: cli.publicKey, roles: ['hub'], cti: Uint8Array.of(8, 8), owners: [ownerA, ownerB] })
    trust.noteStatusCredential(cli.id, cli.publicKey, genuine)
    expect(Buffer.from(node.bytesOf(cli.id) ?? []).equals(Buffer.from(genuine))).toBe(true)
    expect(node.enrolled(cli.id)).toBe(true)
    expect(node.counters.verified).toBe(0) // verified once, by the gateway
  })
})
