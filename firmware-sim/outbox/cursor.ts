import { open, rename, readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import type { PendingRanges } from './ledger.js'
import { DELIVERY_PATHS } from './ledger.js'

/**
 * The ack cursor of a disk outbox, `cursor.json`, replaced atomically (write a temporary file,
 * fsync, rename, fsync the directory):
 *
 *     { "v": 1, "highWater": 912, "removedThrough": 880, "dropped": 0,
 *       "pending": { "mesh": [[881, 912]], "broker": [[890, 890], [901, 912]] } }
 *
 * Frames at or below `removedThrough` are gone; above it and up to `highWater`, a frame is still
 * to deliver on a path when its seq lies in that path's ranges. Frames above `highWater` were put
 * after the cursor was written, so every path still has them. The cursor is written on flush(),
 * close() and before a segment file is deleted, so after a crash the frames acknowledged since
 * the last write are delivered again: at least once, and receivers drop repeats by seq.
 */
export interface Cursor {
  highWater: number
  removedThrough: number
  dropped: number
  pending: PendingRanges
}

export const CURSOR_FILE = 'cursor.json'

/** The cursor, or undefined when there is none or it cannot be trusted (then every held frame is delivered again). */
export async function readCursor (dir: string): Promise<Cursor | undefined> {
  let text: string
  try {
    text = await readFile(join(dir, CURSOR_FILE), 'utf8')
  } catch {
    return undefined
  }
  try {
    const raw = JSON.parse(text) as Record<string, unknown>
    const int = (v: unknown): number => {
      if (!Number.isSafeInteger(v) || (v as number) < 0) throw new Error('not a count')
      return v as number
    }
    const pending: PendingRanges = {}
    const rawPending = (raw.pending ?? {}) as Record<string, unknown>
    for (const path of DELIVERY_PATHS) {
      const ranges = rawPending[path]
      if (ranges === undefined) continue
      if (!Array.isArray(ranges)) throw new Error('ranges')
      pending[path] = ranges.map((r: unknown) => {
        if (!Array.isArray(r) || r.length !== 2) throw new Error('range')
        return [int(r[0]), int(r[1])] as [number, number]
      })
    }
    if (raw.v !== 1) throw new Error('version')
    return { highWater: int(raw.highWater), removedThrough: int(raw.removedThrough), dropped: int(raw.dropped ?? 0), pending }
  } catch {
    return undefined
  }
}

export async function writeCursor (dir: string, cursor: Cursor, sync: boolean): Promise<void> {
  const path = join(dir, CURSOR_FILE)
  const tmp = `${path}.tmp`
  const handle = await open(tmp, 'w', 0o600)
  try {
    await handle.writeFile(`${JSON.stringify({ v: 1, ...cursor })}\n`)
    if (sync) await handle.sync()
  } finally {
    await handle.close()
  }
  await rename(tmp, path)
  if (sync) await syncDir(dirname(path))
}

/** fsync(2) on a directory, so a created, renamed or deleted name is durable. */
export async function syncDir (dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}
