import { LINKS_TOPIC, type DeviceId } from '../../shared/index.js'
import type { MeshNode } from '../../mesh/index.js'
import type { Fleet } from '../../firmware-sim/index.js'
import type { ReadingObservation } from '../observations.js'
import { readingKey } from './support.js'

/**
 * The fate of every reading of a running fleet, from the fleet's own events:
 *
 * - published: the fleet's `reading` event (the device made the reading and handed it to its
 *   outbox); publishedAt is the reading's sampling time, on the wall clock;
 * - gateway: the fleet's `delivered` event, the gateway's first acceptance (its receivedAt);
 * - copies: every `reading` the gateway emitted to its application (its ingest drops repeats
 *   before that, so more than one per reading would be a duplicate delivered);
 * - peer: the peer subscriber's arrivals (runners/peer.ts);
 * - other frames: sequence numbers a device's mesh node spent on its own `mesh/links`
 *   announcements (the node shares the device's sequence source), seen as the node delivers
 *   them to itself. They are not readings, and the gaps they leave are not losses.
 */
export class FleetRecorder {
  readonly #published = new Map<string, { origin: DeviceId, seq: number, at: number }>()
  readonly #gateway = new Map<string, number>()
  readonly #copies = new Map<string, number>()
  readonly #peer = new Map<string, number>()
  readonly #other = new Map<string, { origin: DeviceId, seq: number }>()
  readonly #watched = new WeakSet<MeshNode>()
  readonly #fleet: Fleet
  #gatewayWatched = false

  constructor (fleet: Fleet) {
    this.#fleet = fleet
    fleet.on('reading', (r) => {
      this.#published.set(readingKey(r.origin, r.seq), { origin: r.origin, seq: r.seq, at: r.time })
    })
    fleet.on('delivered', (d) => {
      const key = readingKey(d.origin, d.seq)
      if (!this.#gateway.has(key)) this.#gateway.set(key, d.receivedAt)
    })
  }

  /**
   * Attaches to what the fleet has now: its gateway and every device's mesh node (a restarted
   * device has a new one). Idempotent: call it once the fleet has started and after every restart.
   */
  watch (): void {
    const gateway = this.#fleet.gateway
    if (!this.#gatewayWatched && gateway !== undefined) {
      this.#gatewayWatched = true
      gateway.on('reading', (r) => {
        if (r.deviceTopic === LINKS_TOPIC) return
        const key = readingKey(r.origin, r.seq)
        this.#copies.set(key, (this.#copies.get(key) ?? 0) + 1)
      })
    }
    for (const sim of this.#fleet.devices) {
      const node = sim.device?.node
      if (node === undefined || this.#watched.has(node)) continue
      this.#watched.add(node)
      node.on('delivery', (d) => {
        if (d.origin === node.id && d.topic.endsWith(`/${LINKS_TOPIC}`)) this.#other.set(readingKey(d.origin, d.seq), { origin: d.origin, seq: d.seq })
      })
    }
  }

  /** A peer subscriber's arrival (the first one counts). */
  peerArrival (origin: DeviceId, seq: number, at: number): void {
    const key = readingKey(origin, seq)
    if (!this.#peer.has(key)) this.#peer.set(key, at)
  }

  /** Devices (by origin) with a reading the gateway accepted at or after `since`. */
  heardAtGateway (since: number): Set<DeviceId> {
    return this.#heard(this.#gateway, since)
  }

  /** Devices (by origin) with a reading the peer received at or after `since`. */
  heardAtPeer (since: number): Set<DeviceId> {
    return this.#heard(this.#peer, since)
  }

  /** Readings published in [from, to) that have not reached the gateway (or the peer) yet. */
  outstanding (from: number, to: number, peer?: DeviceId): number {
    let n = 0
    for (const [key, r] of this.#published) {
      if (r.at < from || r.at >= to) continue
      if (!this.#gateway.has(key) || (peer !== undefined && r.origin !== peer && !this.#peer.has(key))) n++
    }
    return n
  }

  /**
   * The observations of the readings published in [from, to): arrivals after `endedAt` do not
   * count (observation had stopped).
   */
  readings (from: number, to: number, endedAt: number): ReadingObservation[] {
    const out: ReadingObservation[] = []
    for (const [key, r] of this.#published) {
      if (r.at < from || r.at >= to) continue
      const gateway = this.#gateway.get(key)
      const peer = this.#peer.get(key)
      const copies = this.#copies.get(key) ?? 0
      const receivedAt = {
        ...(gateway !== undefined && gateway <= endedAt ? { gateway } : {}),
        ...(peer !== undefined && peer <= endedAt ? { peer } : {})
      }
      out.push({
        origin: r.origin,
        seq: r.seq,
        publishedAt: r.at,
        ...(Object.keys(receivedAt).length === 0 ? {} : { receivedAt }),
        ...(copies > 1 ? { duplicatesAtGateway: copies - 1 } : {})
      })
    }
    return out
  }

  /** Sequence numbers spent on frames other than readings (mesh/links announcements). */
  otherFrames (): Array<{ origin: DeviceId, seq: number }> {
    return [...this.#other.values()]
  }

  #heard (arrivals: Map<string, number>, since: number): Set<DeviceId> {
    const out = new Set<DeviceId>()
    for (const [key, at] of arrivals) {
      if (at < since) continue
      const r = this.#published.get(key)
      if (r !== undefined) out.add(r.origin)
    }
    return out
  }
}
