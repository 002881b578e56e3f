import type { DeviceId } from '../../shared/index.js'
import type { DeviceInfo } from '../devices.js'
import type { Path } from '../reasons.js'

/**
 * The gateway's durable state, one interface over two databases: SQLite (libsql, embedded: the
 * default, one file per fleet) and PostgreSQL (`pg`: several gateways share one database). It holds
 *
 *   - readings: every reading the gateway accepted, as the exact signed frame plus the columns
 *     queried (origin, seq, sampling time, when accepted, path, device topic). Unique per
 *     (fleet, origin, seq): a second gateway's copy of a reading is not stored twice.
 *   - origins: per origin the highest sequence number accepted (its high-water mark), the
 *     highest one pruned from `readings` (`floor`), and whether it was a known device. The
 *     replay window of a restarted gateway is rebuilt from these and the readings inside the
 *     window (RFC 4303 §3.4.3): a captured frame replayed after a restart is a duplicate.
 *   - devices: the device registry (gateway/devices.ts) as JSON, written behind (every second).
 *
 * Retention: readings older than `maxAgeMs`, and the oldest beyond `maxReadings`, are pruned;
 * the origins' floors keep what pruning removed counted as seen.
 */

export interface StoredReading {
  origin: DeviceId
  seq: number
  /** Sampling time, seconds since the epoch. */
  time: number
  /** When the gateway accepted it, ms since the epoch. */
  receivedAt: number
  path: Path
  /** The signed device topic. */
  topic: string
  /** The exact signed frame (COSE_Sign1). */
  frame: Uint8Array
}

/** A saved replay window: what `ReplayGuard.restore` puts back. */
export interface SavedOrigin {
  origin: DeviceId
  high: number
  floor: number
  known: boolean
  /** Sequence numbers stored in (high - window, high]. */
  seen: number[]
}

export interface HistoryQuery {
  origin: DeviceId
  /** Sampling time, seconds since the epoch, inclusive. */
  since?: number
  /** Exclusive. */
  until?: number
  /** Resume after this (time, seq): the last row of the previous page. */
  after?: { time: number, seq: number }
  limit: number
  /** The newest `limit` readings of the range (still returned oldest first); `after` is then ignored. */
  newest?: boolean
}

export interface RetentionInit {
  /** Readings accepted longer ago than this are pruned. Default 30 days. */
  maxAgeMs?: number
  /** The oldest readings beyond this many (this fleet, all devices) are pruned. Default 1,000,000. */
  maxReadings?: number
  /** Origins kept (their high-water marks), most recently active first. Default 100,000. */
  maxOrigins?: number
  /** Devices kept in the saved registry, most recently seen first. Default 100,000. */
  maxDevices?: number
}

export const RETENTION_DEFAULTS = { maxAgeMs: 30 * 24 * 3600_000, maxReadings: 1_000_000, maxOrigins: 100_000, maxDevices: 100_000 } as const

/** An owner-signed document kept in the store: `key` is a fleet file's version (zero-padded, so keys sort by version) or a revoked device's id. */
export interface KeptDoc { kind: 'fleet-file' | 'revocation', key: string, doc: Uint8Array }

export interface GatewayStore {
  /** 'sqlite' or 'postgres'. */
  readonly kind: string
  /** True when `record` has committed by the time it returns (SQLite); false when only its promise says so (PostgreSQL). */
  readonly synchronous: boolean
  /** The file, or the server (without credentials), for messages and the banner. */
  readonly location: string
  /** Creates the schema if needed. Idempotent. */
  open (): Promise<void>
  /** The saved replay windows (least recently active first) and devices. */
  load (options: { window: number, maxDevices: number }): Promise<{ origins: SavedOrigin[], devices: DeviceInfo[] }>
  /**
   * Records an accepted reading and raises its origin's high-water mark, in one transaction.
   * SQLite: committed (to the WAL) before it returns; PostgreSQL: when the promise resolves.
   * Returns false when the reading was stored already (another gateway sharing the database).
   */
  record (reading: StoredReading, known: boolean): Promise<boolean>
  /** `record` committed before it returns, where the database allows (SQLite); throws when the write failed. */
  recordSync?: (reading: StoredReading, known: boolean) => boolean
  /**
   * Claims a device token's id (its cti) until `untilS` (seconds since the epoch): true the first
   * time, false when any gateway sharing the store claimed it before (a replayed password). Expired
   * claims go with `prune`. SQLite answers through `claimTokenSync` too.
   */
  claimToken (device: DeviceId, cti: string, untilS: number): Promise<boolean>
  claimTokenSync?: (device: DeviceId, cti: string, untilS: number) => boolean
  saveDevices (devices: DeviceInfo[]): Promise<void>
  /**
   * Keeps an owner-signed document the gateway took (gateway/kept-trust.ts): a fleet file under its
   * version, a revocation under its device's id; one already kept under that key stays. Optional:
   * a store without it keeps none (the gateway then relearns them from the mesh after a restart).
   */
  keepTrust?: (doc: KeptDoc) => Promise<void>
  /** Every document kept for this fleet, by kind and key. */
  loadTrust?: () => Promise<KeptDoc[]>
  /** Readings of one origin in (time, seq) order. */
  history (query: HistoryQuery): Promise<StoredReading[]>
  /** Applies retention; returns the number of readings deleted. */
  prune (now: number, retention?: RetentionInit): Promise<number>
  /** Readings stored for this fleet. */
  count (): Promise<number>
  close (): Promise<void>
}
