import type { ErrorCode } from '../shared/index.js'

/**
 * Why the gateway dropped a message: a stable reason (the counter's label, snake_case as
 * Prometheus labels are) and the stable MeshError code it maps to. Every drop is counted under
 * exactly one reason; tests enumerate this table.
 */
export const DROP_REASONS = {
  malformed: { code: 'ERR_BAD_CBOR', text: 'the payload is not a well-formed iotmesh frame (the drop carries the codec error code)' },
  frame_too_large: { code: 'ERR_FRAME_TOO_LARGE', text: 'the frame is over the frame size limit' },
  bad_topic: { code: 'ERR_BAD_TOPIC', text: 'the topic is under iotmesh/ but not of the topic layout' },
  unknown_fleet: { code: 'ERR_UNKNOWN_FLEET', text: 'the topic names a fleet this gateway does not serve' },
  topic_mismatch: { code: 'ERR_TOPIC_MISMATCH', text: 'the device id (or device topic) in the MQTT topic is not what the frame signs' },
  bad_signature: { code: 'ERR_BAD_SIGNATURE', text: 'the frame signature does not verify with the signer key' },
  unknown_signer: { code: 'ERR_UNKNOWN_SIGNER', text: 'no key for the signer arrived while the frame was held' },
  not_in_roster: { code: 'ERR_NOT_IN_ROSTER', text: 'closed mode: the signer (or status key) is not in the roster' },
  revoked: { code: 'ERR_REVOKED', text: 'the device was revoked by the fleet\'s owners: its CONNECT is refused, its open sessions closed (gateway/revocations.ts), and its frames, statuses and commands refused by any path (another session, the mesh, an external broker, a catch-up)' },
  bad_revocation: { code: 'ERR_BAD_REVOCATION', text: 'a publish on …/$revocations/<id> is not a valid owner-signed revocation of that device (the drop carries the verification code); never retained' },
  duplicate: { code: 'ERR_REPLAY', text: 'this (origin, seq) was already accepted (a retransmission, a second path, or a replay)' },
  cloned_identity: { code: 'ERR_CLONED_IDENTITY', text: 'another frame, validly signed, was accepted for this (origin, seq): two devices hold one key; the first copy is kept' },
  too_old: { code: 'ERR_REPLAY', text: 'the sequence number is below the replay window' },
  status_key_mismatch: { code: 'ERR_WRONG_KEY', text: 'the pk in a status does not derive to the device id in its topic' },
  bad_status: { code: 'ERR_BAD_STATUS', text: 'a status payload is not {"state":"online","pk":…} or {"state":"offline"}' },
  status_not_claimed: { code: 'ERR_TOPIC_MISMATCH', text: 'a client sent a status for a device id it has not claimed (or a second id)' },
  json_forbidden: { code: 'ERR_FORBIDDEN', text: 'only the gateway publishes …/json and …/value; a client tried to' },
  // The embedded broker's access rules (gateway/auth.ts, gateway/authorize.ts)
  anonymous: { code: 'ERR_NOT_AUTHORIZED', text: 'a client connected without a user name, and anonymous clients are not allowed (CONNACK 5)' },
  bad_credentials: { code: 'ERR_BAD_CREDENTIALS', text: 'a user name the broker does not know, or a wrong password (CONNACK 4)' },
  bad_token: { code: 'ERR_BAD_TOKEN', text: 'a device token that is malformed, for another id, client id or fleet, replayed or badly signed (CONNACK 4; the drop carries the precise code)' },
  token_time: { code: 'ERR_CLOCK_SKEW', text: 'a device token outside the gateway clock window: the device clock is wrong, or the token expired (CONNACK 4)' },
  connect_rate: { code: 'ERR_BUSY', text: 'an address made more CONNECT attempts than its budget, or token checks are over their budget: closed without a CONNACK' },
  subscribe_forbidden: { code: 'ERR_NOT_AUTHORIZED', text: 'a client subscribed to a filter it may not read (SUBACK 0x80)' },
  message_too_large: { code: 'ERR_MESSAGE_TOO_LARGE', text: 'a message larger than the broker accepts on any topic' },
  retained_quota: { code: 'ERR_QUOTA', text: 'a retained message over the quota of retained messages (count or total bytes)' },
  // Commands and results on the broker (gateway/commands-guard.ts), set requests (gateway/commands.ts)
  command_malformed: { code: 'ERR_BAD_COMMAND', text: 'a publish on …/cmd/<action> is not a signed command (the drop carries the codec error code)' },
  command_wrong_target: { code: 'ERR_WRONG_TARGET', text: 'the command is signed for another device than the one in its topic' },
  command_wrong_action: { code: 'ERR_TOPIC_MISMATCH', text: 'the command signs another action than the one in its topic' },
  command_unknown_issuer: { code: 'ERR_NOT_ALLOWED', text: "the command's issuer is neither in the gateway's commanders file nor the gateway itself" },
  command_not_allowed: { code: 'ERR_NOT_ALLOWED', text: "the issuer is a commander, but not of this action (the gateway's commanders file)" },
  command_not_granted: { code: 'ERR_NOT_ALLOWED', text: "the fleet's owner-signed grant policy ($grants), which an enrolled device obeys alone, grants the issuer (the gateway too) no such action on this device: refused before it spends the wire and the device's work" },
  command_expired: { code: 'ERR_EXPIRED', text: "the command had expired by the gateway's clock: never forwarded late" },
  command_repeat: { code: 'ERR_RATE_LIMITED', text: 'the same command (issuer and id) again within 500 ms of forwarding it: a replay reaches the device at most twice a second' },
  command_bad_signature: { code: 'ERR_BAD_SIGNATURE', text: "the command's signature does not verify with its issuer's key" },
  result_malformed: { code: 'ERR_BAD_COMMAND', text: 'a publish on …/result/<issuer> is not a signed result (the drop carries the codec error code)' },
  result_mismatch: { code: 'ERR_TOPIC_MISMATCH', text: 'the result is signed by another device than the one in its topic, or answers another issuer' },
  result_unknown_signer: { code: 'ERR_UNKNOWN_SIGNER', text: 'the gateway knows no key of the device that signed the result' },
  result_bad_signature: { code: 'ERR_BAD_SIGNATURE', text: "the result's signature does not verify with its device's key" },
  command_retained: { code: 'ERR_NOT_AUTHORIZED', text: 'a command, result or set request published retained: the broker would hand it to each new subscriber' },
  set_forbidden: { code: 'ERR_NOT_AUTHORIZED', text: 'a publish on …/set/<actuator> from a client that is not an MQTT user allowed to set (--set-users)' },
  set_rate: { code: 'ERR_RATE_LIMITED', text: 'an MQTT user sent more set requests than its rate allows' },
  // Owner-signed configurations retained on the broker (gateway/config-guard.ts)
  fleet_file_forbidden: { code: 'ERR_FORBIDDEN', text: 'a client published on iotmesh/<fleet>/$fleet/…: only the gateway retains the fleet files there (those its mesh node took), so a forged, replayed or cleared fleet file never reaches a broker device; refused before any signature check, never retained' },
  bad_config: { code: 'ERR_BAD_CONFIG', text: 'a publish on iotmesh/<fleet>/$config/<target> that is not an owner-signed configuration for that target newer than the one taken (or the gateway has no fleet file); the message carries the precise code' },
  bad_set: { code: 'ERR_BAD_ARGS', text: 'a set request the gateway cannot turn into a command (too large, not JSON, a value it cannot map)' }
} as const satisfies Record<string, { code: ErrorCode, text: string }>

export type DropReason = keyof typeof DROP_REASONS

export const DROP_REASON_NAMES = Object.keys(DROP_REASONS) as DropReason[]

export type Path = 'broker' | 'mesh'

export interface GatewayCounters {
  /** Verified, fresh frames accepted and emitted as readings. */
  accepted: number
  /** Accepted, by the path they came through. */
  acceptedByPath: Record<Path, number>
  /** Frames held because their signer's key was not known yet (each is later accepted or dropped). */
  held: number
  /** Held frames whose key arrived in time. */
  released: number
  /** Statuses applied (online and offline). */
  statuses: number
  /** Keys learned (from statuses, learnKey, the roster). */
  keysLearned: number
  /** SenML JSON messages published on …/json. */
  jsonPublished: number
  /** Drops, by reason. */
  dropped: Record<DropReason, number>
}

export function newCounters (): GatewayCounters {
  return {
    accepted: 0,
    acceptedByPath: { broker: 0, mesh: 0 },
    held: 0,
    released: 0,
    statuses: 0,
    keysLearned: 0,
    jsonPublished: 0,
    dropped: Object.fromEntries(DROP_REASON_NAMES.map((r) => [r, 0])) as Record<DropReason, number>
  }
}
