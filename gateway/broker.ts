import { readFileSync } from 'node:fs'
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { createServer as createTlsServer } from 'node:tls'
import { Aedes, type AedesOptions, type Client } from 'aedes'
import { WebSocketServer, createWebSocketStream } from 'ws'
import { meshError } from '../shared/index.js'
import type { AccessInit } from './auth.js'
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

/** Sizes and quotas of the embedded broker, on every topic (not only iotmesh/). */
export interface BrokerQuotas {
  /** The largest message payload accepted on any topic, bytes. Default 256 KiB (iotmesh frames are bounded lower by the verifier). */
  maxMessageBytes?: number
  /** Retained messages the broker keeps, all topics together. Default 20,000. */
  maxRetained?: number
  /** Their total payload bytes. Default 32 MiB. */
  maxRetainedBytes?: number
}

export const BROKER_QUOTAS = { maxMessageBytes: 256 * 1024, maxRetained: 20_000, maxRetainedBytes: 32 * 1024 * 1024 } as const

/**
 * The largest MQTT packet read, bytes: the largest message, plus its topic (at most 65,535 bytes,
 * MQTT 3.1.1 §1.5.3) and the fixed and variable headers. A larger packet closes the connection
 * once its length is read (MQTT 3.1.1 §2.2.3), before its bytes are buffered.
 */
export function maxPacketBytes (limits: BrokerQuotas = {}): number {
  return (limits.maxMessageBytes ?? BROKER_QUOTAS.maxMessageBytes) + 65_535 + 64
}

export interface BrokerInit extends AccessInit {
  /** Address to listen on. Default "0.0.0.0" (devices on the LAN reach it); tests use 127.0.0.1. */
  host?: string
  /** MQTT port. Default 1883, or 8883 with `tls`. */
  port?: number
  /** MQTT-over-WebSocket port, or false for none. Default 8083, or 8084 with `tls`. */
  wsPort?: number | false
  /** HTTP path of the WebSocket endpoint. Default "/mqtt". */
  wsPath?: string
  /** Message sizes and retained quotas, on every topic. */
  quotas?: BrokerQuotas
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
  /** Who may connect (gateway/auth.ts); without it, every client is let in. */
  preConnect?: AedesOptions['preConnect']
  authenticate?: AedesOptions['authenticate']
  /**
   * The publish guard (gateway/authorize.ts), installed on every new Aedes before it listens:
   * each start builds a new instance, and a guard installed once would be gone after a restart.
   */
  install: (aedes: Aedes) => void
  /** A packet over `maxPacketBytes` closed its connection. */
  onOversize?: (info: { from?: string, address: string, bytes: number, limit: number }) => void
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
  /** Every TCP connection accepted, also those that never completed CONNECT (or the TLS handshake). */
  readonly #sockets = new Set<Socket>()
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
      authorizePublish: this.#hooks.authorizePublish,
      ...(this.#hooks.preConnect === undefined ? {} : { preConnect: this.#hooks.preConnect }),
      ...(this.#hooks.authenticate === undefined ? {} : { authenticate: this.#hooks.authenticate }),
      ...(this.#hooks.authorizeSubscribe === undefined ? {} : { authorizeSubscribe: this.#hooks.authorizeSubscribe }),
      ...(this.#hooks.authorizeForward === undefined ? {} : { authorizeForward: this.#hooks.authorizeForward })
    })
    this.#aedes = aedes
    // A client's socket error is that client's problem (aedes closes it); never the process's.
    aedes.on('clientError', () => {})
    aedes.on('connectionError', () => {})
    ;(aedes as unknown as NodeJS.EventEmitter).on('error', () => {})
    this.#hooks.install(aedes)
    await this.#hooks.setup?.(aedes)

    const limit = maxPacketBytes(init.quotas)
    const handle = (stream: Duplex, req?: unknown): void => {
      // No Nagle (RFC 896): a QoS 1 exchange writes small packets back to back (a PUBACK, then the
      // next PUBLISH), and Nagle holding the second until the peer's delayed ACK (up to 40 ms on
      // Linux) made every command round trip through the broker ~45 ms.
      ;(stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true)
      const client = (aedes.handle as (s: unknown, r: unknown) => Client)(stream, req)
      limitPacketSize(client, limit, this.#hooks.onOversize)
    }
    this.#tcp = tls === undefined ? createNetServer(handle) : createTlsServer(tls, handle)
    // Aedes closes the clients it knows, which are those that sent CONNECT; a socket still silent
    // (or mid-handshake) would hold `server.close()` for its connect timeout (30 s). A stopped
    // broker is an outage: every connection goes at once.
    this.#tcp.on('connection', (socket: Socket) => {
      this.#sockets.add(socket)
      socket.once('close', () => this.#sockets.delete(socket))
    })
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
    for (const socket of this.#sockets) socket.destroy()
    this.#aedes = undefined // a stopped broker delivers nothing: the gateway's publishes wait for the next one
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

/**
 * Bounds the MQTT packets a connection may send: the parser (mqtt-packet, through aedes) is told to
 * fail as soon as a packet's Remaining Length (MQTT 3.1.1 §2.2.3) is over `limit`, before it buffers
 * the packet; the client then errors and aedes closes its connection. Without it a client (even
 * before CONNECT) could make the broker buffer up to 256 MB per packet. test/gateway/auth.test.ts
 * checks it still holds after a dependency upgrade.
 */
function limitPacketSize (client: Client, limit: number, onOversize: BrokerHooks['onOversize']): void {
  const parser = (client as unknown as { _parser?: { _parseLength?: () => boolean, packet: { length: number }, _emitError: (err: Error) => void } })._parser
  const parseLength = parser?._parseLength
  if (parser === undefined || parseLength === undefined) throw meshError('ERR_BAD_ARGUMENT', 'this aedes/mqtt-packet version has no parser hook for the packet size limit')
  parser._parseLength = function (this: typeof parser): boolean {
    const ok = parseLength.call(this)
    if (!ok || this.packet.length <= limit) return ok
    const address = (client.conn as { remoteAddress?: string } | undefined)?.remoteAddress ?? 'unknown'
    onOversize?.({ ...(typeof client.id === 'string' ? { from: client.id } : {}), address, bytes: this.packet.length, limit })
    this._emitError(meshError('ERR_MESSAGE_TOO_LARGE', `an MQTT packet of ${this.packet.length} bytes, over the ${limit}-byte limit`))
    return false
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
