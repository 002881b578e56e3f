import type { Aedes, Client, PublishPacket } from 'aedes'
import { FLEET_FILES_LEVEL, TOPIC_ROOT, isMeshError, meshError, parseStatus, parseTopic, type DeviceId } from '../shared/index.js'
import { BrokerAccess, type AccessComponents, type AccessHost, type AccessInit } from './auth.js'
import { BROKER_QUOTAS, type BrokerHooks, type BrokerQuotas } from './broker.js'
import type { Ingest, Outcome, Reading } from './ingest.js'
import type { DropReason } from './reasons.js'
import { ConfigGuard } from './config-guard.js'
import { BrokerRevocations, revocationTopicDevice, revocationsFilter } from './revocations.js'

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
 * - `…/status`: from a device that authenticated with its token (gateway/auth.ts), only its own
 *   id's status. From a user or an (opted-in) anonymous client: an online status binds the
 *   connection to the device id its pk derives to (a "claim"); a connection claims one id, and
 *   never the id of a device that authenticates with its token. Offline statuses and clears (also
 *   the last will) are accepted only from the connection that claimed that id, or from Aedes
 *   itself (a will left by a broker of the cluster that died: `client` is null).
 * - Every topic: a payload over `quotas.maxMessageBytes` is refused (`message_too_large`), and a
 *   retained message over the retained quota (count and total bytes of what this broker
 *   retains) is refused (`retained_quota`); clearing a retained message (empty payload) is always
 *   accepted.
 * - `…/json` and `…/result/<issuer>/json`: only the gateway publishes there; so too
 *   `iotmesh/<fleet>/$fleet/files`, where it retains the fleet files (`fleet_file_forbidden`).
 * - `…/cmd/<action>`, `…/result/<issuer>`: only verified commands of allowed issuers and verified
 *   results signed by their device are forwarded (gateway/commands-guard.ts); `…/set/<actuator>`:
 *   only from MQTT users allowed to set, within their rate (gateway/commands.ts). None of them retained
 *   (`command_retained`).
 * - Anything outside `iotmesh/`: not the gateway's business (open), except `$SYS/` (Aedes's rule).
 *
 * A refused publish is counted by reason and, by default, acknowledged and discarded: MQTT
 * 3.1.1 §3.3.5 lets a server that refuses a PUBLISH either acknowledge it or close the connection
 * [MQTT-3.3.5-2], and discarding (Mosquitto's choice) keeps a QoS 1 sender from retransmitting a
 * bad frame on every reconnect. `onRefusal: 'disconnect'` closes connections that break the
 * authorization rules (`AUTHORIZATION_REASONS`) instead.
 */

export type RefusalPolicy = 'drop' | 'disconnect'

const COMMAND_KINDS: ReadonlySet<string> = new Set(['cmd', 'result', 'result-json', 'set'])

/** Reasons that mean the client broke a rule (rather than sent a damaged or stale frame). */
export const AUTHORIZATION_REASONS: ReadonlySet<DropReason> = new Set<DropReason>([
  'topic_mismatch', 'json_forbidden', 'status_not_claimed', 'status_key_mismatch', 'unknown_fleet', 'not_in_roster', 'message_too_large', 'retained_quota',
  'command_wrong_target', 'command_wrong_action', 'command_unknown_issuer', 'command_not_allowed', 'result_mismatch',
  'command_retained', 'set_forbidden', 'set_rate'
])

export interface PublishGuard {
  hooks: Pick<BrokerHooks, 'authorizePublish' | 'install'>
  /** Wraps Aedes's `publish` so that refused packets are acknowledged but never delivered; called for every new Aedes. */
  install (aedes: Aedes | { publish: unknown }): void
  /** The id a connection has claimed, if any. */
  claimOf (client: Client): DeviceId | undefined
}

export interface PublishGuardOptions {
  onRefusal?: RefusalPolicy
  /** Who each client is (gateway/auth.ts); without it every client is treated as an anonymous one. */
  access?: BrokerAccess
  quotas?: BrokerQuotas
  /** What is accepted on iotmesh/<fleet>/$config/… (gateway/config-guard.ts); without it, nothing. */
  configs?: ConfigGuard
  /** The fleet's revocations (with a fleet file): a publish on …/$revocations/<id> is taken only when valid. */
  revocations?: BrokerRevocations
  /**
   * Whether an accepted reading is kept (gateway/store/state.ts `record`): undefined or true, kept;
   * false, the write failed; a promise, the commit is pending. The PUBLISH is acknowledged (and
   * passed to subscribers) only once kept; a failed one closes the connection unacknowledged
   * (MQTT 3.1.1 §4.3.2: the sender keeps a QoS 1 message until its PUBACK and sends it again).
   */
  kept?: (reading: Reading) => boolean | Promise<boolean> | undefined
}

export function createPublishGuard (ingest: Ingest, options: PublishGuardOptions = {}): PublishGuard {
  const policy = options.onRefusal ?? 'drop'
  const access = options.access
  const maxMessageBytes = options.quotas?.maxMessageBytes ?? BROKER_QUOTAS.maxMessageBytes
  const maxRetained = options.quotas?.maxRetained ?? BROKER_QUOTAS.maxRetained
  const maxRetainedBytes = options.quotas?.maxRetainedBytes ?? BROKER_QUOTAS.maxRetainedBytes
  const claims = new WeakMap<Client, DeviceId>()
  const configs = options.configs ?? new ConfigGuard(ingest.fleet, undefined)
  const refused = new WeakSet<PublishPacket>()
  /** What this broker retains (topic -> payload bytes), as far as this gateway accepted it; reset with each new Aedes. */
  let retained = new Map<string, number>()
  let retainedBytes = 0
  const retain = (topic: string, bytes: number): void => {
    retainedBytes += bytes - (retained.get(topic) ?? 0)
    if (bytes === 0) retained.delete(topic)
    else retained.set(topic, bytes)
  }

  const authorizePublish: BrokerHooks['authorizePublish'] = (client, packet, callback) => {
    const topic = packet.topic
    if (topic.startsWith('$SYS/')) return callback(new Error('$SYS/ topics are reserved for the broker'))
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload
    const from = client?.id
    const principal = access?.principalOf(client)
    const source = { path: 'broker' as const, ...(from === undefined ? {} : { from }), ...(principal?.kind === 'user' ? { user: principal.name } : {}) }
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
      if (packet.retain) retain(topic, payload.length)
      const kept = outcome.verdict === 'accepted' ? options.kept?.(outcome.reading) : undefined
      if (kept === undefined || kept === true) return callback(null)
      const answer = (ok: boolean): void => { callback(ok ? null : meshError('ERR_STORE', `the gateway could not keep reading ${show(topic)}: not acknowledged, to be sent again`)) }
      if (kept === false) return answer(false)
      void kept.then(answer)
    }

    if (payload.length > maxMessageBytes) {
      return settle(ingest.reject('message_too_large', `client ${show(from)} published ${payload.length} bytes on ${show(topic)}, over the ${maxMessageBytes}-byte limit`, { topic, ...source }))
    }
    if (packet.retain && payload.length > 0) {
      const count = retained.size + (retained.has(topic) ? 0 : 1)
      const bytes = retainedBytes - (retained.get(topic) ?? 0) + payload.length
      if (count > maxRetained || bytes > maxRetainedBytes) {
        return settle(ingest.reject('retained_quota', `client ${show(from)} asked to retain ${payload.length} bytes on ${show(topic)}: the broker holds ${retained.size} retained messages of ${retainedBytes} bytes (quota ${maxRetained} messages, ${maxRetainedBytes} bytes)`, { topic, ...source }))
      }
    }
    if (client !== null && topic.startsWith(`${TOPIC_ROOT}/${ingest.fleet}/${FLEET_FILES_LEVEL}/`)) {
      // The fleet files (shared/fleet-file.ts `fleetFilesTopic`) are the gateway's to retain: no client's is taken, whatever it holds (no signature checked).
      return settle(ingest.reject('fleet_file_forbidden', `client ${show(from)} published on ${show(topic)}: only the gateway publishes the fleet's fleet files`, { topic, ...source }))
    }
    const config = configs.check(topic, payload)
    if (config !== undefined) return settle(config.ok ? { verdict: 'ignored' } : ingest.reject('bad_config', config.message, { topic, ...source }, config.code))
    const revoked = revocationTopicDevice(topic, ingest.fleet)
    if (revoked !== undefined && client !== null) {
      // Only a valid owner-signed revocation of the device the topic names is taken (and retained); anything else is refused with its code.
      const info = { topic, ...source, ...(revoked === null ? {} : { deviceId: revoked }) }
      const set = options.revocations
      if (set === undefined) return settle(ingest.reject('bad_revocation', `client ${show(from)} published on ${show(topic)}: this gateway has no fleet file to check revocations with`, info))
      if (revoked === null || payload.length === 0) return settle(ingest.reject('bad_revocation', `client ${show(from)} published on ${show(topic)}: a revocation is a signed document under a device id, never cleared`, info))
      try {
        const { revocation } = set.add(new Uint8Array(payload), 'mqtt')
        if (revocation.device !== revoked) return settle(ingest.reject('bad_revocation', `client ${show(from)} published the revocation of ${revocation.device} on ${show(topic)}`, info, 'ERR_TOPIC_MISMATCH'))
      } catch (err) {
        const code = isMeshError(err) ? err.code : 'ERR_BAD_REVOCATION'
        return settle(ingest.reject('bad_revocation', `client ${show(from)} published on ${show(topic)} what is no valid revocation: ${(err as Error).message}`, info, code))
      }
      if (packet.retain) retain(topic, payload.length)
      return callback(null)
    }
    const parsed = parseTopic(topic)
    if (parsed.ok && packet.retain && COMMAND_KINDS.has(parsed.kind) && parsed.fleet === ingest.fleet) {
      // Retained, a command would reach the device again on every resubscribe (a device without a journal on disk, restarted, would run it again).
      const message = `client ${show(from)} published ${show(topic)} retained: commands, results and set requests are never retained`
      return settle(ingest.reject('command_retained', message, { topic, ...source }))
    }
    if (parsed.ok && parsed.kind === 'status' && parsed.fleet === ingest.fleet) {
      const claimed = principal?.kind === 'device' ? principal.id : client === null ? undefined : claims.get(client)
      const info = { topic, deviceId: parsed.deviceId, ...source }
      if (claimed !== undefined && claimed !== parsed.deviceId) {
        const as = principal?.kind === 'device' ? 'authenticated as' : 'claimed'
        return settle(ingest.reject('status_not_claimed', `client ${String(from)} ${as} device ${claimed} and sent a status for ${parsed.deviceId}`, info))
      }
      if (client !== null && principal?.kind !== 'device' && access?.usesToken(parsed.deviceId) === true) {
        return settle(ingest.reject('status_not_claimed', `client ${String(from)} sent a status for ${parsed.deviceId}, which authenticates with its own key: only its own connection may`, info))
      }
      const status = parseStatus(payload, parsed.deviceId)
      const online = status.ok && status.status?.state === 'online'
      if (status.ok && !online && client !== null && claimed !== parsed.deviceId) {
        return settle(ingest.reject('status_not_claimed', `client ${String(from)} sent an offline status for ${parsed.deviceId} without claiming it (publish an online status with its pk first)`, info))
      }
    }
    settle(ingest.handle(topic, payload, source))
  }

  const install = (aedes: Aedes | { publish: unknown }): void => {
    retained = new Map() // a new Aedes starts with its own (memory) store
    retainedBytes = 0
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
  }
  return {
    hooks: { authorizePublish, install },
    install,
    claimOf: (client) => {
      const principal = access?.principalOf(client)
      return principal?.kind === 'device' ? principal.id : claims.get(client)
    }
  }
}

/** A client-chosen string as a log line may hold it: quoted (no line breaks) and at most 64 characters. */
function show (text: unknown): string {
  return JSON.stringify(String(text).slice(0, 64))
}

/**
 * Everything the embedded broker is given to decide who connects, reads and publishes: the access
 * rules (gateway/auth.ts) and the publish guard, both reporting refusals through the ingest (its
 * counters, drop events and so the gateway's logs and metrics). The broker installs them on every
 * Aedes it builds, so they survive restarts (gateway/broker.ts).
 */
export function createBrokerGate (
  ingest: Ingest,
  init: AccessInit & { onRefusal?: RefusalPolicy, quotas?: BrokerQuotas, configs?: ConfigGuard, kept?: PublishGuardOptions['kept'], claimToken?: AccessHost['claimToken'] },
  components: AccessComponents = {}
): { access: BrokerAccess, guard: PublishGuard, hooks: Omit<BrokerHooks, 'setup'>, revocations: BrokerRevocations | undefined } {
  const refuse: AccessHost['refuse'] = (reason, message, info, code) => { ingest.reject(reason, message, { path: 'broker', ...info }, code) }
  const policy = init.fleetPolicy
  const revocations = policy === undefined
    ? undefined
    : new BrokerRevocations(policy, { ed25519: components.ed25519, deviceOf: (client) => guard.claimOf(client) }) // called only once the broker runs: guard is made below
  const access = new BrokerAccess(init, {
    fleet: ingest.fleet,
    ...(revocations === undefined ? {} : { revoked: (id: DeviceId) => revocations.has(id), revocationsFilter: revocationsFilter(ingest.fleet) }),
    ...(ingest.keys.closed ? { inRoster: (id: DeviceId) => ingest.keys.allowed(id) } : {}),
    isCommander: (id: DeviceId) => ingest.commands?.isCommander(id) === true,
    refuse,
    ...(init.claimToken === undefined ? {} : { claimToken: init.claimToken })
  }, components)
  const guard = createPublishGuard(ingest, { access, revocations, onRefusal: init.onRefusal, quotas: init.quotas, configs: init.configs, kept: init.kept })
  const onOversize: BrokerHooks['onOversize'] = (info) => {
    refuse('message_too_large', `${info.address} sent an MQTT packet of ${info.bytes} bytes, over the ${info.limit}-byte limit: connection closed`, info.from === undefined ? {} : { from: info.from }, 'ERR_MESSAGE_TOO_LARGE')
  }
  const install = (aedes: Aedes): void => {
    guard.install(aedes)
    revocations?.attach(aedes)
  }
  return { access, guard, revocations, hooks: { ...guard.hooks, ...access.hooks, install, onOversize } }
}
