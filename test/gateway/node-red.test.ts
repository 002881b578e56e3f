import { existsSync } from 'node:fs'
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect, it, onTestFinished } from 'vitest'
import type { Reading } from '../../gateway/index.js'
import { describeNet } from '../helpers/netns.js'
import { connectDevice, freePort, makeFrame, mqttUrl, nextEvent, seededKeys, spawnServer, startGateway } from './support.js'

/**
 * The documented Node-RED example (docs/node-red/flow.json) in a real Node-RED (npm `node-red`, a
 * dev dependency) against the gateway's embedded broker, on loopback inside the test's network
 * namespace: the flow subscribes to the SenML JSON topic, makes one message per reading and
 * serves the latest ones on GET /iotmesh/readings, which this test reads.
 */

const root = fileURLToPath(new URL('../..', import.meta.url))
const RED = join(root, 'node_modules', 'node-red', 'red.js')
const FLOW = join(root, 'docs', 'node-red', 'flow.json')

it('node-red is installed (a dev dependency: npm ci installs it)', () => {
  expect(existsSync(RED), RED).toBe(true)
})

describeNet('Node-RED consumes the SenML JSON topic', () => {
  it('the example flow turns verified readings into one message each and serves the latest', { timeout: 90_000 }, async () => {
    const gateway = await startGateway()
    const port = await freePort()
    const userDir = await mkdtemp(join(tmpdir(), 'iotmesh-node-red-'))
    onTestFinished(async () => { await rm(userDir, { recursive: true, force: true }) })
    await copyFile(FLOW, join(userDir, 'flow.json')) // Node-RED may write beside its flow file; the documented one stays as it is
    // The flow reads its broker from IOTMESH_MQTT_HOST and IOTMESH_MQTT_PORT (Node-RED's ${VAR} properties).
    await writeFile(join(userDir, 'settings.js'), `
process.env.IOTMESH_MQTT_HOST = '127.0.0.1'
process.env.IOTMESH_MQTT_PORT = '${gateway.ports.mqtt ?? 0}'
module.exports = {
  uiHost: '127.0.0.1',
  uiPort: ${port},
  flowFile: 'flow.json',
  credentialSecret: false,
  httpAdminRoot: false,
  diagnostics: { enabled: false },
  runtimeState: { enabled: false },
  logging: { console: { level: 'info', metrics: false, audit: false } }
}
`)
    await spawnServer(process.execPath, [RED, '--userDir', userDir, '--settings', join(userDir, 'settings.js')], /Connected to broker/, 60_000)

    const keys = seededKeys(151)
    const device = await connectDevice(mqttUrl(gateway), keys, { name: 'attic' })
    const records = [{ n: 'temp', u: 'Cel', v: 19.5 }, { n: 'humidity', u: '%RH', v: 52 }]
    const accepted = nextEvent<Reading>(gateway, 'reading', (r) => r.origin === keys.id)
    await device.publishFrame(1, makeFrame(keys, 1, { records, time: 1_767_225_601 }))
    await accepted
    // A forged frame never reaches the JSON topic, so never Node-RED.
    const forged = makeFrame(keys, 2, { records: [{ n: 'temp', u: 'Cel', v: 99 }] })
    forged[forged.length - 1] = (forged[forged.length - 1] as number) ^ 0x01
    await device.publishFrame(2, forged)
    const next = nextEvent<Reading>(gateway, 'reading', (r) => r.origin === keys.id && r.seq === 3)
    await device.publishFrame(3, makeFrame(keys, 3, { records: [{ n: 'temp', u: 'Cel', v: 20 }], time: 1_767_225_603 }))
    await next

    const url = `http://127.0.0.1:${port}/iotmesh/readings`
    let latest: Record<string, Record<string, { value: number, unit: string, time: number }>> = {}
    const deadline = Date.now() + 20_000
    while (latest[keys.id]?.temp?.value !== 20 && Date.now() < deadline) {
      latest = await (await fetch(url)).json() as typeof latest
      if (latest[keys.id]?.temp?.value !== 20) await new Promise((resolve) => setTimeout(resolve, 100))
    }
    expect(latest).toEqual({
      [keys.id]: {
        temp: { value: 20, unit: 'Cel', time: 1_767_225_603 },
        humidity: { value: 52, unit: '%RH', time: 1_767_225_601 }
      }
    })
  })
})
