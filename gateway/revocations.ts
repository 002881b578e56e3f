import type { Aedes, Client } from 'aedes'
import { RevocationSet, isDeviceId, isMeshError, type Clock, type DeviceId, type Ed25519, type FleetPolicy, type Revocation } from '../shared/index.js'
import { TokenBucket } from '../mesh/index.js'
import type { Ingest } from './ingest.js'

/**
 * Revocations at the gateway's broker (issue 13). With the fleet file, the gateway holds the
 * fleet's owner-signed revocations (shared/fleet.ts RevocationSet: grow-only, verified once), from
 * its mesh node (REVOKE gossip), from MQTT, and from its start. For each new one it:
 *   - publishes it retained on `iotmesh/<fleet>/$revocations/<device id>` (QoS 1), so devices on
 *     the broker learn it when they subscribe, and every new subscriber is handed the whole set;
 *   - closes every open MQTT session of the revoked device (its token principal, or the connection
 *     that claimed its status), at once;
 *   - refuses its later CONNECTs (gateway/auth.ts: CONNACK 5, ERR_REVOKED), before any signature check.
 * A publish on a `$revocations` topic is taken only when it is a valid owner-signed revocation of
 * the device its topic names; anything else is refused by the publish guard (gateway/authorize.ts)
 * with its code (ERR_BAD_REVOCATION, ERR_NOT_OWNER, ERR_TOO_FEW_OWNERS, ERR_UNKNOWN_FLEET,
 * ERR_TOPIC_MISMATCH), and never retained. `$revocations` sits where a device id would: no device
 * id starts with `$`, and topics are never matched by position alone (MQTT 3.1.1 §4.7.2 gives `$`
 * a meaning only at the first level).
 */

export const REVOCATIONS_LEVEL = '$revocations'

export function revocationTopic (fleet: string, device: DeviceId): string {
  return `iotmesh/${fleet}/${REVOCATIONS_LEVEL}/${device}`
}

/** The filter a device subscribes to for the fleet's revocations. */
export function revocationsFilter (fleet: string): string {
  return `iotmesh/${fleet}/${REVOCATIONS_LEVEL}/+`
}

/** For a topic under iotmesh/<fleet>/$revocations/: the device id it names (or null: not an id); undefined for any other topic. */
export function revocationTopicDevice (topic: string, fleet: string): DeviceId | null | undefined {
  const prefix = `iotmesh/${fleet}/${REVOCATIONS_LEVEL}/`
  if (!topic.startsWith(prefix)) return undefined
  const id = topic.slice(prefix.length)
  return isDeviceId(id) ? id : null
}

export interface BrokerRevocationsComponents {
  ed25519?: Ed25519
  /** The device a client speaks for (its token principal, or its status claim). */
  deviceOf: (client: Client) => DeviceId | undefined
}

export type RevokedListener = (revocation: Revocation, bytes: Uint8Array, source: 'mqtt' | 'mesh') => void

export class BrokerRevocations {
  readonly set: RevocationSet
  readonly #components: BrokerRevocationsComponents
  /** The signed bytes of each revocation held, by device: what is published retained. */
  readonly #bytes = new Map<DeviceId, Uint8Array>()
  readonly #listeners = new Set<RevokedListener>()
  #aedes: Aedes | undefined
  /** Sessions closed because their device was revoked. */
  closed = 0

  constructor (policy: FleetPolicy, components: BrokerRevocationsComponents) {
    this.set = new RevocationSet(policy)
    this.#components = components
  }

  get fleet (): string { return this.set.policy.fleet }

  has (id: DeviceId): boolean { return this.set.has(id) }

  /** Every revocation held, verified (the API's and the dashboard's list). */
  list (): Revocation[] {
    return [...this.#bytes.keys()].flatMap((device) => this.set.get(device) ?? [])
  }

  /** Calls `listener` for each new revocation (the gateway hands one from MQTT on to its mesh node). */
  on (listener: RevokedListener): void { this.#listeners.add(listener) }

  /** A new Aedes (each broker start): it is handed every revocation held, retained. */
  attach (aedes: Aedes): void {
    this.#aedes = aedes
    for (const [device, bytes] of this.#bytes) this.#publish(device, bytes)
  }

  /** Verifies and takes a revocation; throws its code (the guard counts it). 'added': published retained, sessions closed. */
  add (bytes: Uint8Array, source: 'mqtt' | 'mesh'): { verdict: 'added' | 'known', revocation: Revocation } {
    const taken = this.set.add(bytes, this.#components.ed25519)
    if (taken.verdict === 'added') {
      const device = taken.revocation.device
      this.#bytes.set(device, new Uint8Array(bytes))
      this.#publish(device, bytes)
      this.#closeSessions(device)
      for (const listener of this.#listeners) listener(taken.revocation, bytes, source)
    }
    return taken
  }

  #publish (device: DeviceId, bytes: Uint8Array): void {
    this.#aedes?.publish({ cmd: 'publish', topic: revocationTopic(this.fleet, device), payload: Buffer.from(bytes), qos: 1, retain: true, dup: false }, () => {})
  }

  #closeSessions (device: DeviceId): void {
    const clients = (this.#aedes as { clients?: Record<string, Client> } | undefined)?.clients ?? {}
    for (const client of Object.values(clients)) {
      if (this.#components.deviceOf(client) !== device) continue
      this.closed++
      client.close()
    }
  }
}

/**
 * Messages on iotmesh/<fleet>/$revocations/<id> read from an external broker (which closes no
 * session and checks nothing): `take` puts a valid owner-signed revocation into `revocations` and
 * counts anything else as bad_revocation with its code (a valid one under another device's id is
 * taken and counted as ERR_TOPIC_MISMATCH, as on the embedded broker). Bounded: one already held
 * costs a lookup; a new one costs owner signature checks, so at most `rate` per second (`burst` at
 * once) are checked, and beyond that it is counted (bad_revocation, ERR_RATE_LIMITED) and dropped: a
 * flood of forgeries spends a few signature checks a second, not the gateway. A genuine one lost to
 * a flood comes again with the retained message on the next subscription, and by the mesh.
 */
export class ExternalRevocations {
  readonly #bucket: TokenBucket
  constructor (
    readonly revocations: BrokerRevocations,
    readonly ingest: Ingest,
    readonly clock: Clock,
    init: { rate?: number, burst?: number } = {}
  ) {
    this.#bucket = new TokenBucket(init.rate ?? 20, init.burst ?? 50, clock.now())
  }

  /** True: the message was on a revocations topic of the fleet (taken, known or refused); false: another topic. */
  take (topic: string, payload: Uint8Array): boolean {
    const device = revocationTopicDevice(topic, this.revocations.fleet)
    if (device === undefined) return false
    if (payload.length === 0) return true // a clear: nothing to take
    const info = { topic, path: 'broker' as const }
    if (device !== null && this.revocations.has(device)) return true // held already: no signature to check
    if (!this.#bucket.take(1, this.clock.now())) {
      this.ingest.reject('bad_revocation', `${topic}: more than ${this.#bucket.rate} new revocations a second to check; dropped`, info, 'ERR_RATE_LIMITED')
      return true
    }
    try {
      const { revocation } = this.revocations.add(new Uint8Array(payload), 'mqtt')
      if (revocation.device !== device) this.ingest.reject('bad_revocation', `the revocation of ${revocation.device} on ${topic}`, info, 'ERR_TOPIC_MISMATCH')
    } catch (err) {
      this.ingest.reject('bad_revocation', `${topic}: no valid revocation: ${(err as Error).message}`, info, isMeshError(err) ? err.code : 'ERR_BAD_REVOCATION')
    }
    return true
  }
}
