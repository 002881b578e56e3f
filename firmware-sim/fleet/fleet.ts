import { createServer } from 'node:net'
import {
  LINKS_TOPIC, Lifecycle, defaultEd25519, meshError, deviceIdFromPublicKey, generateKeyPair, memorySequence, mixSeed, seededRandom, systemClock,
  type Clock, type Defer, type DeviceId, type FleetPolicy, type KeyPair, type PublicKey, type SequenceSource
} from '../../shared/index.js'
import { createMdnsResponder, createTcpTransport, TypedEmitter, type MdnsResponder, type Transport, type TransportAddress } from '../../mesh/index.js'
import {
  SLICE_MS, SLICE_SHARE, Turn, applyFaults, createFaultModel, createMemoryNetwork, type FaultModel, type LinkFaults, type MemoryNetwork, type ThreadBridge
} from '../../mesh/testing.js'
import { createGateway, type Gateway, type GatewayInit } from '../../gateway/index.js'
import { deliveryPaths, type DeviceMode } from '../config.js'
import { Device } from '../device.js'
import type { DeviceInit } from '../device/types.js'
import { createMemoryOutbox } from '../outbox/memory.js'
import type { Outbox } from '../outbox/types.js'
import { silentLogger } from '../sensors/types.js'
import { MqttFaults } from './mqtt-faults.js'
import { fleetFlow, type FleetFlow } from './flow.js'
import { PowerCuts } from './power-cut.js'
import { SeqSet } from './seq-set.js'
import { fixedPeers, type FleetTopology } from './topology.js'
import { World, type WorldInit } from './world.js'
import { sharedEd25519, type SharedEd25519, type SharedVerifyCounters } from './shared-verify.js'
import { FleetWorkers, mergeChecks, mergeFlows, resolveWorkers } from './workers.js'

/**
 * A simulated fleet in one process: N devices, each with its own identity (derived from the seed),
 * its own link port and DNS-SD instance, its own sensors (seeded), optionally a gateway (embedded
 * Aedes, mesh bridge, dashboard), and a fault controller: crash and restart devices, stop and
 * restart the broker, partition the fleet and heal it, seeded per-link loss, delay and duplication,
 * clock skew. A crashed device keeps what a real one keeps on disk (its sequence numbers and its
 * outbox), so a restart never reuses a sequence number and loses no reading.
 */

export interface FleetInit {
  devices?: number
  mode?: DeviceMode
  fleet?: string
  seed?: number
  /** Sampling interval of every device, ms (default 1000). */
  interval?: number
  sensors?: string
  /** Start a gateway (embedded broker, mesh bridge, HTTP dashboard). Default true; an object tunes it. */
  gateway?: boolean | GatewayInit
  /** Mesh links: real TCP (default) or in-memory links (faster; hundreds of devices). */
  transport?: 'tcp' | 'memory'
  /**
   * TCP only: each device's mesh node builds its own TCP transport, as a deployed device does, so
   * every handshake carries and checks credentials (`enrollment`) and relayed origins' credentials
   * are checked (MeshNode `checkOrigins`). The fleet's fault model and power cuts then do not reach
   * the mesh links. Default false: the fleet's transport (faults, power cuts; no credentials shown).
   */
  nodeTransport?: boolean
  /** DNS-SD discovery (default: on with TCP; with memory links devices find each other through the fleet). */
  mdns?: boolean
  /** Address devices and the gateway listen on (default 127.0.0.1). */
  host?: string
  /** The gateway's MQTT port (default: a free one); taken if free, else any free port. */
  mqttPort?: number
  /** Without a gateway: the broker that broker and hybrid devices publish to (a gateway elsewhere). */
  broker?: string
  /** Index of the first device: identities and names follow the global index, so fleets split over hosts stay distinct. */
  firstIndex?: number
  /** Discovered peers each device dials (default 3). */
  dialTarget?: number
  /** Mesh link options for every device (keepalive, …). */
  link?: { keepaliveInterval?: number, keepaliveTimeout?: number }
  /** Routing options for every device. */
  routing?: { syncInterval?: number, interestRefresh?: number }
  /**
   * Share signature checks between the fleet's devices and its gateway (shared-verify.ts): a
   * signature this process made or checked is not checked again by another simulated device.
   * Every decision is the same; the CPU per device is less than on hardware, so the fleet's stats
   * say `verification: "shared"`. Default false: each device checks what reaches it.
   */
  shareVerification?: boolean
  /** How soon devices swap a dialed peer for a random other (ms; default 10000 in a simulation), then ever less often while nothing changes, up to 8× (MeshNode `rotateInterval`). */
  rotateInterval?: number
  /**
   * Closed mode (WP 11-D): every device and the gateway take only these keys plus the fleet's own
   * (its devices' and its gateway's), at the link handshake and on every frame. `[]`: the fleet's
   * own keys alone. Default: open.
   */
  roster?: readonly PublicKey[]
  /**
   * What some devices do besides sampling, by fleet index: actuators, who may command them, the
   * rules they run (firmware-sim/device/commands.ts). `{ 1: { actuators: ['light'], commanders } }`.
   */
  roles?: Readonly<Record<number, DeviceRole>>
  /** The simulated world: rooms that actuators warm and light, read by the devices wired to them (world.ts). */
  world?: WorldInit
  /**
   * With memory links and no DNS-SD: who links to whom (topology.ts). `random` (default): each
   * device dials `dialTarget` random earlier ones, its only links (no peer-exchange dialling, no
   * rotation: the seed gives the graph). `line` and `grid`: fixed links only (no peer
   * exchange dialling, no rotation), so that a message crosses a known number of relays; also over
   * TCP without DNS-SD (`mdns: false`), where devices then start one at a time (each dials the
   * ports its earlier neighbours listen on).
   */
  topology?: FleetTopology
  /**
   * Closed by credential (issue 13): the fleet file every device and the gateway hold, and the
   * owner-signed credential of each member (the gateway's too: `index` -1). Devices then take,
   * spread and enforce the owners' revocations; the gateway's broker refuses revoked devices.
   */
  enrollment?: { policy: FleetPolicy, credential: (keys: KeyPair, index: number) => Uint8Array }
  /**
   * Split the devices over this many worker threads (workers.ts; `'auto'`: os.availableParallelism()),
   * so that a fleet in one process uses every core. The main thread keeps the gateway; links between
   * threads run over MessagePorts (memory links, without DNS-SD) or are TCP connections as any other
   * (TCP, with DNS-SD: each worker runs its own mDNS responder), and each thread's shared verification
   * (`shareVerification`) has its own cache. Random topology, the system clock; crash, restart, skew, partitions
   * and link faults are refused (ERR_BAD_ARGUMENT), as are roles, a world, a roster and enrollment.
   * Default 1: everything in this thread, as before.
   */
  workers?: number | 'auto'
}

/** A device's part in an automation (FleetInit.roles). */
export type DeviceRole = Pick<DeviceInit, 'actuators' | 'commanders' | 'rules' | 'commandRate' | 'interval'>

/**
 * What a fleet runs on. With a manual clock (shared/clock.ts `manualClock`) and memory links, a
 * seeded fleet replays event for event: every timer, stamp and random draw comes from here or
 * from the seed.
 */
export interface FleetComponents {
  clock?: Clock
}

/** A worker thread's share of a fleet (fleet-worker.ts): its network's bridge, and the gateway's address in the main thread. */
export interface FleetThread {
  bridge: ThreadBridge
  gateway: TransportAddress | undefined
  /** The whole fleet's first index (its devices' indexes, in every thread, count from there). */
  first: number
  /** This thread's device i is the whole fleet's device offset + i × stride (threads.ts deals them round). */
  offset: number
  stride: number
}

export interface SimDevice {
  readonly index: number
  readonly name: string
  readonly keys: KeyPair
  readonly sequence: SequenceSource
  readonly outbox: Outbox
  device: Device | undefined
  state: 'starting' | 'up' | 'crashed' | 'stopped'
  published: number
  /** Times the device was restarted after a crash (each run draws from its own seeded stream). */
  restarts: number
}

export interface FleetStats {
  elapsedS: number
  devices: number
  devicesUp: number
  published: number
  /** Distinct readings (origin, sequence number) the gateway accepted. */
  atGateway: number
  /** Of the readings published at least `settleMs` ago, the share the gateway has (catch-up included). */
  deliveryRatio: number
  /** Readings old enough to count in the ratio, and those of them the gateway does not have. */
  settled: number
  missing: number
  readingsPerS: number
  links: number
  /** Readings refused by the gateway (bad signature, unknown signer, …), duplicates not counted. */
  rejects: number
  brokerUp: boolean
  partitioned: boolean
  /**
   * `per-device`: every simulated device checks every signature that reaches it, as on hardware;
   * `shared` (`FleetInit.shareVerification`): checks of signatures the process already made or
   * checked were answered from memory (`sharedChecks.shared` of them), so CPU figures are below a real fleet's.
   */
  verification: 'per-device' | 'shared'
  /** Summed over every thread; with workers each thread has its own cache, so a signature is checked for real once per thread. */
  sharedChecks?: SharedVerifyCounters
  /**
   * Worker threads the devices run in (FleetInit.workers), when more than one. `devicesUp`,
   * `links`, `sharedChecks` are their last answers (`refresh()`); `published` is current.
   */
  workers?: number
}

export type { FleetFlow } from './flow.js'

export interface FleetEvents {
  reading: [{ device: number, origin: DeviceId, seq: number, time: number }]
  delivered: [{ origin: DeviceId, seq: number, path: string, receivedAt: number }]
  fault: [{ kind: string, detail: string }]
}

/** The link port of every simulated device on in-memory links (each has its own host name). */
const MEMORY_PORT = 7000

/** The gateway's identity is drawn as the device of this index would be. */
const GATEWAY_INDEX = 1_000_000

/** The identity of a fleet's gateway (for commanders files written before the fleet starts). */
export function simGatewayKeys (seed: number): KeyPair {
  return seededKeys(seed, GATEWAY_INDEX)
}

/**
 * A device's identity, from its own seeded stream: the same seed and index, the same device on every
 * host. Exported as `simDeviceKeys`, so that rules and commanders can name devices before the fleet starts.
 */
export function seededKeys (seed: number, index: number): KeyPair {
  return generateKeyPair(seededRandom(mixSeed(seed, 'identity', index)).bytes(32))
}

/** `preferred` when it is free, else a port the system picks (the broker needs a fixed port to restart on). */
async function freePort (host: string, preferred = 0): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (preferred !== 0 && err.code === 'EADDRINUSE') resolve(freePort(host, 0))
      else reject(err)
    })
    server.listen(preferred, host, () => {
      const port = (server.address() as { port: number }).port
      server.close(() => resolve(port))
    })
  })
}

export class Fleet extends TypedEmitter<FleetEvents> {
  readonly init: Required<Pick<FleetInit, 'devices' | 'mode' | 'fleet' | 'seed' | 'interval' | 'sensors' | 'transport' | 'host' | 'dialTarget'>> & FleetInit
  readonly devices: SimDevice[] = []
  /** Seeded loss, delay, duplication and partitions on every link of the fleet, memory or TCP. */
  readonly faults: FaultModel
  /** The same fault model on every MQTT connection of the fleet's devices (partitions cut them from the broker, too). */
  readonly mqttFaults: MqttFaults
  gateway: Gateway | undefined
  brokerUrl: string | undefined
  /** The simulated world (`init.world`), made at start. */
  world: World | undefined
  /** Distinct readings the gateway accepted, per origin, as ranges of sequence numbers (seq-set.ts). */
  readonly #delivered = new Map<DeviceId, SeqSet>()
  #deliveredCount = 0
  /** Readings not yet `settleMs` old, by key, with when they were published (insertion order is time order). */
  readonly #pending = new Map<string, number>()
  readonly #settledMissing = new Set<string>()
  #settledPublished = 0
  #settledDelivered = 0
  /** How long a reading has to reach the gateway before it counts in the delivery ratio (ms). */
  settleMs = 2000
  #network: MemoryNetwork | undefined
  /** Crashes are power cuts: the far ends of a crashed device's TCP connections hear nothing more (power-cut.ts). */
  readonly #power = new PowerCuts()
  #responder: MdnsResponder | undefined
  #brokerUp = false
  #started = 0
  /** Closed mode: the fleet's own keys and `init.roster`'s, by device id. */
  #roster: PublicKey[] | undefined
  readonly #clock: Clock
  readonly #lifecycle = new Lifecycle('fleet')
  readonly #credentials = new Map<number, Uint8Array | undefined>()
  /** With `shareVerification`: the one Ed25519 backend of every device and the gateway (per thread, with workers). */
  readonly #ed25519: SharedEd25519 | undefined
  /** With `workers` > 1: the worker threads that run the devices (this thread runs none). */
  #workers: FleetWorkers | undefined
  readonly #workerCount: number
  /** This fleet is a worker thread's share of a larger one (fleet-worker.ts). */
  readonly #thread: FleetThread | undefined

  constructor (init: FleetInit = {}, components: FleetComponents = {}, thread?: FleetThread) {
    super()
    this.init = { devices: 12, mode: 'hybrid', fleet: 'default', seed: 1, interval: 1000, sensors: 'temperature,humidity,battery', transport: 'tcp', host: '127.0.0.1', dialTarget: 3, ...init }
    this.#workerCount = resolveWorkers(init.workers)
    if (this.#workerCount > 1) checkWorkers(this.init, components)
    this.#thread = thread
    this.faults = createFaultModel({ seed: this.init.seed })
    this.#clock = components.clock ?? systemClock
    this.#ed25519 = init.shareVerification === true ? sharedEd25519(defaultEd25519) : undefined
    // The broker stands where the gateway does in a partition: its identity is the gateway's.
    this.mqttFaults = new MqttFaults(this.faults, seededKeys(this.init.seed, GATEWAY_INDEX).id, { clock: this.#clock })
  }

  get running (): boolean { return this.#lifecycle.live }
  get network (): MemoryNetwork | undefined { return this.#network }

  /**
   * Starts the responder, the gateway and the devices (shared/lifecycle.ts: a stop during start
   * wins and stops what had started; a failed start can be retried). Idempotent.
   */
  async start (options: { onProgress?: (started: number, total: number) => void, signal?: AbortSignal } = {}): Promise<void> {
    await this.#lifecycle.start(async (signal, defer) => { await this.#start(signal, defer, options.onProgress) }, { signal: options.signal })
  }

  async #start (signal: AbortSignal, defer: Defer, onProgress: ((started: number, total: number) => void) | undefined): Promise<void> {
    this.#started = this.#clock.now()
    this.devices.length = 0
    const { init } = this
    this.world = init.world === undefined ? undefined : new World(init.world, init.seed, init.devices, this.#clock.wall())
    const mdns = init.mdns ?? init.transport === 'tcp'
    // One process runs every device's timers: its links' delivery takes a share of the event loop
    // (mesh/links/turn.ts), not the fixed 4 ms sized for one device per process (issue 15).
    if (this.#workerCount > 1) this.#workers = new FleetWorkers(this.#workerCount, init.devices, init.firstIndex ?? 0)
    const bridge = this.#thread?.bridge ?? this.#workers?.bridge
    if (init.transport === 'memory') {
      const network = this.#network = createMemoryNetwork({}, { faults: this.faults, clock: this.#clock, turn: new Turn(SLICE_MS, { share: SLICE_SHARE }), ...(bridge === undefined ? {} : { bridge }) })
      defer('network', () => { network.close() })
    }
    this.#power.start()
    defer('power cuts', () => { this.#power.stop() })
    this.#roster = init.roster === undefined
      ? undefined
      : [...init.roster, seededKeys(init.seed, GATEWAY_INDEX).publicKey, ...Array.from({ length: init.devices }, (_, i) => seededKeys(init.seed, (init.firstIndex ?? 0) + i).publicKey)]
    if (mdns) {
      const responder = this.#responder = createMdnsResponder({}, { clock: this.#clock, random: seededRandom(mixSeed(init.seed, 'random', 'mdns')) })
      defer('responder', async () => { await responder.stop() })
      await responder.start()
    }
    if (init.gateway !== false) {
      const extra = typeof init.gateway === 'object' ? init.gateway : {}
      const port = init.mode === 'mesh' ? 0 : await freePort(init.host, init.mqttPort)
      const gatewayKeys = seededKeys(init.seed, GATEWAY_INDEX)
      const gateway = this.gateway = await createGateway({
        fleet: init.fleet,
        host: init.host,
        port,
        wsPort: false,
        // 48 links, as the devices: in one process all links come from one address, which eviction (mesh/links/eviction.ts) takes for one
        // peer's many links: with 12 slots the gateway evicted honest devices, each cut off until the gateway's next declaration.
        mesh: init.mode === 'broker' ? false : { host: init.host, mdns, dialTarget: this.#configuredLinks ? 0 : init.dialTarget, maxLinks: 48, link: init.link, routing: init.routing, credential: init.enrollment?.credential(gatewayKeys, -1) },
        ...(this.#roster === undefined ? {} : { roster: this.#roster }),
        ...(init.enrollment === undefined ? {} : { fleetPolicy: init.enrollment.policy }),
        ...extra
      }, {
        keys: gatewayKeys,
        clock: this.#clock,
        random: seededRandom(mixSeed(init.seed, 'random', 'gateway')),
        responder: this.#responder,
        transport: this.#network === undefined ? undefined : this.#transportFor(gatewayKeys),
        ...(this.#ed25519 === undefined ? {} : { ed25519: this.#ed25519 })
      })
      defer('gateway', async () => { await gateway.stop() })
      this.#brokerUp = true
      if (gateway.ports.mqtt !== undefined) this.brokerUrl = `mqtt://${init.host}:${gateway.ports.mqtt}`
      gateway.on('reading', (r) => {
        if (r.deviceTopic === LINKS_TOPIC) return // topology announcements, not sensor readings
        let seqs = this.#delivered.get(r.origin)
        if (seqs === undefined) this.#delivered.set(r.origin, seqs = new SeqSet())
        if (!seqs.add(r.seq)) return
        this.#deliveredCount++
        if (this.#settledMissing.delete(`${r.origin}/${r.seq}`)) this.#settledDelivered++
        this.emit('delivered', { origin: r.origin, seq: r.seq, path: r.path, receivedAt: r.receivedAt })
      })
    }
    if (this.gateway === undefined && init.broker !== undefined) this.brokerUrl = init.broker
    const workers = this.#workers
    if (workers !== undefined) {
      defer('workers', async () => { await workers.stop() })
      await workers.start(init, this.gateway?.mesh?.address, this.brokerUrl, {
        reading: (device, origin, seq, at) => { this.#published(device, origin as DeviceId, seq, at, Math.round(performance.timeOrigin + at)) },
        progress: (started) => { onProgress?.(started, init.devices) },
        error: (err) => { this.emit('fault', { kind: 'worker-error', detail: err.message }) }
      }, signal)
      return
    }
    for (let i = 0; i < init.devices; i++) {
      const global = this.#thread === undefined ? (init.firstIndex ?? 0) + i : this.#thread.first + this.#fleetIndex(i)
      const keys = seededKeys(init.seed, global)
      const sim: SimDevice = {
        index: i,
        name: `sim-${String(global).padStart(3, '0')}`,
        keys,
        sequence: memorySequence(Math.floor(this.#clock.wall() * 1000)),
        outbox: createMemoryOutbox({ paths: deliveryPaths(init.mode) }),
        device: undefined,
        state: 'starting',
        published: 0,
        restarts: 0
      }
      this.devices.push(sim)
    }
    defer('devices', async () => {
      const stopped = await Promise.allSettled(this.devices.map(async (d) => { d.state = 'stopped'; await d.device?.stop() }))
      const failed = stopped.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
      if (failed.length > 0) throw new AggregateError(failed.map((r) => r.reason as unknown), `${failed.length} devices failed to stop`)
    })
    // Start in small batches: hundreds of devices probing DNS-SD names at once would flood the responder.
    // A fixed topology over TCP: one at a time, so that each device dials ports already listening.
    const batch = this.#fixed && this.#network === undefined ? 1 : 16
    for (let i = 0; i < this.devices.length && !signal.aborted; i += batch) {
      await Promise.all(this.devices.slice(i, i + batch).map(async (d) => { await this.#startDevice(d) }))
      onProgress?.(Math.min(i + batch, this.devices.length), this.devices.length)
    }
  }

  async #startDevice (sim: SimDevice): Promise<void> {
    const { init } = this
    const mdns = init.mdns ?? init.transport === 'tcp'
    const peers = this.#fixed || (this.#network !== undefined && !mdns) ? this.#memoryPeers(sim) : []
    const world = this.world?.wires(sim.index) === true ? { sensors: this.world.sensorsOf(sim.index) } : {}
    const device = new Device({
      ...init.roles?.[sim.index],
      name: sim.name,
      fleet: init.fleet,
      mode: init.mode,
      interval: init.roles?.[sim.index]?.interval ?? init.interval,
      ...(init.enrollment === undefined ? {} : { fleetFile: init.enrollment.policy, credential: this.#credential(sim) }),
      sensors: init.sensors,
      sensorOptions: { seed: init.seed, device: this.#fleetIndex(sim.index) },
      ...(this.brokerUrl === undefined || init.mode === 'mesh' ? {} : { broker: { url: this.brokerUrl, reconnect: { initial: 200, max: 2000 } } }),
      // Each device dials `dialTarget` random earlier ones, so the oldest collect about
      // dialTarget * ln(N) inbound links (≈ 21 for 1,000 devices): room for them, above the default 12.
      mesh: {
        host: this.#network === undefined ? init.host : sim.name,
        port: this.#network === undefined ? undefined : MEMORY_PORT,
        mdns,
        dialTarget: this.#configuredLinks ? 0 : init.dialTarget,
        peers,
        maxLinks: 48,
        rotateInterval: this.#configuredLinks ? 0 : init.rotateInterval ?? 10_000,
        link: init.link,
        routing: init.routing,
        ...(this.#roster === undefined ? {} : { roster: this.#roster })
      },
      announceLinks: 15_000
    }, {
      keys: sim.keys,
      sequence: sim.sequence,
      outbox: sim.outbox,
      ...(init.transport === 'tcp' && init.nodeTransport === true ? {} : { transport: this.#transportFor(sim.keys) }), // nodeTransport: the node's own
      connect: this.mqttFaults.connectFor(sim.keys.id),
      responder: this.#responder,
      clock: this.#clock,
      random: seededRandom(mixSeed(init.seed, 'random', this.#fleetIndex(sim.index), sim.restarts)),
      logger: silentLogger,
      ...(this.#ed25519 === undefined ? {} : { ed25519: this.#ed25519 }),
      ...world
    })
    device.on('reading', (r) => {
      sim.published++
      this.#published(this.#fleetIndex(sim.index), sim.keys.id, r.seq, this.#clock.now(), r.time)
    })
    device.on('warning', () => {})
    sim.device = device
    await device.start()
    this.world?.attach(sim.index, device, () => this.#clock.wall())
    sim.state = 'up'
  }

  /** A reading made (here or in a worker thread, `at` on this thread's clock): it waits to be settled. */
  #published (device: number, origin: DeviceId, seq: number, at: number, time: number): void {
    this.#pending.set(`${origin}/${seq}`, at)
    if (this.#pending.size % 1024 === 0) this.#settle() // bounded even when nobody asks for stats()
    this.emit('reading', { device, origin, seq, time })
  }

  /**
   * With memory links and no DNS-SD, each device links to a few random earlier ones (a connected
   * random graph), by their fixed addresses (`<name>:7000`), whether or not they have started yet:
   * a dial to one not yet listening is retried with backoff.
   */
  #memoryPeers (sim: SimDevice): string[] {
    const peers: string[] = []
    if (this.#thread !== undefined) return this.#threadPeers(sim, this.#thread)
    const gateway = this.gateway?.mesh?.address
    // Over TCP the earlier neighbours are listening already (a fixed TCP fleet starts one device at a time).
    const addressOf = (i: number): string => this.#network === undefined ? `${this.init.host}:${this.devices[i]?.device?.node?.address?.port ?? 0}` : `${this.devices[i]?.name as string}:${MEMORY_PORT}`
    if (this.#fixed) return fixedPeers(this.init.topology as 'line' | 'grid', sim.index, this.init.devices, addressOf, gateway)
    // The first few devices link to the gateway; the rest reach it through them (as on a LAN).
    if (gateway !== undefined && sim.index < this.init.dialTarget) peers.push(`${gateway.host}:${gateway.port}`)
    const random = seededRandom(mixSeed(this.init.seed, 'peers', sim.index))
    for (let k = 0; k < Math.min(this.init.dialTarget, sim.index); k++) {
      peers.push(`${this.devices[Math.floor(random.float() * sim.index)]?.name as string}:${MEMORY_PORT}`)
    }
    return [...new Set(peers)]
  }

  /**
   * In a worker thread, as #memoryPeers does in a fleet of one thread but by global index (the
   * names of devices in other threads): the same links whatever the number of threads.
   */
  #threadPeers (sim: SimDevice, { gateway, first }: FleetThread): string[] {
    const index = this.#fleetIndex(sim.index)
    const peers: string[] = []
    if (gateway !== undefined && index < this.init.dialTarget) peers.push(`${gateway.host}:${gateway.port}`)
    const random = seededRandom(mixSeed(this.init.seed, 'peers', index))
    for (let k = 0; k < Math.min(this.init.dialTarget, index); k++) {
      peers.push(`sim-${String(first + Math.floor(random.float() * index)).padStart(3, '0')}:${MEMORY_PORT}`)
    }
    return [...new Set(peers)]
  }

  /** A device's index in the whole fleet: in a worker thread, where the fleet dealt it (threads.ts); else its own. */
  #fleetIndex (local: number): number {
    return this.#thread === undefined ? local : this.#thread.offset + local * this.#thread.stride
  }

  /**
   * Links given, not discovered: a line or a grid, or memory links without DNS-SD (each device's
   * random earlier ones). Nodes then dial their configured peers only: no peer-exchange dialling,
   * no rotation (a HELLO names its sender's port, so peer exchange would otherwise add every
   * neighbour's neighbours and swap links every 10 s, a different graph from the one `topology` says).
   */
  get #configuredLinks (): boolean { return this.#fixed || (this.#network !== undefined && !(this.init.mdns ?? this.init.transport === 'tcp')) }

  /** A line or a grid without DNS-SD (memory links, or TCP with `mdns: false`): fixed links only. */
  get #fixed (): boolean { return (this.init.topology ?? 'random') !== 'random' && !(this.init.mdns ?? this.init.transport === 'tcp') }

  /** A member's credential, made once (a restart shows the same one). */
  #credential (sim: SimDevice): Uint8Array | undefined {
    return this.#credentials.get(sim.index) ?? this.#credentials.set(sim.index, this.init.enrollment?.credential(sim.keys, sim.index)).get(sim.index)
  }

  /** A device's transport, under the fleet's fault model (the memory network applies it itself). */
  #transportFor (keys: KeyPair): Transport {
    // Closed mode: the handshake refuses a peer outside the roster (as MeshNode's own TCP transport does).
    const roster = this.#roster === undefined ? undefined : new Set(this.#roster.map((pk) => deviceIdFromPublicKey(pk)))
    const link = { ...this.init.link, ...(roster === undefined ? {} : { authorize: (remote: { id: DeviceId }) => roster.has(remote.id) }) }
    return this.#network !== undefined
      ? this.#network.createTransport(link, { keys, clock: this.#clock })
      : this.#power.own(applyFaults(createTcpTransport(link, { keys, clock: this.#clock }), this.faults), keys.id)
  }

  // ---- faults --------------------------------------------------------------------------------

  /**
   * Crashes a device as a power cut does: no DNS-SD goodbye, no offline status, and over TCP no
   * close frame, FIN or RST reaches its mesh peers or the broker (power-cut.ts): they find it gone
   * by keepalive, and the broker then publishes its last will. With in-memory links its links
   * still close at once. What it keeps on "disk" (sequence numbers, outbox) it keeps.
   */
  async crash (index: number): Promise<void> {
    this.#notAcrossThreads('crash')
    const sim = this.#sim(index)
    if (sim.state !== 'up') return
    sim.state = 'crashed'
    this.#power.cut(sim.keys.id, sim.device?.node?.address?.port, this.mqttFaults.socketsOf(sim.keys.id))
    await sim.device?.crash()
    this.world?.powerCut(index, this.#clock.wall())
    sim.device = undefined
    this.emit('fault', { kind: 'crash', detail: sim.name })
  }

  /** Restarts a crashed device with what it had on "disk": its key, sequence numbers and outbox. */
  async restart (index: number): Promise<void> {
    this.#notAcrossThreads('restart')
    const sim = this.#sim(index)
    // Not once the fleet has stopped: stop() would not see a device started after it.
    if (!this.#lifecycle.live || (sim.state !== 'crashed' && sim.state !== 'stopped')) return
    sim.state = 'starting'
    sim.restarts++
    await this.#startDevice(sim)
    this.emit('fault', { kind: 'restart', detail: sim.name })
  }

  async stopBroker (): Promise<void> {
    if (this.gateway?.embedsBroker !== true || !this.#brokerUp) return
    this.#brokerUp = false
    await this.gateway.stopBroker()
    this.emit('fault', { kind: 'broker-stop', detail: this.brokerUrl ?? '' })
  }

  async startBroker (): Promise<void> {
    if (this.gateway?.embedsBroker !== true || this.#brokerUp) return
    await this.gateway.startBroker()
    this.#brokerUp = true
    this.emit('fault', { kind: 'broker-start', detail: this.brokerUrl ?? '' })
  }

  /**
   * Splits the devices into groups (by index), in place of any partition before; the gateway
   * and its broker join the first group; a device in no group reaches no one. The cut is the
   * same for every protocol, as a failed switch: mesh links and MQTT connections across it are
   * destroyed at once, and new ones across it are refused until `heal()` (mqtt-faults.ts).
   */
  partition (groups: number[][]): void {
    this.#notAcrossThreads('partition')
    const ids = groups.map((g) => g.map((i) => this.#sim(i).keys.id))
    ids[0]?.push(this.mqttFaults.brokerId)
    if (this.gateway?.mesh !== undefined && this.gateway.mesh.id !== this.mqttFaults.brokerId) ids[0]?.push(this.gateway.mesh.id)
    this.faults.heal()
    this.faults.partition(ids, { rest: 'isolated' })
    for (const node of this.#nodes()) {
      for (const [peer, link] of [...node.links]) if (this.faults.blocked(node.id, peer)) link.destroy()
    }
    this.mqttFaults.sever()
    this.emit('fault', { kind: 'partition', detail: groups.map((g) => g.length).join('/') })
  }

  heal (): void {
    this.#notAcrossThreads('heal')
    this.faults.heal()
    this.emit('fault', { kind: 'heal', detail: '' })
  }

  /** Changes the seeded loss, delay or duplication (the others stay) on every link, open or still to come. */
  linkFaults (faults: LinkFaults): void {
    this.#notAcrossThreads('link faults')
    this.faults.configure(faults)
    this.emit('fault', { kind: 'link-faults', detail: JSON.stringify(this.faults.settings) })
  }

  skew (index: number, ms: number): void {
    this.#notAcrossThreads('skew')
    const device = this.#sim(index).device
    if (device !== undefined) device.skewMs = ms
    this.emit('fault', { kind: 'skew', detail: `${this.#sim(index).name} ${ms} ms` })
  }

  /** Device faults reach devices in this thread only: with workers they are refused, with a stable code. */
  #notAcrossThreads (fault: string): void {
    if (this.#workerCount > 1) throw meshError('ERR_BAD_ARGUMENT', `${fault} is not supported in a fleet split over worker threads (workers: ${this.#workerCount}); run it with workers: 1 (iotmesh sim without --workers)`, { details: { fault, workers: this.#workerCount } })
  }

  // ---- state ---------------------------------------------------------------------------------

  delivered (origin: DeviceId, seq: number): boolean { return this.#delivered.get(origin)?.has(seq) ?? false }

  /** Readings published at least `settleMs` ago leave #pending: counted delivered, or missing. */
  #settle (): void {
    const boundary = this.#clock.now() - this.settleMs
    for (const [key, at] of this.#pending) {
      if (at > boundary) break
      this.#pending.delete(key)
      this.#settledPublished++
      const slash = key.indexOf('/')
      if (this.delivered(key.slice(0, slash) as DeviceId, Number(key.slice(slash + 1)))) this.#settledDelivered++
      else this.#settledMissing.add(key)
    }
  }

  stats (): FleetStats {
    this.#settle()
    const parts = this.#workers?.snapshots.map((s) => s.stats) ?? []
    const published = this.devices.reduce((a, d) => a + d.published, 0) + (this.#workers?.published ?? 0)
    const elapsedS = (this.#clock.now() - this.#started) / 1000
    const dropped: Record<string, number> = this.gateway?.counters.dropped ?? {}
    return {
      elapsedS,
      devices: this.#workers === undefined ? this.devices.length : this.init.devices,
      devicesUp: this.devices.filter((d) => d.state === 'up').length + parts.reduce((a, p) => a + p.devicesUp, 0),
      published,
      atGateway: this.#deliveredCount,
      deliveryRatio: this.#settledPublished === 0 ? 1 : this.#settledDelivered / this.#settledPublished,
      settled: this.#settledPublished,
      missing: this.#settledMissing.size,
      readingsPerS: elapsedS > 0 ? published / elapsedS : 0,
      // Link ends in every thread: a link across threads has one end in each.
      links: ([...this.#nodes()].reduce((a, n) => a + n.links.size, 0) + (this.#workers?.snapshots.reduce((a, s) => a + s.flow.links.open, 0) ?? 0)) / 2,
      // A reading that arrives both ways (hybrid) is dropped the second time as a duplicate: not a reject.
      rejects: Object.entries(dropped).reduce((a, [reason, n]) => reason === 'duplicate' ? a : a + n, 0),
      brokerUp: this.#brokerUp,
      partitioned: this.faults.partitioned,
      verification: this.#ed25519 === undefined ? 'per-device' : 'shared',
      ...(this.#ed25519 === undefined ? {} : { sharedChecks: mergeChecks([this.#ed25519.counters, ...parts.map((p) => p.sharedChecks)]) }),
      ...(this.#workers === undefined ? {} : { workers: this.#workers.count })
    }
  }

  /**
   * Drops by step and code, and what still waits (flow.ts): what explains a delivery ratio below 1.
   * With workers, their parts as of the last `refresh()` (or their last answer).
   */
  flow (): FleetFlow {
    const here = fleetFlow(this.devices, this.#nodes(), this.gateway)
    return this.#workers === undefined ? here : mergeFlows([here, ...this.#workers.snapshots.map((s) => s.flow)])
  }

  /** With workers: asks each for its stats and flow, so that the next stats() and flow() are current. Without: nothing to do. */
  async refresh (): Promise<void> {
    await this.#workers?.refresh()
  }

  * #nodes (): Iterable<NonNullable<Device['node']>> {
    for (const d of this.devices) if (d.device?.node !== undefined) yield d.device.node
    if (this.gateway?.mesh !== undefined) yield this.gateway.mesh
  }

  #sim (index: number): SimDevice {
    const sim = this.devices[index]
    if (sim === undefined) throw new RangeError(`no device ${index} in a fleet of ${this.devices.length}`)
    return sim
  }

  /** Stops every device, the gateway and the responder; every step runs, failures are reported together. Idempotent. */
  async stop (): Promise<void> {
    await this.#lifecycle.stop()
  }

  /** Readings and deliveries of devices still winding down after stop() are not the fleet's; faults the caller applied always are. */
  protected override emit<K extends keyof FleetEvents & string> (event: K, ...args: FleetEvents[K]): boolean {
    if (event !== 'fault' && !this.#lifecycle.live) return false
    return super.emit(event, ...args)
  }

  async [Symbol.asyncDispose] (): Promise<void> { await this.stop() }
}

/** Starts a simulated fleet of devices in this process (with a gateway unless told not to), whose faults are set off by calls. */
export async function createFleet (init: FleetInit = {}, options: { onProgress?: (started: number, total: number) => void, signal?: AbortSignal } = {}, components: FleetComponents = {}): Promise<Fleet> {
  const fleet = new Fleet(init, components)
  await fleet.start(options)
  return fleet
}

/** What a fleet split over worker threads cannot do (yet): refused before anything starts. */
function checkWorkers (init: Fleet['init'], components: FleetComponents): void {
  const refuse = (what: string): never => { throw meshError('ERR_BAD_ARGUMENT', `a fleet split over worker threads (workers: ${String(init.workers)}) ${what}; use workers: 1`) }
  // Memory links cross threads over MessagePorts and find peers through the fleet (no DNS-SD); TCP links need no bridge, and
  // their devices find each other as on a LAN: each worker's own mDNS responder, multicast on the host (DNS-SD only).
  if (init.transport === 'memory' && init.mdns === true) refuse('on memory links finds peers without DNS-SD only (mdns: false)')
  if (init.transport === 'tcp' && init.mdns === false) refuse('over TCP finds peers with DNS-SD only (mdns: true, the default)')
  if (init.nodeTransport === true) refuse('runs on the fleet\'s transport only (no nodeTransport)')
  if ((init.topology ?? 'random') !== 'random') refuse('links devices at random only (no line or grid topology)')
  if (init.roles !== undefined || init.world !== undefined) refuse('runs no roles and no world (they live in one thread)')
  if (init.roster !== undefined || init.enrollment !== undefined) refuse('is open only (no roster, no enrollment)')
  if (components.clock !== undefined) refuse('runs on the system clock only')
}
