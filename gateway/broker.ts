import { createHash, timingSafeEqual } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { createServer as createNetServer, type AddressInfo, type Server as NetServer } from 'node:net'
import { createServer as createTlsServer } from 'node:tls'
import { Aedes, type AedesOptions, type AuthenticateError, type Client } from 'aedes'
import { WebSocketServer, createWebSocketStream } from 'ws'
import { meshError } from '../shared/index.js'
import { createClusterParts, type ClusterInit, type ClusterParts } from './cluster.js'

/**
 * The embedded Aedes broker and its listeners: MQTT over TCP (or TLS), MQTT over WebSocket (or
 * WSS, at `wsPath`). Owns sockets and lifecycle only; what may be published is decided by the
 * hooks it is given (gateway/authorize.ts).
 *
 * Default ports follow common practice: 1883 MQTT, 8883 MQTT over TLS (IANA), 8083 MQTT over
 * WebSocket and 8084 over secure WebSocket (as EMQX). Port 0 picks a free port; `ports` tells
 * which one was bound.
 */

export interface TlsFiles {
  /** PEM private key: a file path, or the PEM itself as a Buffer. */
  key: string | Buffer
  /** PEM certificate chain: a file path, or the PEM itself as a Buffer. */
  cert: string | Buffer
  /** Optional CA bundle to verify client certificates against (then `requestCert` is set). */
  ca?: string | Buffer
}

export interface BrokerInit {
  /** Address to listen on. Default "0.0.0.0" (devices on the LAN reach it); tests use 127.0.0.1. */
  host?: string
  /** MQTT port. Default 1883, or 8883 with `tls`. */
  port?: number
  /** MQTT-over-WebSocket port, or false for none. Default 8083, or 8084 with `tls`. */
  wsPort?: number | false
  /** HTTP path of the WebSocket endpoint. Default "/mqtt". */
  wsPath?: string
  /** username -> password. When given, every connection must present one of them (MQTT 3.1.1 §3.1.3.4). */
  credentials?: Record<string, string>
  /** Serve MQTT over TLS and WSS instead of plain TCP and WS. */
  tls?: TlsFiles
  /** Several gateways sharing one broker state through Redis. */
  cluster?: ClusterInit
  /** Passed to Aedes (heartbeatInterval, connectTimeout, drainTimeout, id, …). */
  aedes?: Omit<AedesOptions, 'mq' | 'persistence' | 'authenticate' | 'authorizePublish' | 'preConnect'>
}

export interface BrokerHooks {
  authorizePublish: NonNullable<AedesOptions['authorizePublish']>
  authorizeSubscribe?: AedesOptions['authorizeSubscribe']
  authorizeForward?: AedesOptions['authorizeForward']
  /**
   * Called with every new Aedes instance before any client can connect. Each start builds a new
   * one, so what the gateway installs on it (the publish guard) survives a broker restart.
   */
  setup?: (aedes: Aedes) => void | Promise<void>
}

export interface BrokerPorts {
  mqtt: number
  ws?: number
}

export class EmbeddedBroker {
  readonly #init: BrokerInit
  readonly #hooks: BrokerHooks
  #aedes: Aedes | undefined
  #cluster: ClusterParts | undefined
  #tcp: NetServer | undefined
  #http: HttpServer | undefined
  #wss: WebSocketServer | undefined
  #ports: BrokerPorts | undefined
  #starting: Promise<void> | undefined
  #stopping: Promise<void> | undefined

  constructor (init: BrokerInit, hooks: BrokerHooks) {
    this.#init = init
    this.#hooks = hooks
  }

  get aedes (): Aedes | undefined { return this.#aedes }
  get ports (): BrokerPorts | undefined { return this.#ports === undefined ? undefined : { ...this.#ports } }
  get connectedClients (): number { return this.#aedes?.connectedClients ?? 0 }

  /** Builds Aedes and listens. Idempotent. */
  async start (): Promise<void> {
    this.#starting ??= this.#start().catch(async (err: unknown) => {
      await this.#close()
      this.#starting = undefined
      throw err
    })
    await this.#starting
  }

  async #start (): Promise<void> {
    const init = this.#init
    const host = init.host ?? '0.0.0.0'
    const tls = init.tls === undefined ? undefined : readTls(init.tls)
    this.#cluster = init.cluster === undefined ? undefined : createClusterParts(init.cluster)
    const aedes = await Aedes.createBroker({
      ...init.aedes,
      ...(this.#cluster === undefined ? {} : { mq: this.#cluster.mq, persistence: this.#cluster.persistence }),
      ...(init.credentials === undefined ? {} : { authenticate: checkCredentials(init.credentials) }),
      authorizePublish: this.#hooks.authorizePublish,
      ...(this.#hooks.authorizeSubscribe === undefined ? {} : { authorizeSubscribe: this.#hooks.authorizeSubscribe }),
      ...(this.#hooks.authorizeForward === undefined ? {} : { authorizeForward: this.#hooks.authorizeForward })
    })
    this.#aedes = aedes
    // A client's socket error is that client's problem (aedes closes it); never the process's.
    aedes.on('clientError', () => {})
    aedes.on('connectionError', () => {})
    ;(aedes as unknown as NodeJS.EventEmitter).on('error', () => {})
    await this.#hooks.setup?.(aedes)

    const handle = aedes.handle.bind(aedes)
    this.#tcp = tls === undefined ? createNetServer(handle) : createTlsServer(tls, handle)
    // A restart listens where the first start did, even when the ports were chosen by the system (0).
    const previous = this.#ports
    const mqttPort = await listen(this.#tcp, previous?.mqtt ?? init.port ?? (tls === undefined ? 1883 : 8883), host)
    this.#ports = { mqtt: mqttPort }

    const wsPort = init.wsPort === false ? false : previous?.ws ?? init.wsPort ?? (tls === undefined ? 8083 : 8084)
    if (wsPort !== false) {
      const http = tls === undefined ? createHttpServer() : createHttpsServer(tls)
      http.on('request', (_req, res) => { res.writeHead(426, { upgrade: 'websocket' }).end('MQTT over WebSocket: connect with the "mqtt" subprotocol\n') })
      const wss = new WebSocketServer({ server: http, path: init.wsPath ?? '/mqtt', handleProtocols: (protocols) => protocols.has('mqtt') ? 'mqtt' : (protocols.values().next().value ?? false) })
      wss.on('connection', (socket, req) => {
        const stream = createWebSocketStream(socket)
        stream.on('error', () => {})
        handle(stream, req)
      })
      wss.on('error', () => {})
      this.#http = http
      this.#wss = wss
      this.#ports.ws = await listen(http, wsPort, host)
    }
  }

  /** Stops listening, disconnects every client (their last wills fire), closes ports and Redis. Idempotent. */
  /** Stops the broker; a later `start()` starts it again (on the same ports when they were fixed). */
  async stop (): Promise<void> {
    if (this.#starting === undefined) return
    this.#stopping ??= this.#starting.then(() => this.#close(), () => {}).then(() => {
      this.#starting = undefined
      this.#stopping = undefined
    })
    await this.#stopping
  }

  async #close (): Promise<void> {
    const closing: Array<Promise<void>> = []
    if (this.#tcp !== undefined) closing.push(closeServer(this.#tcp))
    if (this.#wss !== undefined) {
      const wss = this.#wss
      for (const client of wss.clients) client.terminate()
      closing.push(new Promise((resolve) => { wss.close(() => { resolve() }) }))
    }
    if (this.#http !== undefined) {
      const http = this.#http
      closing.push(closeServer(http))
      http.closeAllConnections()
    }
    const aedes = this.#aedes
    if (aedes !== undefined) await new Promise<void>((resolve) => { aedes.close(() => { resolve() }) })
    await Promise.all(closing)
    await this.#cluster?.close()
  }
}

function readTls (files: TlsFiles): { key: Buffer, cert: Buffer, ca?: Buffer, requestCert?: boolean } {
  const read = (v: string | Buffer, what: string): Buffer => {
    if (Buffer.isBuffer(v)) return v
    try {
      return readFileSync(v)
    } catch (err) {
      throw meshError('ERR_BAD_ARGUMENT', `cannot read the TLS ${what} ${v}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err })
    }
  }
  const out: { key: Buffer, cert: Buffer, ca?: Buffer, requestCert?: boolean } = { key: read(files.key, 'key'), cert: read(files.cert, 'certificate') }
  if (files.ca !== undefined) {
    out.ca = read(files.ca, 'CA bundle')
    out.requestCert = true
  }
  return out
}

/** MQTT 3.1.1 §3.2.2.3: return code 4, bad user name or password. Compared in constant time. */
function checkCredentials (credentials: Record<string, string>): NonNullable<AedesOptions['authenticate']> {
  const digest = (text: string | Buffer): Buffer => createHash('sha256').update(text).digest()
  const table = new Map(Object.entries(credentials).map(([user, pass]) => [user, digest(pass)]))
  return (_client: Client, username, password, done) => {
    const expected = username === undefined ? undefined : table.get(username)
    const given = digest(password ?? Buffer.alloc(0))
    const ok = expected !== undefined && password !== undefined && timingSafeEqual(expected, given)
    if (ok) return done(null, true)
    const error = new Error('bad user name or password') as AuthenticateError
    error.returnCode = 4
    done(error, false)
  }
}

async function listen (server: NetServer, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  server.on('error', () => {})
  return (server.address() as AddressInfo).port
}

async function closeServer (server: NetServer): Promise<void> {
  if (!server.listening) return
  await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
}
