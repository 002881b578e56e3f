import { meshError, type SequenceSource } from '../shared/index.js'
import { createMemoryOutbox } from './outbox/memory.js'
import { openDiskOutbox, type DiskOutboxComponents } from './outbox/disk.js'
import type { DiskOutboxInit, Outbox, OutboxInit } from './outbox/types.js'

/**
 * The outbox: signed frames that wait for a delivery path (outbox/types.ts has the contract).
 * On disk for real devices (outbox/disk.ts), in memory for simulated fleets (outbox/memory.ts).
 *
 * Sequence numbers after a restart. A frame's seq comes from the sequence store
 * (shared/sequence.ts), which reserves numbers on disk before handing them out, and the outbox
 * records the highest seq it ever held (`highWater`, kept in the segments and the cursor).
 * Recommendation for the device runtime: open the store with a block of N (1000 by default:
 * one fsync per thousand frames, kind to SD cards) and, at start, compare it with the outbox.
 * The store's `current` after opening is its last reservation, which is above every number
 * handed out before a crash; if it is below `outbox.highWater`, the sequence file was lost or
 * restored from an old copy while the outbox survived, and reusing those numbers would make
 * receivers drop fresh readings as replays. `checkSequenceAhead` refuses that case with
 * ERR_SEQUENCE_STORE. A runtime that must start anyway needs a way to move the store past the
 * high-water mark: an `openSequenceFile(path, { block, floor })` in shared/ would give it.
 * `block: 1` (persist every number before use) is the alternative when gaps must not happen;
 * it costs one fsync and rename per frame.
 */

export { createMemoryOutbox } from './outbox/memory.js'
export { openDiskOutbox, checkFsync, type DiskOutboxComponents } from './outbox/disk.js'
export { DELIVERY_PATHS } from './outbox/ledger.js'
export type { DeliveryPath, DiskOutboxInit, FsyncPolicy, Outbox, OutboxEntry, OutboxInit, OutboxStats, PendingOptions } from './outbox/types.js'

/** A disk outbox when `dir` is given, else one in memory. */
export async function openOutbox (init: OutboxInit & Partial<DiskOutboxInit>, components: DiskOutboxComponents = {}): Promise<Outbox> {
  if (init.dir === undefined) return createMemoryOutbox(init)
  return openDiskOutbox(init as DiskOutboxInit, components)
}

/**
 * Refuses (ERR_SEQUENCE_STORE) a sequence store that is behind the outbox: its next numbers
 * would repeat frames already signed. Call it once at start, after opening both.
 */
export function checkSequenceAhead (sequence: Pick<SequenceSource, 'current'>, outbox: Pick<Outbox, 'highWater'>): void {
  if (sequence.current < outbox.highWater) {
    throw meshError('ERR_SEQUENCE_STORE', `the sequence store is at ${sequence.current} but the outbox already holds seq ${outbox.highWater}: the sequence file was lost or restored from an old copy; numbers would repeat, so refusing to start (move the outbox away knowingly, or restore the sequence file)`, { details: { current: sequence.current, highWater: outbox.highWater } })
  }
}
