import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { telemetryTopic } from '../../shared/index.js'
import { DeviceRegistry, GatewayState, Ingest, PostgresStore, SqliteStore, type GatewayStore, type Outcome, type Reading, type RetentionInit } from '../../gateway/index.js'
import { describeNet } from '../helpers/netns.js'
import { tempDir } from '../shared/support.js'
import { makeFrame, seededKeys, startGateway } from './support.js'

const alice = seededKeys(71)
const bob = seededKeys(72)
const T0 = 1_767_225_600

/** PostgreSQL from Debian's packages, started by test/run.sh on a Unix socket (IOTMESH_PG_URL). */
const PG_URL = process.env.IOTMESH_PG_URL

/** A place for one test's state: a new SQLite file, or a new fleet in the shared PostgreSQL database. */
type Place = () => GatewayStore
const kinds: Array<[string, () => Promise<Place>]> = [
  ['SQLite through libsql', async () => {
    const path = join(await tempDir(), 'gateway.db')
    return () => new SqliteStore({ path, fleet: 'default' })
  }],
  ...(PG_URL === undefined
    ? []
    : [['PostgreSQL through pg', async () => {
        const fleet = `t${Math.random().toString(36).slice(2, 10)}`
        return () => new PostgresStore({ url: PG_URL, fleet })
      }] as [string, () => Promise<Place>]])
]

it('PostgreSQL runs where CI runs (test/run.sh starts it from the postgresql package)', () => {
  if (process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false') expect(PG_URL).toBeDefined()
  if (PG_URL === undefined) console.warn('iotmesh: IOTMESH_PG_URL is unset (PostgreSQL not installed?): the PostgreSQL store tests are skipped')
})

/** An ingest and a registry over a store of `place`, as a gateway wires them (gateway/gateway.ts). */
async function gatewayOn (place: Place, options: { retention?: RetentionInit, replayWindow?: number } = {}): Promise<{ ingest: Ingest, devices: DeviceRegistry, state: GatewayState, store: GatewayStore, send: (keys: typeof alice, seq: number) => Outcome }> {
  const ingest = new Ingest({ ...(options.replayWindow === undefined ? {} : { replayWindow: options.replayWindow }) })
  const devices = new DeviceRegistry()
  const store = place()
  const state = new GatewayState(store, { ...(options.retention === undefined ? {} : { retention: options.retention }), flushMs: 3_600_000, pruneMs: 3_600_000 }, { ingest, devices })
  ingest.on('reading', (r: Reading) => { state.record(r); devices.recordReading(r) })
  ingest.on('key', (k) => { devices.applyKey(k.deviceId, k.publicKey) })
  await state.start()
  const send = (keys: typeof alice, seq: number): Outcome => ingest.handle(telemetryTopic('default', keys.id), makeFrame(keys, seq), { path: 'broker' })
  return { ingest, devices, state, store, send }
}

const verdict = (o: Outcome): string => o.verdict === 'dropped' ? o.drop.reason : o.verdict

describe.each(kinds)('durable gateway state: %s', (_, makePlace) => {
  it('a restarted gateway refuses every frame it accepted before (replays, catch-up), knows the device, and accepts what is new', async () => {
    const place = await makePlace()
    const first = await gatewayOn(place)
    first.ingest.learnKey(alice.publicKey, { source: 'status' })
    for (const seq of [1, 2, 3, 5, 8]) expect(verdict(first.send(alice, seq))).toBe('accepted')
    await first.state.stop()

    const second = await gatewayOn(place)
    expect(second.state.counters).toMatchObject({ restoredOrigins: 1, restoredDevices: 1 })
    // No key learned in this run: the pinned key came back with the device; captured frames are duplicates.
    for (const seq of [1, 2, 3, 5, 8]) expect(verdict(second.send(alice, seq))).toBe('duplicate')
    // Gaps inside the window stay open (late readings), and what is new is accepted.
    expect(verdict(second.send(alice, 4))).toBe('accepted')
    expect(verdict(second.send(alice, 9))).toBe('accepted')
    expect(second.devices.get(alice.id)).toMatchObject({ readings: 5 + 2, lastSeq: 9, online: false })
    expect(second.ingest.counters.dropped.duplicate).toBe(5)
    await second.state.stop()
  })

  it('a frame below the restored window is too old; a stranger (a key nobody vouched for) is restored among strangers', async () => {
    const place = await makePlace()
    const first = await gatewayOn(place, { replayWindow: 64 })
    first.ingest.learnKey(alice.publicKey, { source: 'status' })
    first.ingest.learnKey(bob.publicKey, { source: 'mesh' }) // gossip: a stranger until it earns trust
    expect(verdict(first.send(alice, 1))).toBe('accepted')
    expect(verdict(first.send(alice, 100))).toBe('accepted')
    expect(verdict(first.send(bob, 7))).toBe('accepted')
    await first.state.stop()

    const second = await gatewayOn(place, { replayWindow: 64 })
    expect(verdict(second.send(alice, 1))).toBe('too_old')
    expect(second.ingest.verifier.known(alice.id)).toBe(true)
    expect(second.ingest.verifier.known(bob.id)).toBe(false)
    second.ingest.learnKey(bob.publicKey, { source: 'mesh' })
    expect(verdict(second.send(bob, 7))).toBe('duplicate')
    await second.state.stop()
  })

  it('retention by size and age keeps the newest readings, and what it pruned still counts as seen', async () => {
    const place = await makePlace()
    const first = await gatewayOn(place, { retention: { maxReadings: 10 } })
    first.ingest.learnKey(alice.publicKey, { source: 'status' })
    for (let seq = 1; seq <= 30; seq++) first.send(alice, seq)
    await first.state.settled()
    expect(await first.store.count()).toBe(30)
    expect(await first.state.prune()).toBe(20)
    expect((await first.store.history({ origin: alice.id, limit: 100 })).map((r) => r.seq)).toEqual([21, 22, 23, 24, 25, 26, 27, 28, 29, 30])
    await first.state.stop()

    const second = await gatewayOn(place, { retention: { maxAgeMs: 0, maxDevices: 1 } })
    for (const seq of [1, 15, 20, 30]) expect(verdict(second.send(alice, seq))).toBe('duplicate')
    // The saved registry is bounded too: the device seen last stays.
    second.ingest.learnKey(bob.publicKey, { source: 'status' })
    await new Promise((resolve) => setTimeout(resolve, 5)) // bob's reading is later than alice's
    expect(verdict(second.send(bob, 1))).toBe('accepted')
    await second.state.settled()
    await second.store.saveDevices(second.devices.takeChanged())
    await new Promise((resolve) => setTimeout(resolve, 5))
    expect(await second.state.prune()).toBe(11) // everything is older than 0 ms
    expect(await second.store.count()).toBe(0)
    expect((await second.store.load({ window: 1024, maxDevices: 10 })).devices.map((d) => d.id)).toEqual([bob.id])
    await second.state.stop()
    const third = await gatewayOn(place)
    expect(verdict(third.send(alice, 30))).toBe('duplicate')
    third.ingest.learnKey(alice.publicKey, { source: 'status' }) // her saved device (and so her key) was pruned: her status brings it
    expect(verdict(third.send(alice, 31))).toBe('accepted')
    await third.state.stop()
  })

  it('two gateways sharing the store: each reading stored once; a third, started after them, refuses what either accepted', async () => {
    const place = await makePlace()
    const a = await gatewayOn(place)
    const b = await gatewayOn(place)
    a.ingest.learnKey(alice.publicKey, { source: 'status' })
    b.ingest.learnKey(alice.publicKey, { source: 'status' })
    for (let seq = 1; seq <= 5; seq++) expect(verdict(a.send(alice, seq))).toBe('accepted')
    await a.state.settled()
    for (let seq = 3; seq <= 8; seq++) expect(verdict(b.send(alice, seq))).toBe('accepted') // b's window is its own
    await a.state.stop()
    await b.state.stop()
    expect(a.state.counters).toMatchObject({ recorded: 5, alreadyStored: 0 })
    expect(b.state.counters).toMatchObject({ recorded: 3, alreadyStored: 3 })
    const c = await gatewayOn(place)
    expect((await c.store.history({ origin: alice.id, limit: 100 })).map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
    for (let seq = 1; seq <= 8; seq++) expect(verdict(c.send(alice, seq))).toBe('duplicate')
    await c.state.stop()
  })
})

describe('the embedded store', () => {
  it('the file is in WAL mode (synchronous is per connection: set at open, sqlite.ts)', async () => {
    const path = join(await tempDir(), 'gateway.db')
    const { state } = await gatewayOn(() => new SqliteStore({ path, fleet: 'default' }))
    await state.stop()
    const { default: Libsql } = await import('libsql')
    const db = new Libsql(path)
    expect((db.prepare('PRAGMA journal_mode').get() as { journal_mode: string }).journal_mode).toBe('wal')
    db.close()
  })
})

describe.runIf(PG_URL !== undefined)('the server store (PostgreSQL)', () => {
  it('group commit: 500 readings recorded at once share a few transactions, not one commit (one fsync) each; each is still answered stored or not, in order', async () => {
    const store = new PostgresStore({ url: PG_URL as string, fleet: `g${Math.random().toString(36).slice(2, 10)}` })
    await store.open()
    const { default: pg } = await import('pg')
    const client = new pg.Client({ connectionString: PG_URL })
    await client.connect()
    try {
      // Every write transaction takes a transaction id, and so does this query: the ids taken between two of them count commits.
      const xid = async (): Promise<bigint> => BigInt((await client.query<{ x: string }>('SELECT pg_current_xact_id()::text AS x')).rows[0]?.x ?? '0')
      const frame = makeFrame(alice, 1)
      const reading = (seq: number): Parameters<PostgresStore['record']>[0] =>
        ({ origin: alice.id, seq, time: T0 + seq, receivedAt: Date.now(), path: 'broker', topic: telemetryTopic('default', alice.id), frame })
      const before = await xid()
      const seqs = [...Array.from({ length: 500 }, (_, i) => i + 1), 7] // 7 twice: the second is no new row
      const stored = await Promise.all(seqs.map(async (seq) => await store.record(reading(seq), true)))
      const commits = await xid() - before - 1n
      expect(stored.filter((s) => !s)).toHaveLength(1)
      expect(stored[500]).toBe(false)
      expect(commits, 'transactions for 501 readings (before: 501)').toBeLessThanOrEqual(10n)
      expect(await store.count()).toBe(500)
      expect((await store.history({ origin: alice.id, limit: 1000 })).map((r) => r.seq)).toEqual(seqs.slice(0, 500))
    } finally {
      await client.end()
      await store.close()
    }
  })
})

const locations: Array<[string, () => Promise<string>]> = [
  ['SQLite', async () => join(await tempDir(), 'gateway.db')],
  ...(PG_URL === undefined ? [] : [['PostgreSQL', async () => PG_URL] as [string, () => Promise<string>]])
]

describeNet.each(locations)('history over HTTP from the store (%s)', (_, location) => {
  it('since/until, cursor paging, step downsampling, and /readings from the store', async () => {
    const fleet = `h${Math.random().toString(36).slice(2, 10)}` // a fleet of its own in a shared database
    const gateway = await startGateway({ fleet, http: { host: '127.0.0.1', port: 0 }, store: await location() })
    gateway.learnKey(alice.publicKey, { source: 'api' })
    // 120 readings one second apart from T0; temp = seq.
    for (let seq = 1; seq <= 120; seq++) {
      const outcome = gateway.submit(telemetryTopic(fleet, alice.id), makeFrame(alice, seq, { time: T0 + seq - 1, records: [{ n: 'temp', u: 'Cel', v: seq }] }), { path: 'broker' })
      expect(outcome.verdict).toBe('accepted')
    }
    await gateway.state?.settled()
    const base = `http://127.0.0.1:${gateway.ports.http ?? 0}/api/devices/${alice.id}`
    const get = async (q: string): Promise<{ status: number, body: Record<string, unknown> }> => {
      const res = await fetch(`${base}${q}`)
      return { status: res.status, body: await res.json() as Record<string, unknown> }
    }
    const seqs = (body: Record<string, unknown>): number[] => (body.readings as Array<{ seq: number }>).map((r) => r.seq)

    // since inclusive, until exclusive; RFC 3339 accepted.
    const range = await get(`/history?since=${T0 + 10}&until=${new Date((T0 + 20) * 1000).toISOString()}`)
    expect(seqs(range.body)).toEqual([11, 12, 13, 14, 15, 16, 17, 18, 19, 20])
    expect(range.body.next).toBeUndefined()
    expect((range.body.readings as Array<{ values: unknown[] }>)[0]?.values).toEqual([{ n: 'temp', u: 'Cel', t: T0 + 10, v: 11 }])

    // Paging: 50 per page, the cursor of one page starts the next; nothing lost, nothing twice.
    const all: number[] = []
    let cursor: string | undefined
    do {
      const page = await get(`/history?limit=50${cursor === undefined ? '' : `&cursor=${cursor}`}`)
      all.push(...seqs(page.body))
      cursor = page.body.next as string | undefined
    } while (cursor !== undefined)
    expect(all).toEqual(Array.from({ length: 120 }, (_, i) => i + 1))

    // Downsampling: 60 s buckets aligned to the epoch (T0 is a multiple of 60).
    const chart = await get(`/history?since=${T0}&until=${T0 + 120}&step=1m`)
    expect(chart.status).toBe(200)
    expect(chart.body.series).toEqual([{ n: 'temp', u: 'Cel', points: [{ t: T0, avg: 30.5, min: 1, max: 60, count: 60 }, { t: T0 + 60, avg: 90.5, min: 61, max: 120, count: 60 }] }])

    // The dashboard's route, from the store: the newest `limit`, oldest first.
    expect(seqs((await get('/readings?limit=3')).body)).toEqual([118, 119, 120])

    const metrics = await (await fetch(`http://127.0.0.1:${gateway.ports.http ?? 0}/metrics`)).text()
    expect(metrics).toContain(`iotmesh_gateway_store_writes_total{result="stored",fleet="${fleet}"} 120`)
    expect(metrics).toContain(`iotmesh_gateway_store_writes_total{result="failed",fleet="${fleet}"} 0`)

    expect((await get('/history?step=0s')).body).toMatchObject({ code: 'ERR_BAD_ARGUMENT' })
    expect((await get('/history?cursor=bogus')).status).toBe(400)
    expect((await get('/history?since=yesterday')).status).toBe(400)
    expect((await get(`/history?since=0&until=${T0}&step=1s`)).status).toBe(400) // too many buckets
  })
})
