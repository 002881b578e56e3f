import { closeSync, existsSync, fdatasyncSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { fromBase64, meshError, toBase64url, type DeviceId } from '../../shared/index.js'

/**
 * What a device executed, so that a command executes at most once: by (issuer, command id), with
 * the signed result it answered (a retransmission gets the same bytes back, not a second
 * execution), until the command expires, after which a replay is refused as expired anyway.
 *
 * On disk (`commands.jsonl` in the device's data directory), one JSON line per executed command,
 * appended and `fdatasync(2)`ed before the actuator acts: a SIGKILL or a power cut after the line
 * is written leaves the command executed-at-most-once (the issuer, without a result, sends a new
 * command); a line torn by the cut is skipped on load (counted). The file is rewritten without
 * expired lines (write, fsync, rename, fsync the directory) when it holds more than `compactAt`.
 *
 * It also keeps a time floor: the latest issued-at of any command executed. A device with no
 * real-time clock (a Raspberry Pi booted without network time starts from its last saved time,
 * fake-hwclock, or from 1970) judges expiry against max(its clock, the floor), so a command
 * older than one it already executed can never be fresh again, whatever its clock says.
 */

export interface JournalEntry {
  issuer: DeviceId
  id: number
  issuedAt: number
  expiresAt: number
  /** The signed result that was answered. */
  result: Uint8Array
}

export interface CommandJournal {
  /** The entry of (issuer, id), if it executed and has not expired out of the journal. */
  get (issuer: DeviceId, id: number): JournalEntry | undefined
  /** Records an execution durably (before the actuator acts). Throws ERR_JOURNAL when it cannot. */
  record (entry: JournalEntry, now: number): void
  /** The latest issued-at of any command executed (0 if none). */
  readonly floor: number
  readonly size: number
  /** Lines skipped on load (torn by a power cut, or not ours). */
  readonly skipped: number
  close (): void
}

const FILE = 'commands.jsonl'
const key = (issuer: DeviceId, id: number): string => `${issuer}#${id}`

/** An in-memory journal (tests, and devices without a data directory: then nothing survives a restart). */
export function memoryJournal (): CommandJournal {
  return journalOver(new Map(), () => {}, () => {}, 0)
}

/** The journal in `dir` (created on first record). */
export function openJournal (dir: string, options: { compactAt?: number, sync?: boolean } = {}): CommandJournal {
  const path = join(dir, FILE)
  const sync = options.sync !== false
  const entries = new Map<string, JournalEntry>()
  let skipped = 0
  if (existsSync(path)) {
    let text: string
    try { text = readFileSync(path, 'utf8') } catch (err) { throw meshError('ERR_JOURNAL', `cannot read ${path}: ${(err as Error).message}`, { cause: err }) }
    for (const line of text.split('\n')) {
      if (line === '') continue
      const entry = parseLine(line)
      if (entry === undefined) skipped++
      else entries.set(key(entry.issuer, entry.id), entry)
    }
  }
  let fd: number | undefined
  const append = (entry: JournalEntry): void => {
    try {
      if (fd === undefined) {
        mkdirSync(dir, { recursive: true, mode: 0o700 })
        fd = openSync(path, 'a', 0o600)
      }
      writeSync(fd, formatLine(entry))
      if (sync) fdatasyncSync(fd)
    } catch (err) {
      throw meshError('ERR_JOURNAL', `cannot append to ${path}: ${(err as Error).message}`, { cause: err })
    }
  }
  const rewrite = (live: Iterable<JournalEntry>): void => {
    const tmp = `${path}.tmp`
    try {
      const out = openSync(tmp, 'w', 0o600)
      try {
        for (const entry of live) writeSync(out, formatLine(entry))
        if (sync) fsyncSync(out)
      } finally { closeSync(out) }
      if (fd !== undefined) { closeSync(fd); fd = undefined }
      renameSync(tmp, path)
      if (sync) { const d = openSync(dir, 'r'); try { fsyncSync(d) } finally { closeSync(d) } }
    } catch (err) {
      throw meshError('ERR_JOURNAL', `cannot compact ${path}: ${(err as Error).message}`, { cause: err })
    }
  }
  const close = (): void => { if (fd !== undefined) { closeSync(fd); fd = undefined } }
  return journalOver(entries, append, (live) => { rewrite(live) }, skipped, options.compactAt, close)
}

function journalOver (
  entries: Map<string, JournalEntry>, append: (e: JournalEntry) => void, rewrite: (live: Iterable<JournalEntry>) => void,
  skipped: number, compactAt = 4096, close: () => void = () => {}
): CommandJournal {
  let floor = 0
  for (const e of entries.values()) floor = Math.max(floor, e.issuedAt)
  let lines = entries.size + skipped
  return {
    get: (issuer, id) => entries.get(key(issuer, id)),
    record (entry, now) {
      append(entry)
      lines++
      entries.set(key(entry.issuer, entry.id), entry)
      floor = Math.max(floor, entry.issuedAt)
      if (lines > compactAt) {
        // Expired entries can go: a replay of them is refused as expired (the floor keeps that true without a clock).
        const horizon = Math.max(now, floor)
        for (const [k, e] of entries) if (e.expiresAt < horizon) entries.delete(k)
        rewrite(entries.values())
        lines = entries.size
      }
    },
    get floor () { return floor },
    get size () { return entries.size },
    skipped,
    close
  }
}

function formatLine (e: JournalEntry): string {
  return `${JSON.stringify({ i: e.issuer, id: e.id, iat: e.issuedAt, exp: e.expiresAt, r: toBase64url(e.result) })}\n`
}

function parseLine (line: string): JournalEntry | undefined {
  try {
    const o = JSON.parse(line) as Record<string, unknown>
    if (typeof o.i !== 'string' || typeof o.id !== 'number' || typeof o.iat !== 'number' || typeof o.exp !== 'number' || typeof o.r !== 'string') return undefined
    const result = fromBase64(o.r)
    return result === undefined ? undefined : { issuer: o.i, id: o.id, issuedAt: o.iat, expiresAt: o.exp, result }
  } catch {
    return undefined
  }
}
