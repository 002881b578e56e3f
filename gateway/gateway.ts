import { EventEmitter } from 'node:events'
import type { AedesPublishPacket } from 'aedes'
import { meshError, type DeviceId, type PublicKey } from '../shared/index.js'
import { LINKS_TOPIC, type MeshNode, type MeshNodeInit } from '../mesh/index.js'
import { createPublishGuard, type RefusalPolicy } from './authorize.js'
import { MeshBridge, createGatewayNode, type BridgeInit, type GatewayNodeComponents } from './bridge.js'
import { EmbeddedBroker, type BrokerInit } from './broker.js'
import { systemClock } from './clock.js'
import { dashboardHandler } from './dashboard.js'
import { DeviceRegistry, type DeviceRegistryInit } from './devices.js'
import { ExternalBrokerLink, type ExternalInit } from './external.js'
import { Ingest, type DropEvent, type IngestComponents, type IngestInit, type MessageSource, type Outcome, type Reading, type StatusEvent } from './ingest.js'
import { GatewayHttp, type HttpInit } from './http.js'
import { frameToSenmlJsonText } from './json.js'
import { LiveFeed, type LiveInit } from './live.js'
import { createMetrics } from './metrics.js'
import type { Registry } from 'prom-client'
import type { LearnResult } from './keys.js'
import type { GatewayCounters } from './reasons.js'
import { frameTopic, jsonTopic, topicFilters } from './topics.js'
import { Topology, type TopologyInit, type TopologySnapshot } from './topology.js'

/**
 * The gateway: an MQTT broker (embedded Aedes, or any external broker it joins as a client)
 * whose fleet traffic passes one ingest pipeline, a device registry fed by it, and the SenML
 * JSON mirror of every verified reading. With `mesh`, it is also a mesh member: the bridge
 * (gateway/bridge.ts) feeds verified mesh readings to the same pipeline with
 * `submit(topic, bytes, { path: 'mesh' })` and injects broker readings into the mesh. With
 * `http`, it serves the API, `/metrics`, the live event stream and the dashboard (gateway/http.ts).
 */

export interface GatewayInit extends IngestInit, Omit<BrokerInit, 'aedes'>, BridgeInit {
  /**
   * Omitted: the embedded Aedes broker. A URL (mqtt://host:port, mqtts://, ws://, wss://) or an
   * ExternalInit: join that broker as a client instead; then only the gateway authorizes, and the
   * external broker's ACLs are the operator's job (gateway/external.ts).
   */
  broker?: string | ExternalInit
  /** Embedded broker: what to do with a refused publish (gateway/authorize.ts). Default 'drop'. */
  onRefusal?: RefusalPolicy
  /** Publish verified readings as SenML JSON on …/json. Default true. */
  json?: boolean
  /** Device registry bounds. */
  registry?: DeviceRegistryInit
  /** Extra Aedes options for the embedded broker. */
  aedes?: BrokerInit['aedes']
  /** Serve /metrics, the API, the live stream and the dashboard over HTTP (gateway/http.ts). Default: no HTTP server. */
  http?: HttpInit
  /** Serve the dashboard at `/` (with `http`). Default true. */
  dashboard?: boolean
  /**
   * Join the mesh as a member and bridge it to MQTT (gateway/bridge.ts): a MeshNode of the
   * gateway's fleet and roster, with the gateway's own key pair (`components.keys`). Default
   * false: a plain broker. `{}` joins with the mesh defaults (mDNS on, TCP links).
   */
  mesh?: MeshNodeInit | false
  /** The mesh topology view (announcement lifetime). */
  topology?: TopologyInit
  /** Batching and bounds of the live event stream. */
  live?: LiveInit
}

/** Dependencies: the ingest's clocks and Ed25519, and the mesh node's (gateway/bridge.ts). */
export interface GatewayComponents extends IngestComponents, GatewayNodeComponents {}

export interface GatewayEvents {
  reading: [Reading]
  drop: [DropEvent]
  status: [StatusEvent]
  key: [{ deviceId: DeviceId, publicKey: PublicKey, source: string }]
  held: [{ deviceId: DeviceId, seq: number, topic: string }]
}

export interface GatewayPorts {
  /** Embedded broker: MQTT (or MQTT over TLS). */
  mqtt?: number
  /** Embedded broker: MQTT over WebSocket (or WSS). */
  ws?: number
  /** The HTTP API and /metrics, when enabled. */
  http?: number
  /** The mesh node's link listener, when the gateway is a mesh member. */
  mesh?: number
}

export class Gateway extends EventEmitter<GatewayEvents> {
  readonly fleet: string
  readonly ingest: Ingest
  readonly devices: DeviceRegistry
  readonly mode: 'embedded' | 'external'
  /** Prometheus metrics of this gateway (its own registry). */
  readonly metrics: Registry
  /** The HTTP server, when `http` was given; `http.use(handler)` adds routes. */
  readonly http: GatewayHttp | undefined
  /** The gateway's mesh node, when `mesh` was given. */
  readonly mesh: MeshNode | undefined
  /** The mesh ⇄ MQTT bridge, when `mesh` was given. */
  readonly bridge: MeshBridge | undefined
  /** The mesh as announced on `mesh/links`, plus the gateway's own links. */
  readonly topology: Topology
  /** The live event stream (`/api/events`), with `http`. */
  readonly live: LiveFeed | undefined
  readonly #init: GatewayInit
  readonly #now: () => number
  readonly #broker: EmbeddedBroker | undefined
  readonly #external: ExternalBrokerLink | undefined
  readonly #guardInstall: ((aedes: { publish: unknown }) => void) | undefined
  #state: 'new' | 'starting' | 'started' | 'stopping' | 'stopped' = 'new'
  #starting: Promise<void> | undefined
  #stopping: Promise<void> | undefined

  constructor (init: GatewayInit = {}, components: GatewayComponents = {}) {
    super({ captureRejections: false })
    // An iterable roster may be read once only: the ingest and the mesh node both need it.
    const roster = init.roster === undefined ? undefined : [...init.roster]
    this.#init = roster === undefined ? init : { ...init, roster }
    this.ingest = new Ingest(this.#init, components)
    this.fleet = this.ingest.fleet
    this.devices = new DeviceRegistry(init.registry, components.now === undefined ? {} : { now: components.now })
    if (init.broker === undefined) {
      this.mode = 'embedded'
      const guard = createPublishGuard(this.ingest, init.onRefusal === undefined ? {} : { onRefusal: init.onRefusal })
      this.#broker = new EmbeddedBroker(init, guard.hooks)
      this.#guardInstall = guard.install
    } else {
      this.mode = 'external'
      this.#external = new ExternalBrokerLink(typeof init.broker === 'string' ? { url: init.broker } : init.broker, this.ingest)
    }
    this.#now = components.now ?? Date.now
    this.topology = new Topology(init.topology)
    if (init.mesh !== undefined && init.mesh !== false) {
      this.mesh = createGatewayNode(init.mesh, { fleet: this.fleet, ...(roster === undefined ? {} : { roster }) }, components)
      this.bridge = new MeshBridge(init, {
        node: this.mesh,
        clock: components.clock ?? systemClock,
        host: {
          fleet: this.fleet,
          keyOf: (id) => this.ingest.keys.get(id),
          learnKey: (publicKey, options) => this.learnKey(publicKey, options),
          submit: (topic, payload, source) => this.submit(topic, payload, source),
          onMesh: (id) => this.devices.onMesh(id),
          nameDevice: (id, name) => { if (this.devices.applyName(id, name)) this.live?.deviceChanged(id) },
          reject: (reason, message, info) => this.ingest.reject(reason, message, info)
        }
      })
    }
    if (init.http !== undefined) {
      this.live = new LiveFeed(init.live ?? {}, { devices: this.devices, topology: () => this.topologySnapshot(), summary: () => this.summary(), clock: components.clock ?? systemClock, now: this.#now })
    }
    this.metrics = createMetrics(this)
    this.http = init.http === undefined
      ? undefined
      : new GatewayHttp(init.http, {
        devices: this.devices,
        counters: () => this.counters,
        metrics: this.metrics,
        topology: () => this.topologySnapshot(),
        ...(this.live === undefined ? {} : { live: this.live }),
        ...(init.dashboard === false ? {} : { dashboard: dashboardHandler() })
      })
    this.ingest.on('reading', (reading) => { this.#onReading(reading) })
    this.ingest.on('status', (event) => {
      this.devices.applyStatus(event)
      this.live?.status(event)
      this.live?.topologyChanged() // devices with a status are drawn beside the mesh, tied to the gateway
      this.emit('status', event)
    })
    this.ingest.on('drop', (drop) => {
      this.devices.recordDrop(drop)
      this.live?.drop(drop)
      this.emit('drop', drop)
    })
    this.ingest.on('held', (held) => { this.emit('held', held) })
    this.ingest.on('key', (key) => {
      if (key.source !== 'status') this.devices.applyKey(key.deviceId, key.publicKey)
      this.bridge?.keyFromGateway(key.deviceId, key.publicKey, key.source)
      this.live?.deviceChanged(key.deviceId)
      this.emit('key', key)
    })
  }

  get counters (): GatewayCounters { return this.ingest.counters }

  get ports (): GatewayPorts {
    const http = this.http?.port
    const mesh = this.mesh?.address?.port
    return { ...this.#broker?.ports, ...(http === undefined ? {} : { http }), ...(mesh === undefined ? {} : { mesh }) }
  }

  /** Nodes and links of the mesh (announcements and the gateway's own links) and the devices that use the broker (a status). */
  topologySnapshot (): TopologySnapshot {
    const now = this.#now()
    this.topology.expire(now)
    const brokerDevices = this.devices.list().filter((d) => d.status !== undefined).map((d) => d.id)
    return this.topology.snapshot(now, { ...(this.mesh === undefined ? {} : { self: { id: this.mesh.id, links: this.mesh.links.keys() } }), brokerDevices })
  }

  /** What the dashboard shows in its header: who this gateway is, and its counters. */
  summary (): { fleet: string, mode: 'embedded' | 'external', now: number, mesh?: { id: DeviceId, name: string, peers: number }, mqttClients: number, counters: GatewayCounters, bridge?: MeshBridge['counters'] } {
    return {
      fleet: this.fleet,
      mode: this.mode,
      now: this.#now(),
      ...(this.mesh === undefined ? {} : { mesh: { id: this.mesh.id, name: this.mesh.name, peers: this.mesh.links.size } }),
      mqttClients: this.connectedClients,
      counters: this.counters,
      ...(this.bridge === undefined ? {} : { bridge: this.bridge.counters })
    }
  }

  /** The embedded broker (Aedes instance inside), when there is one and it runs. */
  get broker (): EmbeddedBroker | undefined { return this.#broker }

  get connectedClients (): number { return this.#broker?.connectedClients ?? 0 }

  /** Learns a device key (DNS-SD, a link handshake, an operator). Held frames of that device are verified at once. */
  learnKey (publicKey: PublicKey, options: { deviceId?: DeviceId, source?: string } = {}): LearnResult {
    return this.ingest.learnKey(publicKey, options)
  }

  /**
   * Feeds one message from another path (the mesh bridge): same checks as broker traffic. A
   * verified reading from the mesh is then published on MQTT too, as the exact frame on its
   * frame topic and as SenML JSON.
   */
  submit (topic: string, payload: Uint8Array, source: MessageSource): Outcome {
    return this.ingest.handle(topic, payload, source)
  }

  /** Publishes as the gateway (bypassing client authorization): for the bridge and the HTTP side. */
  publish (topic: string, payload: string | Uint8Array, options: { retain?: boolean, qos?: 0 | 1 } = {}): void {
    if (this.#state !== 'started' && this.#state !== 'starting') return
    const bytes = typeof payload === 'string' ? Buffer.from(payload) : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)
    const aedes = this.#broker?.aedes
    if (aedes !== undefined) {
      aedes.publish({ cmd: 'publish', topic, payload: bytes, qos: options.qos ?? 0, retain: options.retain ?? false, dup: false }, () => {})
    } else {
      this.#external?.publish(topic, typeof payload === 'string' ? payload : bytes, options)
    }
  }

  /** Builds and starts everything. Idempotent. */
  async start (options: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#state === 'stopping' || this.#state === 'stopped') throw meshError('ERR_BAD_ARGUMENT', 'a stopped gateway cannot be started again: create a new one')
    this.#starting ??= this.#start(options.signal)
    await this.#starting
  }

  async #start (signal: AbortSignal | undefined): Promise<void> {
    this.#state = 'starting'
    try {
      if (this.#broker !== undefined) {
        await this.#broker.start()
        const aedes = this.#broker.aedes
        if (aedes !== undefined) {
          this.#guardInstall?.(aedes)
          await this.#bootstrapFromRetained()
          if (this.#init.cluster !== undefined) this.#followCluster()
        }
      } else {
        await this.#external?.start(signal === undefined ? {} : { signal })
      }
      if (this.mesh !== undefined) {
        await this.mesh.start()
        this.mesh.on('link:open', () => this.live?.topologyChanged())
        this.mesh.on('link:close', () => this.live?.topologyChanged())
        this.bridge?.start()
      }
      this.live?.start()
      await this.http?.start()
      this.#state = 'started'
    } catch (err) {
      this.#stopping = this.#teardown()
      await this.#stopping
      throw err
    }
  }

  /** Retained statuses already in the broker's store (Redis in a cluster) teach keys and presence. */
  async #bootstrapFromRetained (): Promise<void> {
    const persistence = (this.#broker?.aedes as { persistence?: unknown } | undefined)?.persistence as { createRetainedStream?: (pattern: string) => AsyncIterable<AedesPublishPacket> } | undefined
    if (persistence?.createRetainedStream === undefined) return
    for await (const packet of persistence.createRetainedStream(topicFilters.status(this.fleet))) {
      this.ingest.handle(packet.topic, packet.payload as Buffer, { path: 'broker', from: 'retained' })
    }
  }

  /** In a cluster, statuses that reach another gateway of the cluster teach this one too. */
  #followCluster (): void {
    const aedes = this.#broker?.aedes
    if (aedes === undefined) return
    aedes.subscribe(topicFilters.status(this.fleet), (packet, done) => {
      if (packet.brokerId !== aedes.id) this.ingest.handle(packet.topic, packet.payload as Buffer, { path: 'broker', from: `broker:${packet.brokerId}` })
      done()
    }, () => {})
  }

  #onReading (reading: Reading): void {
    this.devices.recordReading(reading)
    // The broker already delivers what a client published; what came another way is published here.
    if (reading.path !== 'broker') this.publish(frameTopic(reading.fleet, reading.origin, reading.deviceTopic), reading.frame)
    if (this.#init.json !== false) {
      this.publish(jsonTopic(reading.fleet, reading.origin, reading.deviceTopic), frameToSenmlJsonText({ origin: reading.origin, records: reading.records }))
      this.ingest.counters.jsonPublished++
    }
    if (reading.path === 'broker') this.bridge?.brokerReading(reading)
    if (reading.deviceTopic === LINKS_TOPIC && this.topology.record(reading.origin, reading.records, reading.receivedAt)) this.live?.topologyChanged()
    this.live?.reading(reading)
    this.emit('reading', reading)
  }

  /** Graceful: stops listening, disconnects clients, drops held frames, closes Redis/MQTT. Idempotent; nothing is emitted after it. */
  async stop (): Promise<void> {
    if (this.#state === 'new') {
      this.#state = 'stopped'
      this.ingest.stop()
      return
    }
    this.#stopping ??= (this.#starting ?? Promise.resolve()).then(() => this.#teardown(), () => this.#teardown())
    await this.#stopping
  }

  async #teardown (): Promise<void> {
    this.#state = 'stopping'
    this.bridge?.stop()
    this.ingest.stop()
    this.removeAllListeners()
    this.live?.stop()
    await this.http?.stop()
    // The mesh node says goodbye on DNS-SD (RFC 6762 §10.1) and closes its links.
    await this.mesh?.stop()
    await this.#broker?.stop()
    await this.#external?.stop()
    this.devices.markAllOffline()
    this.#state = 'stopped'
  }

  async [Symbol.asyncDispose] (): Promise<void> {
    await this.stop()
  }
}

/** Builds and starts a gateway (as `Aedes.createBroker` does). */
export async function createGateway (init: GatewayInit = {}, components: GatewayComponents = {}): Promise<Gateway> {
  const gateway = new Gateway(init, components)
  await gateway.start()
  return gateway
}
