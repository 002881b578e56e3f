import dc from 'node:diagnostics_channel'
import type { Socket } from 'node:net'

/**
 * MQTT traffic of a broker whose clients live in this process (a simulated fleet): bytes from the
 * sockets' own counters, packets by reading the MQTT fixed header of every packet that crosses
 * (MQTT 3.1.1 §2.2: one header byte, then the remaining length in 1 to 4 bytes, §2.2.3). Sockets
 * are found through node:net's diagnostics channels, so nothing in the broker or the devices is
 * touched. Each connection is seen from both ends; it is counted once, from the client's end:
 * what the client sent is what the broker received. A connection ends up in the totals when it
 * closes, so restarts and crashes lose nothing.
 */

/** Counts MQTT packets in a byte stream fed in arbitrary chunks. */
export class MqttPacketCounter {
  packets = 0
  #skip = 0
  #state: 'header' | 'length' = 'header'
  #length = 0
  #multiplier = 1

  push (chunk: Uint8Array): void {
    let i = 0
    while (i < chunk.length) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, chunk.length - i)
        this.#skip -= n
        i += n
        continue
      }
      const byte = chunk[i++] as number
      if (this.#state === 'header') {
        this.packets++
        this.#state = 'length'
        this.#length = 0
        this.#multiplier = 1
        continue
      }
      this.#length += (byte & 0x7f) * this.#multiplier
      this.#multiplier *= 128
      if ((byte & 0x80) === 0 || this.#multiplier > 128 ** 4) {
        this.#skip = this.#length
        this.#state = 'header'
      }
    }
  }
}

export interface Traffic { bytesIn: number, bytesOut: number, framesIn: number, framesOut: number }

interface Connection { socket: Socket, client: boolean, received: MqttPacketCounter, sent: MqttPacketCounter | undefined }

export class MqttTap {
  /** The broker's port; asked when a socket connects (the broker may not exist yet when the tap is made). */
  readonly #port: () => number | undefined
  readonly #connections = new Set<Connection>()
  /** Client side, by the client's local port, to pair a server socket with its client. */
  readonly #byClientPort = new Map<number, Connection>()
  readonly #closed = { all: zero(), excluded: zero() }
  readonly #excluded = new WeakSet<Socket>()
  readonly #onClient: (m: unknown) => void
  readonly #onServer: (m: unknown) => void
  #stopped = false

  /** Start it before the clients connect: sockets made earlier are not seen. */
  constructor (port: () => number | undefined) {
    this.#port = port
    this.#onClient = (m) => { this.#client((m as { socket: Socket }).socket) }
    this.#onServer = (m) => { this.#server((m as { socket: Socket }).socket) }
    dc.subscribe('net.client.socket', this.#onClient)
    dc.subscribe('net.server.socket', this.#onServer)
  }

  /** Leaves a client's connection out of `devices()` (the experiment's own subscriber). */
  exclude (socket: Socket | undefined): void {
    if (socket !== undefined) this.#excluded.add(socket)
  }

  /** Every connection: from the broker's side (in: what clients sent). */
  broker (): Traffic {
    const t = this.#sum(() => true, this.#closed.all)
    return { bytesIn: t.bytesOut, bytesOut: t.bytesIn, framesIn: t.framesOut, framesOut: t.framesIn }
  }

  /** The clients' side, without the excluded connections. */
  devices (): Traffic {
    const all = this.#sum(() => true, this.#closed.all)
    const excluded = this.#sum((c) => this.#excluded.has(c.socket), this.#closed.excluded)
    return { bytesIn: all.bytesIn - excluded.bytesIn, bytesOut: all.bytesOut - excluded.bytesOut, framesIn: all.framesIn - excluded.framesIn, framesOut: all.framesOut - excluded.framesOut }
  }

  stop (): void {
    if (this.#stopped) return
    this.#stopped = true
    dc.unsubscribe('net.client.socket', this.#onClient)
    dc.unsubscribe('net.server.socket', this.#onServer)
  }

  #client (socket: Socket): void {
    socket.once('connect', () => {
      if (this.#stopped || socket.remotePort === undefined || socket.remotePort !== this.#port() || socket.localPort === undefined) return
      const connection: Connection = { socket, client: true, received: new MqttPacketCounter(), sent: undefined }
      this.#connections.add(connection)
      const localPort = socket.localPort
      this.#byClientPort.set(localPort, connection)
      socket.on('data', (chunk: Buffer) => { connection.received.push(chunk) })
      socket.once('close', () => {
        this.#connections.delete(connection)
        this.#byClientPort.delete(localPort)
        const t = traffic(connection)
        add(this.#closed.all, t)
        if (this.#excluded.has(socket)) add(this.#closed.excluded, t)
      })
    })
  }

  /** A socket the broker accepted: its inbound stream is what the client sent (counted for the client). */
  #server (socket: Socket): void {
    if (this.#stopped || socket.localPort === undefined || socket.localPort !== this.#port() || socket.remotePort === undefined) return
    const counter = new MqttPacketCounter()
    const remotePort = socket.remotePort
    // The client's 'connect' may come after the server's accept: pair on first data.
    socket.on('data', (chunk: Buffer) => {
      counter.push(chunk)
      const connection = this.#byClientPort.get(remotePort)
      if (connection !== undefined && connection.sent === undefined) connection.sent = counter
    })
  }

  #sum (which: (c: Connection) => boolean, closed: Traffic): Traffic {
    const total = { ...closed }
    for (const c of this.#connections) if (which(c)) add(total, traffic(c))
    return total
  }
}

function traffic (c: Connection): Traffic {
  return { bytesIn: c.socket.bytesRead, bytesOut: c.socket.bytesWritten, framesIn: c.received.packets, framesOut: c.sent?.packets ?? 0 }
}

function zero (): Traffic { return { bytesIn: 0, bytesOut: 0, framesIn: 0, framesOut: 0 } }

function add (to: Traffic, t: Traffic): void {
  to.bytesIn += t.bytesIn
  to.bytesOut += t.bytesOut
  to.framesIn += t.framesIn
  to.framesOut += t.framesOut
}
