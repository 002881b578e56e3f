import mqtt from 'mqtt'
import { expect, it, onTestFinished } from 'vitest'
import { createGateway } from '../../gateway/index.js'
import { describeNet } from '../helpers/netns.js'

describeNet('the embedded broker restarts', () => {
  it('stop then start listens again on the same port, and clients reconnect', async () => {
    const gateway = await createGateway({ host: '127.0.0.1', port: 0, wsPort: false })
    onTestFinished(async () => { await gateway.stop() })
    const port = gateway.ports.mqtt as number
    const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 50 })
    onTestFinished(async () => { await client.endAsync(true) })
    await new Promise<void>((resolve) => { client.once('connect', () => { resolve() }) })
    await gateway.broker?.stop()
    await new Promise<void>((resolve) => { client.once('offline', () => { resolve() }) })
    await gateway.broker?.start()
    expect(gateway.ports.mqtt).toBe(port)
    await new Promise<void>((resolve) => { client.once('connect', () => { resolve() }) })
    expect(gateway.connectedClients).toBe(1)
  })
})
