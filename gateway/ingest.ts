import { EventEmitter } from 'node:events'
import {
  DEFAULT_FLEET, DEFAULT_FRAME_LIMITS, createReplayGuard, decodeFrame, isMeshError, verifyFrame,
  type DeviceId, type Ed25519, type ErrorCode, type FrameLimits, type PublicKey, type ReplayGuard, type SenmlPack, type TelemetryFrame
} from '../shared/index.js'
import { systemClock, type Clock } from './clock.js'
import { HoldPen } from './hold.js'
import { KeyStore, type LearnResult } from './keys.js'
import { DROP_REASONS, newCounters, type DropReason, type GatewayCounters, type Path } from './reasons.js'
import { parseStatus, type DeviceStatus } from './status.js'
import { parseTopic } from './topics.js'

/**
 * The gateway's ingest pipeline: one MQTT-shaped message (topic, payload, where it came from) in,
 * one decision out. No sockets: the embedded broker calls it from `authorizePublish`, the
 * external-broker client from its message handler, the mesh bridge (later) from its deliveries.
 *
 * A frame is decoded (bounded, shared/cbor.ts), bound to its topic (kid = the device id in the
 * topic, "tp" = the device topic), checked against the replay window, and verified with its
 * signer's key before anyone sees it. A frame whose signer's key is not known yet is held
 * (bounded in time and count) until a key arrives — a retained status, `learnKey` — and dropped
 * as `unknown_signer` (ERR_UNKNOWN_SIGNER) otherwise: never forwarded unverified.
 *
 * Verification is synchronous (node:crypto, ~60 µs): the decision is made before the broker
 * forwards anything, so a frame that fails never reaches another subscriber.
 */

export interface IngestInit {
  /** The fleet served; frames for any other are dropped (`unknown_fleet`). Default "default". */
  fleet?: string
  /** How long a frame waits for its signer's key (ms). Default 3000. */
  holdMs?: number
  /** Most frames held at once, all signers together. Default 1024. */
  maxHeld?: number
  /** Most frames held for one signer. Default 64. */
  maxHeldPerSigner?: number
  /** Closed mode: only these keys are ever trusted. */
  roster?: Iterable<PublicKey>
  /** Open mode: most keys remembered. Default 100,000. */
  maxKeys?: number
  /** Replay window per origin (RFC 4303 §3.4.3). Default 1024. */
  replayWindow?: number
  /** Most origins tracked by the replay guard. Default 65,536. */
  maxOrigins?: number
  limits?: FrameLimits
}

export interface IngestComponents {
  /** Timers of the holding pen. */
  clock?: Clock
  /** Wall clock for `receivedAt` (ms since the epoch). */
  now?: () => number
  ed25519?: Ed25519
}

export interface MessageSource {
  path: Path
  /** The MQTT client id (broker path) or the neighbour it came from (mesh path), when known. */
  from?: string
}

/** A verified, fresh reading: what listeners, the registry and the …/json publisher get. */
export interface Reading {
  origin: DeviceId
  fleet: string
  seq: number
  /** Sampling time, seconds since the epoch (the pack's bt). */
  time: number
  /** The signed device topic: "telemetry", "events/door", … */
  deviceTopic: string
  records: SenmlPack
  /** The exact bytes the device signed. */
  frame: Uint8Array
  path: Path
  from?: string
  /** When the gateway accepted it, ms since the epoch. */
  receivedAt: number
}

export interface DropEvent {
  reason: DropReason
  code: ErrorCode
  message: string
  topic?: string
  deviceId?: DeviceId
  seq?: number
  path?: Path
  from?: string
}

export interface StatusEvent {
  deviceId: DeviceId
  fleet: string
  /** undefined: the retained status was cleared. */
  status: DeviceStatus | undefined
  path: Path
  from?: string
}

export type Outcome =
  | { verdict: 'accepted', reading: Reading }
  | { verdict: 'held', settled: Promise<Outcome> }
  | { verdict: 'status', event: StatusEvent }
  | { verdict: 'dropped', drop: DropEvent }
  /** Not an iotmesh topic: none of the gateway's business. */
  | { verdict: 'ignored' }

export interface IngestEvents {
  reading: [Reading]
  drop: [DropEvent]
  status: [StatusEvent]
  key: [{ deviceId: DeviceId, publicKey: PublicKey, source: string }]
  /** A frame now waits for its signer's key (it is later accepted or dropped as unknown_signer). */
  held: [{ deviceId: DeviceId, seq: number, topic: string }]
}

interface Held {
  frame: TelemetryFrame
  fleet: string
  source: MessageSource
  topic: string
  resolve: (outcome: Outcome) => void
}

export class Ingest extends EventEmitter<IngestEvents> {
  readonly fleet: string
  readonly counters: GatewayCounters = newCounters()
  readonly keys: KeyStore
  readonly #replay: ReplayGuard
  readonly #pen: HoldPen<Held>
  readonly #limits: FrameLimits
  readonly #now: () => number
  readonly #ed25519: Ed25519 | undefined
  #stopped = false

  constructor (init: IngestInit = {}, components: IngestComponents = {}) {
    super({ captureRejections: false })
    this.fleet = init.fleet ?? DEFAULT_FLEET
    this.keys = new KeyStore({ ...(init.roster === undefined ? {} : { roster: init.roster }), max: init.maxKeys ?? 100_000 })
    this.counters.keysLearned = this.keys.size
    this.#replay = createReplayGuard({ window: init.replayWindow ?? 1024, maxOrigins: init.maxOrigins ?? 65_536 })
    this.#pen = new HoldPen({
      clock: components.clock ?? systemClock,
      holdMs: init.holdMs ?? 3000,
      max: init.maxHeld ?? 1024,
      maxPerSigner: init.maxHeldPerSigner ?? 64
    })
    this.#limits = init.limits ?? DEFAULT_FRAME_LIMITS
    this.#now = components.now ?? Date.now
    this.#ed25519 = components.ed25519
  }

  /** Frames waiting for a key right now. */
  get heldCount (): number { return this.#pen.size }

  /** Decides what to do with one message. Synchronous unless the frame is held. */
  handle (topic: string, payload: Uint8Array, source: MessageSource): Outcome {
    const parsed = parseTopic(topic)
    const base = { topic, path: source.path, ...(source.from === undefined ? {} : { from: source.from }) }
    if (!parsed.ok) {
      if (parsed.why === 'not-iotmesh') return { verdict: 'ignored' }
      if (parsed.fleet !== undefined && parsed.fleet !== this.fleet) return this.reject('unknown_fleet', `the topic ${topic} is for fleet ${parsed.fleet}; this gateway serves ${this.fleet}`, base)
      return this.reject('bad_topic', `${JSON.stringify(topic)} is not iotmesh/<fleet>/<deviceId>/<telemetry|status|…>`, base)
    }
    const info = { ...base, deviceId: parsed.deviceId }
    if (parsed.fleet !== this.fleet) return this.reject('unknown_fleet', `the topic ${topic} is for fleet ${parsed.fleet}; this gateway serves ${this.fleet}`, info)
    if (parsed.kind === 'json') return this.reject('json_forbidden', `only the gateway publishes ${topic}`, info)
    if (parsed.kind === 'status') return this.#status(parsed.deviceId, payload, info, source)
    return this.#frame(parsed.deviceId, parsed.deviceTopic, payload, info, source)
  }

  /**
   * Learns a device key from any source (a retained status, DNS-SD, a link handshake, an
   * operator). Frames held for that device are verified at once.
   */
  learnKey (publicKey: PublicKey, options: { deviceId?: DeviceId, source?: string } = {}): LearnResult {
    const { result, id } = this.keys.learn(publicKey, options.deviceId)
    if (result === 'added') {
      this.counters.keysLearned++
      if (!this.#stopped) this.emit('key', { deviceId: id, publicKey, source: options.source ?? 'api' })
    }
    if (result === 'added' || result === 'known') this.#release(id)
    return result
  }

  /** Counts and reports a drop decided elsewhere (the broker's claim checks) or here. */
  reject (reason: DropReason, message: string, info: Omit<DropEvent, 'reason' | 'code' | 'message'> = {}, code: ErrorCode = DROP_REASONS[reason].code): Outcome {
    const drop: DropEvent = { reason, code, message, ...info }
    if (!this.#stopped) {
      this.counters.dropped[reason]++
      this.emit('drop', drop)
    }
    return { verdict: 'dropped', drop }
  }

  /** Drops every held frame and stops emitting. Idempotent. */
  stop (): void {
    if (this.#stopped) return
    this.#stopped = true
    for (const held of this.#pen.clear()) {
      held.resolve({ verdict: 'dropped', drop: { reason: 'unknown_signer', code: 'ERR_UNKNOWN_SIGNER', message: 'the gateway stopped while the frame waited for its key', deviceId: held.frame.origin, seq: held.frame.seq } })
    }
    this.removeAllListeners()
  }

  #status (deviceId: DeviceId, payload: Uint8Array, info: Omit<DropEvent, 'reason' | 'code' | 'message'>, source: MessageSource): Outcome {
    const parsed = parseStatus(payload, deviceId)
    if (!parsed.ok) return this.reject(parsed.reason, parsed.message, info)
    if (parsed.status?.state === 'online') {
      const learned = this.learnKey(parsed.status.publicKey, { deviceId, source: 'status' })
      if (learned === 'not-in-roster') return this.reject('not_in_roster', `device ${deviceId} is not in the roster`, info)
    }
    const event: StatusEvent = { deviceId, fleet: this.fleet, status: parsed.status, path: source.path, ...(source.from === undefined ? {} : { from: source.from }) }
    if (!this.#stopped) {
      this.counters.statuses++
      this.emit('status', event)
    }
    return { verdict: 'status', event }
  }

  #frame (deviceId: DeviceId, deviceTopic: string, payload: Uint8Array, info: Omit<DropEvent, 'reason' | 'code' | 'message'>, source: MessageSource): Outcome {
    if (payload.length > this.#limits.maxBytes) return this.reject('frame_too_large', `the frame is ${payload.length} bytes, over the ${this.#limits.maxBytes}-byte limit`, info)
    let frame: TelemetryFrame
    try {
      frame = decodeFrame(payload, this.#limits)
    } catch (err) {
      const code: ErrorCode = isMeshError(err) ? err.code : 'ERR_BAD_CBOR'
      const message = err instanceof Error ? err.message : String(err)
      return this.reject(code === 'ERR_FRAME_TOO_LARGE' ? 'frame_too_large' : 'malformed', message, info, code)
    }
    const frameInfo = { ...info, seq: frame.seq }
    if (frame.origin !== deviceId) return this.reject('topic_mismatch', `the frame is signed by ${frame.origin}, published under ${deviceId}`, { ...frameInfo, deviceId: frame.origin })
    if (frame.topic !== deviceTopic) return this.reject('topic_mismatch', `the frame signs the device topic ${JSON.stringify(frame.topic)}, published under ${JSON.stringify(deviceTopic)}`, frameInfo)
    const early = this.#replay.check(frame.origin, frame.seq)
    if (early !== 'ok') return this.#replayDrop(early, frame, frameInfo)
    if (!this.keys.allowed(frame.origin)) return this.reject('not_in_roster', `device ${frame.origin} is not in the roster`, frameInfo)
    const key = this.keys.get(frame.origin)
    if (key !== undefined) return this.#verify(frame, key, source, frameInfo)
    if (this.#stopped) return { verdict: 'dropped', drop: { reason: 'unknown_signer', code: 'ERR_UNKNOWN_SIGNER', message: 'the gateway is stopped', ...frameInfo } }
    let resolve: (outcome: Outcome) => void = () => {}
    const settled = new Promise<Outcome>((r) => { resolve = r })
    const topic = info.topic ?? ''
    const held = this.#pen.hold(frame.origin, { frame, fleet: this.fleet, source, topic, resolve }, (h) => {
      h.resolve(this.reject('unknown_signer', `no key for ${h.frame.origin} arrived within the hold time`, frameInfo))
    })
    if (!held) return this.reject('unknown_signer', `no key is known for ${frame.origin} and the holding pen is full`, frameInfo)
    this.counters.held++
    this.emit('held', { deviceId: frame.origin, seq: frame.seq, topic })
    return { verdict: 'held', settled }
  }

  #release (id: DeviceId): void {
    const key = this.keys.get(id)
    if (key === undefined) return
    for (const held of this.#pen.release(id)) {
      this.counters.released++
      const info = { topic: held.topic, deviceId: id, seq: held.frame.seq, path: held.source.path, ...(held.source.from === undefined ? {} : { from: held.source.from }) }
      held.resolve(this.#verify(held.frame, key, held.source, info))
    }
  }

  #verify (frame: TelemetryFrame, key: PublicKey, source: MessageSource, info: Omit<DropEvent, 'reason' | 'code' | 'message'>): Outcome {
    try {
      verifyFrame(frame, key, { checkId: false, ...(this.#ed25519 === undefined ? {} : { ed25519: this.#ed25519 }) })
    } catch (err) {
      return this.reject('bad_signature', err instanceof Error ? err.message : String(err), info)
    }
    // Only now is (origin, seq) recorded: a forged frame cannot burn a sequence number.
    const verdict = this.#replay.accept(frame.origin, frame.seq)
    if (verdict !== 'ok') return this.#replayDrop(verdict, frame, info)
    const reading: Reading = {
      origin: frame.origin,
      fleet: this.fleet,
      seq: frame.seq,
      time: frame.time,
      deviceTopic: frame.topic,
      records: frame.records,
      frame: frame.bytes,
      path: source.path,
      ...(source.from === undefined ? {} : { from: source.from }),
      receivedAt: this.#now()
    }
    if (!this.#stopped) {
      this.counters.accepted++
      this.counters.acceptedByPath[source.path]++
      this.emit('reading', reading)
    }
    return { verdict: 'accepted', reading }
  }

  #replayDrop (verdict: 'replay' | 'too-old', frame: TelemetryFrame, info: Omit<DropEvent, 'reason' | 'code' | 'message'>): Outcome {
    return verdict === 'replay'
      ? this.reject('duplicate', `${frame.origin}#${frame.seq} was already accepted`, info)
      : this.reject('too_old', `${frame.origin}#${frame.seq} is below the replay window (highest ${this.#replay.high(frame.origin) ?? '?'})`, info)
  }
}

export function createIngest (init: IngestInit = {}, components: IngestComponents = {}): Ingest {
  return new Ingest(init, components)
}
