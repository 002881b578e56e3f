import { decodeFrame, decryptFrame, meshError, type DeviceId, type ReaderKey, type SenmlPack } from '../../shared/index.js'
import { frameToSenmlJson } from '../json.js'
import { resolvedValues } from '../live.js'
import type { GatewayStore, HistoryQuery, StoredReading } from './store.js'

/**
 * History queries over the store, for the HTTP API (gateway/http-history.ts): parsing the query
 * string, the opaque paging cursor, and downsampling into time buckets for charts. No I/O here
 * beyond the store's `history()`.
 */

/** Most rows one page returns. */
export const MAX_PAGE = 5000
/** Most buckets one downsampled answer has. */
export const MAX_BUCKETS = 10_000
/** Most readings one downsampled answer reads; past it the answer says `truncated`. */
export const MAX_SCAN = 500_000

export interface PageQuery { since?: number, until?: number, after?: { time: number, seq: number }, limit: number }

/** One reading as the API shows it (the shape of /api/devices/:id/readings). */
export interface ApiReading {
  seq: number
  time: number
  receivedAt: number
  path: string
  topic: string
  senml: Array<Record<string, unknown>>
  values: ReturnType<typeof resolvedValues>
  /** The key that signed it, when another than the id asked for (a device that rotated its key). */
  origin?: DeviceId
}

export interface Point { t: number, avg: number, min: number, max: number, count: number }
export interface Series { n: string, u?: string, points: Point[] }

/** A time: seconds since the epoch, or an RFC 3339 date-time ("2026-12-05T13:00:00Z"). */
export function parseTime (name: string, text: string | null): number | undefined {
  if (text === null || text === '') return undefined
  const n = Number(text)
  if (Number.isFinite(n)) return n
  const ms = /^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:\d{2})?)?$/.test(text) ? Date.parse(text) : NaN
  if (Number.isFinite(ms)) return ms / 1000
  throw meshError('ERR_BAD_ARGUMENT', `${name} is a time in seconds since the epoch or an RFC 3339 date-time, got ${JSON.stringify(text)}`)
}

/** A step: "90" or "90s", "5m", "1h", "1d"; in seconds, at least 1. */
export function parseStep (text: string): number {
  const match = /^(\d+(?:\.\d+)?)(s|m|h|d)?$/.exec(text)
  const unit = { s: 1, m: 60, h: 3600, d: 86_400 }[match?.[2] ?? 's'] ?? 1
  const step = match === null ? NaN : Number(match[1]) * unit
  if (!(step >= 1)) throw meshError('ERR_BAD_ARGUMENT', `step is a duration of at least 1 s (60, 60s, 5m, 1h, 1d), got ${JSON.stringify(text)}`)
  return step
}

export function encodeCursor (last: StoredReading): string {
  return Buffer.from(JSON.stringify([last.time, last.seq])).toString('base64url')
}

export function decodeCursor (text: string): { time: number, seq: number } {
  try {
    const value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as unknown
    if (Array.isArray(value) && value.length === 2 && Number.isFinite(value[0]) && Number.isSafeInteger(value[1])) return { time: value[0] as number, seq: value[1] as number }
  } catch { /* below */ }
  throw meshError('ERR_BAD_ARGUMENT', 'cursor is not one this gateway gave out: pass the `next` of the previous page as it is')
}

export function toApi (id: DeviceId, r: StoredReading, readerKey?: ReaderKey): ApiReading {
  const records = recordsOf(r, readerKey)
  return {
    seq: r.seq, time: r.time, receivedAt: r.receivedAt, path: r.path, topic: r.topic, senml: frameToSenmlJson({ origin: id, records }), values: resolvedValues(records, r.time),
    ...(r.origin === id ? {} : { origin: r.origin })
  }
}

/**
 * Readings of a device that has had several keys (a rotation: DeviceInfo.keys), in (time, seq)
 * order, as one origin's would be: each key's rows asked for with the same query, merged; the
 * first `limit` (or with `newest`, the last). One key: the store's answer as it is. Two rows of two
 * keys with the same (time, seq) are one position of the paging cursor: a page may end between them
 * and the next begin after both (one reading's worth, only where two keys sampled in the same second
 * with the same sequence number).
 */
export async function historyOf (store: GatewayStore, origins: DeviceId[], q: Omit<HistoryQuery, 'origin'>): Promise<StoredReading[]> {
  if (origins.length <= 1) return await store.history({ ...q, origin: origins[0] as DeviceId })
  const all = (await Promise.all(origins.map(async (origin) => await store.history({ ...q, origin })))).flat()
  all.sort((a, b) => a.time - b.time || a.seq - b.seq)
  return q.newest === true ? all.slice(Math.max(0, all.length - q.limit)) : all.slice(0, q.limit)
}

/** One page of readings in (time, seq) order, and the cursor of the next page when there is more. */
export async function page (store: GatewayStore, origins: DeviceId[], q: PageQuery): Promise<{ readings: StoredReading[], next?: string }> {
  const rows = await historyOf(store, origins, { ...q, limit: q.limit + 1 })
  if (rows.length <= q.limit) return { readings: rows }
  const readings = rows.slice(0, q.limit)
  return { readings, next: encodeCursor(readings[readings.length - 1] as StoredReading) }
}

/**
 * Averages (and min, max, count) of every numeric value in [since, until), per resolved SenML
 * name (RFC 8428 §4.6), in buckets of `step` seconds aligned to the epoch (a bucket's `t` is its start).
 */
export async function downsample (store: GatewayStore, origins: DeviceId[], q: { since: number, until: number, step: number }, readerKey?: ReaderKey): Promise<{ series: Series[], scanned: number, truncated: boolean }> {
  const buckets = new Map<string, { u?: string, points: Map<number, Point> }>()
  let after: { time: number, seq: number } | undefined
  let scanned = 0
  for (;;) {
    const rows = await historyOf(store, origins, { since: q.since, until: q.until, ...(after === undefined ? {} : { after }), limit: MAX_PAGE })
    for (const r of rows) {
      for (const v of resolvedValues(recordsOf(r, readerKey), r.time)) {
        if (typeof v.v !== 'number' || !Number.isFinite(v.v)) continue
        const t = Math.floor(v.t / q.step) * q.step
        if (v.t < q.since || v.t >= q.until) continue
        let series = buckets.get(v.n)
        if (series === undefined) buckets.set(v.n, series = { ...(v.u === undefined ? {} : { u: v.u }), points: new Map() })
        const p = series.points.get(t)
        if (p === undefined) series.points.set(t, { t, avg: v.v, min: v.v, max: v.v, count: 1 })
        else { p.count++; p.avg += (v.v - p.avg) / p.count; p.min = Math.min(p.min, v.v); p.max = Math.max(p.max, v.v) }
      }
    }
    scanned += rows.length
    const last = rows[rows.length - 1]
    if (rows.length < MAX_PAGE || last === undefined) return { series: finish(buckets), scanned, truncated: false }
    if (scanned >= MAX_SCAN) return { series: finish(buckets), scanned, truncated: true }
    after = { time: last.time, seq: last.seq }
  }
}

function finish (buckets: Map<string, { u?: string, points: Map<number, Point> }>): Series[] {
  return [...buckets].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
    .map(([n, s]) => ({ n, ...(s.u === undefined ? {} : { u: s.u }), points: [...s.points.values()].sort((a, b) => a.t - b.t) }))
}

/**
 * The records of a stored frame (verified when it was accepted; decoded again within the default
 * limits). An encrypted frame is stored as it came (ciphertext) and decrypted here with the
 * gateway's reader key; without one, or when it was not encrypted to that key, it has none.
 */
function recordsOf (r: StoredReading, readerKey: ReaderKey | undefined): SenmlPack {
  try {
    const frame = decodeFrame(r.frame)
    return frame.encrypted === undefined || readerKey === undefined ? frame.records : decryptFrame(frame, readerKey).records
  } catch {
    return []
  }
}
