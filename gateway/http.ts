import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { isDeviceId, meshError } from '../shared/index.js'
import type { Registry } from 'prom-client'
import { allowedHostNames, checkHostAndOrigin, isLoopbackHost, loadOrCreateToken, newToken, presentedToken, tokenMatches, type AccessRefusal } from './access.js'
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
 *   GET /api/fleet                             the fleet's owners, revocations and grant policy (gateway/http-fleet.ts, gateway/trust.ts)
 *   GET /api/topology                          { gateway, nodes, edges } (gateway/topology.ts)
 *   GET /api/peers                             { peers: MeshPeer[] }: the gateway's mesh node's peers and its score of each (404 without a mesh)
 *   GET /api/events                            live updates, text/event-stream (gateway/live.ts)
 *   POST /api/devices/:id/commands             { action, args? } → the device's verified result (gateway/http-commands.ts)
 *
 *   GET /, /assets/<file>                      the dashboard (gateway/dashboard/)
 *
 * Other handlers are added with `use()`, tried first: each returns true when it answered.
 * Default port 8080; port 0 picks a free one.
 *
 * Every request, to every route (the built-in ones, the dashboard and those added with `use()`),
 * passes the access checks of gateway/access.ts first: the Host and Origin headers (against DNS
 * rebinding and cross-site reads), then the access token unless the server listens on loopback
 * only. A browser that opens `/?token=…` gets the token as a cookie and is sent on to `/`.
 */

export interface HttpInit {
  port?: number
  /** Default "0.0.0.0". */
  host?: string
  /**
   * The access token every request must present. Default: none when `host` is a loopback address
   * (only this machine can connect), else the one in `tokenFile` (made on first start), else a new
   * one for this run. `false`: no token at all (anyone who reaches the port reads the API).
   */
  token?: string | false
  /** Where the token is kept (created with mode 0600 on first start), e.g. `<state dir>/http-token`. */
  tokenFile?: string
  /** Host names accepted in Host and Origin besides IP literals, localhost and this machine's names (e.g. a reverse proxy's). */
  allowedHosts?: string[]
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

/** The gateway's HTTP server: the JSON API, Prometheus metrics, live events and the dashboard. */
export class GatewayHttp {
  readonly #init: HttpInit
  readonly #sources: HttpSources
  readonly #handlers: HttpHandler[] = []
  #server: Server | undefined
  #port: number | undefined
  #token: string | undefined
  #tokenCreated = false
  #hostNames: ReadonlySet<string> = new Set()
  /** Requests refused by the access checks, by code. */
  readonly refused = { ERR_HTTP_HOST: 0, ERR_HTTP_ORIGIN: 0, ERR_HTTP_TOKEN: 0 }

  constructor (init: HttpInit, sources: HttpSources) {
    this.#init = init
    this.#sources = sources
  }

  get port (): number | undefined { return this.#port }

  /** The access token in force (undefined: none needed), known once started. */
  get token (): string | undefined { return this.#token }

  /** True when no token is in force and the server listens beyond loopback: anyone who reaches the port gets in. */
  get open (): boolean {
    return this.#token === undefined && !isLoopbackHost(this.#init.host ?? '0.0.0.0')
  }

  /** True when this start made the token (and wrote it to `tokenFile`): say so, as Jupyter does. */
  get tokenCreated (): boolean { return this.#tokenCreated }

  /** Adds a handler tried before the built-in routes and the dashboard. */
  use (handler: HttpHandler): void {
    this.#handlers.push(handler)
  }

  async start (): Promise<void> {
    if (this.#server !== undefined) return
    this.#hostNames = allowedHostNames(this.#init.allowedHosts)
    this.#token = await this.#resolveToken()
    const server = createServer((req, res) => {
      this.#guarded(req, res).catch(() => {
        if (!res.headersSent) send(res, 500, { error: 'internal error', code: 'ERR_INTERNAL' })
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

  async #resolveToken (): Promise<string | undefined> {
    const token = this.#init.token
    if (token === false) return undefined
    if (token !== undefined) {
      if (token.length < 8 || !/^[A-Za-z0-9._~+/=-]+$/.test(token)) throw meshError('ERR_BAD_ARGUMENT', 'an HTTP token must be at least 8 characters of A-Z a-z 0-9 . _ ~ + / = -')
      return token
    }
    if (isLoopbackHost(this.#init.host ?? '0.0.0.0')) return undefined
    if (this.#init.tokenFile === undefined) {
      this.#tokenCreated = true
      return newToken()
    }
    const stored = await loadOrCreateToken(this.#init.tokenFile)
    this.#tokenCreated = stored.created
    return stored.token
  }

  /** The access checks (gateway/access.ts), before any handler: a refused request reaches no route. */
  async #guarded (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const refusal = checkHostAndOrigin({ host: req.headers.host, origin: req.headers.origin }, this.#hostNames)
    if (refusal !== undefined) return this.#refuse(res, refusal)
    const url = requestUrl(req.url)
    if (url === undefined) return send(res, 400, { error: 'the request target is not a path this server reads (RFC 9112 §3.2)', code: 'ERR_BAD_INPUT' })
    const token = this.#token
    if (token !== undefined) {
      const cookie = `iotmesh-token-${this.#port ?? 0}`
      const presented = presentedToken(req.headers, url, cookie)
      if (!tokenMatches(presented.token, token)) {
        return this.#refuse(res, { status: 401, code: 'ERR_HTTP_TOKEN', message: presented.token === undefined ? 'this gateway needs its access token: open the URL it printed at start (…/?token=…) or send Authorization: Bearer <token>' : 'the access token is wrong' }, wantsPage(req, url))
      }
      if (presented.via === 'query' && (req.method === 'GET' || req.method === 'HEAD')) {
        // A browser opening the printed URL: keep the token in a cookie, and take it out of the address bar.
        res.setHeader('set-cookie', `${cookie}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict`)
        if (wantsPage(req, url)) {
          url.searchParams.delete('token')
          res.writeHead(303, { location: `${url.pathname}${url.search}`, 'cache-control': 'no-store' }).end()
          return
        }
      }
    }
    await this.#route(req, res, url)
  }

  #refuse (res: ServerResponse, refusal: AccessRefusal, page = false): void {
    this.refused[refusal.code]++
    if (page) {
      res.writeHead(refusal.status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-security-policy': "default-src 'none'; form-action 'self'; frame-ancestors 'none'" })
        .end(loginPage())
      return
    }
    const headers: Record<string, string> = refusal.status === 401 ? { 'www-authenticate': 'Bearer realm="iotmesh"' } : {}
    send(res, refusal.status, { error: refusal.message, code: refusal.code }, headers)
  }

  async #route (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    for (const handler of this.#handlers) if (await handler(req, res, url)) return
    if (this.#sources.dashboard !== undefined && await this.#sources.dashboard(req, res, url)) return
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { error: `${req.method ?? '?'} is not allowed: the API is read-only`, code: 'ERR_HTTP_METHOD' }, { allow: 'GET, HEAD' })
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
      if (!isDeviceId(id)) return send(res, 400, { error: `${JSON.stringify(id)} is not a device id (26 characters a-z, 2-7)`, code: 'ERR_BAD_DEVICE_ID' })
      if (match[2] === undefined) {
        const device = this.#sources.devices.get(id)
        return device === undefined ? send(res, 404, { error: `no device ${id}`, code: 'ERR_NOT_FOUND' }) : send(res, 200, device)
      }
      const since = url.searchParams.get('since')
      const limit = url.searchParams.get('limit')
      const sinceValue = since === null ? undefined : Number(since)
      const limitValue = limit === null ? undefined : Number(limit)
      if (sinceValue !== undefined && !Number.isFinite(sinceValue)) return send(res, 400, { error: 'since is a time in seconds since the epoch', code: 'ERR_BAD_INPUT' })
      if (limitValue !== undefined && !(Number.isSafeInteger(limitValue) && limitValue > 0)) return send(res, 400, { error: 'limit is a positive integer', code: 'ERR_BAD_INPUT' })
      const readings = this.#sources.devices.readings(id, { ...(sinceValue === undefined ? {} : { since: sinceValue }), ...(limitValue === undefined ? {} : { limit: limitValue }) })
      if (readings === undefined) return send(res, 404, { error: `no device ${id}`, code: 'ERR_NOT_FOUND' })
      return send(res, 200, {
        id,
        readings: readings.map((r) => ({ seq: r.seq, time: r.time, receivedAt: r.receivedAt, path: r.path, topic: r.deviceTopic, senml: frameToSenmlJson({ origin: id, records: r.records }), values: resolvedValues(r.records, r.time) }))
      })
    }
    send(res, 404, { error: `no route ${path}`, code: 'ERR_NOT_FOUND' })
  }
}

function send (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers }).end(text)
}

/** A browser navigating to a page (not a script fetching JSON): it gets the login form rather than JSON. */
function wantsPage (req: IncomingMessage, url: URL): boolean {
  return (req.method === 'GET' || req.method === 'HEAD') && (url.pathname === '/' || url.pathname === '/index.html') && (req.headers.accept ?? '').includes('text/html')
}

/** The page a browser without the token gets: one field, sent back as `/?token=…` (no script needed). */
function loginPage (): string {
  return '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>iotmesh gateway: token needed</title></head><body>' +
    '<h1>iotmesh gateway</h1><p>This gateway needs its access token. Open the URL it printed at start (<code>…/?token=…</code>), or paste the token:</p>' +
    '<form method="get" action="/"><input name="token" type="password" autocomplete="current-password" size="40" required> <button>Open the dashboard</button></form>' +
    '<p>The token is in the gateway\'s state directory (<code>http-token</code>).</p></body></html>\n'
}

/**
 * The request target as a URL: origin-form ("/api/devices?since=…", RFC 9112 §3.2.1) is read as a
 * path even when it starts with "//" (never as a host), absolute-form as it is. Undefined for
 * anything else ("//[", "*", garbage): a 400, never a 500.
 */
export function requestUrl (target: string | undefined): URL | undefined {
  const raw = target ?? '/'
  try {
    return raw.startsWith('/') ? new URL(`http://gateway.invalid${raw}`) : new URL(raw)
  } catch {
    return undefined
  }
}
