import pg from 'pg'
import { expect, it, onTestFinished } from 'vitest'
import { telemetryTopic } from '../../shared/index.js'
import { MeshNode, covers, type Ack } from '../../mesh/index.js'
import { createMemoryNetwork } from '../../mesh/testing.js'
import { describeNet } from '../helpers/netns.js'
import {
  MESH_LINK, MESH_ROUTING, barrier, connectClient, connectDevice, linked, meshAddress, mqttUrl, seededKeys, startGateway, startMeshGateway, type TestClient
} from './support.js'

/**
 * Issue 11, "the gateway acks before persisting": with its state in PostgreSQL (a commit that
 * completes after `record` returns), a device's QoS 1 PUBLISH is acknowledged, and passed to
 * subscribers, only once the reading is committed. A write that fails (here: the gateway's
 * database connection terminated mid-insert) closes the device's connection unacknowledged, so the
 * device sends the reading again (MQTT 3.1.1 §4.3.2) and the gateway keeps that copy: one row,
 * one delivery. A real PostgreSQL from Debian's packages (test/run.sh); another session holds
 * the row's unique key in an open transaction to make the gateway's insert wait. Over the mesh
 * the same holds for the gateway's end-to-end acks (mesh/routing/acks.ts): none covers a reading
 * before its commit, and a reading whose write failed shows as missing, so its device offers it
 * again.
 */

const PG_URL = process.env.IOTMESH_PG_URL
const device = seededKeys(231)
const T0 = 1_767_225_600

/** Another PostgreSQL session holding (fleet, origin, seq)'s unique key: `kill` terminates the gateway's insert waiting on it. */
async function holdRow (fleet: string, origin: string, seq: number): Promise<{ kill: () => Promise<number>, release: () => Promise<void> }> {
  const blocker = new pg.Client({ connectionString: PG_URL })
  await blocker.connect()
  await blocker.query('BEGIN')
  await blocker.query('INSERT INTO readings (fleet, origin, seq, time, received_at, path, topic, frame) VALUES ($1, $2, $3, $4, 0, $5, $6, $7)',
    [fleet, origin, seq, T0 + seq, 'broker', 'x', Buffer.alloc(1)])
  const me = (await blocker.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid
  return {
    kill: async () => {
      const { rows } = await blocker.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))', [me])
      for (const row of rows) await blocker.query('SELECT pg_terminate_backend($1)', [row.pid])
      return rows.length
    },
    release: async () => { await blocker.query('ROLLBACK'); await blocker.end() }
  }
}

/** Resolves true when `promise` settles within `ms`. */
async function within (promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<false>((resolve) => { timer = setTimeout(() => { resolve(false) }, ms) })
  try {
    return await Promise.race([promise.then(() => true, () => true), late])
  } finally {
    clearTimeout(timer)
  }
}

/** Copies of `seq` of `device` the subscriber got on the signed telemetry topic. */
const copies = (subscriber: TestClient, fleet: string): number =>
  subscriber.messages.filter((m) => m.topic === telemetryTopic(fleet, device.id)).length

describeNet('the gateway acknowledges a reading only once it is kept (PostgreSQL)', () => {
  it.runIf(PG_URL !== undefined)('PUBACK waits for the commit; a failed write closes the connection unacknowledged and the resent copy is kept once', async () => {
    const fleet = `a${Math.random().toString(36).slice(2, 10)}` // a fleet of its own in the shared database
    const gateway = await startGateway({ fleet, store: PG_URL })
    const url = mqttUrl(gateway)
    const subscriber = await connectClient(url)
    await subscriber.client.subscribeAsync(telemetryTopic(fleet, device.id), { qos: 1 })
    // Reconnects by itself, as a device does; mqtt.js sends its unacknowledged QoS 1 publishes again after a reconnect.
    const dev = await connectDevice(url, device, { fleet, mqtt: { reconnectPeriod: 200 } })
    const errors: Error[] = []
    gateway.on('storeError', (err) => { errors.push(err) })

    // A first reading goes through: the table exists and the path works.
    await dev.publishFrame(0)
    await expect.poll(() => copies(subscriber, fleet), { timeout: 5000 }).toBe(1)

    // Another session inserts seq 1's row and holds its transaction open: the gateway's insert of seq 1 waits on the unique key.
    const row = await holdRow(fleet, device.id, 1)
    try {
      let closed = 0
      dev.client.on('close', () => { closed++ })
      const acked = dev.publishFrame(1)
      expect(await within(acked, 1500), 'PUBACK before the commit').toBe(false)
      expect(copies(subscriber, fleet), 'a subscriber got a reading not yet kept').toBe(1)
      // The gateway's database connection dies mid-insert: the write fails.
      expect(await row.kill(), 'the gateway\'s insert waits on the held key').toBe(1)
      await expect.poll(() => closed, { timeout: 5000, message: 'the device\'s connection closed, unacknowledged' }).toBeGreaterThanOrEqual(1)
      expect(errors).toHaveLength(1)
      expect(copies(subscriber, fleet), 'a reading that was not kept reached a subscriber').toBe(1)
      await row.release()
      // The device reconnects and sends seq 1 again: kept, acknowledged, delivered once.
      expect(await within(acked, 10_000), 'the resent reading acknowledged').toBe(true)
      await acked
    } finally {
      await row.release().catch(() => {})
    }
    await expect.poll(() => copies(subscriber, fleet), { timeout: 5000 }).toBe(2)
    await gateway.state?.settled()
    expect(await gateway.state?.store.count()).toBe(2)
    expect(gateway.state?.counters.errors).toBe(1)
    const history = await gateway.state?.store.history({ origin: device.id, limit: 10 })
    expect(history?.map((r) => r.seq)).toEqual([0, 1])
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(copies(subscriber, fleet), 'each reading delivered once').toBe(2)
  })

  it.runIf(PG_URL !== undefined)('over the mesh: no ack covers a reading before its commit; a failed write shows it missing, and the re-offered copy is kept once', async () => {
    const fleet = `m${Math.random().toString(36).slice(2, 10)}`
    const net = createMemoryNetwork({ seed: 43 })
    const keys = seededKeys(232)
    const a = new MeshNode({ name: 'a', host: 'a', fleet, mdns: false, dialTarget: 0, announceLinks: 0, link: MESH_LINK, routing: MESH_ROUTING }, { keys, transport: net.createTransport(MESH_LINK, { keys }) })
    onTestFinished(async () => { await a.stop() })
    await a.start()
    const gateway = await startMeshGateway(net, { fleet, store: PG_URL, mesh: { host: 'gw', mdns: false, dialTarget: 0, announceLinks: 0, link: MESH_LINK, routing: MESH_ROUTING, peers: [meshAddress(a)] } })
    await linked(gateway.mesh!, a.id)
    await barrier([gateway.mesh, a], [a, gateway.mesh])
    const acks: Ack[] = []
    a.on('ack', (ack) => { acks.push(ack) })
    const held = (seq: number): boolean => acks.some((ack) => covers(ack, seq))
    const first = a.publish('telemetry', [{ n: 'temp', u: 'Cel', v: 1 }])
    await expect.poll(() => held(first.seq), { timeout: 5000, message: 'the first reading acknowledged' }).toBe(true)

    const row = await holdRow(fleet, a.id, first.seq + 1)
    try {
      const second = a.publish('telemetry', [{ n: 'temp', u: 'Cel', v: 2 }])
      expect(second.seq).toBe(first.seq + 1)
      await new Promise((resolve) => setTimeout(resolve, 1500)) // 30 ack intervals
      expect(held(second.seq), 'an ack covered a reading before its commit').toBe(false)
      expect(await row.kill(), 'the gateway\'s insert waits on the held key').toBe(1)
      await expect.poll(() => gateway.state?.counters.errors, { timeout: 5000 }).toBe(1)
      await new Promise((resolve) => setTimeout(resolve, 500))
      expect(held(second.seq), 'an ack covered a reading whose write failed').toBe(false)
      await row.release()
      // The device's outbox offers what is not acknowledged again (firmware-sim/device/acks.ts does it every 2 s).
      expect(a.reoffer(second.frame)).toBe(true)
      await expect.poll(() => held(second.seq), { timeout: 10_000, message: 'the re-offered reading acknowledged' }).toBe(true)
    } finally {
      await row.release().catch(() => {})
    }
    await gateway.state?.settled()
    const history = await gateway.state?.store.history({ origin: a.id, limit: 10 })
    expect(history?.map((r) => r.seq)).toEqual([first.seq, first.seq + 1])
  })
})
