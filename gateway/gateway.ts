import { BrokerRevocations, ExternalRevocations, revocationsFilter } from './revocations.js'
import { EventEmitter } from 'node:events'
import type { Aedes, AedesPublishPacket } from 'aedes'
import {
  LINKS_TOPIC, Lifecycle, frameTopic, generateKeyPair, meshError, jsonTopic, systemClock, topicFilters,
  type Clock, type CommandResult, type Commanders, type DeviceId, type KeyPair, type LearnResult, type PublicKey
, GRANTS_TARGET, configTopic, encodeFleetFiles, fleetFilesTopic, rotationOf, type FleetPolicy } from '../shared/index.js'
import type { MeshNode, MeshNodeInit } from '../mesh/index.js'
import { createBrokerGate, type RefusalPolicy } from './authorize.js'
import { ConfigGuard } from './config-guard.js'
import { MeshBridge, createGatewayNode, type BridgeInit, type GatewayNodeComponents } from './bridge.js'
import { EmbeddedBroker, type BrokerInit } from './broker.js'
import { GatewayCommands, type CommandRequest, type CommandsInit, type MeshCommandHook } from './commands.js'
import { dashboardHandler } from './dashboard.js'
import { DeviceRegistry, type DeviceRegistryInit } from './devices.js'
import { ExternalBrokerLink, type ExternalInit } from './external.js'
import { Ingest, type DropEvent, type IngestComponents, type IngestInit, type MessageSource, type Outcome, type Reading, type StatusEvent } from './ingest.js'
import { GatewayHttp, type HttpInit } from './http.js'
import { HomeAssistantDiscovery, type HomeAssistantInit } from './homeassistant.js'
import { frameToSenmlJsonText } from './json.js'
import { LiveFeed, type LiveInit } from './live.js'
import { createMetrics } from './metrics.js'
import type { Registry } from 'prom-client'
import type { GatewayCounters } from './reasons.js'
import { Topology, type TopologyInit, type TopologySnapshot } from './topology.js'
import { historyHandler } from './http-history.js'
import { commandsHandler } from './http-commands.js'
import { fleetHandler } from './http-fleet.js'
import { GatewayTrust, noFleetJson } from './trust.js'
import { GatewayState, createStore, type GatewayStore, type StateInit } from './store/index.js'
import { KeptTrust } from './kept-trust.js'

/** What the dashboard shows in its header (GET /api/summary, the live stream's `summary`). */
export interface GatewaySummary {
  fleet: string
  mode: 'embedded' | 'external'
  /** The gateway's own id: the key it signs commands with (a device takes them when its --commanders allows this id). */
  id: DeviceId
  /** True when the HTTP API takes commands (POST /api/devices/:id/commands): not open without a token beyond loopback. */
  commands: boolean
  now: number
  mesh?: { id: DeviceId, name: string, peers: number }
  mqttClients: number
  counters: GatewayCounters
  bridge?: MeshBridge['counters']
  /** With a fleet file: how many revocations the gateway holds, and the grant policy's version (null: none). GET /api/fleet has them in full. */
  trust?: { revocations: number, grants: number | null }
}

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
  /**
   * Home Assistant MQTT discovery (gateway/homeassistant.ts): retained sensor configs under
   * `<prefix>/sensor/…` and plain values on iotmesh/<fleet>/<id>/value/<sensor>. Default on; false: off.
   */
  homeassistant?: HomeAssistantInit | false
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
  /**
   * Durable state (gateway/store/): a SQLite file path, a postgres:// URL, or a store. Replay
   * windows, the device registry and the readings history then survive a restart (and the HTTP
   * API serves history from it). Default: none, everything in memory.
   */
  store?: string | GatewayStore
  /** Retention and write-behind of the store. */
  state?: StateInit
  /**
   * Who may command what through the embedded broker (shared/commanders.ts, `--commanders FILE`):
   * a command of anyone else on …/cmd/<action> is not forwarded. Default: only the gateway's own key.
   */
  commanders?: Commanders | undefined
  /**
   * The fleet file (shared/fleet.ts): with it the embedded broker retains owner-signed device
   * configurations on iotmesh/<fleet>/$config/<target> (gateway/config-guard.ts); without, it takes none.
   */
  fleetPolicy?: FleetPolicy
  /** Commands (gateway/commands.ts): set/ requests of MQTT users, the result timeout, resends. */
  commands?: Omit<CommandsInit, 'commanders'>
}

/** Dependencies: the one clock, Ed25519, and the mesh node's (gateway/bridge.ts). */
export interface GatewayComponents extends IngestComponents, GatewayNodeComponents {
  /**
   * The mesh path of `command({ via: 'mesh' })`: the signed command out, the target's signed result
   * back. Default: the gateway's mesh node (MeshNode.command).
   */
  meshCommand?: MeshCommandHook
}

export interface GatewayEvents {
  reading: [Reading]
  drop: [DropEvent]
  status: [StatusEvent]
  key: [{ deviceId: DeviceId, publicKey: PublicKey, source: string }]
  held: [{ deviceId: DeviceId, seq: number, topic: string }]
  /** A write to the store failed (ERR_STORE); the gateway goes on. */
  storeError: [Error]
  /** A verified command result (any issuer's), as mirrored on …/result/<issuer>/json. */
  result: [CommandResult]
  /** An MQTT client connected to, or went from, the embedded broker (for the logs, gateway/log.ts). */
  connection: [{ clientId: string, state: 'connected' | 'disconnected' }]
  /** A device's key was rotated (an owner-signed revocation "rotated"): `from` and `to` are one device in the registry from now on. */
  rotated: [{ from: DeviceId, to: DeviceId }]
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
  /** The fleet's revocations (with `fleetPolicy`), retained on the embedded broker: gateway/revocations.ts. */
  readonly revocations: BrokerRevocations | undefined
  /** The fleet's trust (with `fleetPolicy`): revocations, credentials seen, the grant policy (gateway/trust.ts). */
  readonly trust: GatewayTrust | undefined
  /** The mesh ⇄ MQTT bridge, when `mesh` was given. */
  readonly bridge: MeshBridge | undefined
  /** The mesh as announced on `mesh/links`, plus the gateway's own links. */
  readonly topology: Topology
  /** The live event stream (`/api/events`), with `http`. */
  readonly live: LiveFeed | undefined
  /** The durable state, with `store`. */
  readonly state: GatewayState | undefined
  /** Commands: the publish guard of the command topics, `command()`, set/ requests (gateway/commands.ts). */
  readonly commands: GatewayCommands
  /** What the broker retains on iotmesh/<fleet>/$config/… (gateway/config-guard.ts): owner-signed configurations, with `fleetPolicy`. */
  readonly configs: ConfigGuard
  readonly #keys: KeyPair
  /** Home Assistant MQTT discovery, unless `homeassistant: false`. */
  readonly homeassistant: HomeAssistantDiscovery | undefined
  readonly #init: GatewayInit
  readonly #clock: Clock
  readonly #broker: EmbeddedBroker | undefined
  readonly #external: ExternalBrokerLink | undefined
  readonly #lifecycle = new Lifecycle('gateway')
  /** stop() was called: the HTTP server, the SSE clients and the registry are not made to restart. */
  #stopped = false
  /** Readings whose keeping is not simply done: a write still pending (PostgreSQL) or failed. */
  readonly #kept = new WeakMap<Reading, false | Promise<boolean>>()
  /** The fleet files and revocations kept in the store across restarts (gateway/kept-trust.ts), with `store` and `fleetPolicy`. */
  readonly keptTrust: KeptTrust | undefined
  /** Origins with readings being written (PostgreSQL), and how many: their mesh acks wait (MeshNode.holdAcks). */
  readonly #writing = new Map<DeviceId, number>()

  constructor (init: GatewayInit = {}, components: GatewayComponents = {}) {
    super({ captureRejections: false })
    // An iterable roster may be read once only: the ingest and the mesh node both need it.
    const roster = init.roster === undefined ? undefined : [...init.roster]
    this.#init = roster === undefined ? init : { ...init, roster }
    this.#clock = components.clock ?? systemClock
    // One identity for the mesh node and the commands the gateway signs.
    this.#keys = components.keys ?? generateKeyPair()
    this.ingest = new Ingest(this.#init, components)
    this.fleet = this.ingest.fleet
    this.commands = new GatewayCommands({ ...init.commands, commanders: init.commanders }, {
      fleet: this.fleet,
      keys: this.#keys,
      clock: this.#clock,
      ed25519: components.ed25519,
      keyOf: (id) => this.ingest.keys.get(id),
      reject: (reason, message, info, code) => this.ingest.reject(reason, message, info, code),
      publish: (topic, payload, options) => { this.publish(topic, payload, options) },
      onResult: (result) => { this.emit('result', result) },
      trust: () => this.trust,
      // The mesh path: the gateway's mesh node routes the command to its target and verifies the answer (MeshNode.command).
      meshCommand: components.meshCommand ?? (async (command, options) => {
        if (this.mesh === undefined) throw meshError('ERR_BAD_ARGUMENT', 'this gateway is no mesh member (--no-mesh): send commands via the broker')
        return (await this.mesh.command(command.bytes, { timeoutMs: options.timeoutMs, signal: options.signal })).bytes
      })
    })
    this.ingest.commands = this.commands
    this.configs = new ConfigGuard(this.fleet, init.fleetPolicy)
    const now = (): number => this.#clock.wall()
    this.devices = new DeviceRegistry(init.registry, { now, credential: (id) => this.trust?.credentialOf(id) })
    const store = typeof init.store === 'string' ? createStore(init.store, this.fleet) : init.store
    this.state = store === undefined
      ? undefined
      : new GatewayState(store, init.state ?? {}, { ingest: this.ingest, devices: this.devices, clock: this.#clock, onError: (err) => { this.emit('storeError', err as Error) } })
    if (init.broker === undefined) {
      this.mode = 'embedded'
      // Who may connect, read and publish (gateway/auth.ts, gateway/authorize.ts): installed on every new Aedes (each broker start).
      const gate = createBrokerGate(this.ingest, { ...this.#init, configs: this.configs, kept: (reading) => this.#kept.get(reading), claimToken: (id, cti, untilS) => this.state?.claimToken(id, cti, untilS) ?? true }, components)
      this.revocations = gate.revocations
      // A rotation that came by MQTT (one by the mesh is taken above as well: rotate() is idempotent).
      this.revocations?.on((revocation) => { if (revocation.successor !== undefined) this.#rotated(revocation.device, revocation.successor, revocation.issuedAt) })
      // Every new Aedes also gets the retained statuses and the cluster feed.
      this.#broker = new EmbeddedBroker(init, { ...gate.hooks, setup: async (aedes) => { await this.#setupBroker(aedes) } })
    } else {
      this.mode = 'external'
      const external = typeof init.broker === 'string' ? { url: init.broker } : init.broker
      // The results of the gateway's own commands come back on its subscription, through the same guard.
      // With a fleet file it reads the revocations retained there too, and holds them (no broker of its own to retain them on).
      const filters = [...(external.filters ?? []), topicFilters.results(this.fleet, this.#keys.id), ...(init.fleetPolicy === undefined ? [] : [revocationsFilter(this.fleet)])]
      this.revocations = init.fleetPolicy === undefined ? undefined : new BrokerRevocations(init.fleetPolicy, { ...(components.ed25519 === undefined ? {} : { ed25519: components.ed25519 }), deviceOf: () => undefined })
      const taken = this.revocations === undefined ? undefined : new ExternalRevocations(this.revocations, this.ingest, this.#clock)
      this.#external = new ExternalBrokerLink({ ...external, filters }, this.ingest, (topic, payload) => taken?.take(topic, payload) ?? false)
    }
    const policy = init.fleetPolicy
    this.keptTrust = policy === undefined || this.state === undefined ? undefined : new KeptTrust(this.state.store, (err) => { this.emit('storeError', err) })
    this.revocations?.on((revocation, bytes) => { this.keptTrust?.keepRevocation(revocation.device, bytes) })
    this.trust = policy === undefined ? undefined : new GatewayTrust(policy, {
      clock: this.#clock,
      ed25519: components.ed25519,
      revocation: (id) => this.revocations?.set.get(id),
      revocations: () => this.revocations?.list() ?? [],
      linkCredential: (id) => this.mesh?.credentials?.credentialOf(id),
      verified: (bytes, credential) => { this.mesh?.credentials?.keep(bytes, credential) }
    })
    if (this.trust !== undefined) {
      this.ingest.revoked = (id) => this.revocations?.set.get(id) ?? (this.mesh?.revoked(id) === true /* whoever knew first: the broker's set or the node's */ ? { reason: 'revoked (the mesh node holds the revocation)' } : undefined)
      this.revocations?.on((revocation) => { this.live?.deviceChanged(revocation.device) })
    }
    this.topology = new Topology(init.topology)
    // Signed configurations cross between the mesh and the broker: a client's (checked by the guard) goes to the mesh; a new one from the mesh is retained.
    this.configs.onTaken = (config, bytes) => {
      if (config.target === GRANTS_TARGET) this.trust?.considerGrants(bytes, config)
      this.mesh?.configure(bytes)
    }
    if (init.mesh !== undefined && init.mesh !== false) {
      // With a fleet file the gateway's node takes and spreads signed configurations, and bridges them to and from the broker.
      const meshInit = init.fleetPolicy === undefined ? init.mesh : { ...init.mesh, routing: { ...init.mesh.routing, fleetPolicy: init.fleetPolicy } }
      this.mesh = createGatewayNode(meshInit, { fleet: this.fleet, ...(roster === undefined ? {} : { roster }) }, { ...components, keys: this.#keys })
      // A newer signed fleet file (mesh/routing/handlers/fleet.ts): the broker's revocations, its configuration guard and the trust judge by it too;
      // it is kept in the store (a restarted gateway takes it again: gateway/kept-trust.ts) and retained on the broker for devices without the mesh.
      this.mesh.on('fleet', ({ policy, version, bytes }) => {
        this.#followFleet(policy)
        this.keptTrust?.keepFleetFile(version, bytes)
        this.#retainFleetFiles()
      })
      this.mesh.on('config', (info) => {
        if (info.verdict === 'added' && info.target === GRANTS_TARGET) this.trust?.considerGrants(info.bytes, info.config)
        if (info.verdict !== 'added' || info.from === undefined) return
        this.configs.note(info.target, info.version)
        this.publish(configTopic(this.fleet, info.target), info.bytes, { retain: true, qos: 1 })
      })
      // Revocations cross between the mesh and the broker (gateway/revocations.ts), each way once.
      const node = this.mesh
      // Durable through the database: the node acks an origin only while none of its readings is still being written.
      if (this.state !== undefined) node.holdAcks((origin) => this.#writing.has(origin))
      node.on('revoked', ({ device, bytes }) => {
        try { this.revocations?.add(bytes, 'mesh') } catch { /* verified by the node already */ }
        const rotation = rotationOf(bytes) // verified by the node: a rotation names the successor
        if (rotation !== undefined) this.#rotated(device, rotation.successor, rotation.issuedAt)
      })
      this.revocations?.on((_revocation, bytes, source) => { if (source === 'mqtt') node.revoke(bytes) })
      this.bridge = new MeshBridge(init, {
        node: this.mesh,
        clock: this.#clock,
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
      this.live = new LiveFeed(init.live ?? {}, { devices: this.devices, topology: () => this.topologySnapshot(), summary: () => this.summary(), clock: this.#clock, now })
    }
    this.metrics = createMetrics(this)
    this.homeassistant = init.homeassistant === false
      ? undefined
      : new HomeAssistantDiscovery({ commandable: (init.commands?.set?.users?.length ?? 0) > 0, ...init.homeassistant }, { fleet: this.fleet, publish: (topic, payload, options) => { this.publish(topic, payload, options) }, device: (id) => this.devices.get(id) })
    this.http = init.http === undefined
      ? undefined
      : new GatewayHttp(init.http, {
        devices: this.devices,
        counters: () => this.counters,
        metrics: this.metrics,
        topology: () => this.topologySnapshot(),
        ...(this.mesh === undefined ? {} : { peers: () => this.mesh?.peers() ?? [] }),
        ...(this.live === undefined ? {} : { live: this.live }),
        ...(init.dashboard === false ? {} : { dashboard: dashboardHandler() })
      })
    if (this.state !== undefined) this.http?.use(historyHandler(this.state.store, { now, readerKey: this.#init.readerKey, keyIds: (id) => this.devices.keyIds(id) }))
    this.http?.use(fleetHandler(() => this.trust?.toJSON() ?? noFleetJson(this.fleet)))
    this.http?.use(commandsHandler({ command: async (request) => await this.command(request), open: () => this.http?.open ?? true }))
    this.ingest.on('reading', (reading) => {
      // First kept, then acknowledged and passed on: SQLite commits before record() returns; PostgreSQL's commit is awaited
      // (the broker's publish guard waits for the same answer before the device's PUBACK: #kept).
      const kept = this.state?.record(reading) ?? true
      if (kept === true) return this.#onReading(reading)
      this.#kept.set(reading, kept)
      if (kept === false) return this.#notKept(reading)
      this.#writing.set(reading.origin, (this.#writing.get(reading.origin) ?? 0) + 1)
      void kept.then((ok) => {
        const left = (this.#writing.get(reading.origin) ?? 1) - 1
        if (left > 0) this.#writing.set(reading.origin, left)
        else this.#writing.delete(reading.origin)
        if (ok) this.#onReading(reading)
        else this.#notKept(reading)
      })
    })
    this.ingest.on('status', (event) => {
      if (event.status?.state === 'online') this.trust?.noteStatusCredential(event.deviceId, event.status.publicKey, event.status.credential)
      this.devices.applyStatus(event)
      this.homeassistant?.status(event)
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

  /** The gateway's own identity: it signs `command()` and set/ requests with it (devices allow it in their --commanders file). */
  get identity (): { id: DeviceId, publicKey: PublicKey } {
    return { id: this.#keys.id, publicKey: this.#keys.publicKey }
  }

  /**
   * Signs a command with the gateway's key, sends it (the broker, QoS 1; or `via: 'mesh'` with the
   * meshCommand hook) and resolves with the target's verified result, whatever its status ("ok" or
   * the device's refusal code). Rejects with ERR_TIMEOUT when none came in time, ERR_ABORTED when
   * the gateway stops, ERR_BAD_COMMAND for an action or arguments no device would take.
   */
  async command (request: CommandRequest): Promise<CommandResult> {
    if (!this.#lifecycle.live) throw meshError('ERR_ABORTED', 'the gateway is not running')
    return await this.commands.command(request)
  }

  get ports (): GatewayPorts {
    const http = this.http?.port
    const mesh = this.mesh?.address?.port
    return { ...this.#broker?.ports, ...(http === undefined ? {} : { http }), ...(mesh === undefined ? {} : { mesh }) }
  }

  /** Nodes and links of the mesh (announcements and the gateway's own links) and the devices that use the broker (a status). */
  topologySnapshot (): TopologySnapshot {
    const now = this.#clock.wall()
    this.topology.expire(now)
    const brokerDevices = this.devices.list().filter((d) => d.status !== undefined).map((d) => d.id)
    return this.topology.snapshot(now, { ...(this.mesh === undefined ? {} : { self: { id: this.mesh.id, links: this.mesh.links.keys() } }), brokerDevices })
  }

  /** What the dashboard shows in its header: who this gateway is, and its counters. */
  summary (): GatewaySummary {
    return {
      fleet: this.fleet,
      mode: this.mode,
      id: this.#keys.id,
      commands: this.http !== undefined && !this.http.open,
      now: this.#clock.wall(),
      ...(this.mesh === undefined ? {} : { mesh: { id: this.mesh.id, name: this.mesh.name, peers: this.mesh.links.size } }),
      mqttClients: this.connectedClients,
      counters: this.counters,
      ...(this.bridge === undefined ? {} : { bridge: this.bridge.counters }),
      ...(this.trust === undefined ? {} : { trust: { revocations: this.revocations?.set.size ?? 0, grants: this.trust.grantsVersion ?? null } })
    }
  }

  get connectedClients (): number { return this.#broker?.connectedClients ?? 0 }

  /** True when this gateway embeds the broker (rather than joining an external one). */
  get embedsBroker (): boolean { return this.#broker !== undefined }

  /**
   * Stops the embedded broker (a broker outage: clients are cut off, their last wills fire) while
   * the rest of the gateway runs on. For failover experiments and the fleet simulator.
   */
  async stopBroker (): Promise<void> {
    await this.#broker?.stop()
  }

  /** Starts the embedded broker again on the same ports, with the publish guard installed anew. */
  async startBroker (): Promise<void> {
    if (this.#lifecycle.live) await this.#broker?.start()
  }

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
    if (!this.#lifecycle.live) return
    const bytes = typeof payload === 'string' ? Buffer.from(payload) : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)
    const aedes = this.#broker?.aedes
    if (aedes !== undefined) {
      aedes.publish({ cmd: 'publish', topic, payload: bytes, qos: options.qos ?? 0, retain: options.retain ?? false, dup: false }, () => {})
    } else {
      this.#external?.publish(topic, typeof payload === 'string' ? payload : bytes, options)
    }
  }

  /**
   * Builds and starts everything (shared/lifecycle.ts): a stop during start wins, and a failed
   * start tears down what it brought up and can be retried. Idempotent.
   */
  async start (options: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#stopped) throw meshError('ERR_BAD_ARGUMENT', 'a stopped gateway cannot be started again: create a new one')
    await this.#lifecycle.start(async (signal, defer) => {
      if (this.state !== undefined) {
        defer('store', async () => { await this.state?.stop() }) // last: after the registry marked everyone offline
        await this.state.start()
        await this.#restoreTrust()
      }
      defer('registry', () => { this.devices.markAllOffline() })
      defer('commands', () => { this.commands.stop() })
      defer('held frames', () => { this.ingest.clear() })
      if (this.#broker !== undefined) {
        defer('broker', async () => {
          this.ingest.clear() // settle the publishes that wait for a key before their clients go
          await this.#broker?.stop()
        })
        await this.#broker.start()
      } else if (this.#external !== undefined) {
        defer('external broker', async () => { await this.#external?.stop() })
        await this.#external.start({ signal })
      }
      if (this.mesh !== undefined) {
        // The mesh node says goodbye on DNS-SD (RFC 6762 §10.1) and closes its links.
        defer('mesh', async () => { await this.mesh?.stop() })
        await this.mesh.start({ signal })
        // What the node kept from before (its revocations, its grant policy) is the gateway's too.
        for (const bytes of this.mesh.revocations()) { try { this.revocations?.add(bytes, 'mesh') } catch { /* verified by the node already */ } }
        for (const bytes of this.mesh.configs()) this.trust?.considerGrants(bytes)
        const changed = (): void => { this.live?.topologyChanged() }
        this.mesh.on('link:open', changed)
        this.mesh.on('link:close', changed)
        defer('mesh events', () => { this.mesh?.off('link:open', changed); this.mesh?.off('link:close', changed) })
        this.bridge?.start()
        defer('bridge', () => { this.bridge?.stop() })
      }
      this.live?.start()
      defer('live', () => { this.live?.stop() })
      if (this.http !== undefined) {
        defer('http', async () => { await this.http?.stop() })
        await this.http.start()
      }
    }, options)
    if (this.#external !== undefined) this.#retainFleetFiles() // the embedded broker's are retained at its setup
  }

  /** A newer fleet file is in force: the broker's revocations, the configuration guard and the trust judge by its owners. */
  #followFleet (policy: FleetPolicy): void {
    if (this.revocations !== undefined) this.revocations.set.policy = policy
    this.configs.policy = policy
    if (this.trust !== undefined) this.trust.policy = policy
  }

  /**
   * Before the broker and the mesh node run: the fleet files and revocations kept in the store, taken
   * again and verified from the fleet file given (gateway/kept-trust.ts). The node holds the chain of
   * fleet files (without a mesh node none is taken: none came); the node and the broker the revocations.
   */
  async #restoreTrust (): Promise<void> {
    const mesh = this.mesh
    await this.keptTrust?.restore({
      fleetFile: (bytes) => {
        const verdict = mesh?.updateFleet(bytes) ?? 'ignored'
        // The node emits no 'fleet' before it starts: the broker's revocations (next), the guard and the trust follow here.
        if (verdict === 'added' && mesh?.fleetPolicy !== undefined) this.#followFleet(mesh.fleetPolicy)
        return verdict
      },
      revocation: (bytes) => {
        mesh?.revoke(bytes)
        this.revocations?.add(bytes, 'mesh')
      }
    })
  }

  /**
   * The fleet files the mesh node holds (beyond the one given), retained on the broker as one message on
   * iotmesh/<fleet>/$fleet/files (shared/fleet-file.ts) for devices that hear no FLEET gossip; only the
   * gateway publishes there (gateway/authorize.ts). `aedes`: a new broker instance being set up.
   */
  #retainFleetFiles (aedes?: Aedes): void {
    const files = this.mesh?.fleetFiles() ?? []
    if (files.length === 0) return
    const payload = encodeFleetFiles(files)
    if (aedes === undefined) return this.publish(fleetFilesTopic(this.fleet), payload, { retain: true, qos: 1 })
    aedes.publish({ cmd: 'publish', topic: fleetFilesTopic(this.fleet), payload: Buffer.from(payload), qos: 1, retain: true, dup: false }, () => {})
  }

  /** What each new Aedes instance needs (the guard is installed by the caller first). */
  async #setupBroker (aedes: Aedes): Promise<void> {
    await this.#bootstrapFromRetained(aedes)
    this.#retainFleetFiles(aedes) // a new Aedes has an empty retained store
    this.homeassistant?.republish() // a new Aedes has an empty retained store (unless Redis keeps it)
    aedes.on('client', (client) => { this.emit('connection', { clientId: client.id, state: 'connected' }) })
    aedes.on('clientDisconnect', (client) => { this.emit('connection', { clientId: client.id, state: 'disconnected' }) })
    if (this.#init.cluster !== undefined) this.#followCluster(aedes)
  }

  /** Retained statuses already in the broker's store (Redis in a cluster) teach keys and presence. */
  async #bootstrapFromRetained (aedes: Aedes): Promise<void> {
    const persistence = (aedes as { persistence?: unknown }).persistence as { createRetainedStream?: (pattern: string) => AsyncIterable<AedesPublishPacket> } | undefined
    if (persistence?.createRetainedStream === undefined) return
    for await (const packet of persistence.createRetainedStream(topicFilters.status(this.fleet))) {
      this.ingest.handle(packet.topic, packet.payload as Buffer, { path: 'broker', from: 'retained' })
    }
  }

  /** In a cluster, statuses that reach another gateway of the cluster teach this one too. */
  #followCluster (aedes: Aedes): void {
    aedes.subscribe(topicFilters.status(this.fleet), (packet, done) => {
      if (packet.brokerId !== aedes.id) this.ingest.handle(packet.topic, packet.payload as Buffer, { path: 'broker', from: `broker:${packet.brokerId}` })
      done()
    }, () => {})
  }

  /**
   * A reading the store could not keep: not passed on, and fresh again in the replay windows, so
   * the copy its device sends again (it got no PUBACK: gateway/authorize.ts; or no mesh ack: the
   * node shows it missing) is accepted then.
   */
  #notKept (reading: Reading): void {
    this.ingest.verifier.replay.forget(reading.origin, reading.seq)
    if (reading.path === 'mesh') this.mesh?.unaccept(reading.origin, reading.seq)
  }

  /** A verified rotation (shared/fleet.ts `rotate`): the registry lists both keys as one device, under the new one's id. */
  #rotated (from: DeviceId, to: DeviceId, issuedAt: number): void {
    if (!this.devices.rotate(from, to, issuedAt)) return
    this.live?.deviceChanged(to)
    this.emit('rotated', { from, to })
  }

  #onReading (reading: Reading): void {
    this.devices.recordReading(reading)
    // The broker already delivers what a client published; what came another way is published here.
    if (reading.path !== 'broker') this.publish(frameTopic(reading.fleet, reading.origin, reading.deviceTopic), reading.frame)
    // An encrypted reading this gateway cannot read (no reader key, no grant) is forwarded and stored as ciphertext, not mirrored.
    if (this.#init.json !== false && reading.encrypted?.readable !== false) {
      this.publish(jsonTopic(reading.fleet, reading.origin, reading.deviceTopic), frameToSenmlJsonText({ origin: reading.origin, records: reading.records }))
      this.ingest.counters.jsonPublished++
    }
    this.homeassistant?.reading(reading)
    if (reading.path === 'broker') this.bridge?.brokerReading(reading)
    if (reading.deviceTopic === LINKS_TOPIC && this.topology.record(reading.origin, reading.records, reading.receivedAt)) this.live?.topologyChanged()
    this.live?.reading(reading)
    this.emit('reading', reading)
  }

  /**
   * Graceful: stops listening, disconnects clients, drops held frames, closes Redis/MQTT. Every
   * step runs even when one fails; failures are reported together (AggregateError). Idempotent;
   * nothing is emitted after it is called.
   */
  async stop (options: { signal?: AbortSignal } = {}): Promise<void> {
    this.#stopped = true
    await this.#lifecycle.stop(options)
  }

  override emit<K extends keyof GatewayEvents> (event: K, ...args: K extends keyof GatewayEvents ? GatewayEvents[K] : never): boolean {
    return this.#lifecycle.live && super.emit(event, ...args as never)
  }

  async [Symbol.asyncDispose] (): Promise<void> {
    await this.stop()
  }
}

/** Builds and starts a gateway (as `Aedes.createBroker` does). */
export async function createGateway (init: GatewayInit = {}, components: GatewayComponents = {}, options: { signal?: AbortSignal } = {}): Promise<Gateway> {
  const gateway = new Gateway(init, components)
  await gateway.start(options)
  return gateway
}
