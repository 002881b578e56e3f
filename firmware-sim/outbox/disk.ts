import { constants as fsConstants } from 'node:fs'
import { copyFile, mkdir, open, readFile, readdir, rename, truncate, unlink, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { meshError, type MeshError } from '../../shared/index.js'
import { readCursor, syncDir, writeCursor, type Cursor } from './cursor.js'
import { Ledger, checkLimits, inRanges, type LedgerEntry } from './ledger.js'
import { iterate, statsOf } from './memory.js'
import { RECORD_HEADER, SEGMENT_MAGIC, SEGMENT_PATTERN, encodeRecord, scanSegment, segmentName, type ScanResult } from './segment.js'
import { DISK_DEFAULTS, type DeliveryPath, type DiskOutboxInit, type FsyncPolicy, type Outbox, type OutboxEntry, type OutboxStats, type PendingOptions } from './types.js'

/**
 * An outbox on disk, for real devices: a reboot keeps what was not delivered. Frames are appended
 * to segment files (segment.ts) and acknowledgements kept in a small cursor file (cursor.ts); a
 * segment whose frames have all left is deleted. Opening scans every segment, discards a torn
 * last record (SIGKILL or power loss mid-append) by truncating the file after the last good one,
 * and restores what each path still has to deliver. A damaged record inside a segment (bit rot)
 * costs that record only: the file as found is kept aside as `<segment>.corrupt`, a repaired one
 * of its good records takes its place, and each damaged stretch is reported in stats().corrupt
 * (ERR_OUTBOX_CORRUPT) and counted in `discarded`.
 *
 * Every file operation runs in one queue, in call order. All frames' offsets are kept in memory,
 * their bytes are read from disk when pending() reaches them.
 */

interface Segment {
  readonly path: string
  /** Bytes in the file (the magic and complete records); the next append goes here. */
  size: number
  /** Records in the file, and how many of them are still held. */
  count: number
  live: number
  writer: FileHandle | undefined
  reader: FileHandle | undefined
  /** A write failed and could not be undone: never appended to again. */
  broken: boolean
  deleted: boolean
}

interface Loc {
  readonly segment: Segment
  readonly offset: number
}

export interface DiskOutboxComponents {
  /** Wall clock for an interval fsync policy; default Date.now. */
  now?: () => number
}

const DEFAULT_SEGMENT_BYTES = 1024 * 1024

/** Opens (or creates) a device's outbox on disk: readings kept until delivered, across crashes. */
export async function openDiskOutbox (init: DiskOutboxInit, components: DiskOutboxComponents = {}): Promise<Outbox> {
  const outbox = new DiskOutbox(init, components)
  await outbox.load()
  return outbox
}

class DiskOutbox implements Outbox {
  readonly #dir: string
  readonly #fsync: FsyncPolicy
  readonly #segmentBytes: number
  readonly #now: () => number
  readonly #ledger: Ledger<Loc>
  #segments: Segment[] = []
  #queue: Promise<void> = Promise.resolve()
  #accepted = 0
  #discarded = 0
  readonly #corrupt: MeshError[] = []
  #lastSync = 0
  #dead = false
  #closed = false

  constructor (init: DiskOutboxInit, components: DiskOutboxComponents) {
    this.#dir = init.dir
    this.#fsync = checkFsync(init.fsync ?? 'always')
    this.#segmentBytes = init.segmentBytes ?? DEFAULT_SEGMENT_BYTES
    if (!Number.isSafeInteger(this.#segmentBytes) || this.#segmentBytes < 64) throw meshError('ERR_BAD_ARGUMENT', `outbox segmentBytes must be an integer ≥ 64, got ${init.segmentBytes}`)
    this.#now = components.now ?? Date.now
    this.#ledger = new Ledger<Loc>(init.paths ?? ['mesh'], checkLimits(init, DISK_DEFAULTS), (entry) => {
      entry.loc.segment.live--
      if (entry.loc.segment.live === 0) this.#dead = true
    })
  }

  get paths (): readonly DeliveryPath[] { return this.#ledger.paths }
  get highWater (): number { return this.#ledger.highWater }

  async load (): Promise<void> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 })
    const cursor = await readCursor(this.#dir)
    const names = (await readdir(this.#dir)).filter((n) => SEGMENT_PATTERN.test(n)).sort()
    let previous = 0
    for (const name of names) {
      const path = join(this.#dir, name)
      let scan = scanSegment(new Uint8Array(await readFile(path)))
      if (!scan.ours) {
        // Not an outbox segment (no magic, no good record): keep it aside for a person to look at.
        const keptAs = await keepAside(path, true)
        this.#discarded++
        this.#report(path, 0, -1, keptAs, 'holds no good record (not an outbox segment, or its every record is damaged)')
        continue
      }
      if (scan.damaged.length > 0 || !scan.tornOnly) {
        // Damage inside (bit rot): a copy of the file as it is goes aside, the good records stay in a repaired file.
        scan = await this.#repair(path, scan)
      } else if (scan.torn) {
        await truncate(path, scan.good) // a crash mid-append: the cut record goes, as it never resolved put()
        this.#discarded++
      }
      const segment = newSegment(path, scan.good)
      this.#segments.push(segment)
      for (const record of scan.records) {
        if (record.seq <= previous) { this.#discarded++; continue } // out of order: not written by this outbox
        previous = record.seq
        segment.count++
        if (this.#ledger.add(record.seq, record.length, { segment, offset: record.offset }, this.#restoredAcks(cursor, record.seq)) !== undefined) segment.live++
      }
    }
    if (cursor !== undefined) {
      this.#ledger.highWater = Math.max(this.#ledger.highWater, cursor.highWater)
      this.#ledger.dropped = cursor.dropped
    }
    this.#ledger.trim()
    this.#accepted = this.#ledger.highWater
    this.#dead = true
    await this.#retire()
  }

  /**
   * Keeps the damaged file aside (`<name>.corrupt`, a copy as found) and puts in its place a file
   * of its good records only (written to a temporary file, synced, renamed over it: a crash
   * meanwhile leaves one of the two whole). Each damaged stretch is counted in `discarded` and
   * reported with ERR_OUTBOX_CORRUPT in stats().corrupt.
   */
  async #repair (path: string, scan: ScanResult): Promise<ScanResult> {
    const bytes = new Uint8Array(await readFile(path))
    const keptAs = await keepAside(path, false)
    const stretches = [...scan.damaged, ...(scan.tornOnly ? [] : [{ offset: scan.good, bytes: bytes.length - scan.good }])]
    for (const damage of stretches) {
      this.#discarded++
      this.#report(path, damage.offset, damage.bytes, keptAs, `${damage.bytes} bytes at offset ${damage.offset} failed the record checks and were skipped`)
    }
    const repaired = concat(SEGMENT_MAGIC, ...scan.records.map((r) => bytes.subarray(r.offset, r.offset + RECORD_HEADER + r.length)))
    const temporary = `${path}.repair`
    const handle = await open(temporary, 'w', 0o600)
    try {
      await writeAll(handle, repaired)
      await handle.datasync()
    } finally {
      await handle.close()
    }
    await rename(temporary, path)
    await syncDir(this.#dir)
    return scanSegment(repaired)
  }

  #report (path: string, offset: number, bytes: number, keptAs: string, what: string): void {
    const error = meshError('ERR_OUTBOX_CORRUPT', `outbox segment ${path}: ${what}; the readings in them are lost, the records after them kept; the file as found is kept as ${keptAs}`, {
      details: { segment: path, offset, bytes, keptAs }
    })
    this.#corrupt.push(error)
  }

  #restoredAcks (cursor: Cursor | undefined, seq: number): number {
    if (cursor === undefined || seq > cursor.highWater) return 0
    if (seq <= cursor.removedThrough) return -1 // every path
    let acked = 0
    this.paths.forEach((path, i) => {
      const ranges = cursor.pending[path]
      if (ranges !== undefined && !inRanges(ranges, seq)) acked |= 1 << i
    })
    return acked
  }

  async put (seq: number, frame: Uint8Array): Promise<void> {
    this.#open()
    if (!Number.isSafeInteger(seq) || seq <= this.#accepted) throw meshError('ERR_BAD_ARGUMENT', `outbox sequence numbers must increase: got ${seq} after ${this.#accepted}`)
    this.#accepted = seq
    return this.#enqueue(async () => {
      this.#ledger.admit(seq, frame.length, seq - 1) // the order was checked at the call; this drops the oldest if full
      const record = encodeRecord(seq, frame)
      const segment = await this.#segmentFor(seq, record.length)
      const writer = segment.writer as FileHandle
      const before = segment.size
      const bytes = before === 0 ? concat(SEGMENT_MAGIC, record) : record
      try {
        await writeAll(writer, bytes)
      } catch (err) {
        // Leave no partial record behind, or the next append would sit after garbage.
        await writer.truncate(before).catch(async () => {
          segment.broken = true
          await this.#closeWriter(segment)
        })
        throw err
      }
      segment.size += bytes.length
      segment.count++
      segment.live++
      this.#ledger.add(seq, frame.length, { segment, offset: segment.size - record.length })
      await this.#syncPerPolicy(writer)
      await this.#retire()
    })
  }

  async ack (path: DeliveryPath, seqs: number | Iterable<number>): Promise<void> {
    this.#open()
    for (const seq of typeof seqs === 'number' ? [seqs] : seqs) this.#ledger.ack(path, seq)
    if (this.#dead) await this.#enqueue(() => this.#retire())
  }

  pending (path: DeliveryPath, options?: PendingOptions): AsyncIterableIterator<OutboxEntry> {
    this.#ledger.bit(path)
    return iterate(this.#ledger, path, (entry) => this.#enqueue(() => this.#read(entry)), options)
  }

  stats (): OutboxStats {
    return { ...statsOf(this.#ledger, this.#discarded), corrupt: [...this.#corrupt] }
  }

  async flush (): Promise<void> {
    this.#open()
    await this.#enqueue(() => this.#flush())
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#enqueue(async () => {
      await this.#flush()
      for (const segment of this.#segments) {
        await this.#closeWriter(segment)
        await segment.reader?.close()
        segment.reader = undefined
      }
    })
  }

  [Symbol.asyncDispose] (): Promise<void> {
    return this.close()
  }

  async #flush (): Promise<void> {
    const active = this.#active()
    if (active?.writer !== undefined) await active.writer.datasync()
    this.#lastSync = this.#now()
    await writeCursor(this.#dir, this.#cursor(), true)
  }

  #cursor (): Cursor {
    return { ...this.#ledger.snapshot(), dropped: this.#ledger.dropped }
  }

  #active (): Segment | undefined {
    return this.#segments[this.#segments.length - 1]
  }

  async #segmentFor (seq: number, recordBytes: number): Promise<Segment> {
    let active = this.#active()
    if (active === undefined || active.broken || (active.count > 0 && active.size + recordBytes > this.#segmentBytes)) {
      if (active !== undefined) {
        if (this.#fsync !== 'never' && active.writer !== undefined) await active.writer.datasync()
        await this.#closeWriter(active)
        if (active.live === 0) this.#dead = true
      }
      active = newSegment(join(this.#dir, segmentName(seq)), 0)
      active.writer = await open(active.path, 'ax', 0o600) // O_EXCL: never append to a file this run did not create
      this.#segments.push(active)
      if (this.#fsync !== 'never') await syncDir(this.#dir)
    }
    active.writer ??= await open(active.path, 'a', 0o600)
    return active
  }

  async #syncPerPolicy (writer: FileHandle): Promise<void> {
    if (this.#fsync === 'never') return
    const now = this.#now()
    if (this.#fsync === 'always' || now - this.#lastSync >= this.#fsync) {
      await writer.datasync()
      this.#lastSync = now
    }
  }

  /** Deletes segments (but the one being appended to) whose frames have all left; the cursor first. */
  async #retire (): Promise<void> {
    if (!this.#dead) return
    this.#dead = false
    const active = this.#active()
    const done = this.#segments.filter((s) => s !== active && s.live === 0)
    if (done.length === 0) return
    await writeCursor(this.#dir, this.#cursor(), this.#fsync !== 'never')
    for (const segment of done) {
      await this.#closeWriter(segment)
      await segment.reader?.close()
      segment.reader = undefined
      segment.deleted = true
      await unlink(segment.path).catch((err: NodeJS.ErrnoException) => { if (err.code !== 'ENOENT') throw err })
    }
    this.#segments = this.#segments.filter((s) => !s.deleted)
    if (this.#fsync !== 'never') await syncDir(this.#dir)
  }

  async #read (entry: LedgerEntry<Loc>): Promise<Uint8Array | undefined> {
    const { segment, offset } = entry.loc
    if (this.#closed) throw meshError('ERR_ABORTED', `the outbox in ${this.#dir} is closed`)
    if (entry.removed || segment.deleted) return undefined
    segment.reader ??= await open(segment.path, 'r')
    const frame = new Uint8Array(entry.size)
    const { bytesRead } = await segment.reader.read(frame, 0, entry.size, offset + RECORD_HEADER)
    if (bytesRead !== entry.size) throw meshError('ERR_TRUNCATED', `outbox segment ${segment.path} ends inside the frame with seq ${entry.seq}`)
    return frame
  }

  async #closeWriter (segment: Segment): Promise<void> {
    const writer = segment.writer
    segment.writer = undefined
    await writer?.close()
  }

  #enqueue<T> (fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn)
    this.#queue = run.then(() => {}, () => {})
    return run
  }

  #open (): void {
    if (this.#closed) throw meshError('ERR_ABORTED', `the outbox in ${this.#dir} is closed`)
  }
}

function newSegment (path: string, size: number): Segment {
  return { path, size, count: 0, live: 0, writer: undefined, reader: undefined, broken: false, deleted: false }
}

function concat (...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const part of parts) {
    out.set(part, at)
    at += part.length
  }
  return out
}

/**
 * Keeps a damaged segment for a person to look at, under a name the outbox never reads:
 * `<name>.corrupt` (then `.corrupt-1`, `-2`… if taken). `move`: rename it; else copy it.
 */
async function keepAside (path: string, move: boolean): Promise<string> {
  for (let n = 0; ; n++) {
    const target = n === 0 ? `${path}.corrupt` : `${path}.corrupt-${n}`
    try {
      await copyFile(path, target, fsConstants.COPYFILE_EXCL) // not rename: it would replace an older one kept aside
      if (move) await unlink(path)
      return target
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || n >= 1000) throw err
    }
  }
}

async function writeAll (handle: FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done)
    done += bytesWritten
  }
}

/** The fsync policy if it is one the outbox knows; throws ERR_BAD_ARGUMENT otherwise. */
export function checkFsync (policy: FsyncPolicy): FsyncPolicy {
  if (policy === 'always' || policy === 'never') return policy
  if (typeof policy === 'number' && Number.isSafeInteger(policy) && policy >= 0) return policy
  throw meshError('ERR_BAD_ARGUMENT', `outbox fsync must be "always", "never" or a number of ms ≥ 0, got ${JSON.stringify(policy)}`)
}
