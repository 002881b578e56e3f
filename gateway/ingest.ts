import { EventEmitter } from 'node:events'
import {
  DEFAULT_FLEET, Verifier, parseStatus, parseTopic, systemClock,
  type Admission, type Clock, type Command, type CommandResult, type DeviceId, type DeviceStatus, type Ed25519, type ErrorCode, type LearnResult,
  type PublicKey, type ReaderKey, type SenmlPack, type TelemetryFrame, type VerifierInit
} from '../shared/index.js'
import { ReadingDecryptor } from './decrypt.js'
import { DROP_REASONS, newCounters, type DropReason, type GatewayCounters, type Path } from './reasons.js'

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

/** The verifier's options (keys, roster, replay window, holding pen, limits: shared/verifier.ts) and the fleet served. */
export interface IngestInit extends VerifierInit {
  /** The fleet served; frames for any other are dropped (`unknown_fleet`). Default "default". */
  fleet?: string
  /** A reader key: encrypted readings are decrypted with it (gateway/decrypt.ts); without it they stay ciphertext. */
  readerKey?: ReaderKey
}

export interface IngestComponents {
  /** Timers of the holding pen, and the wall clock of `receivedAt`. */
  clock?: Clock
  ed25519?: Ed25519
}

export interface MessageSource {
  path: Path
  /** The MQTT client id (broker path) or the neighbour it came from (mesh path), when known. */
  from?: string
  /** The MQTT user name the client authenticated as (embedded broker, gateway/auth.ts), when it is a user: who may publish set/. */
  user?: string
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
  /** The readings; none for an encrypted frame this gateway cannot read (`encrypted` says so). */
  records: SenmlPack
  /** For an encrypted frame: whether the gateway's reader key opened it. */
  encrypted?: { readable: boolean }
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
  /** A command, result or set request that passed the gateway's checks (gateway/commands.ts). */
  | { verdict: 'command', command: Command }
  | { verdict: 'result', result: CommandResult }
  | { verdict: 'set', target: DeviceId, action: string }

export type CommandTopicKind = 'cmd' | 'result' | 'result-json' | 'set'

/** What the gateway does with the command topics (…/cmd/…, …/result/…, …/set/…): gateway/commands.ts. */
export interface CommandTopics {
  /** True when `id` is in the gateway's commanders file (it may read statuses to find its targets' keys: gateway/auth.ts). */
  isCommander (id: DeviceId): boolean
  handle (kind: CommandTopicKind, deviceId: DeviceId, deviceTopic: string, payload: Uint8Array, info: DropInfo, source: MessageSource): Outcome
}

export interface IngestEvents {
  reading: [Reading]
  drop: [DropEvent]
  status: [StatusEvent]
  key: [{ deviceId: DeviceId, publicKey: PublicKey, source: string }]
  /** A frame now waits for its signer's key (it is later accepted or dropped as unknown_signer). */
  held: [{ deviceId: DeviceId, seq: number, topic: string }]
  /**
   * Two different frames, both validly signed, for one (origin, seq): two devices hold the device's
   * key (one SD-card image on two boards). The first copy was kept; this one is dropped as
   * `cloned_identity` (ERR_CLONED_IDENTITY).
   */
  clone: [CloneEvent]
}

export interface CloneEvent {
  deviceId: DeviceId
  seq: number
  code: 'ERR_CLONED_IDENTITY'
  path: Path
  from?: string
}

interface Held {
  frame: TelemetryFrame
  source: MessageSource
  topic: string
  resolve: (outcome: Outcome) => void
}

export type DropInfo = Omit<DropEvent, 'reason' | 'code' | 'message'>

/** How each verifier refusal is counted at the gateway. */
const REFUSALS: Record<Extract<Admission, { verdict: 'refused' }>['refusal'], DropReason> = {
  malformed: 'malformed',
  'too-old': 'too_old',
  'not-in-roster': 'not_in_roster',
  'bad-signature': 'bad_signature',
  'unknown-signer': 'unknown_signer',
  cloned: 'cloned_identity'
}

/** Where every reading enters the gateway, from the broker and the mesh alike: verified, de-duplicated, counted and handed on once. */
export class Ingest extends EventEmitter<IngestEvents> {
  readonly fleet: string
  readonly counters: GatewayCounters = newCounters()
  /** Opens encrypted readings with the reader key, if any; counts what it could and could not read. */
  readonly decryptor: ReadingDecryptor
  /** The one verifier (shared/verifier.ts): key store, holding pen, replay window. */
  readonly verifier: Verifier<Held>
  /** The command topics' handler; without one they are refused as bad_topic. */
  commands: CommandTopics | undefined
  /**
   * The fleet's revocations (gateway/trust.ts, with a fleet file): a revoked device's frames and
   * online statuses are refused (`revoked`, ERR_REVOKED) by whatever path or session they come,
   * before any signature: another client's session, the mesh bridge (a delivery buffered before the
   * node heard), an external broker, a frame held for its key, a catch-up.
   */
  revoked: ((id: DeviceId) => { reason: string } | undefined) | undefined
  readonly #clock: Clock
  #stopped = false

  constructor (init: IngestInit = {}, components: IngestComponents = {}) {
    super({ captureRejections: false })
    this.fleet = init.fleet ?? DEFAULT_FLEET
    this.#clock = components.clock ?? systemClock
    this.verifier = new Verifier(init, { clock: this.#clock, ed25519: components.ed25519 })
    this.decryptor = new ReadingDecryptor(init.readerKey)
    this.counters.keysLearned = this.verifier.keys.size
  }

  /** The gateway's key store. */
  get keys (): Verifier['keys'] { return this.verifier.keys }

  /** Frames waiting for a key right now. */
  get heldCount (): number { return this.verifier.heldCount }

  /** Decides what to do with one message. Synchronous unless the frame is held. */
  handle (topic: string, payload: Uint8Array, source: MessageSource): Outcome {
    const parsed = parseTopic(topic)
    const base = { topic, path: source.path, from: source.from }
    if (!parsed.ok) {
      if (parsed.why === 'not-iotmesh') return { verdict: 'ignored' }
      if (parsed.fleet !== undefined && parsed.fleet !== this.fleet) return this.reject('unknown_fleet', `the topic ${topic} is for fleet ${parsed.fleet}; this gateway serves ${this.fleet}`, base)
      return this.reject('bad_topic', `${JSON.stringify(topic)} is not iotmesh/<fleet>/<deviceId>/<telemetry|status|…>`, base)
    }
    const info = { ...base, deviceId: parsed.deviceId }
    if (parsed.fleet !== this.fleet) return this.reject('unknown_fleet', `the topic ${topic} is for fleet ${parsed.fleet}; this gateway serves ${this.fleet}`, info)
    if (parsed.kind === 'json' || parsed.kind === 'value') return this.reject('json_forbidden', `only the gateway publishes ${topic}`, info)
    if (parsed.kind === 'status') return this.#status(parsed.deviceId, payload, info, source)
    if (parsed.kind !== 'frame') {
      if (this.commands === undefined) return this.reject('bad_topic', `${topic} is a command topic, and this ingest handles no commands`, info)
      return this.commands.handle(parsed.kind, parsed.deviceId, parsed.deviceTopic, payload, info, source)
    }
    return this.#frame(parsed.deviceId, parsed.deviceTopic, payload, info, source)
  }

  /**
   * Learns a device key from any source (a retained status, DNS-SD, a link handshake, an
   * operator). Frames held for that device are verified at once. A key the mesh relayed
   * (`source: 'mesh'`: a KEY message anyone could have sent) is a stranger's until its device
   * earns trust with verified frames; every other source vouches for the device, whose key and
   * replay window strangers then cannot evict (shared/verifier.ts).
   */
  learnKey (publicKey: PublicKey, options: { deviceId?: DeviceId, source?: string } = {}): LearnResult {
    const { result, id, released } = this.verifier.learnKey(publicKey, options.deviceId, options.source === 'mesh' ? 'gossip' : 'pin')
    if (result === 'added') {
      this.counters.keysLearned++
      if (!this.#stopped) this.emit('key', { deviceId: id, publicKey, source: options.source ?? 'api' })
    }
    for (const held of released) {
      this.counters.released++
      const outcome = this.#admit(held)
      if (outcome.verdict !== 'held') held.resolve(outcome) // else it waits in the pen again
    }
    return result
  }

  /** Counts and reports a drop decided elsewhere (the broker's claim checks) or here. */
  reject (reason: DropReason, message: string, info: DropInfo = {}, code: ErrorCode = DROP_REASONS[reason].code): Outcome {
    const drop: DropEvent = { reason, code, message, ...definedOnly(info) }
    if (!this.#stopped) {
      this.counters.dropped[reason]++
      this.emit('drop', drop)
    }
    return { verdict: 'dropped', drop }
  }

  /** Drops every held frame (the gateway is stopping); the ingest itself goes on. */
  clear (): void {
    for (const held of this.verifier.clear()) {
      held.resolve({ verdict: 'dropped', drop: { reason: 'unknown_signer', code: 'ERR_UNKNOWN_SIGNER', message: 'the gateway stopped while the frame waited for its key', deviceId: held.frame.origin, seq: held.frame.seq } })
    }
  }

  /** Drops every held frame and stops emitting, for good. Idempotent. */
  stop (): void {
    if (this.#stopped) return
    this.#stopped = true
    this.clear()
    this.removeAllListeners()
  }

  #status (deviceId: DeviceId, payload: Uint8Array, info: DropInfo, source: MessageSource): Outcome {
    const parsed = parseStatus(payload, deviceId)
    if (!parsed.ok) return this.reject(parsed.reason, parsed.message, info)
    if (parsed.status?.state === 'online') {
      const revocation = this.revoked?.(deviceId)
      if (revocation !== undefined) return this.reject('revoked', `device ${deviceId} was revoked by the fleet's owners (${revocation.reason}): its status is refused`, info)
      const learned = this.learnKey(parsed.status.publicKey, { deviceId, source: 'status' })
      if (learned === 'not-in-roster') return this.reject('not_in_roster', `device ${deviceId} is not in the roster`, info)
    }
    const event: StatusEvent = definedOnly({ deviceId, fleet: this.fleet, status: parsed.status, path: source.path, from: source.from })
    if (!this.#stopped) {
      this.counters.statuses++
      this.emit('status', event)
    }
    return { verdict: 'status', event }
  }

  #frame (deviceId: DeviceId, deviceTopic: string, payload: Uint8Array, info: DropInfo, source: MessageSource): Outcome {
    const limit = this.verifier.limits.maxBytes
    if (payload.length > limit) return this.reject('frame_too_large', `the frame is ${payload.length} bytes, over the ${limit}-byte limit`, info)
    const decoded = this.verifier.decode(payload)
    if (!decoded.ok) {
      const { code, message } = decoded.refusal
      return this.reject(code === 'ERR_FRAME_TOO_LARGE' ? 'frame_too_large' : 'malformed', message, info, code)
    }
    const frame = decoded.frame
    const frameInfo = { ...info, seq: frame.seq }
    if (frame.origin !== deviceId) return this.reject('topic_mismatch', `the frame is signed by ${frame.origin}, published under ${deviceId}`, { ...frameInfo, deviceId: frame.origin })
    if (frame.topic !== deviceTopic) {
      return this.reject('topic_mismatch', `the frame signs the device topic ${JSON.stringify(frame.topic)}, published under ${JSON.stringify(deviceTopic)}`, frameInfo)
    }
    if (this.#stopped) return { verdict: 'dropped', drop: { reason: 'unknown_signer', code: 'ERR_UNKNOWN_SIGNER', message: 'the gateway is stopped', ...definedOnly(frameInfo) } }
    let resolve: (outcome: Outcome) => void = () => {}
    const settled = new Promise<Outcome>((r) => { resolve = r })
    const outcome = this.#admit({ frame, source, topic: info.topic ?? '', resolve })
    return outcome.verdict === 'held' ? { verdict: 'held', settled } : outcome
  }

  /** One verifier decision on a frame bound to its topic, as the gateway counts and reports it. */
  #admit (held: Held): Outcome {
    const { frame, source, topic } = held
    const info: DropInfo = { topic, deviceId: frame.origin, seq: frame.seq, path: source.path, from: source.from }
    // Before the replay window and the signature: a revoked device's frame costs a lookup, whoever relays it.
    const revocation = this.revoked?.(frame.origin)
    if (revocation !== undefined) return this.reject('revoked', `${frame.origin}#${frame.seq} refused: the device was revoked by the fleet's owners (${revocation.reason})`, info)
    const admission = this.verifier.admit(frame, {
      item: held,
      onExpire: (h) => { h.resolve(this.reject('unknown_signer', `no key for ${h.frame.origin} arrived within the hold time`, info)) }
    })
    switch (admission.verdict) {
      case 'accepted': return this.#accept(frame, source)
      case 'duplicate': return this.reject('duplicate', `${frame.origin}#${frame.seq} was already accepted`, info)
      case 'held':
        this.counters.held++
        this.emit('held', { deviceId: frame.origin, seq: frame.seq, topic })
        return { verdict: 'held', settled: new Promise(() => {}) } // settled through `held.resolve`
      case 'refused':
        if (admission.refusal === 'cloned' && !this.#stopped) {
          this.emit('clone', definedOnly({ deviceId: frame.origin, seq: frame.seq, code: 'ERR_CLONED_IDENTITY' as const, path: source.path, from: source.from }))
        }
        return this.reject(REFUSALS[admission.refusal], admission.message, info, admission.refusal === 'bad-signature' ? 'ERR_BAD_SIGNATURE' : admission.code)
    }
  }

  #accept (frame: TelemetryFrame, source: MessageSource): Outcome {
    const opened = this.decryptor.open(frame)
    const reading: Reading = definedOnly({
      origin: frame.origin,
      fleet: this.fleet,
      seq: frame.seq,
      time: frame.time,
      deviceTopic: frame.topic,
      records: opened.records,
      encrypted: opened.encrypted ? { readable: opened.readable } : undefined,
      frame: frame.bytes,
      path: source.path,
      from: source.from,
      receivedAt: this.#clock.wall()
    })
    if (!this.#stopped) {
      this.counters.accepted++
      this.counters.acceptedByPath[source.path]++
      this.emit('reading', reading)
    }
    return { verdict: 'accepted', reading }
  }
}

/** The object without its undefined properties (events and drops carry only what is known). */
function definedOnly<T extends object> (value: T): T {
  for (const key of Object.keys(value) as Array<keyof T>) if (value[key] === undefined) delete value[key]
  return value
}

/** An {@link Ingest} with its settings and components. */
export function createIngest (init: IngestInit = {}, components: IngestComponents = {}): Ingest {
  return new Ingest(init, components)
}
