import { expect, it } from 'vitest'
import { parseCommanders, publicKeyText, resultJsonTopic, setTopic } from '../../shared/index.js'
import { Waiter, keysFor, startDevice } from '../firmware/device-support.js'
import { describeNet } from '../helpers/netns.js'
import { connectClient, mqttUrl, seededKeys, startGateway } from './support.js'

/**
 * The gateway's commands against the real device runtime (firmware-sim: broker path, token sign-in,
 * actuators, commanders file, journal), on the secure embedded broker: gateway.command, a set/ from
 * a Home Assistant user, and the HTTP API all reach the device and come back verified.
 */

describeNet('gateway commands to a firmware-sim device on the secure broker', () => {
  it('gateway.command, set/ and POST /api/devices/:id/commands each switch the relay; each result verified', async () => {
    const gateway = await startGateway({
      allowAnonymous: false, credentials: { ha: 'home-assistant-secret' }, commands: { set: { users: ['ha'] } }, http: { host: '127.0.0.1', port: 0 }
    }, { keys: seededKeys(80) })
    const url = mqttUrl(gateway)
    const waiter = new Waiter()
    const keys = keysFor(81)
    const commanders = parseCommanders({ commanders: [{ name: 'gateway', key: publicKeyText(gateway.identity.publicKey), actions: ['relay/#'] }] })
    const { device } = await startDevice({ mode: 'broker', broker: { url }, sensors: 'temperature', interval: 60_000, actuators: ['relay'], commanders }, { keys }, waiter)
    await waiter.until(() => device.counters.paths.broker?.up === true, 'the broker path up')
    await waiter.until(() => gateway.devices.get(keys.id)?.online === true, 'its status at the gateway')

    // Sent right after its status: the device may not have subscribed to its commands yet; the gateway sends again until answered.
    const result = await gateway.command({ target: keys.id, action: 'relay/set', args: { on: true }, timeoutMs: 5000 })
    expect(result).toMatchObject({ target: keys.id, issuer: gateway.identity.id, status: 'ok' })
    expect(device.actuatorState).toEqual({ relay: true })

    const ha = await connectClient(url, { username: 'ha', password: 'home-assistant-secret' })
    await ha.client.subscribeAsync(resultJsonTopic('default', keys.id, gateway.identity.id), { qos: 1 })
    await ha.client.publishAsync(setTopic('default', keys.id, 'relay'), 'OFF', { qos: 1 })
    expect(JSON.parse((await ha.next()).payload.toString())).toMatchObject({ status: 'ok', state: { relay: false } })
    expect(device.actuatorState).toEqual({ relay: false })

    const res = await fetch(`http://127.0.0.1:${gateway.ports.http ?? 0}/api/devices/${keys.id}/commands`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ action: 'relay/set', args: { on: true } })
    })
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ status: 'ok', state: { relay: true } })
    expect(device.actuatorState).toEqual({ relay: true })
    // Not allowed by the device's commanders file: its signed refusal comes back.
    expect((await gateway.command({ target: keys.id, action: 'state/get' })).status).toBe('ERR_NOT_ALLOWED')
    expect(device.counters.commands).toMatchObject({ executed: 3 })
  })
})
