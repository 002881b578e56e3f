import { createConnection, type Socket } from 'node:net'
import { Duplex } from 'node:stream'
import { MqttClient, type IClientOptions } from 'mqtt'
import { meshError, mixSeed, mulberry32, type Clock, type DeviceId, type TimerHandle } from '../../shared/index.js'
import type { FaultModel } from '../../mesh/testing.js'
import type { MqttConnect } from '../device/types.js'

/**
 * The fleet's fault model (mesh/links/faults.ts) on MQTT connections, so that a fault means the
 * same for both architectures in one process. Every MQTT client of the fleet (its devices' broker
 * paths, and any client the fleet hands `connectFor`) runs over a real TCP socket to the broker
 * seen through a `FaultyMqttStream`:
 * - a partition that separates the client from the broker (the broker counts as the gateway,
 *   `brokerId`) refuses new connections (EHOSTUNREACH, as a router with no path answers) and
 *   severs open ones: `sever()` at once (the fleet calls it with `partition()`, as it destroys
 *   mesh links across the cut), and any write or read across the cut. The client's own
 *   reconnection (backoff) finds the broker again after `heal()`;
 * - delay holds each chunk, both ways, in order (TCP never reorders a byte stream);
 * - loss cannot drop bytes of a TCP stream: a lost segment is sent again after the
 *   retransmission timeout, so each chunk is lost with the model's probability, again and again,
 *   and each loss adds an RTO that doubles (RFC 6298 §5.5), from 200 ms (Linux's minimum RTO);
 * - duplication does not apply (TCP drops duplicate segments, RFC 9293 §3.10.7.4).
 * Each connection draws from its own mulberry32 stream, `mixSeed(seed, 'mqtt', client, n)`.
 */

/** Linux's minimum retransmission timeout (RFC 6298 §2.4 allows a lower floor than its 1 s). */
export const MQTT_RTO_MS = 200
/** Consecutive losses of one chunk at most (then it goes through): bounds the wait at 200 × (2^6 − 1) ms. */
const MAX_RETRANSMITS = 6

export interface MqttFaultsComponents { clock: Clock }

/** Faults on MQTT connections in one process: partitions, delay and loss as TCP would see them (see the file's header). */
export class MqttFaults {
  readonly #model: FaultModel
  readonly #brokerId: DeviceId
  readonly #clock: Clock
  readonly #streams = new Set<FaultyMqttStream>()
  readonly #connections = new Map<DeviceId, number>()

  constructor (model: FaultModel, brokerId: DeviceId, components: MqttFaultsComponents) {
    this.#model = model
    this.#brokerId = brokerId
    this.#clock = components.clock
  }

  /** The broker's identity in the fault model's partitions. */
  get brokerId (): DeviceId { return this.#brokerId }

  /** Open connections. */
  get open (): number { return [...this.#streams].filter((s) => !s.destroyed).length }

  /** mqtt.js's `connect` for the client `localId`: the same options, over a faulty stream to the URL's host and port. */
  connectFor (localId: DeviceId): MqttConnect {
    return (url: string, options: IClientOptions): MqttClient => {
      const parsed = new URL(url)
      if (parsed.protocol !== 'mqtt:' && parsed.protocol !== 'tcp:') {
        throw meshError('ERR_BAD_ARGUMENT', `the fleet's MQTT fault layer speaks plain TCP (mqtt://), not ${parsed.protocol}//`)
      }
      const host = parsed.hostname
      const port = Number(parsed.port === '' ? 1883 : parsed.port)
      const client = new MqttClient(() => this.#open(localId, host, port), { ...options, host, port, protocol: 'mqtt' })
      client.on('error', () => {}) // as mqtt.connect does: the owner listens for what it cares about
      return client
    }
  }

  /** The TCP sockets of `localId`'s open connections. */
  socketsOf (localId: DeviceId): Socket[] {
    return [...this.#streams].flatMap((s) => s.localId === localId && !s.destroyed && s.socket !== undefined ? [s.socket] : [])
  }

  /** Destroys every open connection the current partition cuts; returns how many. */
  sever (): number {
    let severed = 0
    for (const stream of [...this.#streams]) {
      if (stream.blocked()) { stream.destroy(unreachable(stream.localId)); severed++ }
    }
    return severed
  }

  #open (localId: DeviceId, host: string, port: number): Duplex {
    const n = (this.#connections.get(localId) ?? 0) + 1
    this.#connections.set(localId, n)
    const stream = new FaultyMqttStream(localId, {
      blocked: () => this.#model.blocked(localId, this.#brokerId),
      next: mulberry32(mixSeed(this.#model.seed, 'mqtt', localId, n)),
      settings: () => this.#model.settings,
      clock: this.#clock
    })
    this.#streams.add(stream)
    stream.once('close', () => { this.#streams.delete(stream) })
    stream.open(host, port)
    return stream
  }
}

function unreachable (localId: DeviceId): Error {
  const err = meshError('ERR_LINK_CLOSED', `broker unreachable from ${localId}: partitioned`, { details: { partitioned: true } })
  return Object.assign(err, { errno: 'EHOSTUNREACH' })
}

interface StreamSource {
  blocked: () => boolean
  next: () => number
  settings: () => Readonly<{ loss?: number, delay?: number | readonly [number, number] }>
  clock: Clock
}

/** One MQTT connection's byte stream under the fault model (see MqttFaults). */
export class FaultyMqttStream extends Duplex {
  readonly localId: DeviceId
  readonly #source: StreamSource
  readonly #timers = new Set<TimerHandle>()
  #socket: Socket | undefined
  /** When the last chunk each way goes through: later chunks never overtake it. */
  #outAt = 0
  #inAt = 0

  constructor (localId: DeviceId, source: StreamSource) {
    super({ allowHalfOpen: false })
    this.localId = localId
    this.#source = source
  }

  readonly blocked = (): boolean => this.#source.blocked()

  /** The underlying socket (node:net's diagnostics channels see it, as any client socket). */
  get socket (): Socket | undefined { return this.#socket }

  open (host: string, port: number): void {
    if (this.blocked()) {
      process.nextTick(() => { this.destroy(unreachable(this.localId)) })
      return
    }
    const socket = this.#socket = createConnection({ host, port })
    socket.setNoDelay(true)
    socket.on('connect', () => { this.emit('connect') })
    socket.on('data', (chunk: Buffer) => {
      if (this.blocked()) { this.destroy(unreachable(this.localId)); return }
      this.#inAt = this.#pass(chunk, this.#inAt, () => { this.push(chunk) })
    })
    socket.on('end', () => { this.#later(this.#inAt, () => { this.push(null) }) })
    socket.on('error', (err) => { this.destroy(err) })
    socket.on('close', () => { this.#later(this.#inAt, () => { this.destroy() }) })
  }

  override _read (): void {}

  override _write (chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const socket = this.#socket
    if (socket === undefined || this.blocked()) { callback(unreachable(this.localId)); return }
    this.#outAt = this.#pass(chunk, this.#outAt, () => { if (!socket.destroyed) socket.write(chunk) })
    callback() // taken into the send buffer, as the kernel takes it
  }

  override _final (callback: (error?: Error | null) => void): void {
    this.#later(this.#outAt, () => { this.#socket?.end() })
    callback()
  }

  override _destroy (err: Error | null, callback: (error?: Error | null) => void): void {
    for (const timer of this.#timers) this.#source.clock.clearTimeout(timer)
    this.#timers.clear()
    this.#socket?.destroy()
    callback(err)
  }

  /** Runs `deliver` after this chunk's delay, never before `after`; returns when it runs. */
  #pass (chunk: Buffer, after: number, deliver: () => void): number {
    const { loss = 0, delay = 0 } = this.#source.settings()
    const now = this.#source.clock.now()
    let wait = 0
    if (loss > 0 || delay !== 0) {
      // Two draws per chunk while a fault is set, whatever the outcome (as faulty-link.ts draws a fixed number).
      const u = this.#source.next()
      const lossDraw = this.#source.next()
      // Losses in a row: P(k ≥ j) = loss^j (geometric), capped.
      const retransmits = loss <= 0 ? 0 : loss >= 1 ? MAX_RETRANSMITS : Math.min(MAX_RETRANSMITS, Math.floor(Math.log(Math.max(lossDraw, Number.MIN_VALUE)) / Math.log(loss)))
      wait = (typeof delay === 'number' ? delay : delay[0] + u * (delay[1] - delay[0])) + MQTT_RTO_MS * (2 ** retransmits - 1)
    }
    const at = Math.max(now + wait, after)
    if (at <= now && after <= now) { deliver(); return now }
    this.#later(at, deliver)
    return at
  }

  #later (at: number, fn: () => void): void {
    const ms = at - this.#source.clock.now()
    if (ms <= 0) { fn(); return }
    const timer = this.#source.clock.setTimeout(() => { this.#timers.delete(timer); if (!this.destroyed) fn() }, ms)
    this.#timers.add(timer)
  }
}
