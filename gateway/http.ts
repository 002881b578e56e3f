import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { isDeviceId } from '../shared/index.js'
import type { Registry } from 'prom-client'
import type { DeviceRegistry } from './devices.js'
import { frameToSenmlJson } from './json.js'
import { resolvedValues, type LiveFeed } from './live.js'
import type { GatewayCounters } from './reasons.js'
import type { TopologySnapshot } from './topology.js'

/**
 * The gateway's HTTP side (node:http, no framework):
 *
 *   GET /metrics                               Prometheus text (prom-client)
 *   GET /api/devices                           { devices: DeviceInfo[] }
 *   GET /api/devices/:id                       DeviceInfo, or 404
 *   GET /api/devices/:id/readings?since=&limit= { id, readings: [{ seq, time, receivedAt, path, topic, senml, values }] }
 *                                              since: sampling time in seconds since the epoch (exclusive);
 *                                              senml: SenML JSON as on …/json; values: the records resolved (RFC 8428 §4.6)
 *   GET /api/counters                          GatewayCounters
 *   GET /api/topology                          { gateway, nodes, edges } (gateway/topology.ts)
 *   GET /api/peers                             { peers: MeshPeer[] }: the gateway's mesh node's peers and its score of each (404 without a mesh)
 *   GET /api/events                            live updates, text/event-stream (gateway/live.ts)
 *
 *   GET /, /assets/<file>                      the dashboard (gateway/dashboard/)
 *
 * Other handlers are added with `use()`, tried first: each returns true when it answered.
 * Default port 8080; port 0 picks a free one.
 */

export interface HttpInit {
  port?: number
  /** Default "0.0.0.0". */
  host?: string
}

export type HttpHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => boolean | Promise<boolean>

export interface HttpSources {
  devices: DeviceRegistry
  counters: () => GatewayCounters
  metrics: Registry
  topology?: () => TopologySnapshot
  /** The gateway's mesh node's peers, with its score of each (MeshNode.peers()). */
  peers?: () => unknown[]
  live?: LiveFeed
  /** The dashboard's static files (gateway/dashboard.ts), tried after `use()` handlers. */
  dashboard?: HttpHandler
}

export class GatewayHttp {
  readonly #init: HttpInit
  readonly #sources: HttpSources
  readonly #handlers: HttpHandler[] = []
  #server: Server | undefined
  #port: number | undefined

  constructor (init: HttpInit, sources: HttpSources) {
    this.#init = init
    this.#sources = sources
  }

  get port (): number | undefined { return this.#port }

  /** Adds a handler tried before the built-in routes and the dashboard. */
  use (handler: HttpHandler): void {
    this.#handlers.push(handler)
  }

  async start (): Promise<void> {
    if (this.#server !== undefined) return
    const server = createServer((req, res) => {
      this.#route(req, res).catch(() => {
        if (!res.headersSent) send(res, 500, { error: 'internal error' })
        else res.destroy()
      })
    })
    this.#server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.#init.port ?? 8080, this.#init.host ?? '0.0.0.0', () => {
        server.off('error', reject)
        resolve()
      })
    })
    server.on('error', () => {})
    this.#port = (server.address() as AddressInfo).port
  }

  async stop (): Promise<void> {
    const server = this.#server
    if (server === undefined || !server.listening) return
    const closed = new Promise<void>((resolve) => { server.close(() => { resolve() }) })
    server.closeAllConnections()
    await closed
  }

  async #route (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://gateway.invalid')
    for (const handler of this.#handlers) if (await handler(req, res, url)) return
    if (this.#sources.dashboard !== undefined && await this.#sources.dashboard(req, res, url)) return
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { error: `${req.method ?? '?'} is not allowed: the API is read-only` })
    const path = url.pathname.replace(/\/+$/, '') || '/'
    if (path === '/metrics') {
      const text = await this.#sources.metrics.metrics()
      res.writeHead(200, { 'content-type': this.#sources.metrics.contentType }).end(text)
      return
    }
    if (path === '/api/counters') return send(res, 200, this.#sources.counters())
    if (path === '/api/topology' && this.#sources.topology !== undefined) return send(res, 200, this.#sources.topology())
    if (path === '/api/peers' && this.#sources.peers !== undefined) return send(res, 200, { peers: this.#sources.peers() })
    if (path === '/api/events' && this.#sources.live !== undefined) return this.#sources.live.attach(req, res)
    if (path === '/api/devices') return send(res, 200, { devices: this.#sources.devices.list() })
    const match = /^\/api\/devices\/([^/]+)(\/readings)?$/.exec(path)
    if (match !== null) {
      const id = match[1] ?? ''
      if (!isDeviceId(id)) return send(res, 400, { error: `${JSON.stringify(id)} is not a device id (26 characters a-z, 2-7)` })
      if (match[2] === undefined) {
        const device = this.#sources.devices.get(id)
        return device === undefined ? send(res, 404, { error: `no device ${id}` }) : send(res, 200, device)
      }
      const since = url.searchParams.get('since')
      const limit = url.searchParams.get('limit')
      const sinceValue = since === null ? undefined : Number(since)
      const limitValue = limit === null ? undefined : Number(limit)
      if (sinceValue !== undefined && !Number.isFinite(sinceValue)) return send(res, 400, { error: 'since is a time in seconds since the epoch' })
      if (limitValue !== undefined && !(Number.isSafeInteger(limitValue) && limitValue > 0)) return send(res, 400, { error: 'limit is a positive integer' })
      const readings = this.#sources.devices.readings(id, { ...(sinceValue === undefined ? {} : { since: sinceValue }), ...(limitValue === undefined ? {} : { limit: limitValue }) })
      if (readings === undefined) return send(res, 404, { error: `no device ${id}` })
      return send(res, 200, {
        id,
        readings: readings.map((r) => ({ seq: r.seq, time: r.time, receivedAt: r.receivedAt, path: r.path, topic: r.deviceTopic, senml: frameToSenmlJson({ origin: id, records: r.records }), values: resolvedValues(r.records, r.time) }))
      })
    }
    send(res, 404, { error: `no route ${path}` })
  }
}

function send (res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }).end(text)
}
