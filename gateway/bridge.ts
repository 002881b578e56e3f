import {
  generateKeyPair, meshError, topicFilters, type Clock, type DeviceId, type LearnResult, type PublicKey
} from '../shared/index.js'
import {
  MeshNode, type Delivery, type DiscoveredPeer, type DropInfo, type MeshNodeInit, type MeshNodeComponents, type Subscription
} from '../mesh/index.js'
import type { DropEvent, MessageSource, Outcome, Reading } from './ingest.js'
import type { DropReason } from './reasons.js'

/**
 * The mesh ⇄ MQTT bridge. The gateway is a mesh member (a MeshNode with its own key pair); the
 * bridge joins that node to the gateway's ingest pipeline, in both directions, without loops:
 *
 * - **mesh → MQTT.** The bridge subscribes the node to the whole fleet (`iotmesh/<fleet>/#`;
 *   in a mesh that routes by declared interest this is what draws readings to the gateway).
 *   Every verified delivery (another device's reading) goes through
 *   `gateway.submit(topic, frame, { path: 'mesh' })`: the same checks, dedup (origin, seq) and
 *   registry as broker traffic; a first copy is then published on MQTT as the exact frame and as
 *   SenML JSON (gateway.ts). The key comes from the node — DNS-SD TXT records, link handshakes,
 *   KEY messages — before the frame is submitted, so ingest never holds a mesh frame.
 * - **MQTT → mesh.** A reading accepted from the broker is injected into the mesh
 *   (`node.inject(frame)`; `injectBrokerReadings`, default true), its key taught to the
 *   router first. A device known to be on the mesh too (its readings came through the mesh within
 *   the path window, or it is the gateway's neighbour) publishes there itself: its broker reading
 *   waits `injectDelayMs` for the mesh copy and is injected only when that does not come — so
 *   what arrives only through the broker reaches the mesh, and a hybrid device's readings are not
 *   sent twice.
 * - **No loops.** An injected frame comes back from the router as a delivery (synchronously, or
 *   later if it was held): the bridge remembers what it injected and does not hand it to MQTT
 *   again; the gateway publishes on MQTT as itself, which never passes the broker's ingest; the
 *   router deduplicates anything that returns through the mesh. The gateway's own readings
 *   (its `mesh/links` announcements) stay in the mesh.
 * - **Bad signatures** that the node refuses count against the device they claim, as the
 *   broker's do (`bad_signature`, path mesh): the dashboard marks the device either way; so do
 *   second copies the node refuses as a cloned identity (`cloned_identity`).
 */

export interface BridgeInit {
  /** Inject readings that arrive only through the broker into the mesh. Default true. */
  injectBrokerReadings?: boolean
  /** How long a broker reading of a device that is on the mesh too waits for its mesh copy (ms). Default 1000. */
  injectDelayMs?: number
  /** Most broker readings waiting at once; beyond it they are injected at once. Default 4096. */
  maxPending?: number
  /** Mesh deliveries buffered for the gateway; beyond it the oldest are dropped (counted in `overflow`). Default 4096. */
  subscriptionBuffer?: number
}

/** What the bridge needs of the gateway (gateway.ts implements it). */
export interface BridgeHost {
  readonly fleet: string
  /** The key ingest verifies this device with, if any. */
  keyOf (id: DeviceId): PublicKey | undefined
  learnKey (publicKey: PublicKey, options: { deviceId?: DeviceId, source?: string }): LearnResult
  submit (topic: string, payload: Uint8Array, source: MessageSource): Outcome
  /** True while the device's readings came through the mesh recently. */
  onMesh (id: DeviceId): boolean
  /** A device's DNS-SD instance name, as a name for a device that has none yet. */
  nameDevice (id: DeviceId, name: string): void
  /** Counts a drop decided by the mesh node (a frame with a bad signature) against its device. */
  reject (reason: DropReason, message: string, info: Omit<DropEvent, 'reason' | 'code' | 'message'>): Outcome
}

export interface BridgeCounters {
  /** Verified mesh deliveries handed to the gateway. */
  fromMesh: number
  /** Of those, first copies: accepted, and published on MQTT. */
  meshAccepted: number
  /** Of those, readings the broker had brought first (dropped as duplicates, not republished). */
  meshDuplicates: number
  /** Of those, dropped for another reason (a reserved device topic, the roster, …). */
  meshRefused: number
  /** Broker readings injected into the mesh. */
  injected: number
  /** Broker readings of mesh devices whose mesh copy arrived in time: not injected. */
  notInjected: number
  /** Broker readings waiting for their mesh copy now. */
  pending: number
  /** Keys taught to the gateway by the mesh, and to the mesh by the gateway. */
  keysFromMesh: number
  keysToMesh: number
  /** Mesh deliveries lost because the gateway fell behind (its subscription buffer overflowed). */
  overflow: number
}

const MAX_INJECTED_REMEMBERED = 4096

/** The mesh ⇄ MQTT bridge: mesh readings into the gateway's ingest, broker readings into the mesh, without loops. */
export class MeshBridge {
  readonly #init: Required<BridgeInit>
  readonly #node: MeshNode
  readonly #host: BridgeHost
  readonly #clock: Clock
  #overflow = 0
  readonly #counters: Omit<BridgeCounters, 'pending' | 'overflow'> = { fromMesh: 0, meshAccepted: 0, meshDuplicates: 0, meshRefused: 0, injected: 0, notInjected: 0, keysFromMesh: 0, keysToMesh: 0 }
  /** (origin#seq) → timer: broker readings waiting for their mesh copy. */
  readonly #pending = new Map<string, unknown>()
  /** (origin#seq) injected, whose delivery must not go back to MQTT. Bounded, oldest first out. */
  readonly #injected = new Set<string>()
  /** The node refused a frame that claimed a device's signature: the device's signature failures count it. */
  readonly #onDrop = (info: DropInfo): void => {
    if ((info.code !== 'ERR_BAD_SIGNATURE' && info.code !== 'ERR_CLONED_IDENTITY') || info.origin === undefined) return
    const where = { deviceId: info.origin, path: 'mesh' as const, ...(info.seq === undefined ? {} : { seq: info.seq }), ...(info.from === undefined ? {} : { from: info.from }) }
    const what = `the mesh node refused ${info.origin}#${info.seq ?? '?'}${info.from === undefined ? '' : ` from ${info.from}`}`
    if (info.code === 'ERR_CLONED_IDENTITY' && info.seq === undefined) { // at a link handshake: a second live instance of the key (mesh/clones.ts)
      this.#host.reject('cloned_identity', `the mesh node refused a link from ${info.origin}: another device with this key is linked and answered a liveness probe`, where)
    } else if (info.code === 'ERR_CLONED_IDENTITY') this.#host.reject('cloned_identity', `${what}: another frame was signed for that sequence number (two devices hold one key)`, where)
    else this.#host.reject('bad_signature', `${what}: the signature does not verify`, where)
  }

  readonly #onDiscovered = (peer: DiscoveredPeer): void => {
    if (peer.source !== 'mdns') return
    this.#keyFromMesh(peer.id, peer.publicKey, 'mdns')
    this.#host.nameDevice(peer.id, peer.name)
  }

  readonly #onLinkOpen = (id: DeviceId): void => {
    const link = this.#node.links.get(id)
    if (link !== undefined) this.#keyFromMesh(id, link.remote.publicKey, 'link')
  }

  #running = false
  #subscription: Subscription | undefined

  constructor (init: BridgeInit, components: { node: MeshNode, host: BridgeHost, clock: Clock }) {
    this.#init = {
      injectBrokerReadings: init.injectBrokerReadings ?? true,
      injectDelayMs: init.injectDelayMs ?? 1000,
      maxPending: init.maxPending ?? 4096,
      subscriptionBuffer: init.subscriptionBuffer ?? 4096
    }
    this.#node = components.node
    this.#host = components.host
    this.#clock = components.clock
  }

  get counters (): BridgeCounters {
    return { ...this.#counters, pending: this.#pending.size, overflow: this.#overflow + (this.#subscription?.dropped ?? 0) }
  }

  async #pump (subscription: Subscription): Promise<void> {
    for await (const delivery of subscription) {
      try {
        this.#fromMesh(delivery)
      } catch {
        // One bad delivery never stops the bridge (ingest does not throw; this is a safety net).
      }
    }
    this.#overflow += subscription.dropped
  }

  /** Attaches to the node. Idempotent. */
  start (): void {
    if (this.#running) return
    this.#running = true
    // A subscription to the whole fleet: it also declares the gateway's interest, so a mesh that
    // routes by subscriptions carries every reading towards the gateway.
    // Durable: the gateway acknowledges what it receives (mesh/routing/ack.ts), so devices keep each reading until it holds it.
    const subscription = this.#node.subscribe(topicFilters.fleet(this.#host.fleet), { buffer: this.#init.subscriptionBuffer, durable: true })
    this.#subscription = subscription
    void this.#pump(subscription)
    this.#node.on('drop', this.#onDrop)
    this.#node.on('peer:discovered', this.#onDiscovered)
    this.#node.on('link:open', this.#onLinkOpen)
    for (const id of this.#node.links.keys()) this.#onLinkOpen(id)
  }

  /** Detaches; readings still waiting are not injected. Idempotent. */
  stop (): void {
    if (!this.#running) return
    this.#running = false
    this.#subscription?.close()
    this.#subscription = undefined
    this.#node.off('drop', this.#onDrop)
    this.#node.off('peer:discovered', this.#onDiscovered)
    this.#node.off('link:open', this.#onLinkOpen)
    for (const timer of this.#pending.values()) this.#clock.clearTimeout(timer)
    this.#pending.clear()
    this.#injected.clear()
  }

  /** A key the gateway learned (a retained status, the roster, an operator): the mesh learns it too. */
  keyFromGateway (id: DeviceId, publicKey: PublicKey, source: string): void {
    if (!this.#running || source === 'mesh' || source === 'mdns' || source === 'link') return
    if (this.#node.keyOf(id) !== undefined) return
    if (this.#node.learnKey(publicKey, id) === 'added') this.#counters.keysToMesh++
  }

  /** A reading the gateway accepted from the broker: into the mesh, now or after `injectDelayMs`. */
  brokerReading (reading: Reading): void {
    if (!this.#running || !this.#init.injectBrokerReadings || reading.path !== 'broker') return
    const key = readingKey(reading.origin, reading.seq)
    const publicKey = this.#host.keyOf(reading.origin)
    if (publicKey === undefined) return
    if (this.#node.keyOf(reading.origin) === undefined) {
      // Taught first, so the node verifies at once and never holds an injected frame.
      const learned = this.#node.learnKey(publicKey, reading.origin)
      if (learned !== 'added' && learned !== 'known') return
      this.#counters.keysToMesh++
    }
    const onMesh = this.#host.onMesh(reading.origin) || this.#node.links.has(reading.origin)
    if (!onMesh || this.#init.injectDelayMs <= 0 || this.#pending.size >= this.#init.maxPending) {
      this.#inject(key, reading.frame)
      return
    }
    const frame = reading.frame
    this.#pending.set(key, this.#clock.setTimeout(() => {
      if (!this.#pending.delete(key) || !this.#running) return
      this.#inject(key, frame)
    }, this.#init.injectDelayMs))
  }

  #inject (key: string, frame: Uint8Array): void {
    this.#injected.add(key)
    if (this.#injected.size > MAX_INJECTED_REMEMBERED) this.#injected.delete(this.#injected.values().next().value as string)
    this.#counters.injected++
    this.#node.inject(frame)
  }

  #fromMesh (d: Delivery): void {
    if (d.origin === this.#node.id) return // the gateway's own announcements stay in the mesh
    const key = readingKey(d.origin, d.seq)
    if (this.#injected.delete(key)) return // came from MQTT: never back to MQTT
    const timer = this.#pending.get(key)
    if (timer !== undefined) {
      // The device's own mesh copy: no need to inject the broker's.
      this.#clock.clearTimeout(timer)
      this.#pending.delete(key)
      this.#counters.notInjected++
    }
    if (this.#host.keyOf(d.origin) === undefined) {
      const publicKey = this.#node.keyOf(d.origin) // the node verified the frame with it
      if (publicKey !== undefined) this.#keyFromMesh(d.origin, publicKey, 'mesh')
    }
    this.#counters.fromMesh++
    const outcome = this.#host.submit(d.topic, d.frame, { path: 'mesh', from: d.from ?? this.#node.id })
    if (outcome.verdict === 'accepted') this.#counters.meshAccepted++
    else if (outcome.verdict === 'dropped' && outcome.drop.reason === 'duplicate') this.#counters.meshDuplicates++
    else if (outcome.verdict === 'held') outcome.settled.catch(() => {})
    else this.#counters.meshRefused++
  }

  #keyFromMesh (id: DeviceId, publicKey: PublicKey, source: string): void {
    if (this.#host.keyOf(id) !== undefined) return
    if (this.#host.learnKey(publicKey, { deviceId: id, source }) === 'added') this.#counters.keysFromMesh++
  }
}

function readingKey (origin: DeviceId, seq: number): string {
  return `${origin}#${seq}`
}

/** The dependencies of the gateway's mesh node (GatewayComponents carries them): a node's, with keys drawn when absent. */
export type GatewayNodeComponents = Partial<MeshNodeComponents>

/** The gateway's own mesh node, in the gateway's fleet, with a key pair of its own unless one is given. */
export function createGatewayNode (init: MeshNodeInit, gateway: { fleet: string, roster?: PublicKey[] }, components: GatewayNodeComponents): MeshNode {
  if (init.fleet !== undefined && init.fleet !== gateway.fleet) throw meshError('ERR_BAD_ARGUMENT', `the mesh fleet ${JSON.stringify(init.fleet)} is not the gateway's fleet ${JSON.stringify(gateway.fleet)}: leave mesh.fleet out`)
  const keys = components.keys ?? generateKeyPair()
  const roster = init.roster ?? gateway.roster
  return new MeshNode({
    name: `iotmesh-gw-${keys.id.slice(0, 8)}`,
    ...init,
    fleet: gateway.fleet,
    ...(roster === undefined ? {} : { roster })
  }, {
    keys,
    ...(components.transport === undefined ? {} : { transport: components.transport }),
    ...(components.responder === undefined ? {} : { responder: components.responder }),
    ...(components.clock === undefined ? {} : { clock: components.clock }),
    ...(components.random === undefined ? {} : { random: components.random }),
    ...(components.ed25519 === undefined ? {} : { ed25519: components.ed25519 }),
    ...(components.sequence === undefined ? {} : { sequence: components.sequence })
  })
}
