import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import { cosign, parseFleetPolicy, revoke, toBase64url, type KeyPair } from '../../shared/index.js'
import type { DropEvent } from '../../gateway/index.js'
import { describeNet } from '../helpers/netns.js'
import { tempDir } from './support.js'
import { Waiter, gateway, keysFor, startDevice, subscriber } from './device-support.js'

/**
 * A device in broker mode learns the fleet's revocations from the gateway's broker (retained on
 * iotmesh/<fleet>/$revocations/+, gateway/revocations.ts) and keeps them in DATA_DIR/revocations.json;
 * one that no owner signed reaches it never (the gateway refuses it) and it would refuse it too.
 */

const FAST_RECONNECT = { initial: 50, max: 200, jitter: 0 }
const [alice, bob] = [keysFor(140), keysFor(141)]
const policy = parseFleetPolicy({ fleet: 'default', threshold: 2, owners: [alice, bob].map((o: KeyPair) => ({ key: toBase64url(o.publicKey) })) })

describeNet('revocations for devices on the broker', () => {
  it('a broker-mode device subscribes to the retained revocations and keeps them; the one revoked is cut off; an honest one carries on', async () => {
    const waiter = new Waiter()
    const { gateway: gw, url } = await gateway(waiter, { fleetPolicy: policy })
    const drops: DropEvent[] = []
    gw.on('drop', (d) => { drops.push(d); waiter.kick() })
    const [keys, victim] = [keysFor(142), keysFor(143)]
    const dir = await tempDir()
    const sub = await subscriber(url, `iotmesh/default/${keys.id}/telemetry`, waiter)
    const early = cosign(revoke({ policy, device: keysFor(144).id, reason: 'lost', owners: [alice] }), policy, bob)
    gw.revocations?.add(early, 'mqtt') // held before the device connects: retained, handed on its subscription
    const { device } = await startDevice({ mode: 'broker', broker: { url, reconnect: FAST_RECONNECT }, sensors: 'temperature', dataDir: dir, fleetFile: policy }, { keys }, waiter)
    const { device: stolen } = await startDevice({ mode: 'broker', broker: { url, reconnect: FAST_RECONNECT }, sensors: 'temperature' }, { keys: victim }, waiter)
    await waiter.until(() => sub.from(keys.id).length >= 1 && stolen.counters.paths.broker?.up === true, 'both devices up')
    const kept = async (): Promise<string[]> => { try { return JSON.parse(await readFile(join(dir, 'revocations.json'), 'utf8')) as string[] } catch { return [] } }
    const t0 = Date.now()
    while (Date.now() - t0 < 5000 && (await kept()).length < 1) await new Promise((resolve) => setTimeout(resolve, 50))
    expect(await kept()).toEqual([toBase64url(early)])

    const later = cosign(revoke({ policy, device: victim.id, reason: 'stolen', owners: [alice] }), policy, bob)
    gw.revocations?.add(later, 'mqtt')
    const t1 = Date.now()
    while (Date.now() - t1 < 5000 && (await kept()).length < 2) await new Promise((resolve) => setTimeout(resolve, 50))
    expect(new Set(await kept())).toEqual(new Set([toBase64url(early), toBase64url(later)]))
    await waiter.until(() => stolen.counters.paths.broker?.up === false && drops.some((d) => d.code === 'ERR_REVOKED' && d.deviceId === victim.id), 'the victim cut off and refused')
    const before = sub.from(keys.id).length
    await waiter.until(() => sub.from(keys.id).length >= before + 2, 'the honest device carries on')
    expect(device.counters.paths.broker?.up).toBe(true)
  })
})
