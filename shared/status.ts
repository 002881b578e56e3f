import { fromBase64, toBase64url } from './bytes.js'
import { PUBLIC_KEY_LENGTH, type PublicKey } from './crypto/ed25519.js'
import { keyMatchesId, publicKeyText, type DeviceId } from './identity.js'
import { statusTopic } from './topics.js'
import { MAX_CREDENTIAL_BYTES } from './fleet.js'

/**
 * The retained device status on iotmesh/<fleet>/<id>/status, in the spirit of Sparkplug's
 * NBIRTH/NDEATH and Homie's `$state`: the device publishes {"state":"online","pk":…} (retained)
 * right after it connects, and sets {"state":"offline"} (retained) as its MQTT last will, which
 * the broker publishes when the connection dies without a DISCONNECT (MQTT 3.1.1 §3.1.2.5).
 *
 * `pk` is the base64url Ed25519 public key; it must derive to the id in the topic. `cred`, when the
 * device is enrolled (issue 13), is its enrollment credential in base64url (shared/fleet.ts, at most
 * MAX_CREDENTIAL_BYTES): carried as is, checked by whoever holds the fleet file. The status
 * is not signed: it carries a key, which is self-certifying, and a presence claim, which the
 * embedded broker binds to the MQTT connection that made it (gateway/authorize.ts). Pure.
 */

/** 1 KiB before credentials; a status with a credential of the largest size (2 KiB, 2,731 base64url characters) fits in 4 KiB. */
export const MAX_STATUS_BYTES = 4096
export const MAX_NAME_LENGTH = 64

export type DeviceStatus =
  | { state: 'online', publicKey: PublicKey, name?: string, credential?: Uint8Array }
  | { state: 'offline' }

export type StatusResult =
  | { ok: true, status: DeviceStatus }
  /** A zero-length retained message: the retained status is cleared (MQTT 3.1.1 §3.3.1.3). */
  | { ok: true, status: undefined }
  | { ok: false, reason: 'bad_status' | 'status_key_mismatch', message: string }

/** The JSON a device publishes, retained, on connect. */
export function onlineStatus (init: { publicKey: PublicKey, name?: string, credential?: Uint8Array }): string {
  return JSON.stringify({
    state: 'online', pk: publicKeyText(init.publicKey), name: init.name, cred: init.credential === undefined ? undefined : toBase64url(init.credential)
  }) // undefined members are left out: the JSON of before when there is no credential
}

/** The JSON of the last will (and of a clean goodbye). */
export function offlineStatus (): string {
  return '{"state":"offline"}'
}

/** The MQTT last will a device sets (mqtt.js `will` option): retained offline status, QoS 1. */
export function deviceLastWill (fleet: string, deviceId: DeviceId): { topic: string, payload: string, qos: 1, retain: true } {
  return { topic: statusTopic(fleet, deviceId), payload: offlineStatus(), qos: 1, retain: true }
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** Reads a status payload for the device `deviceId` named by its topic. Pure; never throws. */
export function parseStatus (payload: Uint8Array, deviceId: DeviceId): StatusResult {
  if (payload.length === 0) return { ok: true, status: undefined }
  const bad = (message: string): StatusResult => ({ ok: false, reason: 'bad_status', message })
  if (payload.length > MAX_STATUS_BYTES) return bad(`a status is at most ${MAX_STATUS_BYTES} bytes, got ${payload.length}`)
  let json: unknown
  try {
    json = JSON.parse(utf8.decode(payload))
  } catch {
    return bad('the status is not JSON in UTF-8')
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return bad('the status is not a JSON object')
  const { state, pk, name, cred } = json as Record<string, unknown>
  if (state === 'offline') return { ok: true, status: { state: 'offline' } }
  if (state !== 'online') return bad(`status "state" must be "online" or "offline", got ${JSON.stringify(state)}`)
  const publicKey = typeof pk === 'string' && /^[A-Za-z0-9_-]+$/.test(pk) ? fromBase64(pk) : undefined
  if (publicKey === undefined || publicKey.length !== PUBLIC_KEY_LENGTH) return bad(`an online status carries "pk": the ${PUBLIC_KEY_LENGTH}-byte public key in base64url`)
  if (!keyMatchesId(publicKey, deviceId)) {
    return { ok: false, reason: 'status_key_mismatch', message: `the status pk ${toBase64url(publicKey)} does not derive to the device id ${deviceId} in its topic` }
  }
  if (name !== undefined && (typeof name !== 'string' || name.length > MAX_NAME_LENGTH)) return bad(`status "name" must be text of at most ${MAX_NAME_LENGTH} characters`)
  const credential = typeof cred === 'string' && /^[A-Za-z0-9_-]+$/.test(cred) ? fromBase64(cred) : undefined
  if (cred !== undefined && (credential === undefined || credential.length === 0 || credential.length > MAX_CREDENTIAL_BYTES)) {
    return bad(`status "cred" must be an enrollment credential of 1 to ${MAX_CREDENTIAL_BYTES} bytes in base64url`)
  }
  const status: DeviceStatus = name === undefined ? { state: 'online', publicKey } : { state: 'online', publicKey, name }
  return { ok: true, status: credential === undefined ? status : { ...status, credential } }
}
