import { meshError } from '../../shared/index.js'
import { Ledger, checkLimits, type LedgerEntry } from './ledger.js'
import { MEMORY_DEFAULTS, type DeliveryPath, type Outbox, type OutboxEntry, type OutboxInit, type OutboxStats, type PendingOptions } from './types.js'

/** An outbox in memory, for simulated fleets: nothing survives the process. */
export function createMemoryOutbox (init: OutboxInit = {}): Outbox {
  const ledger = new Ledger<Uint8Array>(init.paths ?? ['mesh'], checkLimits(init, MEMORY_DEFAULTS))
  let closed = false
  const open = (): void => { if (closed) throw meshError('ERR_ABORTED', 'the outbox is closed') }
  const outbox: Outbox = {
    paths: ledger.paths,
    get highWater () { return ledger.highWater },
    async put (seq, frame) {
      open()
      ledger.admit(seq, frame.length)
      ledger.add(seq, frame.length, frame)
    },
    async ack (path, seqs) {
      open()
      for (const seq of typeof seqs === 'number' ? [seqs] : seqs) ledger.ack(path, seq)
    },
    pending (path, options) {
      ledger.bit(path)
      return iterate(ledger, path, async (entry) => entry.loc, options)
    },
    stats: () => statsOf(ledger, 0),
    async flush () {},
    async close () { closed = true },
    [Symbol.asyncDispose] () { return outbox.close() }
  }
  return outbox
}

export function statsOf<L> (ledger: Ledger<L>, discarded: number): OutboxStats {
  const pending: Partial<Record<DeliveryPath, number>> = {}
  for (const path of ledger.paths) pending[path] = ledger.pendingCount(path)
  return { frames: ledger.frames, bytes: ledger.bytes, pending, highWater: ledger.highWater, dropped: ledger.dropped, discarded }
}

/** Walks a ledger's pending frames for a path (those after `options.after`), reading each frame when it is reached. */
export async function * iterate<L> (
  ledger: Ledger<L>,
  path: DeliveryPath,
  load: (entry: LedgerEntry<L>) => Promise<Uint8Array | undefined>,
  options: PendingOptions = {}
): AsyncGenerator<OutboxEntry> {
  const signal = options.signal
  let after = options.after ?? 0
  if (!Number.isSafeInteger(after) || after < 0) throw meshError('ERR_BAD_ARGUMENT', `pending() takes after: an integer seq ≥ 0, got ${options.after}`)
  for (;;) {
    if (signal?.aborted === true) throw meshError('ERR_ABORTED', 'pending() was aborted', { cause: signal.reason })
    const entry = ledger.nextPending(path, after)
    if (entry === undefined) return
    after = entry.seq
    const frame = await load(entry)
    if (frame !== undefined && !entry.removed) yield { seq: entry.seq, frame }
  }
}
