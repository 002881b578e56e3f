import { join } from 'node:path'
import { connectAsync } from 'mqtt'
import { expect, it } from 'vitest'
import { describeNet } from '../helpers/netns.js'
import { tempDir } from '../shared/support.js'
import { deviceToken, mqttUrl, seededKeys, startGateway } from './support.js'

/**
 * Issue 11: a device token (its MQTT password) is good for one CONNECT. A gateway remembered the
 * token ids it saw in memory only, so a captured password could be replayed to it after a restart
 * or to another gateway sharing its database. The ids are now claimed in the store (SQLite file,
 * PostgreSQL shared by several gateways) until the token expires.
 */

const PG_URL = process.env.IOTMESH_PG_URL
const device = seededKeys(241)

/** CONNECT with the device's id and `password`: 'ok', or the error's message. */
async function connectWith (url: string, clientId: string, password: string): Promise<string> {
  try {
    const client = await connectAsync(url, { clientId, username: device.id, password, reconnectPeriod: 0, connectTimeout: 5000 })
    await client.endAsync(true)
    return 'ok'
  } catch (err) {
    return (err as Error).message
  }
}

const places: Array<[string, () => Promise<string>]> = [
  ['SQLite', async () => join(await tempDir(), 'gateway.db')],
  ...(PG_URL === undefined ? [] : [['PostgreSQL', async () => PG_URL as string] as [string, () => Promise<string>]])
]

describeNet.each(places)('a used device token is refused by every gateway sharing the store (%s)', (kind, place) => {
  it('after a restart, and (PostgreSQL) at a second gateway; a new token still works', async () => {
    const location = await place()
    const fleet = kind === 'SQLite' ? 'default' : `t${Math.random().toString(36).slice(2, 10)}`
    const clientId = 'board-1'
    const captured = deviceToken(device, clientId, fleet)
    const first = await startGateway({ fleet, store: location, allowAnonymous: false })
    expect(await connectWith(mqttUrl(first), clientId, captured)).toBe('ok')
    expect(await connectWith(mqttUrl(first), clientId, captured), 'replayed to the same gateway').toMatch(/Bad username or password/i)

    const second = kind === 'SQLite' ? (await first.stop(), await startGateway({ fleet, store: location, allowAnonymous: false })) : await startGateway({ fleet, store: location, allowAnonymous: false })
    const codes: string[] = []
    second.on('drop', (d) => { codes.push(d.code) })
    expect(await connectWith(mqttUrl(second), clientId, captured), kind === 'SQLite' ? 'replayed after a restart' : 'replayed to another gateway').toMatch(/Bad username or password/i)
    expect(codes).toContain('ERR_REPLAY')
    expect(await connectWith(mqttUrl(second), clientId, deviceToken(device, clientId, fleet)), 'a fresh token').toBe('ok')
  })
})
