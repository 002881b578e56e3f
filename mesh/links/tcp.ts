import { setMaxListeners } from 'node:events'
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import {
  isMeshError, meshError, systemClock, systemRandom, type Clock, type DeviceId, type Ed25519, type KeyPair, type Random
} from '../../shared/index.js'
import { nodeEd25519 } from '../../shared/node.js'
import { TypedEmitter } from '../events.js'
import { HandshakeAdmission, type HandshakeLimits } from './admission.js'
import { resolveBudget } from './base-link.js'
import { InitiatorHandshake, ResponderHandshake, type HandshakeConfig, type SessionSecrets } from './handshake.js'
import { LinkRegistry } from './registry.js'
import { HandshakeChannel } from './tcp-handshake.js'
import { TcpLink, plainAddress, type TcpLinkOptions } from './tcp-link.js'
import {
  DEFAULT_KEEPALIVE_INTERVAL, DEFAULT_KEEPALIVE_TIMEOUT, DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_MAX_MESSAGE_BYTES,
  type BanCheck, type DialOptions, type Link, type LinkOptions, type ListenOptions, type RemotePeer, type Transport,
  type TransportAddress, type TransportCounters, type TransportEvents, type Vouch
} from './types.js'

export interface TcpTransportInit extends LinkOptions {
  /** A handshake that takes longer is abandoned with ERR_HANDSHAKE (default 10 s). */
  handshakeTimeout?: number
  /** A graceful close that the peer does not complete in time is forced (default 5 s). */
  closeTimeout?: number
  /** What unauthenticated peers may cost this node (admission.ts, `DEFAULT_HANDSHAKE_LIMITS`). */
  handshakes?: HandshakeLimits
}

export interface TcpTransportComponents {
  keys: KeyPair
  ed25519?: Ed25519
  clock?: Clock
  /** Nonces and ephemeral keys; inject `seededRandom` only to replay a handshake in a test. */
  random?: Random
  /** Peers kept out (the connection manager's ban list): refused before any work is done for them. */
  bans?: BanCheck
}

/**
 * Authenticated, encrypted links over TCP. Owns the listening socket and every connection;
 * hands protocol work to `handshake.ts` (pure), `tcp-handshake.ts` (handshake I/O) and
 * `tcp-link.ts` (an established link). One link per remote device (`registry.ts`).
 */
class TcpTransport extends TypedEmitter<TransportEvents> implements Transport {
  readonly localId: DeviceId
  readonly #config: HandshakeConfig
  readonly #clock: Clock
  readonly #linkOptions: TcpLinkOptions
  readonly #handshakeTimeout: number
  readonly #registry: LinkRegistry
  readonly #admission: HandshakeAdmission
  readonly #bans: BanCheck | undefined
  readonly #abort = new AbortController()
  readonly #sockets = new Set<Socket>()
  readonly #handshakes = new Set<Promise<unknown>>()
  readonly #dialing = new Map<DeviceId, Promise<Link>>()
  #server: Server | undefined
  #listening: Promise<TransportAddress> | undefined
  #address: TransportAddress | undefined
  #closing: Promise<void> | undefined
  readonly #vouch: Vouch | undefined
  #seq = 0

  constructor (init: TcpTransportInit, components: TcpTransportComponents) {
    super()
    this.localId = components.keys.id
    this.#clock = components.clock ?? systemClock
    this.#config = {
      keys: components.keys,
      ed25519: components.ed25519 ?? nodeEd25519,
      random: components.random ?? systemRandom,
      authorize: init.authorize,
      credential: init.credential,
      instance: init.instance,
      admit: init.admit
    }
    this.#vouch = init.vouch
    this.#linkOptions = {
      maxMessageBytes: init.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      maxBufferedBytes: init.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES,
      keepaliveInterval: init.keepaliveInterval ?? DEFAULT_KEEPALIVE_INTERVAL,
      keepaliveTimeout: init.keepaliveTimeout ?? DEFAULT_KEEPALIVE_TIMEOUT,
      closeTimeout: init.closeTimeout ?? 5000,
      receiveBudget: resolveBudget(init.receiveBudget)
    }
    this.#handshakeTimeout = init.handshakeTimeout ?? 10_000
    this.#registry = new LinkRegistry(this.localId)
    this.#admission = new HandshakeAdmission(init.handshakes ?? {}, () => this.#clock.now())
    this.#bans = components.bans
    setMaxListeners(0, this.#abort.signal) // every handshake listens to it
  }

  get address (): TransportAddress | undefined {
    return this.#address
  }

  get links (): ReadonlyMap<DeviceId, Link> {
    return this.#registry.links
  }

  get counters (): Readonly<TransportCounters> {
    return this.#admission.counters
  }

  async listen (options: ListenOptions = {}): Promise<TransportAddress> {
    this.#assertOpen()
    this.#listening ??= this.#listen(options)
    return await this.#listening
  }

  async #listen (options: ListenOptions): Promise<TransportAddress> {
    const server = createServer({ noDelay: true }, (socket) => { this.#accept(socket) })
    this.#server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen({ host: options.host ?? '0.0.0.0', port: options.port ?? 0, signal: options.signal }, () => {
        server.off('error', reject)
        resolve()
      })
    }).catch((err: NodeJS.ErrnoException) => {
      this.#listening = undefined
      this.#server = undefined
      throw err.name === 'AbortError'
        ? meshError('ERR_ABORTED', 'listen was aborted', { cause: err })
        : meshError('ERR_LINK_CLOSED', `cannot listen on ${options.host ?? '0.0.0.0'}:${options.port ?? 0}: ${err.code ?? err.message}`, { cause: err })
    })
    server.on('error', () => {}) // after listening, a server error concerns one connection only
    const bound = server.address() as AddressInfo
    this.#address = { host: bound.address, port: bound.port }
    return this.#address
  }

  async dial (address: TransportAddress, options: DialOptions = {}): Promise<Link> {
    this.#assertOpen()
    const id = options.expectedId
    if (id !== undefined) {
      const existing = this.#registry.links.get(id)
      if (existing?.open === true) return existing
      const inflight = this.#dialing.get(id)
      if (inflight !== undefined) return await inflight
    }
    const dialing = this.#tracked(this.#dial(address, options))
    if (id !== undefined) {
      this.#dialing.set(id, dialing)
      const forget = (): void => { if (this.#dialing.get(id) === dialing) this.#dialing.delete(id) }
      dialing.then(forget, forget)
    }
    return await dialing
  }

  async #dial (address: TransportAddress, options: DialOptions): Promise<Link> {
    if (options.signal?.aborted === true) throw meshError('ERR_ABORTED', 'the dial was aborted', { cause: options.signal.reason })
    const signal = options.signal === undefined ? this.#abort.signal : AbortSignal.any([options.signal, this.#abort.signal])
    const peer = `${address.host}:${address.port}`
    const socket = this.#own(connect({ host: address.host, port: address.port, noDelay: true }))
    const channel = new HandshakeChannel(socket, this.#clock, this.#handshakeTimeout, signal, peer)
    const handshake = new InitiatorHandshake({ ...this.#config, expectedId: options.expectedId, expectedPublicKey: options.expectedPublicKey })
    let done = options.expectedId === undefined ? undefined : this.#registry.track(options.expectedId, true)
    try {
      await channel.connected()
      const seq = this.#seq = Math.max(this.#seq + 1, Date.now() * 1000)
      channel.send(handshake.hello(seq))
      const remote = handshake.readReply(await channel.next())
      if (this.#bans?.banned({ id: remote.id }) === true) throw banned(remote.id)
      await this.#vouch?.(remote, this.#openLink(remote.id))
      this.#assertOpen()
      done ??= this.#registry.track(remote.id, true)
      channel.send(handshake.auth())
      const { verdict, secrets } = handshake.readFinish(await channel.next())
      this.#assertOpen()
      if (verdict === 'accept') return this.#registry.adopt(this.#link(channel, secrets, remote, true), { initiatorId: this.localId, seq })
      channel.end()
      done()
      done = undefined
      const kept = await this.#registry.settled(remote.id)
      if (kept !== undefined) return kept
      throw meshError('ERR_HANDSHAKE', `${remote.id} keeps another link with this node, but none is open here; dial again`, { details: { id: remote.id, duplicate: true } })
    } catch (err) {
      channel.refuse(err)
      throw this.#closing === undefined || isMeshError(err, 'ERR_LINK_CLOSED') ? err : meshError('ERR_LINK_CLOSED', 'the transport was closed during the dial', { cause: err })
    } finally {
      done?.()
    }
  }

  /**
   * A new connection. Before anything is spent on it: its address may be banned, and it needs a
   * place among the handshakes in progress (admission.ts); turned away, it is closed at once
   * (counted in `counters.refused`, not emitted: a flood must not cost an event per connection).
   * The place is held until the socket closes (a REFUSE still flushing holds it too) or becomes a link.
   */
  #accept (socket: Socket): void {
    const from = { host: plainAddress(socket.remoteAddress) ?? '', port: socket.remotePort ?? 0 }
    if (this.#closing !== undefined) {
      socket.destroy()
      return
    }
    if (this.#bans?.banned({ address: from.host }) === true) {
      this.#admission.counters.refused.banned++
      socket.destroy()
      return
    }
    const placed: { channel?: HandshakeChannel } = {} // the channel, once made: eviction may come later
    const release = this.#admission.admit(from.host, () => {
      placed.channel?.abort(meshError('ERR_BUSY', `the handshake with ${from.host}:${from.port} gave its place to a newer one (${this.#admission.limits.maxPending} in progress)`))
    })
    if (typeof release === 'string') {
      socket.destroy()
      return
    }
    this.#own(socket)
    socket.once('close', release)
    const channel = placed.channel = new HandshakeChannel(socket, this.#clock, this.#handshakeTimeout, this.#abort.signal, `${from.host}:${from.port}`)
    this.#tracked(this.#respond(channel, from, release))
  }

  async #respond (channel: HandshakeChannel, from: TransportAddress, release: () => void): Promise<void> {
    const handshake = new ResponderHandshake(this.#config)
    let done: (() => void) | undefined
    try {
      const { claimed, seq } = handshake.readHello(await channel.next())
      // Nothing is signed for a peer that is banned or over budget (admission.ts).
      if (this.#bans?.banned({ id: claimed.id, address: from.host }) === true) {
        this.#admission.counters.refused.banned++
        throw banned(claimed.id)
      }
      const over = this.#admission.reply(from.host, claimed.id)
      if (over !== undefined) {
        throw meshError('ERR_BUSY', `not answering ${from.host}: ${over === 'rate-total' ? 'this node' : 'that address'} is over its handshake budget; retry later`, { details: { refusal: over } })
      }
      done = this.#registry.track(claimed.id, false)
      let reply: Uint8Array
      try {
        reply = handshake.reply() // the peer's credential (admit) is decided first: refused, nothing is signed
      } catch (err) {
        this.#admission.counters.replies-- // budgeted above, but not signed
        throw err
      }
      channel.send(reply)
      const remote = handshake.readAuth(await channel.next())
      await this.#vouch?.(remote, this.#openLink(remote.id)) // proven now: a clone is refused here (mesh/clones.ts)
      this.#assertOpen()
      const origin = { initiatorId: remote.id, seq }
      const verdict = await this.#registry.decideInbound(remote.id, origin)
      this.#assertOpen()
      const { message, secrets } = handshake.finish(verdict)
      channel.send(message)
      this.#admission.counters.handshakes++
      if (verdict === 'duplicate') {
        channel.end()
        return
      }
      release() // a link now, no longer a handshake in progress
      const link = this.#link(channel, secrets, remote, false)
      if (this.#registry.adopt(link, origin) === link) this.emit('link', link)
    } catch (err) {
      channel.refuse(err)
      if (isMeshError(err, 'ERR_BUSY') || isMeshError(err, 'ERR_BANNED')) return // counted by reason
      this.#admission.counters.refused.failed++
      if (this.#closing === undefined) this.emit('refused', isMeshError(err) ? err : meshError('ERR_HANDSHAKE', 'the handshake failed', { cause: err }), from)
    } finally {
      done?.()
    }
  }

  #link (channel: HandshakeChannel, secrets: SessionSecrets, remote: RemotePeer, initiator: boolean): TcpLink {
    const { socket, decoder } = channel.handover()
    const link = new TcpLink(socket, decoder, secrets, remote, initiator, this.#linkOptions, this.#clock)
    this.#admission.linked(remote.id, link.remoteAddress) // when it returns from there, a flood does not keep it out
    return link
  }

  #openLink (id: DeviceId): Link | undefined {
    const link = this.#registry.links.get(id)
    return link?.open === true ? link : undefined
  }

  #own (socket: Socket): Socket {
    this.#sockets.add(socket)
    socket.once('close', () => { this.#sockets.delete(socket) })
    return socket
  }

  #tracked<T> (work: Promise<T>): Promise<T> {
    this.#handshakes.add(work)
    const forget = (): void => { this.#handshakes.delete(work) }
    work.then(forget, forget)
    return work
  }

  #assertOpen (): void {
    if (this.#closing !== undefined) throw meshError('ERR_LINK_CLOSED', `the transport of ${this.localId} is closed; create a new one`)
  }

  async close (): Promise<void> {
    this.#closing ??= this.#close()
    await this.#closing
  }

  async #close (): Promise<void> {
    this.#abort.abort()
    await Promise.allSettled([...this.#handshakes])
    await Promise.all([...this.#registry.links.values()].map(async (link) => { await link.close() }))
    for (const socket of this.#sockets) socket.destroy()
    const server = this.#server
    if (server !== undefined) await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
    this.removeAllListeners()
  }

  protected override emit<K extends keyof TransportEvents & string> (event: K, ...args: TransportEvents[K]): boolean {
    return this.#closing === undefined && super.emit(event, ...args)
  }

  async [Symbol.asyncDispose] (): Promise<void> {
    await this.close()
  }
}

function banned (id: DeviceId): Error {
  return meshError('ERR_BANNED', `${id} is banned here for a while; it is not linked`, { details: { id } })
}

/** A TCP transport; call `listen()` to accept links, `dial()` to open them. */
export function createTcpTransport (init: TcpTransportInit, components: TcpTransportComponents): Transport {
  return new TcpTransport(init, components)
}
