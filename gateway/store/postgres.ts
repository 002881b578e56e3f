import { meshError, type DeviceId } from '../../shared/index.js'
import type { DeviceInfo } from '../devices.js'
import { bytesOf, fromRow } from './sqlite.js'
import { PRUNE_BATCH, schema, statements } from './sql.js'
import { RETENTION_DEFAULTS, type GatewayStore, type KeptDoc, type HistoryQuery, type RetentionInit, type SavedOrigin, type StoredReading } from './store.js'

/**
 * The server store: PostgreSQL through `pg` (pure JavaScript), for several gateways sharing one
 * database. They share the readings history (one row per (fleet, origin, seq), whichever gateway
 * stored it first), the high-water marks (each raise takes the greatest) and the device registry
 * (last writer wins per device). A gateway restores the replay windows of all of them at start;
 * while running, each gateway's replay window is its own (in memory), so a frame accepted by one
 * gateway and replayed to another is refused by the other's window only after its restart — but it
 * is stored once (`record` returns false), so the shared history holds no duplicate.
 *
 * A write is committed when its promise resolves: a gateway SIGKILLed in between loses at most
 * the writes in flight (PostgreSQL's own durability, fsync at commit by default, covers the rest).
 */

export interface PostgresStoreInit {
  /** postgres://user:password@host:port/database, or with ?host=/path/to/socket/dir for a Unix socket. */
  url: string
  fleet: string
  /** Connections in the pool. Default 4. */
  poolSize?: number
}

interface Pool {
  query: (sql: string | { name: string, text: string }, params?: unknown[]) => Promise<{ rows: Array<Record<string, unknown>>, rowCount: number | null }>
  connect: () => Promise<Client>
  end: () => Promise<void>
  on: (event: 'error', listener: (err: Error) => void) => void
}
interface Client { query: Pool['query'], release: (err?: Error) => void }

const SQL = statements('postgres')

/** A reading waiting for the writer: its statement's parameters and its promise's ends. */
interface Waiting { params: unknown[], done: (stored: boolean) => void, failed: (err: unknown) => void }
/** Most readings in one transaction of the writer. */
const MAX_GROUP = 256

/** `record` in one statement: the reading, then the high-water mark, atomically. */
const RECORD = `WITH stored AS (${SQL.insertReading as string} RETURNING 1)
  ${(SQL.raiseHigh as string).replace('($1, $2, $3, -1, $4, $5)', '($1, $2, $3, -1, $9, $5)')} RETURNING (SELECT count(*) FROM stored) AS stored`

/** `record` as a named statement: parsed and planned once per connection, not once per reading. */
const RECORD_STATEMENT = { name: 'iotmesh-record', text: RECORD }

/** A gateway store in PostgreSQL, which several gateways may share. */
export class PostgresStore implements GatewayStore {
  readonly kind = 'postgres'
  readonly synchronous = false
  readonly location: string
  readonly #init: PostgresStoreInit
  #pool: Pool | undefined
  /** One connection for `record`: readings are written (and numbered) in the order they were accepted. */
  #writer: Pool | undefined
  /** Readings waiting for the writer (#write), and whether it runs. */
  readonly #waiting: Waiting[] = []
  #writing = false

  constructor (init: PostgresStoreInit) {
    this.#init = init
    this.location = redact(init.url)
  }

  async open (): Promise<void> {
    if (this.#pool !== undefined) return
    const pg = await import('pg')
    const pool = new pg.default.Pool({ connectionString: this.#init.url, max: this.#init.poolSize ?? 4 }) as unknown as Pool
    const writer = new pg.default.Pool({ connectionString: this.#init.url, max: 1 }) as unknown as Pool
    for (const p of [pool, writer]) p.on('error', () => {}) // an idle client's connection dropped: the pool makes a new one
    try {
      // Several gateways may create the schema at once: one at a time (a transaction-level advisory lock).
      await this.#inTransaction(pool, 'open', async (client) => {
        await client.query('SELECT pg_advisory_xact_lock(7460521)')
        for (const sql of schema('postgres')) await client.query(sql)
      })
    } catch (err) {
      await Promise.allSettled([pool.end(), writer.end()])
      throw this.#error(err, 'open')
    }
    this.#pool = pool
    this.#writer = writer
  }

  async load (options: { window: number, maxDevices: number }): Promise<{ origins: SavedOrigin[], devices: DeviceInfo[] }> {
    const fleet = this.#init.fleet
    const origins = new Map<DeviceId, SavedOrigin>()
    for (const row of await this.#rows(SQL.loadOrigins, [fleet])) {
      const origin = row.origin as DeviceId
      origins.set(origin, { origin, high: Number(row.high), floor: Number(row.floor), known: Number(row.known) === 1, seen: [] })
    }
    for (const row of await this.#rows(SQL.loadWindows, [fleet, options.window])) origins.get(row.origin as DeviceId)?.seen.push(Number(row.seq))
    const devices = (await this.#rows(SQL.loadDevices, [fleet, options.maxDevices])).map((row) => JSON.parse(row.info as string) as DeviceInfo).reverse()
    return { origins: [...origins.values()], devices }
  }

  async record (r: StoredReading, known: boolean): Promise<boolean> {
    const params = [this.#init.fleet, r.origin, r.seq, r.time, r.receivedAt, r.path, r.topic, Buffer.from(r.frame.buffer, r.frame.byteOffset, r.frame.byteLength), known ? 1 : 0]
    return await new Promise<boolean>((resolve, reject) => {
      this.#waiting.push({ params, done: resolve, failed: reject })
      if (!this.#writing) void this.#write()
    })
  }

  /**
   * Group commit: what arrived while the writer committed goes in the next transaction together, up
   * to MAX_GROUP readings, in the order accepted (one reading alone: one statement). Each commit
   * costs PostgreSQL an fsync, so readings arriving faster than one fsync each share one; each
   * reading's promise still resolves only once its commit has. A failed transaction fails every
   * reading in it (ERR_STORE; not acknowledged, so their devices offer them again).
   */
  async #write (): Promise<void> {
    this.#writing = true
    try {
      while (this.#waiting.length > 0) {
        const group = this.#waiting.splice(0, MAX_GROUP)
        try {
          const results = group.length === 1
            ? [await this.#rows(RECORD_STATEMENT, this.#writer, (group[0] as Waiting).params)]
            : await this.#inTransaction(this.#open(this.#writer), 'use', async (client) => {
              const out: Array<Array<Record<string, unknown>>> = []
              for (const g of group) out.push((await client.query(RECORD_STATEMENT, g.params)).rows)
              return out
            })
          group.forEach((g, i) => { g.done(Number(results[i]?.[0]?.stored) === 1) })
        } catch (err) {
          for (const g of group) g.failed(err)
        }
      }
    } finally {
      this.#writing = false
    }
  }

  #open (pool: Pool | undefined): Pool {
    if (pool === undefined) throw meshError('ERR_STORE', `the database ${this.location} is not open`)
    return pool
  }

  async claimToken (device: DeviceId, cti: string, untilS: number): Promise<boolean> {
    const pool = this.#pool
    if (pool === undefined) throw meshError('ERR_STORE', `the database ${this.location} is not open`)
    try {
      return ((await pool.query(SQL.claimToken as string, [this.#init.fleet, device, cti, untilS])).rowCount ?? 0) === 1
    } catch (err) {
      throw this.#error(err, 'use')
    }
  }

  async saveDevices (devices: DeviceInfo[]): Promise<void> {
    if (devices.length === 0) return
    await this.#transaction(async (client) => {
      for (const d of devices) await client.query(SQL.saveDevice as string, [this.#init.fleet, d.id, JSON.stringify(d), d.lastSeen ?? 0])
    })
  }

  async keepTrust (kept: KeptDoc): Promise<void> {
    await this.#rows(SQL.keepTrust, [this.#init.fleet, kept.kind, kept.key, Buffer.from(kept.doc.buffer, kept.doc.byteOffset, kept.doc.byteLength)])
  }

  async loadTrust (): Promise<KeptDoc[]> {
    return (await this.#rows(SQL.loadTrust, [this.#init.fleet])).map((row) => ({ kind: row.kind as KeptDoc['kind'], key: row.key as string, doc: bytesOf(row.doc as Uint8Array) }))
  }

  async history (q: HistoryQuery): Promise<StoredReading[]> {
    const since = q.since ?? -1e300
    const until = q.until ?? 1e300
    if (q.newest === true) return (await this.#rows(SQL.newest, [this.#init.fleet, q.origin, since, until, q.limit])).map(toReading).reverse()
    return (await this.#rows(SQL.history, [this.#init.fleet, q.origin, since, until, q.after?.time ?? -1e300, q.after?.seq ?? -1, q.limit])).map(toReading)
  }

  async prune (now: number, retention: RetentionInit = {}): Promise<number> {
    const fleet = this.#init.fleet
    return await this.#transaction(async (client) => {
      const oldest = (await client.query(SQL.oldestId as string, [fleet])).rows[0]?.id
      let deleted = 0
      if (oldest !== null && oldest !== undefined) {
        const cap = Number(oldest) + PRUNE_BATCH - 1
        const aged = (await client.query(SQL.lastIdBefore as string, [fleet, cap, now - (retention.maxAgeMs ?? RETENTION_DEFAULTS.maxAgeMs)])).rows[0]?.id
        const beyond = (await client.query(SQL.lastIdBeyond as string, [fleet, retention.maxReadings ?? RETENTION_DEFAULTS.maxReadings])).rows[0]?.id
        const cut = Math.min(cap, Math.max(aged === null || aged === undefined ? -1 : Number(aged), beyond === undefined ? -1 : Number(beyond)))
        if (cut >= 0) {
          await client.query(SQL.raiseFloors as string, [fleet, cut])
          deleted = (await client.query(SQL.deleteReadings as string, [fleet, cut])).rowCount ?? 0
        }
      }
      await client.query(SQL.pruneOrigins as string, [fleet, retention.maxOrigins ?? RETENTION_DEFAULTS.maxOrigins])
      await client.query(SQL.pruneDevices as string, [fleet, retention.maxDevices ?? RETENTION_DEFAULTS.maxDevices])
      await client.query(SQL.pruneTokens as string, [fleet, Math.floor(now / 1000)])
      return deleted
    })
  }

  async count (): Promise<number> {
    return Number((await this.#rows(SQL.count, [this.#init.fleet]))[0]?.n ?? 0)
  }

  async close (): Promise<void> {
    const pools = [this.#pool, this.#writer]
    this.#pool = undefined
    this.#writer = undefined
    await Promise.all(pools.map(async (pool) => { await pool?.end() }))
  }

  async #rows (sql: string | { name: string, text: string } | undefined, ...args: [unknown[]] | [Pool | undefined, unknown[]]): Promise<Array<Record<string, unknown>>> {
    const pool = args.length === 2 ? args[0] : this.#pool
    const params = args.length === 2 ? args[1] : args[0]
    if (pool === undefined || sql === undefined) throw meshError('ERR_STORE', `the database ${this.location} is not open`)
    try {
      return (await pool.query(sql, params)).rows
    } catch (err) {
      throw this.#error(err, 'use')
    }
  }

  async #transaction<T> (work: (client: Client) => Promise<T>): Promise<T> {
    return await this.#inTransaction(this.#open(this.#pool), 'use', work)
  }

  async #inTransaction<T> (pool: Pool, what: string, work: (client: Client) => Promise<T>): Promise<T> {
    let client: Client
    try { client = await pool.connect() } catch (err) { throw this.#error(err, what) }
    try {
      await client.query('BEGIN')
      const result = await work(client)
      await client.query('COMMIT')
      client.release()
      return result
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {})
      client.release()
      throw this.#error(err, what)
    }
  }

  #error (err: unknown, what: string): Error {
    if ((err as { code?: unknown }).code === 'ERR_STORE') return err as Error
    return meshError('ERR_STORE', `cannot ${what} the gateway database ${this.location}: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
  }
}

function toReading (row: Record<string, unknown>): StoredReading {
  return fromRow(row as unknown as Parameters<typeof fromRow>[0])
}

/** The URL without its password. */
function redact (url: string): string {
  try {
    const u = new URL(url)
    if (u.password !== '') u.password = '***'
    return u.toString()
  } catch {
    return 'postgres://(unparsable URL)'
  }
}
