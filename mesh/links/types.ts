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
  /** The enrollment credential it showed in the handshake (shared/fleet.ts), if any; checked only when the node has an `admit` hook. */
  readonly credential?: Uint8Array
  /** Its instance id (16 random bytes per process start), if it sent one: two live instances of one key are a clone (mesh/clones.ts). */
  readonly instance?: Uint8Array
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
 * What a link's receive budget (`ReceiveBudget`) and the event loop's time slices (`turn.ts`) did
 * to its input. A peer over its budget is slowed by not reading its socket (TCP backpressure),
 * never by buffering: these say how much.
 */
export interface LinkFlowCounters {
  /** Messages that found the budget spent when their turn came, and waited (each counted once). */
  overBudget: number
  /** Times the link stopped reading because the peer was over its budget (messages or bytes). */
  throttled: number
  /** Time (the link's clock, ms) the link spent not reading because of the budget. */
  throttledMs: number
  /** Times delivery stopped mid-batch to let the rest of the node run (the turn's slice was used up). */
  yields: number
  /** Control messages delivered at once, ahead of the inbox and the turn (in-memory links: base-link.ts receivedUrgent). */
  urgent: number
}

/**
 * Why a link closed: `local` (close() or destroy() here), `remote` (the peer closed it; `error` set
 * when it went without a close frame), `error` (a failure here: `error` says which), `replaced`
 * (another link to the same device took over, `registry.ts`).
 */
export interface LinkCloseInfo {
  readonly reason: 'local' | 'remote' | 'error' | 'replaced'
  readonly error?: MeshError | Error
  /**
   * Why the owner closed it, when it said (`close({ why })`): on the side that closed, and on the
   * other side too (the close item carries it). The connection manager says `evicted` (a newcomer
   * took the inbound slot), `full` (no inbound slot), `banned` (kept out for a while); the router
   * may say `score`. At most 32 characters `a-z`, `0-9`, `-`.
   */
  readonly why?: string
}

/** `why` values are short tokens: what a peer sends is dropped unless it is one. */
export const CLOSE_WHY = /^[a-z0-9-]{1,32}$/

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
  /** What flow control did to this link's input (`LinkFlowCounters`). */
  readonly flow: Readonly<LinkFlowCounters>
  /** The peer's network address as this end saw it (TCP: the socket's remote address), when known. */
  readonly remoteAddress: string | undefined
  /** When the link opened, by the link's clock (`now()`, ms). */
  readonly openedAt: number
  /** When the last message arrived (or the link opened), by the link's clock: how idle the peer is. */
  readonly lastMessageAt: number
  /**
   * Messages this end has read and not yet delivered: they wait in its inbox for a later turn of
   * the event loop (`turn.ts`) or for the peer's receive budget. Above 0, this end is behind what
   * the peer has sent.
   */
  readonly pending: number
  /** Why the link closed (set once it is closing): what the `close` event carries, for whoever looks later. */
  readonly closeInfo: LinkCloseInfo | undefined
  /**
   * Queues one message. Throws MeshError ERR_LINK_CLOSED when closed, ERR_FRAME_TOO_LARGE when
   * `msg` exceeds the frame limit, ERR_BACKPRESSURE when the bounded send queue is full (nothing
   * is queued: wait for `drain` or drop). The bytes are consumed before `send` returns. With
   * `control`, the message goes ahead of queued data in a lane of its own (`SendOptions`).
   */
  send (msg: Uint8Array, options?: SendOptions): void
  /** Round-trip time to the peer in milliseconds (by the link's clock). */
  ping (options?: { signal?: AbortSignal }): Promise<number>
  /** Graceful: flushes what is queued, tells the peer (and why, if `why` is given), resolves once closed. Idempotent. */
  close (options?: { why?: string }): Promise<void>
  /** Forceful: drops what is queued and closes now; `close` reports `err` if given. Idempotent. */
  destroy (err?: Error): void
}

/**
 * How a message is sent. `control`: a control-plane message (an owner-signed revocation or
 * configuration) that must not wait behind queued data. It goes in the control lane of the send
 * queue (`lanes.ts`): out before the data queued ahead of it (up to `DEFAULT_CONTROL_BURST` in a
 * row while data waits, then one data item), refused with ERR_BACKPRESSURE only when the control
 * lane itself is full (half of `maxBufferedBytes`, apart from the data's bound). On TCP it passes
 * the data that waits for the socket to drain, not the bytes the socket already holds (at most
 * its high-water mark and one record).
 *
 * `now`: written at once instead of at the end of the event loop's turn (TCP: the record being
 * built is sealed and written now, with whatever else was sent in this turn; when messages already
 * wait for the socket to drain, it waits behind them as any message does). For a relay that
 * forwards a frame before it verifies it (routing `relayBeforeVerify`): the next hop starts on the
 * frame while this node checks the signature. Links without a write batch (memory) ignore it.
 */
export interface SendOptions {
  readonly control?: boolean
  readonly now?: boolean
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

/**
 * Decides on a peer and the credential it showed (a fleet closed by credential: mesh/credentials.ts);
 * throws a MeshError whose code the other side is told (ERR_REVOKED, ERR_NO_CREDENTIAL, …). The
 * responder asks before it signs anything; the peer's key is proven later in the same handshake.
 */
export type Admit = (peer: RemotePeer) => void

/**
 * Decides on a peer once it has proven its key, before the link opens, knowing this node's open
 * link to the same key (`open`, if any): throws a MeshError whose code the other side is told. It
 * may take time (mesh/clones.ts asks `open` for a liveness proof when the peer shows another
 * instance id). Nothing is spent on a peer that has not proven its key.
 */
export type Vouch = (peer: RemotePeer, open: Link | undefined) => Promise<void>

/**
 * Why an inbound connection was turned away before or during its handshake, by the transport's
 * own limits (`HandshakeLimits`); stable names, the keys of `TransportCounters.refused`.
 *   banned               its address, or the id its HELLO claimed, is on the ban list
 *   pending-per-source   its address already has `maxPendingPerSource` handshakes in progress
 *   pending-total        `maxPending` handshakes were in progress: the oldest of the busiest source made room
 *   rate-per-source      its address spent its handshake budget (no REPLY was signed)
 *   rate-total           the node spent its handshake budget (no REPLY was signed)
 *   failed               the handshake failed (bad proof, timeout, roster, protocol version…)
 */
export type HandshakeRefusal = 'banned' | 'pending-per-source' | 'pending-total' | 'rate-per-source' | 'rate-total' | 'failed'

export interface TransportCounters {
  /** Inbound connections (TCP accepts; memory: inbound dials). */
  connections: number
  /** Inbound handshakes that completed (a link, or a duplicate settled). */
  handshakes: number
  /** Signed handshake replies sent: the CPU an unauthenticated peer can make this node spend. */
  replies: number
  /** Inbound connections turned away, by reason. */
  refused: Record<HandshakeRefusal, number>
}

export function emptyTransportCounters (): TransportCounters {
  return { connections: 0, handshakes: 0, replies: 0, refused: { banned: 0, 'pending-per-source': 0, 'pending-total': 0, 'rate-per-source': 0, 'rate-total': 0, failed: 0 } }
}

/**
 * Who may not link for now (the connection manager's ban list, `bans.ts`): a transport asks before
 * it does any work for a connection (by address) and before it signs anything (by claimed id).
 */
export interface BanCheck {
  banned (peer: { id?: DeviceId, address?: string }): boolean
}

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
  /** Inbound connections, handshakes and refusals so far. */
  readonly counters: Readonly<TransportCounters>
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
  /** This node's enrollment credential, shown to every peer in the handshake. */
  credential?: Uint8Array
  /** This node's instance id (16 bytes, new at each process start), shown to every peer in the handshake. */
  instance?: Uint8Array
  /** Decides on a peer and the credential it showed; what it throws refuses the link (the peer is told the code). */
  admit?: Admit
  /** Decides on a proven peer beside the open link to its key, if any (TCP only; the in-memory transport does not ask). */
  vouch?: Vouch
  /** What each link may receive (defaults `DEFAULT_RECEIVE_BUDGET`); false: no budget (benchmarks). */
  receiveBudget?: ReceiveBudget | false
}

/**
 * A link's receive budget: two token buckets (RFC 2697 §2), one for messages and one for bytes
 * (TCP: every byte of every frame, control items included; memory: message bytes). A peer that
 * exceeds it is not dropped: the link stops reading until the budget refills, so TCP pushes back
 * on the sender (and an in-memory link holds the sender's queue: its sends are refused with
 * ERR_BACKPRESSURE, as on TCP). Keepalive pings and pongs count as messages.
 */
export interface ReceiveBudget {
  /** Sustained messages per second (default 10,000). */
  messagesPerSecond?: number
  /** Sustained bytes per second (default 8 MiB). */
  bytesPerSecond?: number
  /** Seconds of the sustained rate a peer may send at once (default 1; the byte burst is at least two messages of the frame limit). */
  burstSeconds?: number
}

/**
 * A backstop, above what one honest link carries at full speed: the link layer cannot tell an
 * expensive message from a cheap one, so it only bounds the rate of everything a peer sends. What a
 * message costs is the router's to bound, per kind and before decoding (routing/budget.ts: data
 * frames 5,000 a second per neighbour by default), and `turn.ts` keeps the node's own timers on
 * time whatever arrives. At 2,000 messages a second this budget capped one hop of the benchmark at
 * about 2,200 readings a second (half of what the link carried before it) and the gateway's ingest
 * over one link at 17 % of the raw verify rate (`npm run bench`, paths and ingest).
 */
export const DEFAULT_RECEIVE_BUDGET: Required<ReceiveBudget> = { messagesPerSecond: 10_000, bytesPerSecond: 8 * 1024 * 1024, burstSeconds: 1 }

export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024
export const DEFAULT_MAX_BUFFERED_BYTES = 1024 * 1024
export const DEFAULT_KEEPALIVE_INTERVAL = 10_000
export const DEFAULT_KEEPALIVE_TIMEOUT = 30_000
