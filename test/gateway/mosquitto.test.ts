import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { deviceBaseName, jsonTopic, statusTopic, telemetryTopic, toHex, topicFilters } from '../../shared/index.js'
import { createGateway, type DropEvent, type Gateway, type Reading } from '../../gateway/index.js'
import { describeNet } from '../helpers/netns.js'
import { tempDir } from '../shared/support.js'
import { createMemoryNetwork } from '../../mesh/testing.js'
import {
  MESH_LINK, MESH_ROUTING, barrier, connectClient, connectDevice, findBinary, freePort, linked, makeFrame, meshAddress, nextDelivery, nextEvent,
  seededKeys, spawnServer, startMeshNode
} from './support.js'

const MOSQUITTO = findBinary('/usr/sbin/mosquitto', '/usr/bin/mosquitto')
const MOSQUITTO_SUB = findBinary('/usr/bin/mosquitto_sub')
const missing = [MOSQUITTO === undefined ? 'mosquitto (Debian package mosquitto)' : '', MOSQUITTO_SUB === undefined ? 'mosquitto_sub (Debian package mosquitto-clients)' : ''].filter(Boolean)
if (missing.length > 0) console.warn(`SKIPPED: the Mosquitto interop tests need ${missing.join(' and ')}: apt-get install -y mosquitto mosquitto-clients`)

const alice = seededKeys(41)
const bob = seededKeys(42)

/** A real Mosquitto on 127.0.0.1 and a free port, with a generated config (NETWORK.md: `user root` inside `unshare -r`). */
async function startMosquitto (): Promise<{ url: string, port: number }> {
  const dir = await tempDir()
  const port = await freePort()
  const config = join(dir, 'mosquitto.conf')
  await writeFile(config, [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    'user root',
    'persistence false',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'log_type notice',
    'log_type information',
    ''
  ].join('\n'))
  await spawnServer(MOSQUITTO ?? 'mosquitto', ['-c', config], /mosquitto version [\d.]+ running/)
  return { url: `mqtt://127.0.0.1:${port}`, port }
}

async function externalGateway (url: string): Promise<Gateway> {
  const gateway = await createGateway({ broker: url, holdMs: 1000 })
  onTestFinished(async () => { await gateway.stop() })
  return gateway
}

/** `mosquitto_sub -C 1 -t FILTER -F %x`: resolves with the hex payload it printed, once it has subscribed. */
async function mosquittoSubOnce (port: number, filter: string): Promise<{ subscribed: Promise<void>, hex: Promise<string> }> {
  // mosquitto_sub block-buffers stdout into a pipe: stdbuf (coreutils) makes it line-buffered, so "received SUBACK" arrives when it happens.
  const child = spawn('stdbuf', ['-oL', MOSQUITTO_SUB ?? 'mosquitto_sub', '-h', '127.0.0.1', '-p', String(port), '-C', '1', '-W', '10', '-t', filter, '-F', '%x', '-d'], { stdio: ['ignore', 'pipe', 'pipe'] })
  onTestFinished(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let out = ''
  child.stderr.resume()
  const subscribed = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      if (/received SUBACK/.test(out)) resolve()
    })
    child.once('exit', (code) => { reject(new Error(`mosquitto_sub exited (${code}) before subscribing: ${out}`)) })
  })
  const hex = new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => {
      const line = out.split('\n').map((l) => l.trim()).find((l) => /^[0-9a-f]+$/.test(l) && l.length > 40)
      if (code === 0 && line !== undefined) resolve(line)
      else reject(new Error(`mosquitto_sub exited (${code}) without a payload: ${out}`))
    })
  })
  hex.catch(() => {}) // reported where it is awaited; never an unhandled rejection if subscribing failed first
  return { subscribed, hex }
}

describeNet('external broker: a real Mosquitto', () => {
  describe.skipIf(missing.length > 0)('with mosquitto installed', () => {
    it('mosquitto_sub receives the exact frame bytes a device published; the gateway verifies and republishes SenML JSON', async () => {
      const { url, port } = await startMosquitto()
      // The device announces itself before the gateway exists: the gateway learns its key from the retained status.
      const device = await connectDevice(url, alice, { name: 'greenhouse' })
      const gateway = await externalGateway(url)
      expect(gateway.mode).toBe('external')
      expect(gateway.ports).toEqual({})
      await nextEvent(gateway, 'key', (k: { deviceId: string }) => k.deviceId === alice.id)
      const json = await connectClient(url)
      await json.client.subscribeAsync(topicFilters.json(), { qos: 1 })
      const sub = await mosquittoSubOnce(port, 'iotmesh/default/+/telemetry')
      await sub.subscribed

      const frame = makeFrame(alice, 1)
      const accepted = nextEvent<Reading>(gateway, 'reading')
      await device.publishFrame(1, frame)
      expect(await sub.hex).toBe(toHex(frame))
      expect((await accepted).seq).toBe(1)
      const mirrored = await json.next()
      expect(mirrored.topic).toBe(jsonTopic('default', alice.id))
      expect(JSON.parse(mirrored.payload.toString())).toEqual([{ bn: deviceBaseName(alice.id), bt: 1_767_225_601, n: 'temp', u: 'Cel', v: 20.1, seq: 1 }])
      expect(gateway.devices.get(alice.id)).toMatchObject({ online: true, name: 'greenhouse', readings: 1 })
    })

    it('authorizes at the gateway only: a forged frame still crosses Mosquitto, but is counted and never mirrored as JSON', async () => {
      const { url } = await startMosquitto()
      const gateway = await externalGateway(url)
      const everything = await connectClient(url)
      await everything.client.subscribeAsync('iotmesh/#', { qos: 1 })
      const mallory = await connectDevice(url, bob)
      await connectDevice(url, alice)
      const drop = nextEvent<DropEvent>(gateway, 'drop')
      await mallory.publishFrame(1, makeFrame(bob, 1), telemetryTopic('default', alice.id))
      expect(await drop).toMatchObject({ reason: 'topic_mismatch', code: 'ERR_TOPIC_MISMATCH' })
      await everything.next((t) => t === telemetryTopic('default', alice.id)) // Mosquitto delivered it: ACLs are the operator's job
      const good = nextEvent<Reading>(gateway, 'reading')
      await mallory.publishFrame(2)
      await good
      const mirrored = await everything.next((t) => t.endsWith('/json'))
      expect(mirrored.topic).toBe(jsonTopic('default', bob.id))
      expect(everything.messages.filter((m) => m.topic.endsWith('/json'))).toHaveLength(1)
    })

    it("sees a device's last will through Mosquitto", async () => {
      const { url } = await startMosquitto()
      const gateway = await externalGateway(url)
      const online = nextEvent(gateway, 'status', (e: { deviceId: string }) => e.deviceId === alice.id)
      const device = await connectDevice(url, alice)
      await online
      expect(gateway.devices.get(alice.id)?.online).toBe(true)
      const offline = nextEvent(gateway, 'status', (e: { status?: { state: string } }) => e.status?.state === 'offline')
      device.client.stream.destroy()
      await offline
      expect(gateway.devices.get(alice.id)?.online).toBe(false)
      const late = await connectClient(url)
      await late.client.subscribeAsync(statusTopic('default', alice.id))
      expect(JSON.parse((await late.next()).payload.toString())).toEqual({ state: 'offline' })
    })

    it('bridges the mesh through Mosquitto: a mesh reading reaches its subscribers once (the echo of its own publish is not ingested again); a device on Mosquitto reaches the mesh', async () => {
      const { url } = await startMosquitto()
      const net = createMemoryNetwork({ seed: 41 })
      const gwKeys = seededKeys(43)
      const gateway = await createGateway({ broker: url, holdMs: 1000, mesh: { host: 'gw', mdns: false, dialTarget: 0, announceLinks: 0, link: MESH_LINK, routing: MESH_ROUTING } }, { keys: gwKeys, transport: net.createTransport(MESH_LINK, { keys: gwKeys }) })
      onTestFinished(async () => { await gateway.stop() })
      const node = await startMeshNode(net, 'a', seededKeys(44), [meshAddress(gateway.mesh)])
      await linked(node, gateway.mesh?.id ?? '')
      await linked(gateway.mesh!, node.id)
      const everything = await connectClient(url)
      await everything.client.subscribeAsync('iotmesh/#', { qos: 1 })

      const fromMesh = nextDelivery(node, (d) => d.origin === alice.id)
      await barrier([node, gateway.mesh], [gateway.mesh, node])
      const { frame } = node.publish('telemetry', [{ n: 'temp', u: 'Cel', v: 4 }])
      await everything.next((t, p) => t === telemetryTopic('default', node.id) && toHex(p) === toHex(frame))
      await everything.next((t) => t === jsonTopic('default', node.id))

      // Listen before connecting: the retained status can teach the gateway the key at once.
      const keyLearned = nextEvent(gateway, 'key', (k: { deviceId: string }) => k.deviceId === alice.id)
      const device = await connectDevice(url, alice)
      await keyLearned
      const aliceFrame = makeFrame(alice, 1)
      await device.publishFrame(1, aliceFrame)
      expect(toHex((await fromMesh).frame)).toBe(toHex(aliceFrame))
      await everything.next((t) => t === jsonTopic('default', alice.id))
      expect(everything.messages.filter((m) => toHex(m.payload) === toHex(frame))).toHaveLength(1)
      expect(everything.messages.filter((m) => m.topic === jsonTopic('default', node.id))).toHaveLength(1)
      expect(gateway.counters.dropped.duplicate).toBe(0)
      expect(gateway.devices.get(node.id)).toMatchObject({ path: 'mesh', readings: 1 })
      expect(gateway.devices.get(alice.id)).toMatchObject({ path: 'broker', readings: 1 })
    })

    it('start fails with a clear error when no broker answers', async () => {
      const port = await freePort()
      await expect(createGateway({ broker: { url: `mqtt://127.0.0.1:${port}`, startTimeoutMs: 300 } })).rejects.toMatchObject({ code: 'ERR_BAD_ARGUMENT' })
    })
  })
})
