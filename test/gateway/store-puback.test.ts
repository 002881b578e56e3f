import pg from 'pg'
import { expect, it } from 'vitest'
import { telemetryTopic } from '../../shared/index.js'
import { describeNet } from '../helpers/netns.js'
import { connectClient, connectDevice, mqttUrl, seededKeys, startGateway, type TestClient } from './support.js'

/**
 * Issue 11, "the gateway acks before persisting": with its state in PostgreSQL (a commit that
 * completes after `record` returns), a device's QoS 1 PUBLISH is acknowledged, and passed to
 * subscribers, only once the reading is committed. A write that fails (here: the gateway's
 * database connection terminated mid-insert) closes the device's connection unacknowledged, so the
 * device sends the reading again (MQTT 3.1.1 §4.3.2) and the gateway keeps that copy: one row,
 * one delivery. A real PostgreSQL from Debian's packages (test/run.sh); another session holds
 * the row's unique key in an open transaction to make the gateway's insert wait.
 */

const PG_URL = process.env.IOTMESH_PG_URL
const device = seededKeys(231)
const T0 = 1_767_225_600

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
    const blocker = new pg.Client({ connectionString: PG_URL })
    await blocker.connect()
    try {
      await blocker.query('BEGIN')
      await blocker.query('INSERT INTO readings (fleet, origin, seq, time, received_at, path, topic, frame) VALUES ($1, $2, 1, $3, 0, $4, $5, $6)',
        [fleet, device.id, T0 + 1, 'broker', 'x', Buffer.alloc(1)])
      let closed = 0
      dev.client.on('close', () => { closed++ })
      const acked = dev.publishFrame(1)
      expect(await within(acked, 1500), 'PUBACK before the commit').toBe(false)
      expect(copies(subscriber, fleet), 'a subscriber got a reading not yet kept').toBe(1)

      // The gateway's database connection dies mid-insert: the write fails.
      const { rows } = await blocker.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))', [(await blocker.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid])
      expect(rows.length, 'the gateway\'s insert waits on the held key').toBe(1)
      await blocker.query('SELECT pg_terminate_backend($1)', [rows[0]?.pid])
      await expect.poll(() => closed, { timeout: 5000, message: 'the device\'s connection closed, unacknowledged' }).toBeGreaterThanOrEqual(1)
      expect(errors.map((e) => (e as { code?: string }).code ?? e.message).join(' ')).not.toBe('')
      expect(copies(subscriber, fleet), 'a reading that was not kept reached a subscriber').toBe(1)
      await blocker.query('ROLLBACK')
      // The device reconnects and sends seq 1 again: kept, acknowledged, delivered once.
      expect(await within(acked, 10_000), 'the resent reading acknowledged').toBe(true)
      await acked
    } finally {
      await blocker.end()
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
})
