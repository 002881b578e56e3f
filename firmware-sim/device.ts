import { join } from 'node:path'
import {
  GRANTS_TARGET, Lifecycle, configTargetsOf, encodeFrame, type Defer, every, meshError, systemClock, systemRandom, type Clock, type DeviceId, type FleetConfig, type FleetPolicy, type PublicKey, type SenmlRecord, type ReaderGrants
} from '../shared/index.js'
import { MeshNode, TypedEmitter } from '../mesh/index.js'
import { deliveryPaths, type DeviceMode } from './config.js'
import { AckBook } from './device/acks.js'
import { openDeviceCommands, resultIssuer, type DeviceCommands } from './device/commands.js'
import { keepRevocations, loadFleetPolicy, loadRevocations } from './device/revocations.js'
import { fleetFileInForce, keepFleetFiles } from './device/fleet-files.js'
import { CONFIG_TOPIC, SignedConfig, type ConfigState } from './device/signed-config.js'
import { encryptionFor, loadReaderGrants } from './device/encrypt.js'
import { loadCredential, watchRefusals } from './device/credential.js'
import { openDeviceGrants, type DeviceGrants, type GrantCounters } from './device/grants.js'
import { brokerRevocationKeeper } from './device/broker-revocations.js'
import { brokerFleetChain, brokerFleetFiles } from './device/broker-fleet-files.js'
import { batchByTopic, type Batch } from './device/batch.js'
import { BrokerPath } from './device/paths/broker.js'
import { MeshPath } from './device/paths/mesh.js'
import { Pump } from './device/pump.js'
import { openDeviceState, type DeviceState } from './device/state.js'
import type {
  DeviceComponents, DeviceCounters, DeviceEvents, DeviceInit, PathCounters, PathSender, ReadingEvent
} from './device/types.js'
import type { DeliveryPath } from './outbox/types.js'
import { createSensors, readSensors } from './sensors/registry.js'
import { TELEMETRY_TOPIC, stderrLogger, type Sensor, type SensorLogger } from './sensors/types.js'

/** Frames a device may have handed to its outbox and not yet seen written before it skips intervals (about 3 s at 100 ms). */
export const MAX_WRITES_IN_FLIGHT = 32

/**
 * The device runtime: every `interval` ms it reads its sensors, signs each topic's records into
 * one frame (COSE_Sign1 + SenML, shared/frame.ts) with its own key and sequence numbers, puts the
 * frame in its outbox, and delivers it on every path of its mode:
 *
 *   mesh     peer to peer only, through its MeshNode (device/paths/mesh.ts)
 *   broker   MQTT only, QoS 1, with last will and retained status (device/paths/broker.ts)
 *   hybrid   both, the same signed bytes on each; receivers deduplicate by (origin, seq)
 *
 * Choices:
 * - A frame is signed once, here (not by MeshNode.publish), and enters the mesh through
 *   `router.inject`; the node shares the device's sequence source, so the few frames the node
 *   signs itself (the `mesh/links` announcements, sent only when the mesh backlog is empty) never
 *   reuse a number.
 * - No reading is lost to a dead path: a frame leaves the outbox only once every path took it
 *   (device/pump.ts); a path that comes back gets its backlog oldest first, paced by a token
 *   bucket (`drain`). Only the outbox's bound drops frames (the oldest, counted).
 * - Sequence numbers never repeat, across restarts and crashes (device/state.ts).
 * - Acks are made durable in batches (device/acks.ts), so a crash repeats at most the frames
 *   acknowledged since the last flush; receivers drop those as duplicates (QoS 1 is at least once).
 * - `skewMs` shifts the sampling clock (fault injection: a device whose clock is wrong).
 */
export class Device extends TypedEmitter<DeviceEvents> {
  readonly fleet: string
  readonly mode: DeviceMode
  readonly paths: readonly DeliveryPath[]
  readonly #init: DeviceInit
  readonly #components: DeviceComponents
  /** The owner-signed reader grant list (init.encrypt): readings on its topics are encrypted to its readers. */
  #readerGrants: ReaderGrants | undefined
  readonly #clock: Clock
  readonly #now: () => number
  readonly #interval: number
  readonly #stopTimeout: number
  readonly #logger: SensorLogger
  readonly #senders = new Map<DeliveryPath, PathSender>()
  readonly #pumps = new Map<DeliveryPath, Pump>()
  readonly #pathCounts = new Map<DeliveryPath, Omit<PathCounters, 'up' | 'pending'>>()
  readonly #counts = { samples: 0, skipped: 0, readings: 0, records: 0, errors: 0 }
  readonly #lifecycle = new Lifecycle('device')
  /** True while sampling runs: from the end of start until teardown begins. */
  #samplingOn = false
  #store: DeviceState | undefined
  #sensors: readonly Sensor[] = []
  #node: MeshNode | undefined
  #meshPath: MeshPath | undefined
  #brokerPath: BrokerPath | undefined
  #acks: AckBook | undefined
  #commands: DeviceCommands | undefined
  /** The sample being taken: resolves once its frames are signed and handed to the outbox (not when they are durable). */
  #sampling: Promise<void> | undefined
  /** Frames handed to the outbox and not yet in it (a disk outbox's write and fsync), at most MAX_WRITES_IN_FLIGHT. */
  readonly #writes = new Set<Promise<unknown>>()
  #skewMs: number
  #signedConfig: SignedConfig | undefined
  /** An enrolled device's owner-signed grants for commands (device/grants.ts). */
  #grants: DeviceGrants | undefined
  #considering = Promise.resolve()
  #stopInterval: (() => void) | undefined
  #currentInterval = 0
  #credential: Uint8Array | undefined
  /** A broker-only device's fleet file in force (from its start, then the newer ones retained at the broker). */
  #brokerPolicy: FleetPolicy | undefined

  constructor (init: DeviceInit = {}, components: DeviceComponents = {}) {
    super()
    this.#init = init
    this.#components = components
    this.mode = init.mode ?? 'mesh'
    if (!['mesh', 'broker', 'hybrid'].includes(this.mode)) throw meshError('ERR_BAD_ARGUMENT', `device mode must be mesh, broker or hybrid, got ${JSON.stringify(this.mode)}`)
    if (this.mode !== 'mesh' && init.broker === undefined) throw meshError('ERR_BAD_ARGUMENT', `a device in ${this.mode} mode needs a broker URL`)
    this.fleet = init.fleet ?? 'default'
    this.paths = deliveryPaths(this.mode)
    this.#interval = init.interval ?? 10_000
    if (!Number.isSafeInteger(this.#interval) || this.#interval < 1) throw meshError('ERR_BAD_ARGUMENT', `device interval must be an integer number of ms ≥ 1, got ${init.interval}`)
    this.#stopTimeout = init.stopTimeout ?? 2000
    this.#skewMs = checkSkew(init.skewMs ?? 0)
    this.#clock = components.clock ?? systemClock
    this.#now = components.now ?? (() => this.#clock.wall())
    const base = components.logger ?? stderrLogger
    this.#logger = {
      warn: (message, notice) => {
        base.warn(message, notice)
        if (notice.event === 'absent' && this.#emitting) this.emit('sensor:absent', notice)
      },
      info: (message, notice) => { (base.info ?? base.warn).call(base, message, notice) }
    }
    for (const path of this.paths) this.#pathCounts.set(path, { delivered: 0, refused: 0, unwanted: 0, failed: 0 })
  }

  /** The device id (after start). */
  get id (): DeviceId { return this.#started().keys.id }
  get publicKey (): PublicKey { return this.#started().keys.publicKey }
  get name (): string { return this.#init.name ?? `iotmesh-${this.id.slice(0, 8)}` }
  /** True when start() created the key file. */
  get keyCreated (): boolean { return this.#store?.keyCreated ?? false }
  get keyFile (): string | undefined { return this.#store?.keyFile }
  /** Its enrollment credential, if it has one (after start). */
  get credential (): Uint8Array | undefined { return this.#credential }
  /** The mesh node (mesh and hybrid mode, after start). */
  get node (): MeshNode | undefined { return this.#node }
  /** The fleet file in force (after start, with `fleetFile`): the one given, or a newer signed one taken since (by the mesh or from the broker). */
  get fleetPolicy (): FleetPolicy | undefined { return this.#node?.fleetPolicy ?? this.#brokerPolicy }
  get running (): boolean { return this.#lifecycle.started }
  /** Clock skew applied to sampling times, ms; may be changed while running. */
  get skewMs (): number { return this.#skewMs }
  set skewMs (ms: number) { this.#skewMs = checkSkew(ms) }

  get counters (): DeviceCounters {
    const stats = this.#store?.outbox.stats() ?? { frames: 0, bytes: 0, pending: {}, highWater: 0, dropped: 0, discarded: 0 }
    const paths: DeviceCounters['paths'] = {}
    for (const path of this.paths) {
      paths[path] = { up: this.#senders.get(path)?.up ?? false, pending: stats.pending[path] ?? 0, ...(this.#pathCounts.get(path) as Omit<PathCounters, 'up' | 'pending'>) }
    }
    const mesh = paths.mesh
    if (mesh !== undefined && this.#meshPath !== undefined) {
      mesh.awaitingAck = this.#meshPath.acks.waiting
      mesh.durableSubscribers = this.#meshPath.acks.durable
      mesh.reoffered = this.#meshPath.acks.reoffered
    }
    const commands = this.#commands === undefined ? {} : { commands: this.#commands.counters }
    return { ...this.#counts, links: this.#meshPath?.links ?? 0, paths, outbox: stats, ...commands }
  }

  /**
   * Opens the state, starts the paths and the sampling (shared/lifecycle.ts: a stop during start
   * wins; a failed start closes what it opened and can be retried). Idempotent.
   */
  async start (options: { signal?: AbortSignal } = {}): Promise<void> {
    await this.#lifecycle.start(async (signal, defer) => { await this.#start(signal, defer) }, options)
  }

  /** Where owner-signed configuration stands (with a fleet file; device/signed-config.ts): version applied, last refusal. */
  get configState (): ConfigState | undefined { return this.#signedConfig?.state }

  /** An enrolled device's grant policy for commands (device/grants.ts): the version held (undefined: none, the commanders file decides) and its counters. */
  get grantState (): { version: number | undefined, counters: GrantCounters } | undefined { return this.#grants?.state }

  /** The sampling interval in force, ms (a signed configuration may change it while the device runs). */
  get interval (): number { return this.#currentInterval === 0 ? this.#interval : this.#currentInterval }

  /** The actuators' state (empty without actuators). */
  get actuatorState (): Record<string, boolean | number> { return this.#commands?.executor?.state() ?? {} }

  /** Samples now, outside the interval; resolves with the frames it signed. */
  async sample (): Promise<ReadingEvent[]> {
    if (!this.#samplingOn) throw meshError('ERR_ABORTED', 'the device is not running')
    await this.#sampling
    return await this.#tick() ?? []
  }

  /**
   * Stops sampling, lets frames in flight settle, says goodbye on every path, closes what it
   * opened. Every step runs even when one fails; failures are reported together. Idempotent.
   */
  async stop (): Promise<void> {
    await this.#lifecycle.stop()
  }

  /**
   * Dies as a crashed device does (fault injection): sampling stops, frames in flight are
   * abandoned, the MQTT connection is dropped without a goodbye so the broker publishes the last
   * will, the DNS-SD announcement is withdrawn without a goodbye (peers keep it until its records
   * expire), and acks not yet durable are forgotten (those frames go again after a restart). Mesh
   * links still close with a FIN, which a power cut would not send. What a
   * real device keeps on disk, it keeps: start a new Device on the same state. Idempotent.
   * (A stop whose signal is aborted: every teardown step takes the forceful way.)
   */
  async crash (): Promise<void> {
    await this.#lifecycle.stop({ signal: AbortSignal.abort() }).catch(() => {})
  }

  async [Symbol.asyncDispose] (): Promise<void> { await this.stop() }

  get #emitting (): boolean { return this.#lifecycle.live }

  #started (): DeviceState {
    if (this.#store === undefined) throw meshError('ERR_ABORTED', 'the device has not started: await start() (or createDevice) first')
    return this.#store
  }

  /** Brings the device up, `defer`ring each thing's teardown as it opens it (undone in reverse). */
  async #start (signal: AbortSignal, defer: Defer): Promise<void> {
    const init = this.#init
    const components = this.#components
    this.#senders.clear()
    this.#pumps.clear()
    if (init.encrypt !== undefined) {
      if (init.fleetFile === undefined) throw meshError('ERR_BAD_ARGUMENT', 'encrypting readings needs the fleet file (--fleet-file): the reader grant list is checked against its owners')
      this.#readerGrants = await loadReaderGrants(init.encrypt.readers, await loadFleetPolicy(init.fleetFile))
    }
    const store = this.#store = await openDeviceState({ ...init, paths: [...this.paths] }, { ...components, now: this.#now })
    if (store.ownsOutbox) defer('outbox', async () => { await store.outbox.close() })
    // With a fleet file (the one given, or the newest signed one the mesh brought before a restart: device/fleet-files.ts), the owner-signed configuration kept on disk is laid over this device's own before anything starts.
    const given = init.fleetFile === undefined ? undefined : await loadFleetPolicy(init.fleetFile)
    const { policy, fleetFiles } = await fleetFileInForce(given, init.dataDir, components.ed25519)
    const signed = this.#signedConfig = policy === undefined
      ? undefined
      : await SignedConfig.open({ policy, dataDir: init.dataDir, targets: configTargetsOf(store.keys.id, init.groups), rules: this.paths.includes('mesh') }, pick(components, ['ed25519']))
    const remote = signed?.settings ?? {}
    this.#credential = await loadCredential(init.credential, init.dataDir)
    // An enrolled device (a fleet file and a credential) takes who may command it from the owners' grant policy.
    const grants = this.#grants = policy === undefined || this.#credential === undefined
      ? undefined
      : await openDeviceGrants({ policy, credential: this.#credential, id: store.keys.id, groups: init.groups, dataDir: init.dataDir },
        { node: () => this.#node, clock: this.#clock, ed25519: components.ed25519 })
    if (components.sensors !== undefined) {
      this.#sensors = components.sensors
    } else {
      const random = components.random ?? systemRandom
      const options = { ...init.sensorOptions, seed: init.sensorOptions?.seed ?? Math.floor(random.float() * 0x1_0000_0000) }
      const sensors = this.#sensors = createSensors(remote.sensors ?? init.sensors ?? 'sim', options, { logger: this.#logger })
      defer('sensors', async () => { await settleAll(sensors.map(async (s) => { await s.close() })) })
    }
    const rules = remote.rules ?? init.rules
    if (rules !== undefined && !this.paths.includes('mesh')) throw meshError('ERR_BAD_ARGUMENT', 'rules run on devices over the mesh: use mode mesh or hybrid (in broker mode, run them at the gateway: iotmesh gateway --rules)')
    const commands = this.#commands = await openDeviceCommands({ ...pick({ ...init, ...pick(remote, ['actuators', 'rules']) }, ['commanders', 'actuators', 'rules', 'dataDir']), rate: init.commandRate, fleet: this.fleet,
      ...(grants === undefined ? {} : { grants: (file) => { grants.commanders.fallback = file; return grants.commanders } }) }, {
      keys: store.keys,
      clock: this.#clock,
      ...pick(components, ['ed25519']),
      onState: (records) => { void this.#publishNow(records) },
      onOutcome: (outcome) => { if (outcome.command !== undefined && this.#emitting) this.emit('command', { ...outcome, command: outcome.command }) },
      onWarning: (error) => { this.#warn('commands', error) }
    })
    if (commands?.executor !== undefined && commands.records().length > 0) {
      // The actuators' state goes out with every sample, as one more sensor (and at once after each change: #publishNow).
      const actuators: Sensor = { name: 'actuators', fields: commands.records().map((r) => r.n as string), topic: TELEMETRY_TOPIC, read: () => commands.records(), close: () => {} }
      this.#sensors = [...this.#sensors, actuators]
    }
    const acks = this.#acks = new AckBook({
      outbox: store.outbox,
      policy: init.fsync ?? 'always',
      clock: this.#clock,
      onDurable: (path, seq, outcome) => { if (outcome === 'delivered' && this.#emitting) this.emit('delivered', { path, seq }) },
      onError: (error) => { this.#warn('outbox', error) }
    })
    defer('acks', async () => { await acks.close() })
    if (this.paths.includes('mesh')) {
      const transport = typeof components.transport === 'function' ? components.transport(store.keys) : components.transport
      // With a fleet file the node takes, spreads and enforces revocations, starting from those kept on disk.
      const configs = [signed?.bytes, grants?.bytes].filter((b) => b !== undefined)
      const fleet = given === undefined ? {} : { fleetPolicy: given, fleetFiles, revocations: await loadRevocations(init.dataDir), configs }
      const routing = { ...init.mesh?.routing, ...fleet }
      // Its credential goes into every handshake; with a fleet file, peers must show one (mesh/credentials.ts).
      const credential = this.#credential ?? init.mesh?.credential
      this.#node = new MeshNode({ ...init.mesh, routing, credential, name: this.name, fleet: this.fleet, announceLinks: 0 }, {
        keys: store.keys,
        sequence: store.sequence,
        clock: this.#clock,
        ...(transport === undefined ? {} : { transport }),
        ...pick(components, ['responder', 'random', 'ed25519'])
      })
      const node = this.#node
      if (init.fleetFile !== undefined) for (const keep of [keepRevocations, keepFleetFiles]) keep(node, init.dataDir, (error) => { this.#warn('mesh', error) })
      if (signed !== undefined) node.on('config', (info) => { this.#considerConfig(signed, info.bytes, info.config) })
      if (grants !== undefined) node.on('config', (info) => { if (info.target === GRANTS_TARGET) this.#considerGrants(grants, info.bytes, info.config) })
      watchRefusals(node, (info) => { if (this.#emitting) this.emit('link:refused', info) })
      // A crashed node vanishes without its DNS-SD goodbye (MeshNode.stop with an aborted signal).
      defer('mesh node', async (stop) => { await node.stop(stop.aborted ? { signal: stop } : {}) })
      // The durable subscribers learned (device/paths/mesh-acks.ts) are kept beside the outbox.
      const durableFile = init.dataDir === undefined ? undefined : join(init.dataDir, 'mesh-durable.json')
      const meshInit = { clock: this.#clock, checkMs: init.meshCheckMs, ...(durableFile === undefined ? {} : { durableFile }) }
      const meshPath = this.#meshPath = new MeshPath(node, meshInit)
      defer('mesh path', () => { meshPath.stop() })
      this.#addPath(meshPath)
      if (commands?.executor !== undefined) defer('commands over the mesh', node.serveCommands((signed) => commands.handle(signed)))
    }
    if (this.paths.includes('broker')) {
      const broker = typeof init.broker === 'string' ? { url: init.broker } : init.broker ?? { url: '' }
      const onCommand = commands?.executor === undefined ? {} : { onCommand: (signed: Uint8Array) => commands.handle(signed), resultIssuer }
      const targets = [...configTargetsOf(store.keys.id, init.groups), ...(grants === undefined ? [] : [GRANTS_TARGET])]
      const configs = signed === undefined ? {} : { configs: { targets, take: (bytes: Uint8Array) => { this.#takeConfigFromBroker(signed, bytes) } } }
      // With a fleet file, the revocations retained at the broker: a hybrid device's node takes them (and spreads them), a broker-only device keeps them itself.
      // And the fleet files the gateway retains there (device/broker-fleet-files.ts): a hybrid device's node takes them, a broker-only device follows them itself.
      const node = this.#node
      const warn = (error: Error): void => { this.#warn('broker', error) }
      let onRevocation: ((bytes: Uint8Array) => void) | undefined
      let onFleetFiles: ((payload: Uint8Array) => void) | undefined
      if (given !== undefined && node !== undefined) {
        onRevocation = (bytes) => { node.revoke(bytes) }
        onFleetFiles = brokerFleetFiles((bytes) => node.updateFleet(bytes), warn)
      } else if (given !== undefined && policy !== undefined) {
        const revocations = await brokerRevocationKeeper(policy, init.dataDir, warn)
        onRevocation = revocations.take
        this.#brokerPolicy = policy
        onFleetFiles = brokerFleetFiles(brokerFleetChain({ given, files: fleetFiles, dataDir: init.dataDir, ed25519: components.ed25519 }, (next) => {
          this.#brokerPolicy = next
          revocations.set.policy = next
          if (signed !== undefined) signed.policy = next
        }, warn), warn)
      }
      this.#brokerPath = new BrokerPath({
        ...broker, fleet: this.fleet, deviceId: store.keys.id, publicKey: store.keys.publicKey, keys: store.keys, name: this.name, credential: this.#credential, onRevocation, onFleetFiles,
        window: init.drain?.window ?? 16, ...onCommand, ...configs
      }, {
        clock: this.#clock,
        random: components.random ?? systemRandom,
        ...(components.connect === undefined ? {} : { connect: components.connect }),
        onWarning: (error) => { this.#warn('broker', error) }
      })
      const brokerPath = this.#brokerPath
      defer('broker path', async (stop) => { if (!stop.aborted) await brokerPath.stop(this.#stopTimeout) })
      this.#addPath(brokerPath)
    }
    const pumps = [...this.#pumps.values()]
    for (const pump of pumps) pump.start()
    defer('pumps', async (stop) => { await settleAll(pumps.map(async (pump) => { await pump.stop(stop.aborted ? 0 : this.#stopTimeout) })) })
    // A crash abandons what is in flight before the pumps stop: acks not yet durable are forgotten
    // and the MQTT connection is dropped without a DISCONNECT, so the broker publishes the last will.
    defer('crash', (stop) => {
      if (!stop.aborted) return
      acks.abandon()
      this.#brokerPath?.destroy()
    })
    await this.#node?.start({ signal })
    if (commands?.rules !== undefined && this.#node !== undefined) {
      commands.startRules(this.#node)
    }
    if (commands !== undefined) defer('commands', async () => { await commands.stop() })
    this.#meshPath?.start()
    this.#brokerPath?.start()
    this.#samplingOn = true
    defer('sampling', async () => {
      this.#samplingOn = false
      await this.#sampling?.catch(() => {})
      await Promise.allSettled([...this.#writes]) // every frame handed to the outbox
    })
    // The first sample on the next turn of the clock, so that whoever awaited start() sees its events.
    const first = this.#clock.setTimeout(() => { void this.#tick() }, 0)
    defer('first sample', () => { this.#clock.clearTimeout(first) })
    // The latest applied configuration's (one may have arrived while the device started).
    this.#setInterval(signed?.settings.interval ?? this.#interval)
    defer('interval', () => { this.#stopInterval?.() })
    if (signed !== undefined) void this.#publishNow(signed.records(), CONFIG_TOPIC)
    const announce = init.announceLinks ?? 15_000
    if (this.#node !== undefined && announce > 0) defer('announce', every(this.#clock, announce, () => { this.#announceLinks() }))
  }

  #addPath (sender: PathSender): void {
    const path = sender.path
    const counts = this.#pathCounts.get(path) as Omit<PathCounters, 'up' | 'pending'>
    const pump = new Pump({
      outbox: this.#started().outbox,
      sender,
      acks: this.#acks as AckBook,
      clock: this.#clock,
      rate: this.#init.drain?.rate ?? 100,
      burst: this.#init.drain?.burst ?? 20
    }, {
      onOutcome: (_seq, outcome) => { counts[outcome]++ },
      onFailed: () => { counts.failed++ },
      onError: (error) => { this.#warn(path === 'mesh' ? 'mesh' : 'broker', error) }
    })
    sender.onChange((up, reason) => {
      pump.wake()
      if (!this.#emitting) return
      if (up) this.emit('path:up', { path })
      else this.emit('path:down', reason === undefined ? { path } : { path, reason })
    })
    this.#senders.set(path, sender)
    this.#pumps.set(path, pump)
  }

  /**
   * One sampling interval, unless the previous one is still being taken (a slow sensor) or the
   * outbox is MAX_WRITES_IN_FLIGHT frames behind (a stalled disk): then it is skipped and counted.
   * A sample does not wait for the outbox: its frames are signed and handed over in order, and the
   * next interval starts on time while a disk outbox writes and fsyncs them (an SD card's fsync can
   * take hundreds of milliseconds; waiting for it made a device under load skip a tick in five).
   */
  #tick (): Promise<ReadingEvent[]> | undefined {
    if (!this.#samplingOn) return undefined
    if (this.#sampling !== undefined || this.#writes.size >= MAX_WRITES_IN_FLIGHT) { this.#counts.skipped++; return undefined }
    let handedOver = (): void => {}
    this.#sampling = new Promise<void>((resolve) => { handedOver = resolve }).finally(() => { this.#sampling = undefined })
    return this.#sample(handedOver).catch((err: unknown) => { this.#counts.errors++; this.#warn('sample', err as Error); return [] }).finally(handedOver)
  }

  /** Reads the sensors, hands one frame per topic to the outbox (then `handedOver`), and resolves once they are in it. */
  async #sample (handedOver: () => void): Promise<ReadingEvent[]> {
    const time = this.#now() + this.#skewMs
    const outputs = await readSensors(this.#sensors, time, this.#logger)
    if (!this.#samplingOn) return []
    this.#counts.samples++
    const queued = batchByTopic(outputs).map((batch) => this.#queue(batch, time)) // each signs and calls put() before it awaits
    handedOver()
    const readings = (await Promise.all(queued)).filter((r): r is ReadingEvent => r !== undefined)
    if (this.#emitting) this.emit('tick', { time, readings })
    return readings
  }

  /** Signs one batch into a frame and puts it in the outbox; undefined when that failed (counted, warned). */
  async #queue (batch: Batch, time: number): Promise<ReadingEvent | undefined> {
    const store = this.#started()
    let seq: number
    let frame: Uint8Array
    try {
      seq = store.sequence.next()
      const encrypt = encryptionFor(this.#readerGrants, batch.topic)
      frame = encodeFrame({ keys: store.keys, seq, time: time / 1000, records: batch.records, topic: batch.topic, encrypt, ...pick(this.#components, ['ed25519']) })
    } catch (err) {
      this.#counts.errors++
      this.#warn('sample', err as Error)
      return undefined
    }
    const write = store.outbox.put(seq, frame) // called now, so frames enter the outbox in the order they were numbered
    this.#writes.add(write)
    try {
      await write
    } catch (err) {
      this.#counts.errors++
      this.#warn('outbox', err as Error)
      return undefined
    } finally {
      this.#writes.delete(write)
    }
    this.#counts.readings++
    this.#counts.records += batch.records.length
    const reading: ReadingEvent = { seq, topic: batch.topic, time, records: batch.records, sensors: batch.sensors, bytes: frame.length }
    for (const pump of this.#pumps.values()) pump.wake()
    if (this.#emitting) this.emit('reading', reading)
    return reading
  }

  /** The actuators' new state (or the signed configuration's), at once (not waiting for the next sample): one frame. */
  async #publishNow (records: SenmlRecord[], topic = TELEMETRY_TOPIC): Promise<void> {
    if (!this.#samplingOn) return
    await this.#queue({ topic, records, sensors: [topic === TELEMETRY_TOPIC ? 'actuators' : topic] }, this.#now() + this.#skewMs)
  }

  /** (Re)starts sampling every `ms`. */
  #setInterval (ms: number): void {
    this.#stopInterval?.()
    this.#currentInterval = ms
    this.#stopInterval = every(this.#clock, ms, () => { void this.#tick() })
  }

  /** A signed configuration retained on the broker: a hybrid device hands it to the mesh too (whose 'config' event brings it back here). */
  #takeConfigFromBroker (signed: SignedConfig, bytes: Uint8Array): void {
    if (this.#node?.configure(bytes) === 'added') return
    this.#considerConfig(signed, bytes, undefined)
    if (this.#grants !== undefined) this.#considerGrants(this.#grants, bytes, undefined)
  }

  /** A grant policy (from the mesh or the broker): applied when newer, an older one refused and counted (device/grants.ts). */
  #considerGrants (grants: DeviceGrants, bytes: Uint8Array, verified: FleetConfig | undefined): void {
    this.#considering = this.#considering.then(async () => { await grants.consider(bytes, verified, (e) => { if (this.#emitting) this.emit('grants', e) }) })
      .catch((err: unknown) => { this.#warn('grants', err as Error) })
  }

  /** A signed configuration from the mesh: applied or refused one at a time (device/signed-config.ts); the new state is reported. */
  #considerConfig (signed: SignedConfig, bytes: Uint8Array, verified: FleetConfig | undefined): void {
    this.#considering = this.#considering.then(async () => {
      const result = await signed.consider(bytes, verified)
      if (result.outcome === 'ignored' || !this.#emitting) return
      // A configuration that does not name the interval gives the device its own back.
      const interval = result.outcome === 'applied' ? result.settings.interval ?? this.#interval : this.#currentInterval
      if (interval !== this.#currentInterval && this.#samplingOn) this.#setInterval(interval)
      this.emit('config', signed.state)
      await this.#publishNow(signed.records(), CONFIG_TOPIC)
    }).catch((err: unknown) => { this.#warn('config', err as Error) })
  }

  /**
   * The node's neighbours on `mesh/links`, signed by the node with the device's sequence source.
   * Only when the mesh backlog is empty: a number above the backlog's must not reach receivers first.
   */
  #announceLinks (): void {
    if (this.#meshPath?.up !== true || (this.#store?.outbox.stats().pending.mesh ?? 0) > 0) return
    try {
      this.#node?.announceLinks()
    } catch (err) {
      this.#warn('mesh', err as Error)
    }
  }

  #warn (where: DeviceEvents['warning'][0]['where'], error: Error): void {
    if (this.#emitting) this.emit('warning', { where, error })
  }
}

/** Builds and starts a device (as createMeshNode and aedes's createBroker do). */
export async function createDevice (init: DeviceInit = {}, components: DeviceComponents = {}): Promise<Device> {
  const device = new Device(init, components)
  await device.start()
  return device
}

function checkSkew (ms: number): number {
  if (!Number.isFinite(ms)) throw meshError('ERR_BAD_ARGUMENT', `device skewMs must be a finite number of ms, got ${ms}`)
  return ms
}

/** Awaits every promise; throws an AggregateError of the failures, if any. */
async function settleAll (promises: Array<Promise<void>>): Promise<void> {
  const failed = (await Promise.allSettled(promises)).filter((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed.length > 0) throw new AggregateError(failed.map((r) => r.reason as unknown), `${failed.length} of ${promises.length} failed`)
}

function pick<T extends object, K extends keyof T> (from: T, keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {}
  for (const key of keys) if (from[key] !== undefined) out[key] = from[key]
  return out
}
