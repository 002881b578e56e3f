import { connect as mqttConnect, type IClientOptions, type MqttClient } from 'mqtt'
import {
  TOKEN_DEFAULTS, configTopic, decodeFrame, deviceLastWill, fleetFilesTopic, frameTopic, meshError, offlineStatus, onlineStatus, parseTopic, resultTopic, signDeviceToken, statusTopic,
  topicFilters,
  type Clock, type DeviceId, type KeyPair, type PublicKey, type Random, type TimerHandle
} from '../../../shared/index.js'
import { Backoff } from '../../../mesh/index.js'
import type { OutboxEntry } from '../../outbox/types.js'
import type { DeviceBrokerInit, MqttConnect, PathSender, SendOutcome } from '../types.js'

/**
 * The broker delivery path: MQTT 3.1.1 (or 5) through mqtt.js, in the gateway's topic layout
 * (gateway/topics.ts, gateway/status.ts):
 * - CONNECT carries the last will: retained {"state":"offline"} on iotmesh/<fleet>/<id>/status,
 *   which the broker publishes only if the connection dies without a DISCONNECT (MQTT 3.1.1 §3.1.2.5);
 * - on CONNACK the device publishes its retained online status (pk, name) and waits for the
 *   PUBACK: the path is up once the broker knows the key that verifies the frames to come;
 * - each frame goes to iotmesh/<fleet>/<id>/<tp> (…/telemetry) at QoS 1 and counts as delivered
 *   on its PUBACK (MQTT 3.1.1 §4.3.2); an MQTT 5 PUBACK with a failure reason code is a refusal.
 *
 * Reconnection is ours, not mqtt.js's: its `reconnectPeriod` retries at a fixed period, and its
 * outgoing store would resend the frames in flight before our status on the new connection (a
 * restarted gateway would hold them, unverifiable). Each attempt is a fresh client with
 * `reconnectPeriod: 0`; a closed one is ended and forgotten, its in-flight sends fail, and the
 * outbox (oldest first) sends them again after the status. Attempts follow an exponential backoff
 * with jitter (mesh's Backoff, on the injected clock and randomness).
 *
 * Commands (when `onCommand` is set): after its status, the device subscribes to
 * iotmesh/<fleet>/<id>/cmd/# at QoS 1; each command is judged by `onCommand` (the device's
 * executor, which shares its journal with the mesh path: a command that comes both ways runs
 * once) and its signed result, if one is owed, goes to iotmesh/<fleet>/<id>/result/<issuer>.
 *
 * stop() is the clean goodbye: retained {"state":"offline"}, then DISCONNECT, so the will is not
 * published (it is for crashes).
 *
 * Authentication (`auth`, default 'auto'): with no password configured the device presents its
 * own key, as the iotmesh gateway's broker expects (gateway/auth.ts): user name = its id, password
 * = a device token (shared/token.ts) made afresh for every CONNECT, so a reconnect always carries
 * a valid one. The gateway's clock is the reference: a device whose clock is off by more than the
 * gateway's skew (300 s by default) is refused with CONNACK 4, which an honest token gets for no
 * other reason: the device reports ERR_CLOCK_SKEW naming its clock (at once, before connecting,
 * when its clock is before 2025: a Raspberry Pi without real-time clock or NTP at boot) and keeps
 * retrying with backoff (NTP may set the clock meanwhile). CONNACK 5 (not in the roster, another
 * fleet, or a broker that wants a password) is ERR_NOT_AUTHORIZED.
 */

/** Before this wall time a device's clock is surely unset (no RTC, no NTP yet). 2025-01-01T00:00:00Z. */
export const CLOCK_FLOOR_MS = 1_735_689_600_000
export interface BrokerPathInit extends DeviceBrokerInit {
  fleet: string
  deviceId: DeviceId
  publicKey: PublicKey
  /** The device key: it signs the token of each CONNECT. */
  keys?: KeyPair
  name: string
  /** Its enrollment credential, carried in its retained status (`cred`, shared/status.ts). */
  credential?: Uint8Array
  /** Takes a revocation retained on iotmesh/<fleet>/$revocations/+ (gateway/revocations.ts); with it, the device subscribes there. */
  onRevocation?: (bytes: Uint8Array) => void
  /** Takes the fleet files retained on iotmesh/<fleet>/$fleet/files (gateway/gateway.ts, device/broker-fleet-files.ts); with it, the device subscribes there. */
  onFleetFiles?: (payload: Uint8Array) => void
  /** PUBLISHes awaiting their PUBACK at once. */
  window: number
  /** Judges a command that came on iotmesh/<fleet>/<id>/cmd/…; returns the signed result owed, if any. */
  onCommand?: (signed: Uint8Array) => Uint8Array | undefined
  /** The issuer a signed result answers (its topic's last level). */
  resultIssuer?: (signed: Uint8Array) => DeviceId | undefined
  /** Owner-signed configurations: the targets (shared/fleet-config.ts) whose retained iotmesh/<fleet>/$config/<target> it reads, and what takes them. */
  configs?: { targets: readonly string[], take: (signed: Uint8Array) => void }
}

export interface BrokerPathComponents {
  clock: Clock
  random: Random
  connect?: MqttConnect
  onWarning?: (error: Error) => void
}

export class BrokerPath implements PathSender {
  readonly path = 'broker' as const
  readonly window: number
  readonly #init: BrokerPathInit
  readonly #components: BrokerPathComponents
  readonly #backoff: Backoff
  readonly #listeners: Array<(up: boolean, reason?: string) => void> = []
  readonly #inflight = new Map<number, (err: Error) => void>()
  #client: MqttClient | undefined
  #timer: TimerHandle | undefined
  #up = false
  #started = false
  #stopped = false
  #lastError: Error | undefined
  #lastWarning = ''
  #clockWarned = false
  #sends = 0
  /** Connection attempts so far. */
  attempts = 0

  constructor (init: BrokerPathInit, components: BrokerPathComponents) {
    this.#init = init
    this.#components = components
    this.window = init.window
    this.#backoff = new Backoff({ initial: 500, max: 30_000, ...init.reconnect }, components.random)
  }

  get up (): boolean { return this.#up }

  onChange (listener: (up: boolean, reason?: string) => void): void {
    this.#listeners.push(listener)
  }

  /** Starts connecting; resolves at once (the path comes up when the broker answers). */
  start (): void {
    if (this.#started || this.#stopped) return
    this.#started = true
    this.#connect()
  }

  async send (entry: OutboxEntry): Promise<SendOutcome> {
    const client = this.#client
    if (!this.#up || client === undefined) throw meshError('ERR_LINK_CLOSED', `not connected to ${this.#init.url}: the frame waits in the outbox`)
    let deviceTopic: string
    try {
      deviceTopic = decodeFrame(entry.frame).topic
    } catch (err) {
      this.#components.onWarning?.(err as Error)
      return 'refused' // a frame we cannot read (it never should happen): do not let it block the rest
    }
    const topic = frameTopic(this.#init.fleet, this.#init.deviceId, deviceTopic)
    const payload = Buffer.from(entry.frame.buffer, entry.frame.byteOffset, entry.frame.byteLength)
    return await new Promise<SendOutcome>((resolve, reject) => {
      const key = ++this.#sends
      this.#inflight.set(key, reject)
      client.publish(topic, payload, { qos: 1 }, (err) => {
        if (!this.#inflight.delete(key)) return // already failed when the connection closed
        if (err === undefined || err === null) resolve('delivered')
        else if (typeof (err as { code?: unknown }).code === 'number') resolve('refused') // MQTT 5 PUBACK reason code ≥ 0x80
        else reject(err)
      })
    })
  }

  /** The clean goodbye (offline status, DISCONNECT), each step bounded by `timeoutMs`. Idempotent. */
  async stop (timeoutMs: number): Promise<void> {
    if (this.#stopped) return
    const { client, wasUp } = this.#release()
    if (client === undefined) return
    if (wasUp && client.connected) {
      const { fleet, deviceId } = this.#init
      await this.#bounded(client.publishAsync(statusTopic(fleet, deviceId), offlineStatus(), { qos: 1, retain: true }), timeoutMs).catch(() => {})
      const ended = await this.#bounded(client.endAsync(false), timeoutMs).then(() => true, () => false)
      if (!ended) client.end(true)
    } else {
      client.end(true)
    }
    this.#failInflight(meshError('ERR_ABORTED', 'the device stopped'))
  }

  /** Marks the path stopped, forgets listeners and the retry timer, and hands back the client. */
  #release (): { client: MqttClient | undefined, wasUp: boolean } {
    this.#stopped = true
    this.#listeners.length = 0
    if (this.#timer !== undefined) this.#components.clock.clearTimeout(this.#timer)
    this.#timer = undefined
    const client = this.#client
    this.#client = undefined
    const wasUp = this.#up
    this.#up = false
    return { client, wasUp }
  }

  /** Drops the connection as a crash would: no offline status, no DISCONNECT, so the broker publishes the last will. */
  destroy (): void {
    if (this.#stopped) return
    const { client } = this.#release()
    client?.end(true) // forced: the socket is destroyed without a DISCONNECT packet
    this.#failInflight(meshError('ERR_ABORTED', 'the device crashed'))
  }

  #connect (): void {
    if (this.#stopped) return
    this.attempts++
    const { fleet, deviceId } = this.#init
    const options: IClientOptions = {
      clientId: this.#init.clientId ?? `iotmesh-${deviceId}`,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: this.#init.connectTimeout ?? 10_000,
      keepalive: this.#init.keepalive ?? 30,
      protocolVersion: this.#init.protocolVersion ?? 4,
      will: deviceLastWill(fleet, deviceId),
      queueQoSZero: false,
      resubscribe: false,
      ...this.#credentials(this.#init.clientId ?? `iotmesh-${deviceId}`)
    }
    const client = (this.#components.connect ?? mqttConnect)(this.#init.url, options)
    this.#client = client
    // No Nagle (RFC 896) on the device's side either: a PUBACK followed by a command's result would wait for the broker's delayed ACK.
    client.once('connect', () => { (client.stream as { setNoDelay?: (on: boolean) => void } | undefined)?.setNoDelay?.(true) })
    client.on('error', (err) => { this.#onError(err) })
    client.once('connect', () => { void this.#announce(client) })
    client.once('close', () => { this.#onClose(client) })
  }

  /** How this device authenticates: 'token', 'password' or 'none' ('auto' resolved). */
  get auth (): 'token' | 'password' | 'none' {
    const auth = this.#init.auth ?? 'auto'
    if (auth !== 'auto') return auth
    return this.#init.password !== undefined ? 'password' : this.#init.keys !== undefined ? 'token' : 'none'
  }

  /** The CONNECT's user name and password: a fresh token for every attempt (it is good for one CONNECT). */
  #credentials (clientId: string): { username?: string, password?: string } {
    const auth = this.auth
    if (auth === 'password') {
      return { ...(this.#init.username === undefined ? {} : { username: this.#init.username }), ...(this.#init.password === undefined ? {} : { password: this.#init.password }) }
    }
    if (auth === 'none') return {}
    const keys = this.#init.keys
    if (keys === undefined) throw meshError('ERR_BAD_ARGUMENT', 'broker auth "token" needs the device key')
    const now = this.#components.clock.wall()
    if (now < CLOCK_FLOOR_MS && !this.#clockWarned) {
      this.#clockWarned = true
      this.#components.onWarning?.(meshError('ERR_CLOCK_SKEW', `this device's clock reads ${new Date(now).toISOString()}: it has no real-time clock, or NTP has not set it yet. The gateway refuses device tokens more than ${TOKEN_DEFAULTS.maxSkewSeconds} s off its own clock; set the clock (NTP, or fake-hwclock) and the device connects on its next attempt`))
    }
    const password = signDeviceToken({ keys, clientId, fleet: this.#init.fleet, now, cti: this.#components.random.bytes(8), lifetimeSeconds: this.#init.tokenLifetime ?? TOKEN_DEFAULTS.lifetimeSeconds })
    return { username: keys.id, password }
  }

  /** Online status first: frames follow only once the broker has the key that verifies them. */
  async #announce (client: MqttClient): Promise<void> {
    const { fleet, deviceId, publicKey, name, credential } = this.#init
    try {
      await client.publishAsync(statusTopic(fleet, deviceId), onlineStatus({ publicKey, name, credential }), { qos: 1, retain: true })
    } catch {
      return // the connection closed meanwhile: #onClose takes it from there
    }
    if (this.#client !== client || this.#stopped) return
    if (this.#init.onCommand !== undefined) this.#takeCommands(client)
    if (this.#init.configs !== undefined) this.#takeConfigs(client, this.#init.configs)
    if (this.#init.onRevocation !== undefined) this.#takeRevocations(client, this.#init.onRevocation)
    if (this.#init.onFleetFiles !== undefined) this.#takeFleetFiles(client, this.#init.onFleetFiles)
    this.#backoff.reset()
    this.#lastError = undefined
    this.#setUp(true)
  }

  /** Subscribes to this device's commands and answers each on its issuer's result topic (QoS 1). */
  #takeCommands (client: MqttClient): void {
    const { fleet, deviceId, onCommand, resultIssuer } = this.#init
    client.on('message', (topic, payload) => {
      const parsed = parseTopic(topic)
      if (!parsed.ok || parsed.kind !== 'cmd' || parsed.deviceId !== deviceId || onCommand === undefined) return
      const result = onCommand(new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength))
      const issuer = result === undefined ? undefined : resultIssuer?.(result)
      if (result === undefined || issuer === undefined) return
      client.publish(resultTopic(fleet, deviceId, issuer), Buffer.from(result), { qos: 1 }, (err) => {
        if (err !== undefined && err !== null) this.#components.onWarning?.(err)
      })
    })
    client.subscribe(topicFilters.commands(fleet, deviceId), { qos: 1 }, (err) => {
      if (err !== undefined && err !== null) this.#components.onWarning?.(meshError('ERR_NOT_AUTHORIZED', `cannot subscribe to this device's commands: ${err.message}`))
    })
  }

  /** Subscribes to the retained configurations of this device's targets (the broker hands the current ones at once). */
  #takeConfigs (client: MqttClient, configs: NonNullable<BrokerPathInit['configs']>): void {
    const topics = configs.targets.map((t) => configTopic(this.#init.fleet, t))
    client.on('message', (topic, payload) => {
      if (topics.includes(topic) && payload.length > 0) configs.take(new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength))
    })
    client.subscribe(topics, { qos: 1 }, (err) => {
      if (err !== undefined && err !== null) this.#components.onWarning?.(meshError('ERR_NOT_AUTHORIZED', `cannot subscribe to this device's configurations: ${err.message}`))
    })
  }

  /** The fleet's revocations, retained at the gateway's broker: each one (verified by `take`) on every (re)connect. */
  #takeRevocations (client: MqttClient, take: (bytes: Uint8Array) => void): void {
    const prefix = `iotmesh/${this.#init.fleet}/$revocations/`
    client.on('message', (topic, payload) => {
      if (topic.startsWith(prefix) && payload.length > 0) take(new Uint8Array(payload))
    })
    client.subscribe(`${prefix}+`, { qos: 1 }, (err) => {
      if (err !== undefined && err !== null) this.#components.onWarning?.(meshError('ERR_NOT_AUTHORIZED', `cannot subscribe to the fleet's revocations: ${err.message}`))
    })
  }

  /** The fleet files the gateway retains (one message, the chain it holds): handed to `take` on every (re)connect and each change. */
  #takeFleetFiles (client: MqttClient, take: (payload: Uint8Array) => void): void {
    const topic = fleetFilesTopic(this.#init.fleet)
    client.on('message', (t, payload) => {
      if (t === topic && payload.length > 0) take(new Uint8Array(payload))
    })
    client.subscribe(topic, { qos: 1 }, (err) => {
      if (err !== undefined && err !== null) this.#components.onWarning?.(meshError('ERR_NOT_AUTHORIZED', `cannot subscribe to the fleet's fleet files: ${err.message}`))
    })
  }

  #onClose (client: MqttClient): void {
    if (this.#client !== client) return
    this.#client = undefined
    client.end(true) // never reconnects, never resends its store
    const reason = this.#lastError?.message ?? 'the connection closed'
    this.#failInflight(meshError('ERR_LINK_CLOSED', `the connection to ${this.#init.url} closed (${reason}); the frame waits in the outbox`))
    if (this.#up) this.#setUp(false, reason)
    if (this.#stopped) return
    this.#timer = this.#components.clock.setTimeout(() => {
      this.#timer = undefined
      this.#connect()
    }, this.#backoff.next())
  }

  #onError (err: Error): void {
    this.#lastError = err
    // A refusal (bad credentials, not authorized) is worth telling once; a broker that is down is just down.
    const code = (err as { code?: unknown }).code
    if (typeof code === 'number' && err.message !== this.#lastWarning) {
      this.#lastWarning = err.message
      if (this.auth === 'token' && (code === 4 || code === 5)) return this.#tokenRefused(code, err)
      this.#components.onWarning?.(meshError('ERR_LINK_CLOSED', `broker ${this.#init.url}: ${err.message}`, { cause: err }))
    }
    // A host name that does not resolve is a mistake in --broker (or no DNS yet), not an outage: say so once.
    if ((code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_NONAME') && err.message !== this.#lastWarning) {
      this.#lastWarning = err.message
      const host = (err as { hostname?: string }).hostname ?? this.#init.url
      this.#components.onWarning?.(meshError('ERR_LINK_CLOSED', `the broker host ${host} (${this.#init.url}) does not resolve (${code}): check --broker, or the DNS of this machine; retrying`, { cause: err }))
    }
  }

  /** CONNACK 4 or 5 to a token (MQTT 3.1.1 §3.2.2.3): the gateway's log names the exact reason; say what the device can know. */
  #tokenRefused (code: 4 | 5, err: Error): void {
    const now = this.#components.clock.wall()
    const clock = `this device's clock reads ${new Date(now).toISOString()}${now < CLOCK_FLOOR_MS ? ' (never set: no real-time clock, no NTP yet)' : ''}`
    const warning = code === 4
      ? meshError('ERR_CLOCK_SKEW', `broker ${this.#init.url} refused the device token as a bad password (CONNACK 4): the gateway refuses an honest token so only when the device clock is more than its skew (${TOKEN_DEFAULTS.maxSkewSeconds} s by default) from its own; ${clock}. Set the clock (NTP); retrying with backoff`, { cause: err })
      : meshError('ERR_NOT_AUTHORIZED', `broker ${this.#init.url} refused the device token (CONNACK 5, not authorized): in closed mode the gateway's roster lacks ${this.#init.deviceId}, or the gateway serves another fleet than ${this.#init.fleet}, or the broker is not an iotmesh gateway and wants a user name and password (--username, --password); the gateway's log says which. Retrying with backoff`, { cause: err })
    this.#components.onWarning?.(warning)
  }

  #setUp (up: boolean, reason?: string): void {
    this.#up = up
    for (const listener of this.#listeners) listener(up, reason)
  }

  #failInflight (err: Error): void {
    const rejects = [...this.#inflight.values()]
    this.#inflight.clear()
    for (const reject of rejects) reject(err)
  }

  async #bounded<T> (promise: Promise<T>, ms: number): Promise<T> {
    let timer: TimerHandle | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = this.#components.clock.setTimeout(() => { reject(meshError('ERR_ABORTED', `no answer from ${this.#init.url} within ${ms} ms`)) }, ms)
    })
    try {
      return await Promise.race([promise, timeout])
    } finally {
      this.#components.clock.clearTimeout(timer)
    }
  }
}
