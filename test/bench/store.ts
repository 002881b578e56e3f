import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PostgresStore, SqliteStore, type GatewayStore } from '../../gateway/index.js'
import type { StoredReading } from '../../gateway/store/store.js'
import { encodeFrame, generateKeyPair, type KeyPair } from '../../shared/index.js'
import { nodeEd25519 } from '../../shared/node.js'
import { rate, round } from './measure.js'

/**
 * Section "store" (issue 11): what keeping a reading costs the gateway, per reading, on the
 * embedded SQLite store (WAL; `synchronous=NORMAL`, the default, and `FULL`, one fsync per commit)
 * and on PostgreSQL when IOTMESH_PG_URL names one. Each reading is one transaction (insert + the
 * origin's high-water mark), as the gateway writes them; PostgreSQL's writes are issued the way the
 * gateway issues them (not awaited one by one: its writer connection queues them). Compared with
 * one Ed25519 verification measured in the same run, the work every accepted reading costs anyway.
 */
export async function benchStore (quick: boolean): Promise<Record<string, unknown>> {
  const n = quick ? 2000 : 10_000
  const devices = Array.from({ length: 50 }, () => generateKeyPair())
  const readings = Array.from({ length: n }, (_, i) => reading(devices[i % devices.length] as KeyPair, Math.floor(i / devices.length)))
  const message = new Uint8Array(220)
  const keys = generateKeyPair()
  const sig = nodeEd25519.sign(message, keys.secretKey)
  const verifyUs = 1e6 / rate(() => nodeEd25519.verify(sig, message, keys.publicKey), quick ? 300 : 1000)
  const dir = await mkdtemp(join(tmpdir(), 'iotmesh-bench-store-'))
  const out: Record<string, unknown> = { readings: n, frame_bytes: readings[0]?.frame.length, verify_us: round(verifyUs, 1) }
  try {
    for (const durability of ['process', 'power'] as const) {
      const count = durability === 'power' ? Math.min(n, quick ? 300 : 2000) : n
      const store = new SqliteStore({ path: join(dir, `${durability}.db`), fleet: 'bench', durability })
      out[`sqlite_${durability === 'process' ? 'normal' : 'full'}`] = await measure(store, readings.slice(0, count), verifyUs, false)
    }
    const pg = process.env.IOTMESH_PG_URL
    out.postgres = pg === undefined || pg === ''
      ? 'skipped: set IOTMESH_PG_URL=postgres://… to measure it'
      : await measure(new PostgresStore({ url: pg, fleet: `bench${Date.now().toString(36)}` }), readings, verifyUs, true)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
  return { store: out }
}

function reading (keys: KeyPair, seq: number): StoredReading {
  const time = 1_767_225_600 + seq
  const frame = encodeFrame({ keys, seq, time, records: [{ n: 'temp', u: 'Cel', v: 21.5 }, { n: 'hum', u: '%RH', v: 48 }, { n: 'bat', u: '%EL', v: 87 }] })
  return { origin: keys.id, seq, time, receivedAt: time * 1000, path: 'broker', topic: 'telemetry', frame }
}

async function measure (store: GatewayStore, readings: StoredReading[], verifyUs: number, pipelined: boolean): Promise<Record<string, unknown>> {
  await store.open()
  try {
    const t0 = process.hrtime.bigint()
    if (pipelined) await Promise.all(readings.map(async (r) => await store.record(r, true)))
    else for (const r of readings) await store.record(r, true)
    const us = Number(process.hrtime.bigint() - t0) / 1000 / readings.length
    const stored = await store.count()
    return { readings: readings.length, stored, us_per_reading: round(us, 1), readings_per_s: Math.round(1e6 / us), over_one_verify: round(us / verifyUs, 2) }
  } finally {
    await store.close()
  }
}
