import type { DeviceId, MeshError, PublicKey } from '../../shared/index.js'

/**
 * The link contract (in the spirit of libp2p's `interface` package): a `Link` carries opaque
 * messages between two authenticated devices; a `Transport` listens and dials. Implementations:
 * TCP (`tcp.ts`, authenticated and encrypted) and in-memory (`memory.ts`, for fast tests and the
 * fleet simulator). `test/compliance/links.test.ts` runs one suite against both.
 */

/** The device at the other end of a link, as it proved itself in the handshake. */
export interface RemotePeer {
  readonly id: DeviceId
  readonly publicKey: PublicKey
}

/**
 * Messages and bytes carried by a link. `framesIn`/`framesOut` count messages (not keepalive or
 * control items); `bytesIn`/`bytesOut` count every byte on the wire after the handshake: length
 * prefixes, record headers, control items and authentication tags included (memory links: message bytes).
 */
export interface LinkCounters {
  framesIn: number
  framesOut: number
  bytesIn: number
  bytesOut: number
}

/**
 * Why a link closed: `local` (close() or destroy() here), `remote` (the peer closed it; `error` set
 * when it went without a close frame), `error` (a failure here: `error` says which), `replaced`
 * (another link to the same device took over, `registry.ts`).
 */
export interface LinkCloseInfo {
  readonly reason: 'local' | 'remote' | 'error' | 'replaced'
  readonly error?: MeshError | Error
}

/** The subscribe side of a typed emitter (`mesh/events.ts` implements it). */
export interface Emitter<Events extends { [K in keyof Events]: unknown[] }> {
  on<K extends keyof Events & string> (event: K, listener: (...args: Events[K]) => void): this
  once<K extends keyof Events & string> (event: K, listener: (...args: Events[K]) => void): this
  off<K extends keyof Events & string> (event: K, listener: (...args: Events[K]) => void): this
  next<K extends keyof Events & string> (event: K, options?: { signal?: AbortSignal }): Promise<Events[K]>
  listenerCount<K extends keyof Events & string> (event: K): number
}

export interface LinkEvents {
  /**
   * One message, in order. The bytes may be a view into a receive buffer: copy to keep them past
   * the handler. A listener that throws gets the link destroyed (ERR_LINK_CLOSED, its error as cause).
   */
  message: [msg: Uint8Array]
  /** The send queue has emptied after `writable` went false or a send was refused with ERR_BACKPRESSURE. */
  drain: []
  /** Emitted once; nothing is emitted after it. */
  close: [info: LinkCloseInfo]
}

export interface Link extends Emitter<LinkEvents> {
  readonly remote: RemotePeer
  /** True on the side that dialed. */
  readonly initiator: boolean
  /** False once closing or closed. */
  readonly open: boolean
  /** True while open and the send queue is below its high-water mark. */
  readonly writable: boolean
  /** Bytes queued locally, not yet handed to the network. */
  readonly bufferedBytes: number
  readonly counters: Readonly<LinkCounters>
  /**
   * Queues one message. Throws MeshError ERR_LINK_CLOSED when closed, ERR_FRAME_TOO_LARGE when
   * `msg` exceeds the frame limit, ERR_BACKPRESSURE when the bounded send queue is full (nothing
   * is queued: wait for `drain` or drop). The bytes are consumed before `send` returns.
   */
  send (msg: Uint8Array): void
  /** Round-trip time to the peer in milliseconds (by the link's clock). */
  ping (options?: { signal?: AbortSignal }): Promise<number>
  /** Graceful: flushes what is queued, tells the peer, resolves once closed. Idempotent. */
  close (): Promise<void>
  /** Forceful: drops what is queued and closes now; `close` reports `err` if given. Idempotent. */
  destroy (err?: Error): void
}

/** Where a transport listens or a peer can be dialed. For memory transports `host` is any name. */
export interface TransportAddress {
  readonly host: string
  readonly port: number
}

export interface ListenOptions {
  host?: string
  /** 0 (the default) picks a free port. */
  port?: number
  signal?: AbortSignal
}

export interface DialOptions {
  /** The id discovery announced: a peer proving another id is refused with ERR_PEER_KEY_MISMATCH. */
  expectedId?: DeviceId
  /** The key discovery announced: a peer proving another key is refused with ERR_PEER_KEY_MISMATCH. */
  expectedPublicKey?: PublicKey
  signal?: AbortSignal
}

/** Decides whether a proven peer may link (a fleet roster in closed mode); false refuses with ERR_NOT_IN_ROSTER. */
export type Authorize = (remote: RemotePeer) => boolean

export interface TransportEvents {
  /** An inbound link completed its handshake (dialed links are returned by `dial`). */
  link: [link: Link]
  /** An inbound connection was refused or failed its handshake; the node carries on. */
  refused: [error: MeshError, from: TransportAddress | undefined]
}

export interface Transport extends Emitter<TransportEvents> {
  readonly localId: DeviceId
  /** The bound address while listening. */
  readonly address: TransportAddress | undefined
  /** Open links, at most one per remote id. */
  readonly links: ReadonlyMap<DeviceId, Link>
  /** Starts listening; idempotent (a second call resolves to the bound address). */
  listen (options?: ListenOptions): Promise<TransportAddress>
  /**
   * Opens an authenticated link, or returns the open link to the same device. Rejects with
   * ERR_HANDSHAKE, ERR_PEER_KEY_MISMATCH, ERR_PROTOCOL_VERSION, ERR_NOT_IN_ROSTER, ERR_ABORTED
   * or ERR_LINK_CLOSED (transport closed).
   */
  dial (address: TransportAddress, options?: DialOptions): Promise<Link>
  /** Stops listening, closes every link, abandons pending handshakes; idempotent and final; no event after it. */
  close (): Promise<void>
  [Symbol.asyncDispose] (): Promise<void>
}

/** Options common to every transport. */
export interface LinkOptions {
  /** Largest message a link carries, in bytes (default 64 KiB). */
  maxMessageBytes?: number
  /** Bytes the send queue may hold before `send` throws ERR_BACKPRESSURE (default 1 MiB). */
  maxBufferedBytes?: number
  /** Idle time before a keepalive ping, in ms (default 10 s); 0 disables keepalive. */
  keepaliveInterval?: number
  /** A link that hears nothing for this long is destroyed (default 30 s). */
  keepaliveTimeout?: number
  /** Decides whether a proven peer may link; refused peers get ERR_NOT_IN_ROSTER. */
  authorize?: Authorize
}

export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024
export const DEFAULT_MAX_BUFFERED_BYTES = 1024 * 1024
export const DEFAULT_KEEPALIVE_INTERVAL = 10_000
export const DEFAULT_KEEPALIVE_TIMEOUT = 30_000
