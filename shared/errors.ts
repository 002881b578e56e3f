/**
 * One error type with a stable `code` (in the style of undici's `lib/core/errors.js` and
 * hypercore-errors). Code that handles errors, and tests, look at `code`, never at `message`.
 */

/** Every code iotmesh raises. Adding a code means adding a row to `test/shared/errors.test.ts`. */
export const ERROR_CODES = {
  // Untrusted bytes: the wire contract (shared/)
  ERR_BAD_CBOR: 'the bytes are not well-formed CBOR, or not the CBOR shape expected here',
  ERR_TRUNCATED: 'the input ended in the middle of a CBOR item',
  ERR_FRAME_TOO_LARGE: 'the frame is larger than the frame size limit',
  ERR_TOO_DEEP: 'CBOR nesting is deeper than the limit',
  ERR_TOO_MANY_RECORDS: 'the SenML pack holds more records than the limit',
  ERR_STRING_TOO_LONG: 'a text or byte string is longer than the limit',
  ERR_NOT_PREFERRED: 'a CBOR integer, length or tag head is longer than needed (RFC 8949 §4.2.1 preferred serialization)',
  ERR_BAD_UTF8: 'a CBOR text string is not valid UTF-8 (RFC 8949 §3.1, RFC 3629)',
  ERR_BAD_LABEL: 'a CBOR map key is neither an integer nor a text string (labels: RFC 9052 §3, RFC 8428 §6)',
  ERR_DUPLICATE_KEY: 'a CBOR map holds the same key twice, or a COSE header label is in both buckets (RFC 9052 §3: such a message must not be processed)',
  ERR_NOT_COSE_SIGN1: 'the frame is not a tagged COSE_Sign1 (CBOR tag 18, RFC 9052 §4.2)',
  ERR_UNSUPPORTED_ALG: 'the COSE alg is not Ed25519 (-19) or EdDSA (-8)',
  ERR_BAD_HEADER: 'the COSE protected header is missing, malformed or lacks a device kid',
  ERR_BAD_SENML: 'the payload is not a SenML pack of the shape iotmesh signs (RFC 8428 §6)',
  ERR_BAD_SIGNATURE: 'the Ed25519 signature does not verify with the public key',
  ERR_WRONG_KEY: 'the public key does not derive to the device id that claims it',
  ERR_REPLAY: 'the sequence number was already accepted, or is older than the replay window',
  ERR_CLONED_IDENTITY: 'two different frames were signed for one (origin, seq): two devices hold the same key (a cloned SD card)',
  // Identity and keys
  ERR_BAD_KEY: 'a key is not 32 bytes, or a key file cannot be parsed',
  ERR_KEY_PERMISSIONS: 'a private key file is readable by other users',
  ERR_KEY_EXISTS: 'refusing to overwrite an existing key file',
  ERR_BAD_DEVICE_ID: 'a device id is not 26 base32 characters',
  ERR_SEQUENCE_STORE: 'the sequence number file cannot be read or written',
  // Mesh: discovery, links, routing (mesh/)
  ERR_BAD_TXT: 'a DNS-SD TXT record is malformed, or its pk does not derive to its id',
  ERR_NAME_CONFLICT: 'every DNS-SD instance name tried is already taken on the network (RFC 6762 §9)',
  ERR_HANDSHAKE: 'a link handshake failed: bad proof, unexpected message, or timeout',
  ERR_PEER_KEY_MISMATCH: 'a peer proved a key other than the one discovery announced for it',
  ERR_PROTOCOL_VERSION: 'the peer speaks a link protocol version this node does not',
  ERR_DECRYPT: 'a link message or an encrypted reading failed authenticated decryption (changed bytes, or another key)',
  ERR_LINK_CLOSED: 'the link is closed',
  ERR_BACKPRESSURE: 'the link send queue is full: the peer is not reading fast enough',
  ERR_NOT_IN_ROSTER: 'the device key is not in the fleet roster (closed mode)',
  ERR_BUSY: 'the peer turned the handshake away: too many in progress, or over its handshake budget; retry later',
  ERR_BANNED: 'the peer (by id or address) is kept out for a while: banned by its owner or for its score',
  ERR_HOP_LIMIT: 'the frame has travelled more hops than the limit',
  ERR_BAD_DECLARATION: 'an INTEREST declaration is malformed, not the one its entry claims, or not the one already verified for its version',
  ERR_ROUTE_PROOF: 'an INTEREST distance is not proven by the subscriber\'s hash chain (SEAD), or claims distance 0 for another node',
  ERR_BAD_ACK: 'an end-to-end ACK is malformed: not a COSE_Sign1 of content type 65001 with a subscriber kid, ' +
    'or its payload is not [origin, high, holes, time] with at most 16 ascending holes below high',
  ERR_TABLE_FULL: 'a bounded table (interest routes, claims waiting, peer candidates) is full for this neighbour or in all; the entry was refused',
  ERR_OVER_BUDGET: 'a neighbour sent more messages of one kind than its budget allows; the excess was dropped unread',
  ERR_PEER_SCORE: 'a neighbour\'s score fell below the threshold (invalid frames, floods, broken promises): disconnected and kept out for a backoff',
  ERR_BAD_TOPIC: 'a topic or topic filter is not valid (MQTT 3.1.1 §4.7)',
  ERR_ABORTED: 'the operation was aborted',
  ERR_UNKNOWN_SIGNER: 'no public key is known yet for the device that signed the frame',
  ERR_UNKNOWN_FLEET: 'the frame or topic names a fleet this node does not serve',
  ERR_TOPIC_MISMATCH: 'the device id in the topic is not the signer of the frame',
  ERR_FORBIDDEN: 'the client may not publish to this topic (only the gateway publishes …/json)',
  ERR_BAD_STATUS: 'a device status message is not the JSON expected, or its pk does not derive to the topic id',
  // Commands (shared/command.ts, firmware-sim/commands/)
  ERR_BAD_COMMAND: 'a command or result is not the signed CBOR layout iotmesh uses (shared/command.ts), or its lifetime is out of bounds',
  ERR_WRONG_TARGET: 'the command was signed for another device than the one that received it',
  ERR_NOT_ALLOWED: 'the issuer\'s key is not allowed this action on this device (its commanders list)',
  ERR_EXPIRED: 'the command expired before it could be executed (never late: a healed partition does not replay it)',
  ERR_RATE_LIMITED: 'the issuer sent more commands than its rate allows; the excess was refused unexecuted',
  ERR_UNKNOWN_ACTION: 'the device has no actuator for this action',
  ERR_BAD_ARGS: 'the action\'s arguments are not what it takes',
  ERR_JOURNAL: 'the journal of executed commands cannot be read or written; nothing was executed',
  ERR_NO_ROUTE: 'no route to the command\'s target: no device in reach declared that it takes commands under that id, or the path back to the issuer is gone',
  ERR_TIMEOUT: 'no verified result came back before the command expired or the wait ended; it may or may not have been executed',
  ERR_BAD_RULES: 'an automation rule file is not valid: its schema (iotmesh rules schema), a device name, or a rule that triggers itself',
  // Fleet owners, credentials, revocations (shared/fleet.ts, shared/cose-sign.ts)
  ERR_NOT_COSE_SIGN: 'not a COSE_Sign (RFC 9052 §4.1, CBOR tag 98) with 1 to 16 signatures, each naming its signer',
  ERR_BAD_CREDENTIAL: 'an enrollment credential is not the CWT layout iotmesh uses (shared/fleet.ts): issuer, device, times, id, confirmation key',
  ERR_CREDENTIAL_EXPIRED: 'the enrollment credential expired: an owner enrolls the device again (iotmesh fleet enroll)',
  ERR_NOT_OWNER: 'no signature of an owner of the fleet holds on it, or the signer is not an owner (the fleet file lists the owners)',
  ERR_TOO_FEW_OWNERS: 'fewer owners signed it than the fleet\'s threshold requires (iotmesh fleet cosign adds a signature)',
  ERR_REVOKED: 'the device was revoked by the fleet\'s owners: its links, frames and commands are refused everywhere the revocation reached',
  ERR_BAD_REVOCATION: 'a revocation is not the signed layout iotmesh uses (shared/fleet.ts): fleet, device id, reason, time',
  ERR_BAD_HANDOVER: 'a key handover is not the layout iotmesh uses (shared/handover.ts), is not signed by the key it hands over from, or names another key or device than the rotation that carries it',
  ERR_BAD_ROTATION: 'an owner rotation is not the signed layout iotmesh uses (shared/owner-rotation.ts), or its new key is an owner already',
  ERR_BAD_CONFIG: 'a signed configuration is not the layout iotmesh uses (shared/fleet-config.ts), or its settings are not valid for the device: the message names the setting',
  ERR_BAD_FLEET_FILE: 'a signed fleet file is not the layout iotmesh uses (shared/fleet-file.ts): fleet, version, threshold, 1 to 16 owners',
  ERR_FLEET_STALE: 'a signed fleet file is not newer than the version this node holds: refused, so an older one cannot be replayed (sign a higher version)',
  ERR_CONFIG_STALE: 'a signed configuration is not newer than the version the device applied: refused, so an old one cannot be replayed (push a higher version)',
  // Encrypted readings (shared/cose-encrypt.ts, shared/readers.ts)
  ERR_NOT_COSE_ENCRYPT: 'not a COSE_Encrypt as iotmesh sends it (RFC 9052 §5.1, CBOR tag 96): 1 to 16 X25519 recipients (ECDH-ES + A128KW), sizes as fixed',
  ERR_NOT_A_READER: 'the encrypted reading was not encrypted to this reader key: no grant when it was sent, or revoked since (iotmesh fleet grant-reader)',
  ERR_BAD_READER_GRANT: 'a reader grant list is not the signed layout iotmesh uses (shared/readers.ts): fleet, version, readers',
  ERR_NO_CREDENTIAL: 'the peer showed no enrollment credential, and this fleet is closed by credential (iotmesh fleet enroll, then iotmesh device --credential FILE)',
  ERR_CREDENTIAL_MISMATCH: 'the enrollment credential binds another key than the one the peer proved (a credential copied from another device)',
  // Broker access (gateway/auth.ts, shared/token.ts)
  ERR_NOT_AUTHORIZED: 'the broker refused the client: anonymous clients are not allowed, or the client may not read or write that topic',
  ERR_BAD_CREDENTIALS: 'the MQTT user name is not known to the broker, or its password is wrong',
  ERR_BAD_TOKEN: 'a device token (the MQTT password) is malformed, not signed by its key, or not for this user name, client id or fleet',
  ERR_TOKEN_EXPIRED: 'a device token expired before it reached the broker',
  ERR_CLOCK_SKEW: 'a time in a signed message is further from this clock than allowed: a device token at the gateway (the device clock is wrong: no RTC, no NTP yet), or a command issued ahead of a synchronized device clock',
  ERR_MESSAGE_TOO_LARGE: 'an MQTT packet or message is larger than the broker accepts',
  ERR_QUOTA: 'a broker quota is full (retained messages, their total size); the message was refused',
  // The gateway's durable state (gateway/store/)
  ERR_STORE: 'the gateway database cannot be opened, read or written (a path that is not writable, a file that is not a database, a server that refuses)',
  // The gateway's HTTP side and the device's disk (WP 11-D)
  ERR_HTTP_TOKEN: 'an HTTP request did not present the gateway\'s access token, or a wrong one (401)',
  ERR_HTTP_HOST: 'an HTTP request\'s Host is not one of the gateway\'s names: refused against DNS rebinding (403)',
  ERR_HTTP_ORIGIN: 'an HTTP request came from a page of another origin (403): only the gateway\'s own dashboard may use its API',
  ERR_NOT_FOUND: 'the HTTP API has no such route, or no such device (404)',
  ERR_HTTP_METHOD: 'the HTTP method is not allowed on this route: the API is read-only but for commands (405)',
  ERR_INTERNAL: 'the gateway failed to answer an HTTP request because of a bug (500): its log has the stack',
  ERR_SSE_EVICTED: 'a live-stream client was closed to make room: too many from its address, or in all (the oldest idle goes first)',
  ERR_DATA_DIR: 'a file or directory the program needs cannot be created, read or written: a file in the way of a directory, no permission, a read-only file system, a full disk',
  ERR_OUTBOX_CORRUPT: 'an outbox record failed its length or CRC check and was skipped; the damaged segment was kept aside as *.corrupt',
  // Command line and configuration
  ERR_BAD_ARGUMENT: 'a command-line flag or configuration value is invalid',
  ERR_BAD_INPUT: 'input to a command is not in a format it reads'
} as const

export type ErrorCode = keyof typeof ERROR_CODES

export class MeshError extends Error {
  readonly code: ErrorCode
  readonly details: Record<string, unknown> | undefined

  constructor (code: ErrorCode, message: string, options: { cause?: unknown, details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'MeshError'
    this.code = code
    this.details = options.details
  }

  toJSON (): { code: ErrorCode, message: string, details?: Record<string, unknown> } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details }
  }
}

/** Builds a MeshError; `message` says what was wrong, with what value, and what to do. */
export function meshError (code: ErrorCode, message: string, options?: { cause?: unknown, details?: Record<string, unknown> }): MeshError {
  return new MeshError(code, message, options)
}

export function isMeshError (err: unknown, code?: ErrorCode): err is MeshError {
  return err instanceof MeshError && (code === undefined || err.code === code)
}
