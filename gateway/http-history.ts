import type { ServerResponse } from 'node:http'
import { isDeviceId, isMeshError, meshError, type DeviceId, type ReaderKey } from '../shared/index.js'
import type { HttpHandler } from './http.js'
import { MAX_BUCKETS, MAX_PAGE, decodeCursor, downsample, historyOf, page, parseStep, parseTime, toApi } from './store/history.js'
import type { GatewayStore } from './store/store.js'

/**
 * The history routes of a gateway with a store (gateway/store/), added to its HTTP server with
 * `http.use()` and so tried before the built-in routes:
 *
 *   GET /api/devices/:id/history?since=&until=&limit=&cursor=
 *       { id, readings: [...], next? }   readings with since <= time < until, oldest first, at most
 *       `limit` (default 1000, at most 5000); `next` is the cursor of the following page.
 *   GET /api/devices/:id/history?since=&until=&step=60s
 *       { id, since, until, step, series: [{ n, u?, points: [{ t, avg, min, max, count }] }], scanned, truncated }
 *       numeric values averaged per resolved SenML name in buckets of `step` (s, m, h, d);
 *       default range: the 24 h before `until` (default now).
 *   GET /api/devices/:id/readings?since=&limit=
 *       as the built-in route (the newest `limit`, default 256, sampled after `since`), from the store:
 *       the dashboard's chart survives a restart.
 *
 * Times are seconds since the epoch or RFC 3339 date-times. A bad parameter is a 400 with
 * { error, code: 'ERR_BAD_ARGUMENT' }. A device that rotated its key (DeviceInfo.keys) answers
 * under any of its ids with the readings of all its keys (`keyIds`); a reading signed by another
 * key than the one asked for says which (`origin`).
 */
export function historyHandler (store: GatewayStore, components: { now?: () => number, readerKey?: ReaderKey | undefined, keyIds?: (id: DeviceId) => DeviceId[] } = {}): HttpHandler {
  const now = components.now ?? Date.now
  const keyIds = components.keyIds ?? ((id: DeviceId) => [id])
  const readerKey = components.readerKey
  return async (req, res, url) => {
    const match = /^\/api\/devices\/([^/]+)\/(history|readings)\/?$/.exec(url.pathname)
    if (match === null || (req.method !== 'GET' && req.method !== 'HEAD')) return false
    const id = match[1] ?? ''
    if (!isDeviceId(id)) return false // the built-in route answers 400
    const origins = keyIds(id)
    try {
      const p = url.searchParams
      const limit = parseLimit(p.get('limit'), match[2] === 'history' ? 1000 : 256)
      if (match[2] === 'readings') {
        const since = parseTime('since', p.get('since'))
        const rows = await historyOf(store, origins, { limit, newest: true, ...(since === undefined ? {} : { since: nextAfter(since) }) })
        if (rows.length === 0) return false // nothing stored: the in-memory route answers (or 404s an unknown device)
        send(res, 200, { id, readings: rows.map((r) => toApi(id, r, readerKey)) })
        return true
      }
      const step = p.get('step')
      if (step !== null) {
        const stepS = parseStep(step)
        const until = parseTime('until', p.get('until')) ?? now() / 1000
        const since = parseTime('since', p.get('since')) ?? until - 86_400
        if ((until - since) / stepS > MAX_BUCKETS) throw badArgument(`(until - since) / step is over ${MAX_BUCKETS} buckets: choose a larger step or a shorter range`)
        const result = await downsample(store, origins, { since, until, step: stepS }, readerKey)
        send(res, 200, { id, since, until, step: stepS, ...result })
        return true
      }
      const since = parseTime('since', p.get('since'))
      const until = parseTime('until', p.get('until'))
      const cursor = p.get('cursor')
      const result = await page(store, origins, { limit, ...(since === undefined ? {} : { since }), ...(until === undefined ? {} : { until }), ...(cursor === null ? {} : { after: decodeCursor(cursor) }) })
      send(res, 200, { id, readings: result.readings.map((r) => toApi(id, r, readerKey)), ...(result.next === undefined ? {} : { next: result.next }) })
      return true
    } catch (err) {
      if (!isMeshError(err)) throw err
      send(res, err.code === 'ERR_BAD_ARGUMENT' ? 400 : 503, { error: err.message, code: err.code })
      return true
    }
  }
}

function parseLimit (text: string | null, fallback: number): number {
  if (text === null) return fallback
  const n = Number(text)
  if (!(Number.isSafeInteger(n) && n > 0)) throw badArgument('limit is a positive integer')
  return Math.min(n, MAX_PAGE)
}

/** The built-in route's `since` is exclusive; the store's is inclusive. */
function nextAfter (since: number): number {
  return since + Math.max(Number.EPSILON, Math.abs(since) * Number.EPSILON)
}

function badArgument (message: string): Error {
  return meshError('ERR_BAD_ARGUMENT', message)
}

function send (res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }).end(JSON.stringify(body))
}
