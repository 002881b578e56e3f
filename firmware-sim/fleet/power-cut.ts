import dc from 'node:diagnostics_channel'
import type { Socket } from 'node:net'
import type { DeviceId } from '../../shared/index.js'
import type { Transport } from '../../mesh/index.js'

/**
 * Power cuts for a fleet in one process (TCP links and MQTT connections). A device that loses
 * power sends nothing more: no DNS-SD goodbye, no close frame, no FIN, no RST. Its peers learn
 * it is gone only when their keepalive finds the connection silent (mesh links: the link's
 * keepalive; MQTT: the broker's 1.5 × keepalive, MQTT 3.1.1 §3.1.2.10, which then publishes the
 * last will).
 *
 * The dying device itself runs its forceful teardown (Device.crash), which closes its sockets;
 * what a power cut changes is what the other end hears. So the cut is made on the far end of
 * each of the device's TCP connections, all in this process: that socket stops reading (what
 * the dead device "sent" while dying — the close frame, the FIN — is never read) and what it
 * writes vanishes (the dead host acknowledges nothing and answers nothing, not even with a
 * RST). Its owner's keepalive then ends the link, as after a real power cut; its `destroy` is
 * the real one. Chosen over `socket.resetAndDestroy()` (an RST at once), which peers detect in
 * a millisecond, as no power cut allows.
 *
 * A far end in another process (a fleet spread over namespace hosts, `iotmesh sim --hosts`)
 * cannot be silenced from here: the dying device's own socket then closes with a RST
 * (`socket.resetAndDestroy()`), never a FIN, so no orderly goodbye leaves the process either;
 * the peer learns of it at once, which a power cut would not allow (the limit of a crash of
 * some of a process's devices; a host whose process is killed and whose link is cut sends nothing).
 *
 * Which sockets are the device's: those that node:net's diagnostics channels report
 * (`net.client.socket`, `net.server.socket`) while the device dials (the TCP transport opens its
 * socket synchronously in `dial`, mesh/links/tcp.ts, and the wrapped `dial` names its device
 * for that call; an AsyncLocalStorage did this before, and turned on async hooks for every promise
 * of the process, ~2 % of a 200-device TCP fleet's CPU), those accepted on its listening port, and
 * any the caller names (its MQTT connections). The far end of a socket is the one in this
 * process with the mirrored ports.
 */
export class PowerCuts {
  /** The device whose transport is inside `dial` right now (synchronously). */
  #dialing: DeviceId | undefined
  readonly #sockets = new Set<Socket>()
  readonly #owners = new WeakMap<Socket, DeviceId>()
  #started = false
  /** Far ends made deaf and mute so far. */
  silenced = 0

  readonly #onClient = ({ socket }: { socket: Socket }): void => { this.#add(socket, this.#dialing) }
  readonly #onServer = ({ socket }: { socket: Socket }): void => { this.#add(socket, this.#dialing) }

  start (): void {
    if (this.#started) return
    this.#started = true
    dc.subscribe('net.client.socket', this.#onClient as (message: unknown) => void)
    dc.subscribe('net.server.socket', this.#onServer as (message: unknown) => void)
  }

  stop (): void {
    if (!this.#started) return
    this.#started = false
    dc.unsubscribe('net.client.socket', this.#onClient as (message: unknown) => void)
    dc.unsubscribe('net.server.socket', this.#onServer as (message: unknown) => void)
    this.#sockets.clear()
  }

  /** `transport`, whose dials are marked as `owner`'s (the same object, its `dial` wrapped). */
  own (transport: Transport, owner: DeviceId): Transport {
    const dial = transport.dial.bind(transport)
    transport.dial = async (address, options) => {
      const outer = this.#dialing
      this.#dialing = owner
      let dialing: ReturnType<typeof dial>
      try { dialing = dial(address, options) } finally { this.#dialing = outer }
      return await dialing
    }
    return transport
  }

  /**
   * Cuts the power of `owner`, to be called before its teardown: silences the far end of every
   * open TCP connection it dialed, accepted on `listenPort`, or that `extra` names. Returns how many.
   */
  cut (owner: DeviceId, listenPort: number | undefined, extra: readonly Socket[] = []): number {
    const mine = new Set(extra)
    for (const s of this.#sockets) {
      if (this.#owners.get(s) === owner || (listenPort !== undefined && s.localPort === listenPort && this.#owners.get(s) === undefined)) mine.add(s)
    }
    let n = 0
    for (const s of mine) {
      const far = this.#farEnd(s)
      if (far !== undefined) { silence(far); n++ } else if (!s.destroyed && !s.connecting && s.localPort !== undefined) resetOnClose(s)
    }
    this.silenced += n
    return n
  }

  #farEnd (s: Socket): Socket | undefined {
    if (s.destroyed || s.localPort === undefined) return undefined
    for (const t of this.#sockets) {
      if (t !== s && !t.destroyed && t.localPort === s.remotePort && t.remotePort === s.localPort && t.localAddress === s.remoteAddress) return t
    }
    return undefined
  }

  #add (socket: Socket, owner: DeviceId | undefined): void {
    this.#sockets.add(socket)
    if (owner !== undefined) this.#owners.set(socket, owner)
    socket.once('close', () => { this.#sockets.delete(socket) })
  }
}

/** The socket reads nothing more and what it writes goes nowhere; it closes when its owner closes it. */
function silence (socket: Socket): void {
  socket.pause()
  // pause() alone keeps the handle reading: an EOF or a RST would still end the socket at once.
  // Stop the handle itself (node:net's private handle: there is no public way to stop reading).
  const handle = (socket as unknown as { _handle?: { reading?: boolean, readStop?: () => number } | null })._handle
  if (handle !== undefined && handle !== null) { handle.reading = false; handle.readStop?.() }
  ;(socket as unknown as { _read: () => void })._read = () => {}
  socket.resume = () => socket // its owner's flow control may not start it reading again
  socket.write = ((_chunk: unknown, encoding?: unknown, callback?: unknown) => {
    const cb = typeof encoding === 'function' ? encoding : callback
    if (typeof cb === 'function') process.nextTick(cb as () => void)
    return true
  }) as Socket['write']
  // A graceful close towards the dead would wait for an answer that never comes (the link's close timeout): what it sends vanishes anyway.
  socket.end = ((..._args: unknown[]) => socket.destroy()) as Socket['end']
}

/** The socket's owner may close it as it likes: it goes with a RST (RFC 9293 §3.10.7.1), never a FIN. */
function resetOnClose (socket: Socket): void {
  const destroy = socket.destroy.bind(socket)
  const reset = (): Socket => {
    socket.destroy = destroy // resetAndDestroy() ends in destroy(): the original, now flagged to reset
    return socket.resetAndDestroy()
  }
  socket.end = ((..._args: unknown[]) => reset()) as Socket['end']
  socket.destroy = ((_err?: Error) => reset()) as Socket['destroy']
}
