import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Metric } from 'prom-client'
import type { MeshNode } from '../mesh/index.js'
import type { BridgeCounters } from './bridge.js'
import type { CommandCounters } from './commands.js'
import type { DeviceRegistry } from './devices.js'
import type { DropEvent, Reading, StatusEvent } from './ingest.js'
import { DROP_REASON_NAMES, type GatewayCounters } from './reasons.js'
import type { TopologySnapshot } from './topology.js'

/**
 * Prometheus metrics of one gateway, in a registry of its own (several gateways may share a
 * process, as in the tests). Counters follow the gateway's events; gauges, and the counters that
 * the mesh node and the bridge keep themselves, are read on scrape.
 *
 * Paths: readings come *in* by the broker or the mesh (`iotmesh_gateway_readings_total{path}`);
 * the gateway sends them *out* to the broker (mesh readings published on MQTT) and to the mesh
 * (broker readings injected): `iotmesh_gateway_readings_out_total{path}`. Latency is the time
 * from sampling (the signed `bt`) to acceptance, so it includes the device's clock error.
 *
 * De-duplication is not a drop: a hybrid device publishes each reading on the broker and on the
 * mesh, and the gateway keeps the first copy. Second copies of an accepted (origin, seq) are
 * counted in `iotmesh_gateway_deduplicated_total{path,first}` (path: the way the copy came;
 * first: the way the kept copy came, `unknown` once forgotten), never in
 * `iotmesh_gateway_dropped_total`, which counts refusals only. first ≠ path is the normal hybrid
 * case; first = path is a retransmission (MQTT QoS 1 resends, a device replaying its outbox) or a
 * replay, harmless either way: the replay window refuses it.
 *
 * The process and Node.js metrics of prom-client's `collectDefaultMetrics` (`process_*`,
 * `nodejs_*`) are in the registry too, under their standard names, so the usual Node.js
 * dashboards work; they carry the `fleet` label like every other series.
 */

/** Seconds from sampling to acceptance: 1 ms to a minute (a mesh catching up after a partition). */
export const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

/** How many accepted (origin, seq) the metrics remember the path of, to label a later second copy. */
const FIRST_PATHS_REMEMBERED = 16_384

let processMetrics: Registry | undefined

/**
 * prom-client's default metrics, collected once per process: each `collectDefaultMetrics` call
 * starts a GC observer and an event-loop delay monitor that are never stopped, so several
 * gateways in one process (the tests) share these metric objects, each registry listing them.
 * Left out: `nodejs_active_{handles,requests,resources}_total`, gauges with a counter's suffix
 * that `promtool check metrics` refuses; `nodejs_active_{handles,requests,resources}{type}` carry
 * the same counts (sum by type).
 */
function processMetricList (): Metric[] {
  const registry = processMetrics ?? new Registry()
  if (processMetrics === undefined) {
    collectDefaultMetrics({ register: registry })
    processMetrics = registry
  }
  return registry.getMetricsAsArray()
    .filter((m) => !(String(m.type) === 'gauge' && m.name.endsWith('_total'))) // MetricType is a type only: prom-client exports no enum object
    .map((m) => registry.getSingleMetric(m.name))
    .filter((metric): metric is Metric => metric !== undefined)
}

/** What the metrics read of a gateway (gateway.ts implements it; no import of the gateway here, so no cycle). */
export interface MetricsSource {
  readonly fleet: string
  readonly counters: GatewayCounters
  readonly connectedClients: number
  readonly devices: Pick<DeviceRegistry, 'list'>
  readonly ingest: {
    readonly heldCount: number
    readonly keys: { readonly size: number }
    /** Encrypted readings read and not read (gateway/decrypt.ts). */
    readonly decryptor?: { readonly counters: { readonly decrypted: number, readonly unread: number } }
    /** Accepted readings, at once (the gateway's own event waits for the store). */
    on: (event: 'reading', listener: (r: Reading) => void) => unknown
  }
  readonly bridge?: { readonly counters: BridgeCounters }
  readonly mesh?: Pick<MeshNode, 'counters' | 'links'>
  readonly live?: { readonly clients: number }
  /** Commands through the gateway (gateway/commands.ts). */
  readonly commands?: { readonly counters: CommandCounters }
  /** The durable store (gateway/store/), when there is one. */
  readonly state?: { readonly counters: { recorded: number, alreadyStored: number, errors: number, pruned: number } } | undefined
  topologySnapshot: () => TopologySnapshot
  on: ((event: 'reading', listener: (r: Reading) => void) => unknown) &
    ((event: 'drop', listener: (d: DropEvent) => void) => unknown) &
    ((event: 'held', listener: () => void) => unknown) &
    ((event: 'status', listener: (s: StatusEvent) => void) => unknown)
}

/** The gateway's Prometheus registry: its counters and gauges, and the default process and Node.js metrics. */
export function createMetrics (gateway: MetricsSource): Registry {
  const register = new Registry()
  const labels = { fleet: gateway.fleet }
  register.setDefaultLabels(labels)
  const readings = new Counter({ name: 'iotmesh_gateway_readings_total', help: 'Verified, fresh readings accepted, by the path they came through', labelNames: ['path'], registers: [register] })
  for (const metric of processMetricList()) register.registerMetric(metric)
  const dropped = new Counter({ name: 'iotmesh_gateway_dropped_total', help: 'Messages refused, by reason (see DROP_REASONS); second copies are in iotmesh_gateway_deduplicated_total', labelNames: ['reason'], registers: [register] })
  const deduplicated = new Counter({
    name: 'iotmesh_gateway_deduplicated_total',
    help: 'Second copies of accepted readings, not passed on (not an error): path = how the copy came, first = how the kept copy came (unknown: forgotten)',
    labelNames: ['path', 'first'],
    registers: [register]
  })
  const held = new Counter({ name: 'iotmesh_gateway_held_total', help: 'Frames held while their signer key was unknown', registers: [register] })
  const statuses = new Counter({ name: 'iotmesh_gateway_statuses_total', help: 'Device statuses applied, by state', labelNames: ['state'], registers: [register] })
  const latency = new Histogram({ name: 'iotmesh_gateway_reading_latency_seconds', help: 'Time from sampling (the signed bt) to acceptance by the gateway, by path', labelNames: ['path'], buckets: LATENCY_BUCKETS, registers: [register] })
  for (const path of ['broker', 'mesh']) {
    readings.inc({ path }, 0)
    latency.zero({ path })
    for (const first of ['broker', 'mesh']) deduplicated.inc({ path, first }, 0)
  }
  for (const reason of DROP_REASON_NAMES) if (reason !== 'duplicate') dropped.inc({ reason }, 0)
  /** (origin#seq) → the path of the accepted copy, oldest first out. */
  const firstPaths = new Map<string, string>()
  gateway.ingest.on('reading', (r) => {
    firstPaths.set(`${r.origin}#${r.seq}`, r.path)
    if (firstPaths.size > FIRST_PATHS_REMEMBERED) firstPaths.delete(firstPaths.keys().next().value as string)
  })
  for (const state of ['online', 'offline', 'cleared']) statuses.inc({ state }, 0)
  gateway.on('reading', (r) => {
    readings.inc({ path: r.path })
    latency.observe({ path: r.path }, Math.max(0, r.receivedAt / 1000 - r.time))
  })
  gateway.on('drop', (d) => {
    if (d.reason !== 'duplicate') dropped.inc({ reason: d.reason })
    else deduplicated.inc({ path: d.path ?? 'broker', first: firstPaths.get(`${d.deviceId ?? ''}#${d.seq ?? ''}`) ?? 'unknown' })
  })
  gateway.on('held', () => { held.inc() })
  gateway.on('status', (s) => { statuses.inc({ state: s.status?.state ?? 'cleared' }) })

  /** A counter whose value another component keeps: set on scrape. */
  const mirrored = (name: string, help: string, labelNames: string[], read: () => Array<[Record<string, string>, number]>): void => {
    new Counter({
      name,
      help,
      labelNames,
      registers: [register],
      collect () {
        this.reset()
        for (const [labelValues, value] of read()) this.inc(labelValues, value)
      }
    })
  }
  mirrored('iotmesh_gateway_readings_out_total', 'Readings the gateway sent on: path="broker" mesh readings published on MQTT, path="mesh" broker readings injected into the mesh', ['path'], () => [
    [{ path: 'broker' }, gateway.bridge?.counters.meshAccepted ?? 0],
    [{ path: 'mesh' }, gateway.bridge?.counters.injected ?? 0]
  ])
  mirrored('iotmesh_gateway_json_published_total', 'SenML JSON mirrors published on …/json', [], () => [[{}, gateway.counters.jsonPublished]])
  mirrored('iotmesh_gateway_encrypted_readings_total', 'Encrypted readings accepted: read="yes" decrypted with the reader key, read="no" kept as ciphertext (no key, or not a reader)', ['read'], () => [
    [{ read: 'yes' }, gateway.ingest.decryptor?.counters.decrypted ?? 0], [{ read: 'no' }, gateway.ingest.decryptor?.counters.unread ?? 0]
  ])
  mirrored('iotmesh_gateway_bridge_not_injected_total', 'Broker readings of mesh devices not injected because their mesh copy arrived first', [], () => [[{}, gateway.bridge?.counters.notInjected ?? 0]])
  mirrored('iotmesh_gateway_mesh_rejected_total', "Frames and messages the gateway's mesh node refused, by error code", ['code'], () =>
    Object.entries(gateway.mesh?.counters.rejected ?? {}).map(([code, n]) => [{ code }, n ?? 0]))
  mirrored('iotmesh_gateway_mesh_frames_total', "DATA messages the gateway's mesh node received and sent", ['direction'], () => {
    const c = gateway.mesh?.counters
    return [[{ direction: 'in' }, c?.framesIn ?? 0], [{ direction: 'out' }, c?.framesOut ?? 0]]
  })
  mirrored('iotmesh_gateway_mesh_duplicates_total', "Frames the gateway's mesh node had already seen", [], () => [[{}, gateway.mesh?.counters.duplicates ?? 0]])
  const commandsHelp = 'Commands through the gateway, by kind: forwarded (a client command that passed the guard), result (a verified result), ' +
    'set (a set/ request taken), sent (commands the gateway signed), timeout (those of them that got no result in time)'
  mirrored('iotmesh_gateway_commands_total', commandsHelp, ['kind'], () => {
    const c = gateway.commands?.counters
    return [
      [{ kind: 'forwarded' }, c?.forwarded ?? 0], [{ kind: 'result' }, c?.results ?? 0], [{ kind: 'set' }, c?.sets ?? 0],
      [{ kind: 'sent' }, c?.sent ?? 0], [{ kind: 'timeout' }, c?.timeouts ?? 0]
    ]
  })
  const state = gateway.state
  if (state !== undefined) {
    mirrored('iotmesh_gateway_store_writes_total', 'Accepted readings written to the durable store, by result: stored, already_stored (by another gateway sharing it), failed (ERR_STORE)', ['result'], () => [
      [{ result: 'stored' }, state.counters.recorded], [{ result: 'already_stored' }, state.counters.alreadyStored], [{ result: 'failed' }, state.counters.errors]
    ])
    mirrored('iotmesh_gateway_store_pruned_total', 'Readings deleted from the durable store by retention', [], () => [[{}, state.counters.pruned]])
  }

  new Gauge({
    name: 'iotmesh_gateway_devices',
    help: 'Devices in the registry, by presence',
    labelNames: ['state'],
    registers: [register],
    collect () {
      const list = gateway.devices.list()
      const online = list.filter((d) => d.online).length
      this.set({ state: 'online' }, online)
      this.set({ state: 'offline' }, list.length - online)
    }
  })
  new Gauge({
    name: 'iotmesh_gateway_held_frames',
    help: 'Frames waiting for their signer key right now',
    registers: [register],
    collect () { this.set(gateway.ingest.heldCount) }
  })
  new Gauge({
    name: 'iotmesh_gateway_known_keys',
    help: 'Device public keys known to the gateway',
    registers: [register],
    collect () { this.set(gateway.ingest.keys.size) }
  })
  new Gauge({
    name: 'iotmesh_gateway_mqtt_clients',
    help: 'MQTT clients connected to the embedded broker',
    registers: [register],
    collect () { this.set(gateway.connectedClients) }
  })
  new Gauge({
    name: 'iotmesh_gateway_mesh_peers',
    help: "Mesh neighbours linked to the gateway's node (0 without a mesh)",
    registers: [register],
    collect () { this.set(gateway.mesh?.links.size ?? 0) }
  })
  new Gauge({
    name: 'iotmesh_gateway_mesh_nodes',
    help: 'Nodes in the mesh topology (announced on mesh/links, plus the gateway)',
    registers: [register],
    collect () { this.set(gateway.topologySnapshot().nodes.filter((n) => n.kind !== 'broker').length) }
  })
  new Gauge({
    name: 'iotmesh_gateway_bridge_pending',
    help: 'Broker readings of mesh devices waiting for their mesh copy before injection',
    registers: [register],
    collect () { this.set(gateway.bridge?.counters.pending ?? 0) }
  })
  new Gauge({
    name: 'iotmesh_gateway_live_clients',
    help: 'Dashboards (event-stream clients) connected',
    registers: [register],
    collect () { this.set(gateway.live?.clients ?? 0) }
  })
  return register
}
