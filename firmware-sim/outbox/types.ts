import type { MeshError } from '../../shared/index.js'
import type { DeliveryPath } from './ledger.js'

export type { DeliveryPath } from './ledger.js'

/** One signed frame waiting in an outbox. */
export interface OutboxEntry {
  readonly seq: number
  /** The signed frame (COSE_Sign1 bytes), as put. */
  readonly frame: Uint8Array
}

/** How `Outbox.pending` iterates: until aborted, and from which seq on. */
export interface PendingOptions {
  /** Ends the iteration with ERR_ABORTED. */
  signal?: AbortSignal
  /** Start after this seq (default 0: from the oldest frame held). */
  after?: number
}

export interface OutboxStats {
  /** Frames held, and their bytes. */
  frames: number
  bytes: number
  /** Frames held that each path has not acknowledged yet. */
  pending: Partial<Record<DeliveryPath, number>>
  /** The highest seq ever put (0 before the first), across restarts for a disk outbox. */
  highWater: number
  /** Oldest frames dropped to make room, since the outbox was created (a disk outbox: ever). */
  dropped: number
  /** Torn or corrupt records found and discarded when a disk outbox was opened. */
  discarded: number
  /** A disk outbox: each damaged stretch found when it was opened (ERR_OUTBOX_CORRUPT, details: segment, offset, bytes, keptAs). */
  corrupt?: MeshError[]
}

/**
 * Readings not yet delivered. The device puts each signed frame, keyed by its sequence number,
 * once; each delivery path ('mesh', 'broker') takes what it has not delivered from `pending(path)`
 * and acknowledges what it delivered; a frame leaves when every configured path acknowledged it.
 * Bounded by frames and bytes: when full, the oldest frame is dropped (and counted).
 */
export interface Outbox {
  readonly paths: readonly DeliveryPath[]
  /** The highest seq ever put; a restarted device's sequence numbers must stay above it. */
  readonly highWater: number
  /** Holds a frame. `seq` must be above every seq put before (ERR_BAD_ARGUMENT otherwise). */
  put (seq: number, frame: Uint8Array): Promise<void>
  /** Marks seqs as delivered on a path. Seqs not held are ignored; a path not configured is ERR_BAD_ARGUMENT. */
  ack (path: DeliveryPath, seqs: number | Iterable<number>): Promise<void>
  /**
   * The frames `path` has not acknowledged, oldest first, as they are when reached: frames put
   * while iterating are included, frames acknowledged or dropped meanwhile are skipped. With
   * `after`, only frames with a greater seq: a caller that keeps its own place (the device's pump,
   * past the frames it already handed to the path) resumes there instead of walking them again.
   */
  pending (path: DeliveryPath, options?: PendingOptions): AsyncIterableIterator<OutboxEntry>
  stats (): OutboxStats
  /** Makes everything put and acknowledged so far durable (a disk outbox; a no-op in memory). */
  flush (): Promise<void>
  /** Flushes and releases files. Idempotent; put/ack after close are ERR_ABORTED. */
  close (): Promise<void>
  [Symbol.asyncDispose] (): Promise<void>
}

export interface OutboxInit {
  /** The device's delivery paths: ['mesh'], ['broker'] or both (hybrid); default ['mesh']. */
  paths?: readonly DeliveryPath[]
  /** Most frames held; default 10,000 in memory, 100,000 on disk. */
  maxFrames?: number
  /** Most frame bytes held; default 2 MiB in memory, 16 MiB on disk. */
  maxBytes?: number
}

/**
 * When a disk outbox calls fsync(2): `always` after every put (a power cut loses nothing that
 * put resolved), `never` (the kernel writes back within ~30 s; a process crash loses nothing,
 * a power cut may lose the last seconds), or a number N of ms: at a put when the last fsync is
 * older than N ms. flush() and close() always fsync.
 */
export type FsyncPolicy = 'always' | 'never' | number

export interface DiskOutboxInit extends OutboxInit {
  /** The outbox's own directory (created if needed), e.g. `<dataDir>/outbox`. */
  dir: string
  /** Default 'always'. */
  fsync?: FsyncPolicy
  /** A segment file is closed and a new one started past this size; default 1 MiB. */
  segmentBytes?: number
}

export const MEMORY_DEFAULTS = { maxFrames: 10_000, maxBytes: 2 * 1024 * 1024 }
export const DISK_DEFAULTS = { maxFrames: 100_000, maxBytes: 16 * 1024 * 1024 }
