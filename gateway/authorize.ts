import type { Client, PublishPacket } from 'aedes'
import { meshError, parseStatus, parseTopic, type DeviceId } from '../shared/index.js'
import type { BrokerHooks } from './broker.js'
import type { Ingest, Outcome } from './ingest.js'
import type { DropReason } from './reasons.js'

/**
 * What an MQTT client may publish on the embedded broker, decided in Aedes's `authorizePublish`
 * before anything is forwarded or retained:
 *
 * - `…/telemetry` (and other frame topics): the frame goes through the ingest pipeline — decoded,
 *   bound to the topic (the signer's id must be the id in the topic: ERR_TOPIC_MISMATCH), checked
 *   for replay and verified synchronously (node:crypto, ~60 µs). A frame from a signer whose key
 *   is unknown is held (the client's publish waits, bounded) until a key arrives, then dropped.
 *   The signature, not the connection, decides who may publish under an id: a client may relay
 *   frames another device signed (a hybrid device, the mesh bridge), never forge one.
 * - `…/status`: an online status binds the connection to the device id its pk derives to (a
 *   "claim"); a connection claims one id. Offline statuses and clears (also the last will) are
 *   accepted only from the connection that claimed that id, or from Aedes itself (a will left by
 *   a broker of the cluster that died: `client` is null).
 * - `…/json`: only the gateway publishes there.
 * - Anything outside `iotmesh/`: not the gateway's business (open), except `$SYS/` (Aedes's rule).
 *
 * A refused publish is counted by reason and, by default, acknowledged and discarded: MQTT
 * 3.1.1 §3.3.5 lets a server that refuses a PUBLISH either acknowledge it or close the connection
 * [MQTT-3.3.5-2], and discarding (Mosquitto's choice) keeps a QoS 1 sender from retransmitting a
 * bad frame on every reconnect. `onRefusal: 'disconnect'` closes connections that break the
 * authorization rules (`AUTHORIZATION_REASONS`) instead.
 */

export type RefusalPolicy = 'drop' | 'disconnect'

/** Reasons that mean the client broke a rule (rather than sent a damaged or stale frame). */
export const AUTHORIZATION_REASONS: ReadonlySet<DropReason> = new Set<DropReason>(['topic_mismatch', 'json_forbidden', 'status_not_claimed', 'status_key_mismatch', 'unknown_fleet', 'not_in_roster'])

export interface PublishGuard {
  hooks: BrokerHooks
  /** Wraps Aedes's `publish` so that refused packets are acknowledged but never delivered. */
  install (aedes: { publish: unknown }): void
  /** The id a connection has claimed, if any. */
  claimOf (client: Client): DeviceId | undefined
}

export function createPublishGuard (ingest: Ingest, options: { onRefusal?: RefusalPolicy } = {}): PublishGuard {
  const policy = options.onRefusal ?? 'drop'
  const claims = new WeakMap<Client, DeviceId>()
  const refused = new WeakSet<PublishPacket>()

  const authorizePublish: BrokerHooks['authorizePublish'] = (client, packet, callback) => {
    const topic = packet.topic
    if (topic.startsWith('$SYS/')) return callback(new Error('$SYS/ topics are reserved for the broker'))
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload
    const from = client?.id
    const source = { path: 'broker' as const, ...(from === undefined ? {} : { from }) }
    const settle = (outcome: Outcome): void => {
      if (outcome.verdict === 'held') {
        outcome.settled.then(settle, () => { settle(ingest.reject('unknown_signer', 'the held frame could not be settled', { topic })) })
        return
      }
      if (outcome.verdict === 'dropped') {
        if (policy === 'disconnect' && AUTHORIZATION_REASONS.has(outcome.drop.reason)) return callback(meshError(outcome.drop.code, outcome.drop.message))
        refused.add(packet)
        return callback(null)
      }
      if (outcome.verdict === 'status' && client !== null && outcome.event.status?.state === 'online') claims.set(client, outcome.event.deviceId)
      callback(null)
    }

    const parsed = parseTopic(topic)
    if (parsed.ok && parsed.kind === 'status' && parsed.fleet === ingest.fleet) {
      const claimed = client === null ? undefined : claims.get(client)
      const info = { topic, deviceId: parsed.deviceId, ...source }
      if (claimed !== undefined && claimed !== parsed.deviceId) {
        return settle(ingest.reject('status_not_claimed', `client ${String(from)} claimed device ${claimed} and sent a status for ${parsed.deviceId}`, info))
      }
      const status = parseStatus(payload, parsed.deviceId)
      const online = status.ok && status.status?.state === 'online'
      if (status.ok && !online && client !== null && claimed !== parsed.deviceId) {
        return settle(ingest.reject('status_not_claimed', `client ${String(from)} sent an offline status for ${parsed.deviceId} without claiming it (publish an online status with its pk first)`, info))
      }
    }
    settle(ingest.handle(topic, payload, source))
  }

  return {
    hooks: { authorizePublish },
    install (aedes) {
      const target = aedes as { publish: (packet: PublishPacket, client?: unknown, done?: unknown) => void }
      const original = target.publish.bind(aedes)
      target.publish = (packet, client, done) => {
        if (refused.has(packet)) {
          refused.delete(packet)
          const callback = typeof client === 'function' ? client : done
          if (typeof callback === 'function') (callback as () => void)()
          return
        }
        original(packet, client, done)
      }
    },
    claimOf: (client) => claims.get(client)
  }
}
