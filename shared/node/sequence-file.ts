import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'
import { meshError } from '../errors.js'
import type { SequenceSource } from '../sequence.js'

/**
 * Sequence numbers that never repeat, across restarts and crashes: a SequenceSource kept in a file.
 *
 * The store persists a reservation: before handing out numbers up to R it durably writes R
 * (write to a temporary file, fsync, rename over the old one: atomic on POSIX file systems). After
 * a crash the device starts above the last reservation, so a number is never reused; at most
 * `block - 1` numbers are skipped (receivers see a gap, never a repeat). `block: 1` persists
 * every number before it is used: no gaps, one fsync per frame.
 */

export function openSequenceFile (path: string, init: { block?: number } = {}): SequenceSource {
  const block = Math.max(1, Math.floor(init.block ?? 1000))
  let reserved = readReservation(path)
  let current = reserved
  const reserve = (upTo: number): void => {
    writeAtomic(path, `${JSON.stringify({ reserved: upTo })}\n`)
    reserved = upTo
  }
  return {
    next () {
      if (current + 1 > reserved) reserve(current + block)
      current += 1
      return current
    },
    get current () { return current }
  }
}

function readReservation (path: string): number {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0
    throw meshError('ERR_SEQUENCE_STORE', `cannot read sequence file ${path}: ${(err as Error).message}`, { cause: err })
  }
  let reserved: unknown
  try {
    reserved = (JSON.parse(text) as { reserved?: unknown }).reserved
  } catch (err) {
    throw meshError('ERR_SEQUENCE_STORE', `sequence file ${path} is not JSON; refusing to guess (numbers could repeat). Restore it or move it away knowingly`, { cause: err })
  }
  if (!Number.isSafeInteger(reserved) || (reserved as number) < 0) throw meshError('ERR_SEQUENCE_STORE', `sequence file ${path} holds no valid "reserved" number`)
  return reserved as number
}

function writeAtomic (path: string, text: string): void {
  const tmp = `${path}.tmp`
  try {
    mkdirSync(dirname(path), { recursive: true })
    const fd = openSync(tmp, 'w', 0o600)
    try {
      writeSync(fd, text)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(tmp, path)
    const dir = openSync(dirname(path), 'r')
    try { fsyncSync(dir) } finally { closeSync(dir) }
  } catch (err) {
    throw meshError('ERR_SEQUENCE_STORE', `cannot write sequence file ${path}: ${(err as Error).message}`, { cause: err })
  }
}
