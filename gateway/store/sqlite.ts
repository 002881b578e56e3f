import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { meshError, type DeviceId } from '../../shared/index.js'
import type { DeviceInfo } from '../devices.js'
import type { Path } from '../reasons.js'
import { PRUNE_BATCH, schema, statements } from './sql.js'
import { RETENTION_DEFAULTS, type GatewayStore, type KeptDoc, type HistoryQuery, type RetentionInit, type SavedOrigin, type StoredReading } from './store.js'

/**
 * The embedded store: one SQLite file per fleet, through libsql (a SQLite fork with a
 * better-sqlite3-compatible, synchronous API). libsql's native code ships as npm packages
 * (`@libsql/linux-x64-gnu`, `linux-arm64-gnu`, `linux-arm-gnueabihf`, … as optional
 * dependencies), so `npm install` fetches nothing but registry packages and runs no install script.
 * iotmesh lists libsql as an optional dependency itself: on a platform it has no binary for, the
 * install still succeeds and opening a store fails with ERR_STORE (use --memory or PostgreSQL).
 *
 * Durability (https://sqlite.org/wal.html, https://sqlite.org/pragma.html#pragma_synchronous):
 *   - journal_mode = WAL: a write is appended to the write-ahead log; readers never block it.
 *   - synchronous = NORMAL (default `durability: 'process'`): a commit is in the WAL (the kernel's
 *     page cache) when `record()` returns, so it survives the process being killed (SIGKILL, a
 *     crash); the WAL is fsynced at checkpoints, so a power cut may lose the last commits but never
 *     corrupts the database. `durability: 'power'` sets synchronous = FULL: every commit is fsynced
 *     (on an SD card that costs milliseconds per reading).
 * Each accepted reading is one transaction, committed synchronously before the gateway publishes
 * it anywhere: a reading delivered downstream is always known to the restarted gateway.
 */

export interface SqliteStoreInit {
  /** The database file; its folder is made (mode 0700) if missing. */
  path: string
  fleet: string
  /** 'process' (default): survives SIGKILL; 'power': survives a power cut too (fsync per commit). */
  durability?: 'process' | 'power'
}

interface Statement { run: (...params: unknown[]) => { changes: number }, get: (...params: unknown[]) => unknown, all: (...params: unknown[]) => unknown[] }
interface Database { prepare: (sql: string) => Statement, exec: (sql: string) => void, close: () => void }

/** `$n` (PostgreSQL) as `?n` (SQLite's numbered parameters). */
const numbered = (sql: string): string => sql.replace(/\$(\d+)/g, '?$1')

/** A gateway store in one SQLite file (libsql). */
export class SqliteStore implements GatewayStore {
  readonly kind = 'sqlite'
  readonly synchronous = true
  readonly location: string
  readonly #init: SqliteStoreInit
  #db: Database | undefined
  #stmts: Record<string, Statement> = {}

  constructor (init: SqliteStoreInit) {
    this.#init = init
    this.location = init.path
  }

  async open (): Promise<void> {
    if (this.#db !== undefined) return
    let Libsql: new (path: string) => unknown
    try {
      Libsql = (await import('libsql')).default
    } catch (err) {
      // libsql is an optional dependency: its native code exists for linux/darwin/win32 on x64, arm64 and arm (gnueabihf) only.
      throw meshError('ERR_STORE', `the embedded database (npm package libsql) is not available on ${process.platform}-${process.arch}: ` +
        `${err instanceof Error ? err.message : String(err)}; run with --memory, or --database postgres://…`, { cause: err })
    }
    const db = this.#wrap(() => {
      makeDir(dirname(this.#init.path))
      const opened = new Libsql(this.#init.path) as unknown as Database
      try {
        opened.exec('PRAGMA journal_mode = WAL')
        opened.exec(`PRAGMA synchronous = ${this.#init.durability === 'power' ? 'FULL' : 'NORMAL'}`)
        opened.exec('PRAGMA busy_timeout = 2000')
        for (const sql of schema('sqlite')) opened.exec(sql)
      } catch (err) {
        opened.close()
        throw err
      }
      return opened
    }, 'open')
    this.#db = db
    this.#stmts = Object.fromEntries(Object.entries(statements('sqlite')).map(([name, sql]) => [name, db.prepare(numbered(sql))]))
    for (const sql of ['BEGIN IMMEDIATE', 'COMMIT', 'ROLLBACK']) this.#stmts[sql] = db.prepare(sql)
  }

  async load (options: { window: number, maxDevices: number }): Promise<{ origins: SavedOrigin[], devices: DeviceInfo[] }> {
    return this.#wrap(() => {
      const fleet = this.#init.fleet
      const origins = new Map<DeviceId, SavedOrigin>()
      for (const row of this.#s('loadOrigins').all(fleet) as Array<{ origin: DeviceId, high: number, floor: number, known: number }>) {
        origins.set(row.origin, { origin: row.origin, high: Number(row.high), floor: Number(row.floor), known: Number(row.known) === 1, seen: [] })
      }
      for (const row of this.#s('loadWindows').all(fleet, options.window) as Array<{ origin: DeviceId, seq: number }>) origins.get(row.origin)?.seen.push(Number(row.seq))
      const devices = (this.#s('loadDevices').all(fleet, options.maxDevices) as Array<{ info: string }>).map((row) => JSON.parse(row.info) as DeviceInfo).reverse()
      return { origins: [...origins.values()], devices }
    }, 'read')
  }

  async record (reading: StoredReading, known: boolean): Promise<boolean> {
    return this.recordSync(reading, known)
  }

  /** `record`, synchronously: committed when it returns. */
  recordSync (reading: StoredReading, known: boolean): boolean {
    return this.#wrap(() => this.#transaction(() => {
      const fleet = this.#init.fleet
      const { changes } = this.#s('insertReading').run(fleet, reading.origin, reading.seq, reading.time, reading.receivedAt, reading.path, reading.topic, reading.frame)
      this.#s('raiseHigh').run(fleet, reading.origin, reading.seq, known ? 1 : 0, reading.receivedAt)
      return changes === 1
    }), 'write')
  }

  async claimToken (device: DeviceId, cti: string, untilS: number): Promise<boolean> {
    return this.claimTokenSync(device, cti, untilS)
  }

  claimTokenSync (device: DeviceId, cti: string, untilS: number): boolean {
    return this.#wrap(() => this.#s('claimToken').run(this.#init.fleet, device, cti, untilS).changes === 1, 'write')
  }

  async saveDevices (devices: DeviceInfo[]): Promise<void> {
    if (devices.length === 0) return
    this.#wrap(() => this.#transaction(() => {
      for (const d of devices) this.#s('saveDevice').run(this.#init.fleet, d.id, JSON.stringify(d), d.lastSeen ?? 0)
    }), 'write')
  }

  async keepTrust (kept: KeptDoc): Promise<void> {
    this.#wrap(() => this.#s('keepTrust').run(this.#init.fleet, kept.kind, kept.key, kept.doc), 'write')
  }

  async loadTrust (): Promise<KeptDoc[]> {
    return this.#wrap(() => (this.#s('loadTrust').all(this.#init.fleet) as Array<{ kind: KeptDoc['kind'], key: string, doc: Uint8Array | ArrayBuffer }>)
      .map((row) => ({ kind: row.kind, key: row.key, doc: bytesOf(row.doc) })), 'read')
  }

  async history (query: HistoryQuery): Promise<StoredReading[]> {
    return this.#wrap(() => {
      const since = query.since ?? -1e300
      const until = query.until ?? 1e300
      if (query.newest === true) return (this.#s('newest').all(this.#init.fleet, query.origin, since, until, query.limit) as Row[]).map(fromRow).reverse()
      const rows = this.#s('history').all(this.#init.fleet, query.origin, since, until, query.after?.time ?? -1e300, query.after?.seq ?? -1, query.limit) as Row[]
      return rows.map(fromRow)
    }, 'read')
  }

  async prune (now: number, retention: RetentionInit = {}): Promise<number> {
    return this.#wrap(() => this.#transaction(() => {
      const fleet = this.#init.fleet
      const oldest = (this.#s('oldestId').get(fleet) as { id: number | null }).id
      let deleted = 0
      if (oldest !== null) {
        const cap = Number(oldest) + PRUNE_BATCH - 1
        const aged = (this.#s('lastIdBefore').get(fleet, cap, now - (retention.maxAgeMs ?? RETENTION_DEFAULTS.maxAgeMs)) as { id: number | null }).id
        const beyond = (this.#s('lastIdBeyond').get(fleet, retention.maxReadings ?? RETENTION_DEFAULTS.maxReadings) as { id: number } | undefined)?.id
        const cut = Math.min(cap, Math.max(aged === null ? -1 : Number(aged), beyond === undefined ? -1 : Number(beyond)))
        if (cut >= 0) {
          this.#s('raiseFloors').run(fleet, cut)
          deleted = this.#s('deleteReadings').run(fleet, cut).changes
        }
      }
      this.#s('pruneOrigins').run(fleet, retention.maxOrigins ?? RETENTION_DEFAULTS.maxOrigins)
      this.#s('pruneDevices').run(fleet, retention.maxDevices ?? RETENTION_DEFAULTS.maxDevices)
      this.#s('pruneTokens').run(fleet, Math.floor(now / 1000))
      return deleted
    }), 'write')
  }

  async count (): Promise<number> {
    return this.#wrap(() => Number((this.#s('count').get(this.#init.fleet) as { n: number }).n), 'read')
  }

  async close (): Promise<void> {
    const db = this.#db
    this.#db = undefined
    this.#stmts = {}
    db?.close()
  }

  #s (name: string): Statement {
    const stmt = this.#stmts[name]
    if (stmt === undefined) throw meshError('ERR_STORE', `the database ${this.location} is not open`)
    return stmt
  }

  #transaction<T> (work: () => T): T {
    this.#s('BEGIN IMMEDIATE').run()
    try {
      const result = work()
      this.#s('COMMIT').run()
      return result
    } catch (err) {
      try { this.#s('ROLLBACK').run() } catch { /* the transaction is gone already */ }
      throw err
    }
  }

  #wrap<T> (work: () => T, what: 'open' | 'read' | 'write'): T {
    try {
      return work()
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ERR_STORE') throw err
      const cause = err instanceof Error ? err.message : String(err)
      throw meshError('ERR_STORE', `cannot ${what} the gateway database ${this.location}: ${cause}`, { cause: err })
    }
  }
}

/**
 * `mkdir -p` with mode 0700, bounded by the path's depth. Node's own `recursive: true` never
 * returns where mkdir says ENOENT under a parent that exists (a pseudo-filesystem such as /proc).
 */
function makeDir (dir: string, depth = 0): void {
  try {
    mkdirSync(dir, { mode: 0o700 })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST') return
    const parent = dirname(dir)
    if (code !== 'ENOENT' || parent === dir || depth > 64) throw err
    makeDir(parent, depth + 1)
    mkdirSync(dir, { mode: 0o700 })
  }
}

/** A BLOB as bytes: a Buffer (pg; libsql's `get`) or an ArrayBuffer (libsql's `all`). */
export function bytesOf (blob: Uint8Array | ArrayBuffer): Uint8Array {
  return blob instanceof ArrayBuffer ? new Uint8Array(blob) : new Uint8Array(blob.buffer, blob.byteOffset, blob.byteLength)
}

interface Row { origin: DeviceId, seq: number, time: number, received_at: number, path: Path, topic: string, frame: Uint8Array | ArrayBuffer }

/** A row as a reading. A BLOB comes back as a Buffer (pg; libsql's `get`) or an ArrayBuffer (libsql's `all`). */
export function fromRow (row: Row): StoredReading {
  const frame = bytesOf(row.frame)
  return {
    origin: row.origin,
    seq: Number(row.seq),
    time: Number(row.time),
    receivedAt: Number(row.received_at),
    path: row.path,
    topic: row.topic,
    frame
  }
}
