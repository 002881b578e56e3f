import { randomBytes } from 'node:crypto'
import { connect, type IClientOptions, type MqttClient } from 'mqtt'
import { frameTopic, meshError, topicFilters } from '../shared/index.js'
import type { Ingest, Outcome } from './ingest.js'

/**
 * The gateway as a client of any MQTT 3.1.1/5 broker (Mosquitto, EMQX, HiveMQ, a cloud broker):
 * it subscribes to the fleet's frames and statuses, runs each through the same ingest pipeline
 * as the embedded broker, and publishes the verified readings on …/json.
 *
 * Mesh readings the gateway publishes (as their exact frames) come back on its own telemetry
 * subscription; it recognises them and does not ingest them twice.
 *
 * Here the gateway authorizes nothing on the broker: every client of that broker still receives
 * whatever was published, verified or not. Restricting who may publish where (each device to
 * iotmesh/<fleet>/<its id>/#, only the gateway to …/json) is the operator's job, in that broker's
 * ACLs. Subscribers that need certainty verify frames themselves (any COSE library and the pk
 * from the retained status suffice) or read …/json, which only carries what the gateway verified.
 */

export interface ExternalInit {
  /** mqtt://host:port, mqtts://…, ws://…, wss://… */
  url: string
  /** MQTT client id of the gateway. Default "iotmesh-gw-<random>". */
  clientId?: string
  username?: string
  password?: string
  /** MQTT protocol version. Default 4 (3.1.1); 5 for MQTT 5. */
  protocolVersion?: 4 | 5
  /** Extra device topics to subscribe to besides telemetry (e.g. "events/#"). */
  deviceTopics?: string[]
  /** Extra topic filters to subscribe to (the gateway adds the results of its own commands). */
  filters?: string[]
  /** How long `start()` waits for the first CONNACK (ms). Default 10,000. */
  startTimeoutMs?: number
  /** Anything else for mqtt.js (TLS files, keepalive, reconnectPeriod). */
  mqtt?: IClientOptions
}

const MAX_ECHOES = 1024

function echoKey (topic: string, payload: Buffer): string {
  return `${topic} ${payload.toString('base64')}`
}

export class ExternalBrokerLink {
  readonly #init: ExternalInit
  readonly #ingest: Ingest
  #client: MqttClient | undefined
  /** What the gateway published on topics it subscribes to (mesh frames): their echo is not ingested again. */
  readonly #echoes = new Set<string>()
  #starting: Promise<void> | undefined
  #stopping: Promise<void> | undefined

  /** Takes a message off the ingest (true: taken), e.g. the fleet's revocations (gateway.ts). */
  readonly #intercept: ((topic: string, payload: Buffer) => boolean) | undefined

  constructor (init: ExternalInit, ingest: Ingest, intercept?: (topic: string, payload: Buffer) => boolean) {
    this.#init = init
    this.#ingest = ingest
    this.#intercept = intercept
  }

  get connected (): boolean { return this.#client?.connected ?? false }

  async start (options: { signal?: AbortSignal } = {}): Promise<void> {
    this.#starting ??= this.#start(options.signal).catch(async (err: unknown) => {
      await this.#client?.endAsync(true)
      this.#client = undefined
      this.#starting = undefined
      throw err
    })
    await this.#starting
  }

  async #start (signal: AbortSignal | undefined): Promise<void> {
    const init = this.#init
    const fleet = this.#ingest.fleet
    const client = connect(init.url, {
      clientId: init.clientId ?? `iotmesh-gw-${randomBytes(6).toString('hex')}`,
      protocolVersion: init.protocolVersion ?? 4,
      ...(init.username === undefined ? {} : { username: init.username }),
      ...(init.password === undefined ? {} : { password: init.password }),
      reconnectPeriod: 1000,
      ...init.mqtt
    })
    this.#client = client
    let lastError: Error | undefined
    client.on('error', (err) => { lastError = err }) // connection errors: mqtt.js reconnects; the last one is said if the start gives up
    client.on('message', (topic, payload) => { this.#onMessage(topic, payload) })
    const timeoutMs = init.startTimeoutMs ?? 10_000
    // A timer of its own, not AbortSignal.any([AbortSignal.timeout(ms), signal]): in Node 20 nothing holds that timeout
    // signal strongly, so a garbage collection before it fires loses it and the start waited for ever (nodejs/node#57736;
    // `iotmesh gateway --broker URL` of a broker that never answers said nothing, and never gave up).
    await new Promise<void>((resolve, reject) => {
      const settle = (err?: Error): void => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        client.off('connect', onConnect)
        if (err === undefined) resolve()
        else reject(err)
      }
      const onAbort = (): void => { settle(meshError('ERR_ABORTED', `connecting to the broker ${init.url} was aborted`, { cause: signal?.reason })) }
      const onConnect = (): void => { settle() }
      const timer = setTimeout(() => {
        const why = lastError === undefined ? '' : ` (${(lastError as NodeJS.ErrnoException).code ?? 'last error'}: ${lastError.message})`
        settle(meshError('ERR_BAD_ARGUMENT', `no MQTT broker answered at ${init.url} within ${timeoutMs} ms${why}: check the broker URL and that the broker runs`))
      }, timeoutMs)
      if (signal?.aborted === true) return onAbort()
      signal?.addEventListener('abort', onAbort, { once: true })
      client.once('connect', onConnect)
    })
    // Statuses first: retained ones arrive on subscribe and teach the keys (held frames wait meanwhile).
    const deviceTopics = (init.deviceTopics ?? []).map((t) => frameTopic(fleet, '+', t))
    await client.subscribeAsync([topicFilters.status(fleet), topicFilters.telemetry(fleet), ...deviceTopics, ...(init.filters ?? [])], { qos: 1 })
  }

  #onMessage (topic: string, payload: Buffer): void {
    if (this.#echoes.delete(echoKey(topic, payload))) return
    if (this.#intercept?.(topic, payload) === true) return
    const outcome: Outcome = this.#ingest.handle(topic, payload, { path: 'broker' })
    if (outcome.verdict === 'held') outcome.settled.catch(() => {})
  }

  /** Publishes what the gateway verified (…/json; QoS 0: a live view, not a queue) and its commands (QoS 1). */
  publish (topic: string, payload: string | Buffer, options: { retain?: boolean, qos?: 0 | 1 } = {}): void {
    if (this.#client === undefined) return
    if (typeof payload !== 'string') {
      // A bridged mesh frame comes back to us (MQTT 3.1.1 has no "no local"): remember it, bounded.
      this.#echoes.add(echoKey(topic, payload))
      if (this.#echoes.size > MAX_ECHOES) this.#echoes.delete(this.#echoes.values().next().value as string)
    }
    this.#client.publish(topic, payload, { qos: options.qos ?? 0, retain: options.retain ?? false })
  }

  async stop (): Promise<void> {
    if (this.#starting === undefined) return
    this.#stopping ??= this.#starting.then(async () => { await this.#client?.endAsync() }, () => {})
    await this.#stopping
  }
}
