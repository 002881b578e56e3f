import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { connect } from 'mqtt'
import { describe, expect, it, onTestFinished } from 'vitest'
import { GRANTS_TARGET, configTopic, cosign, enroll, parseFleetPolicy, signCommandGrants, toBase64url, type KeyPair } from '../../shared/index.js'
import type { DropEvent } from '../../gateway/index.js'
import { cli } from '../helpers/cli.js'
import { saveKeyFile } from '../../shared/node.js'
import { TEST_READER_USER, Waiter, gateway, keysFor, startDevice, subscriber } from './device-support.js'
import { tempDir } from './support.js'

/**
 * The grant policy on the broker path: `iotmesh fleet grant --publish --broker` retains it on
 * iotmesh/<fleet>/$config/$grants; the gateway's guard (gateway/config-guard.ts) takes only one the
 * owners signed, newer than the one it holds; an enrolled device in broker mode reads it and obeys
 * it; forged and older policies are refused with their codes while an honest subscriber keeps reading.
 */

const alice = keysFor(951)
const bob = keysFor(952)
const mallory = keysFor(953)
const policy = parseFleetPolicy({ fleet: 'default', threshold: 2, owners: [alice, bob].map((o: KeyPair) => ({ key: toBase64url(o.publicKey) })) })

describe('grants retained on the broker', () => {
  it('reach an enrolled device in broker mode; the guard refuses forged and stale ones; readings go on', async () => {
    const waiter = new Waiter()
    const { gateway: gw, url } = await gateway(waiter, { fleetPolicy: policy })
    const drops: DropEvent[] = []
    gw.on('drop', (d) => { if (d.reason === 'bad_config') drops.push(d) })
    const dir = await tempDir()
    const keys = keysFor(960)
    const credential = cosign(enroll({ policy, publicKey: keys.publicKey, name: 'lamp', cti: keys.publicKey.slice(0, 8), owners: [alice] }), policy, bob)
    const { device, signed: seqs } = await startDevice({
      mode: 'broker', name: 'lamp', broker: url, sensors: 'battery', interval: 200, actuators: ['relay'], fleetFile: policy, credential, dataDir: dir
    }, { keys }, waiter)
    device.on('grants', waiter.kick)
    await waiter.until(() => device.counters.paths.broker?.up === true, 'the device on the broker')
    expect(device.grantState?.version).toBeUndefined()

    const file = join(dir, 'fleet.json')
    await writeFile(file, JSON.stringify({ fleet: 'default', threshold: 2, owners: [alice, bob].map((o) => ({ key: toBase64url(o.publicKey) })) }))
    const [aliceKey, bobKey] = [join(dir, 'alice.key'), join(dir, 'bob.key')]
    await saveKeyFile(aliceKey, alice)
    await saveKeyFile(bobKey, bob)
    const grant = async (to: string): Promise<void> => {
      const r = await cli(['fleet', 'grant', '--to', to, '--actions', 'relay/#', '--on', '*', '--owner-key', `${aliceKey},${bobKey}`, '--grants', join(dir, 'grants.cose'),
        '--file', file, '--publish', '--broker', url, '--json'])
      expect(r.code, r.stderr).toBe(0)
    }
    await grant('role:hub')
    await waiter.until(() => device.grantState?.version === 1, 'version 1 taken from the broker')
    await grant('role:panel')
    await waiter.until(() => device.grantState?.version === 2, 'version 2 taken from the broker')

    const client = connect(url, { reconnectPeriod: 0, connectTimeout: 5000, username: 'test-reader', password: TEST_READER_USER['test-reader'] })
    onTestFinished(async () => { await client.endAsync(true) })
    await new Promise<void>((resolve, reject) => { client.once('connect', () => { resolve() }); client.once('close', () => { reject(new Error('no connection')) }) })
    const topic = configTopic('default', GRANTS_TARGET)
    const own = parseFleetPolicy({ fleet: 'default', owners: [{ key: toBase64url(mallory.publicKey) }] })
    const everything = [{ to: mallory.publicKey, actions: ['#'], on: ['*'] }]
    const attempts: Array<[Uint8Array, string]> = [
      [signCommandGrants({ policy: own, version: 99, grants: everything, owners: [mallory] }), 'ERR_NOT_OWNER'],
      [signCommandGrants({ policy, version: 98, grants: everything, owners: [alice] }), 'ERR_TOO_FEW_OWNERS'],
      [cosign(signCommandGrants({ policy, version: 1, grants: everything, owners: [alice] }), policy, bob), 'ERR_CONFIG_STALE'],
      [new Uint8Array(0), 'ERR_BAD_CONFIG']
    ]
    const watcher = await subscriber(url, `iotmesh/default/${device.id}/telemetry`, waiter)
    for (const [payload] of attempts) await client.publishAsync(topic, Buffer.from(payload), { qos: 1, retain: true })
    await waiter.until(() => drops.length >= attempts.length, 'every attempt refused')
    expect(drops.map((d) => d.code)).toEqual(attempts.map(([, code]) => code))
    const before = seqs.length
    await waiter.until(() => seqs.length >= before + 3 && watcher.seqs.length >= 3, 'readings go on')
    expect(device.grantState?.version).toBe(2)
  }, 30_000)
})
