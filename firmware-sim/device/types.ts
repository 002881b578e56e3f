import type { IClientOptions, MqttClient } from 'mqtt'
import { type Clock, type Ed25519, type KeyPair, type Random, type SenmlRecord, type SequenceSource } from '../../shared/index.js'
import { type BackoffInit, type MdnsResponder, type MeshNodeInit, type Transport } from '../../mesh/index.js'
import type { Command, Commanders, DeviceId, FleetPolicy } from '../../shared/index.js'
import type { DeviceMode } from '../config.js'
import type { ConfigState } from './signed-config.js'
import type { GrantEvent } from './grants.js'
import type { ActuatorName, ActuatorSpec } from '../commands/actuators.js'
import type { Outcome } from '../commands/executor.js'
import type { RuleSet } from '../rules/rules.js'
import type { DeviceCommandCounters } from './commands.js'
import type { DeliveryPath, FsyncPolicy, Outbox, OutboxEntry, OutboxStats } from '../outbox/types.js'
import type { SensorsInit } from '../sensors/registry.js'
import type { Sensor, SensorLogger, SensorNotice } from '../sensors/types.js'

/** How a device reaches its MQTT broker (broker and hybrid mode). */
export interface DeviceBrokerInit {
  /** mqtt://, mqtts://, ws://, wss:// (tcp:// and ssl:// are aliases). */
  url: string
  username?: string
  password?: string
  /** 4: MQTT 3.1.1 (default); 5: MQTT 5. */
  protocolVersion?: 4 | 5
  /** MQTT keepalive, seconds (default 30). */
  keepalive?: number
  /** How long to wait for CONNACK, ms (default 10,000). */
  connectTimeout?: number
  /** Backoff between connection attempts (default 500 ms doubling to 30 s, half jitter). */
  reconnect?: BackoffInit
  /** Default `iotmesh-<device id>`: a reconnecting device takes its old session over (MQTT 3.1.1 §3.1.4). */
  clientId?: string
  /**
   * How the device authenticates (gateway/auth.ts): 'token' (user name = its id, password = a fresh
   * device token signed with its key, shared/token.ts), 'password' (`username`/`password`, for an
   * external broker), 'none'. Default 'auto': 'password' when a password is set, else 'token'.
   */
  auth?: BrokerAuth
  /** How long each token is valid, seconds (default 300). A new one is made for every CONNECT. */
  tokenLifetime?: number
}

export type BrokerAuth = 'auto' | 'token' | 'password' | 'none'

/** How fast a path drains its backlog once it is back, so a drain does not flood the network. */
export interface DrainInit {
  /** Frames per second, sustained (default 100). */
  rate?: number
  /** Frames sent at once before the rate applies (default 20). */
  burst?: number
  /** Broker path: PUBLISHes awaiting their PUBACK at once (default 16). */
  window?: number
}

export interface DeviceInit {
  /** The name it announces (DNS-SD instance name, MQTT status). Default `iotmesh-<id prefix>`. */
  name?: string
  fleet?: string
  /** mesh: peer to peer only; broker: MQTT only; hybrid: both (default mesh). */
  mode?: DeviceMode
  /** Sampling interval, ms (default 10,000). */
  interval?: number
  /** A sensor list (see parseSensorList); default "sim". Ignored when `components.sensors` is given. */
  sensors?: string | readonly string[]
  /** Seed, device index, climate, Linux root and per-sensor options for createSensors. */
  sensorOptions?: SensorsInit
  /** Where the device keeps its state: the key (unless `keyFile`), `device.seq` and `outbox/`. None: all in memory. */
  dataDir?: string
  /** The key file; created on first start when absent. Default `<dataDir>/device.key`. */
  keyFile?: string
  /** Sequence numbers reserved per fsync of `device.seq` (default 1000; see shared/sequence.ts). */
  sequenceBlock?: number
  /** Disk outbox fsync policy; also how often acknowledgements are made durable (default always). */
  fsync?: FsyncPolicy
  outboxFrames?: number
  outboxBytes?: number
  /** Added to the wall clock when sampling (clock skew, for fault injection); default 0. */
  skewMs?: number
  /** Required in broker and hybrid mode. */
  broker?: string | DeviceBrokerInit
  /** Options of the mesh node (host, port, peers, mdns, link, routing). */
  mesh?: Omit<MeshNodeInit, 'name' | 'fleet' | 'announceLinks'>
  /** Every this many ms, announce the device's mesh neighbours on `mesh/links` (default 15,000; 0: never). */
  announceLinks?: number
  /** How often the mesh path looks for a route to a subscriber, ms (default 250). */
  meshCheckMs?: number
  drain?: DrainInit
  /** How long stop() waits for frames in flight and the broker goodbye, ms (default 2000). */
  stopTimeout?: number
  /** Who may command this device, and what: a commanders file (shared/commanders.ts) or the parsed list. None: it executes nothing. */
  commanders?: string | Commanders
  /**
   * Actuators it has (relay, light, valve, thermostat): commanded with `<name>/set`, their state
   * published as telemetry; a relay, light or valve may drive a GPIO line (`{ name: 'relay', gpio }`).
   */
  actuators?: ReadonlyArray<ActuatorName | ActuatorSpec>
  /** Automation rules it runs (a rule file, or the parsed set): mesh and hybrid mode (device/commands.ts). */
  rules?: string | RuleSet
  /**
   * The fleet file (shared/fleet.ts; a path or the parsed policy): the device's node then takes,
   * spreads and enforces owner-signed revocations, kept in `<dataDir>/revocations.json` across restarts.
   */
  fleetFile?: string | FleetPolicy
  /**
   * Groups the device belongs to: owner-signed configurations (shared/fleet-config.ts) for
   * "group:<name>" apply to it as well as those for its id (with a fleet file; device/signed-config.ts).
   */
  groups?: string[]
  /**
   * Encrypt readings to the fleet's readers (firmware-sim/device/encrypt.ts): an owner-signed reader
   * grant list (iotmesh fleet grant-reader; a path or its bytes), checked against `fleetFile`.
   */
  encrypt?: { readers: string | Uint8Array }
  /**
   * Its enrollment credential (a file, or the bytes; default `<dataDir>/credential.cbor` when that
   * exists): shown in every link handshake and in its retained status. With a fleet file, the
   * node links only with peers that show a valid one of its owners (mesh/credentials.ts).
   */
  credential?: string | Uint8Array
  /** Commands one issuer may have executed per second (default 5, burst 20; firmware-sim/commands/executor.ts). */
  commandRate?: { rate: number, burst: number }
}

/** mqtt.js's `connect`, injectable for tests. */
export type MqttConnect = (url: string, options: IClientOptions) => MqttClient

export interface DeviceComponents {
  /** The identity; default loaded from (or created at) the key file, or a fresh one without `dataDir`. */
  keys?: KeyPair
  /** Default `device.seq` under `dataDir`, else in memory starting at the wall clock in µs. */
  sequence?: SequenceSource
  /** Default on disk under `dataDir`, else in memory. Its paths must be the mode's. Not closed by the device. */
  outbox?: Outbox
  /** Default createSensors(init.sensors). Not closed by the device. */
  sensors?: readonly Sensor[]
  /** Where sensor notices go (default stderr); the device also emits `sensor:absent`. */
  logger?: SensorLogger
  /**
   * Mesh links (default TCP); simulated fleets pass an in-memory transport, or a function that
   * makes one for the device's keys (which may only be known once loaded from the key file).
   */
  transport?: Transport | ((keys: KeyPair) => Transport)
  responder?: MdnsResponder
  /** Every timer of the device and its mesh node. */
  clock?: Clock
  /** Wall clock, ms since the epoch (sampling times). */
  now?: () => number
  /** Backoff jitter. */
  random?: Random
  ed25519?: Ed25519
  connect?: MqttConnect
}

/** A signed frame the device has put in its outbox. */
export interface ReadingEvent {
  seq: number
  /** Device-relative topic: telemetry, events/door, … */
  topic: string
  /** Sampling time, ms since the epoch, skew included. */
  time: number
  records: SenmlRecord[]
  /** The sensors whose records it carries. */
  sensors: string[]
  bytes: number
}

export interface TickEvent {
  /** Sampling time, ms since the epoch, skew included. */
  time: number
  readings: ReadingEvent[]
}

export interface DeviceEvents {
  /** A frame was signed and put in the outbox. */
  reading: [ReadingEvent]
  /** One sampling interval is done (also when no sensor had anything). */
  tick: [TickEvent]
  /**
   * A path took a frame (mesh: acknowledged by every durable subscriber that wants it, or, when
   * none does, handed on towards a subscriber; broker: PUBACK); durable in a disk outbox.
   */
  delivered: [{ path: DeliveryPath, seq: number }]
  'path:up': [{ path: DeliveryPath }]
  'path:down': [{ path: DeliveryPath, reason?: string }]
  /** A sensor is not there (reported once; the device runs on without it). */
  'sensor:absent': [SensorNotice]
  /** Something went wrong that the device survives: a failed sample, outbox write or broker error. */
  warning: [{ where: 'sample' | 'outbox' | 'broker' | 'mesh' | 'commands' | 'config' | 'grants', error: Error }]
  /** An owner-signed configuration was applied, or refused (device/signed-config.ts): the new state, as the device reports it. */
  config: [ConfigState]
  /** An owner-signed grant policy for commands was applied, or an older one refused (device/grants.ts): the version held and its grants as text. */
  grants: [GrantEvent]
  /** A decoded command was judged: executed (before this event the actuator acted), repeated or refused (firmware-sim/commands/executor.ts). */
  command: [Outcome & { command: Command }]
  /**
   * A mesh link refused for trust (issue 13), with its stable code: `by: 'peer'` a peer refused this
   * device (it told the code), `by: 'us'` this device refused a peer (credential, revocation, roster).
   */
  'link:refused': [{ by: 'peer' | 'us', code: string, peer?: DeviceId, address?: string }]
}

export interface PathCounters {
  up: boolean
  /** Frames this path has not taken yet. */
  pending: number
  delivered: number
  /** Frames this path refused for good (acknowledged so they do not block the rest; not retried). */
  refused: number
  /** Mesh: frames of a topic no reachable subscriber wants (acknowledged; the router's history keeps them a while). */
  unwanted: number
  /** Sends that failed because the path went down (retried when it is back). */
  failed: number
  /** Mesh: frames offered and not yet acknowledged by every durable subscriber that wants them (they stay in the outbox). */
  awaitingAck?: number
  /** Mesh: durable subscribers known (their signed declarations say they acknowledge; device/paths/mesh-acks.ts). */
  durableSubscribers?: number
  /** Mesh: frames offered again because no ack came in time. */
  reoffered?: number
}

export interface DeviceCounters {
  /** Intervals sampled, and intervals skipped because the previous sample had not finished. */
  samples: number
  skipped: number
  /** Frames signed, and the SenML records in them. */
  readings: number
  records: number
  /** Samples or outbox writes that failed. */
  errors: number
  /** Mesh links open now (0 without a mesh path). */
  links: number
  paths: Partial<Record<DeliveryPath, PathCounters>>
  outbox: OutboxStats
  /** Commands executed, repeated and refused (by code), and the rules' firings: with commanders, actuators or rules only. */
  commands?: DeviceCommandCounters
}

export type SendOutcome = 'delivered' | 'refused' | 'unwanted'

/**
 * One delivery path as the pump sees it. `send` resolves once the path took the frame
 * ('refused' when it never will), and rejects when the path went down first (the frame is sent
 * again when it is back).
 */
export interface PathSender {
  readonly path: DeliveryPath
  readonly up: boolean
  /** Frames awaiting their outcome at once. */
  readonly window: number
  /**
   * True when a new drain may start while sends of the last one are still awaiting their outcome
   * (the mesh path, whose outcome is an end-to-end ack a round trip later); default false.
   */
  readonly overlap?: boolean
  send (entry: OutboxEntry): Promise<SendOutcome>
  /** Called on up and down. */
  onChange (listener: (up: boolean, reason?: string) => void): void
}
