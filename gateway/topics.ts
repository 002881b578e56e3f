import { DEFAULT_FLEET, DEFAULT_TOPIC, isDeviceId, type DeviceId } from '../shared/index.js'

/**
 * The MQTT topic layout of an iotmesh fleet (one root, one level per fleet and per device, in the
 * spirit of Homie's `homie/<device>/…` and Sparkplug's `spBv1.0/<group>/…/<node>`):
 *
 *   iotmesh/<fleet>/<deviceId>/telemetry      the exact COSE_Sign1 bytes the device signed
 *   iotmesh/<fleet>/<deviceId>/<tp>           a frame whose signed device topic ("tp") is <tp>, e.g. events/door
 *   iotmesh/<fleet>/<deviceId>/json           the same readings as SenML JSON (RFC 8428 §5); the gateway publishes it
 *   iotmesh/<fleet>/<deviceId>/json/<tp>      the same for a frame with device topic <tp>
 *   iotmesh/<fleet>/<deviceId>/status         retained {"state":"online","pk":…} on connect, {"state":"offline"} as last will
 *
 * A frame's MQTT topic is bound to what it signs: the device id to its kid, the last levels to its
 * "tp" header. `json` and `status` are reserved: no signed device topic starts with them.
 */

export const TOPIC_ROOT = 'iotmesh'
export const TELEMETRY_LEVEL = DEFAULT_TOPIC
export const JSON_LEVEL = 'json'
export const STATUS_LEVEL = 'status'
const RESERVED = new Set([JSON_LEVEL, STATUS_LEVEL])
/** A fleet name: one MQTT level of letters, digits, "-", "_", at most 64 characters. */
const FLEET_PATTERN = /^[A-Za-z0-9_-]{1,64}$/

export function isFleetName (text: unknown): text is string {
  return typeof text === 'string' && FLEET_PATTERN.test(text)
}

/** iotmesh/<fleet>/<deviceId>/<deviceTopic>: where a device publishes a signed frame. */
export function frameTopic (fleet: string, deviceId: DeviceId, deviceTopic: string = TELEMETRY_LEVEL): string {
  return `${TOPIC_ROOT}/${fleet}/${deviceId}/${deviceTopic}`
}

/** iotmesh/<fleet>/<deviceId>/telemetry */
export function telemetryTopic (fleet: string, deviceId: DeviceId): string {
  return frameTopic(fleet, deviceId, TELEMETRY_LEVEL)
}

/** iotmesh/<fleet>/<deviceId>/json, or …/json/<tp> for a frame with another device topic. */
export function jsonTopic (fleet: string, deviceId: DeviceId, deviceTopic: string = TELEMETRY_LEVEL): string {
  const base = `${TOPIC_ROOT}/${fleet}/${deviceId}/${JSON_LEVEL}`
  return deviceTopic === TELEMETRY_LEVEL ? base : `${base}/${deviceTopic}`
}

/** iotmesh/<fleet>/<deviceId>/status */
export function statusTopic (fleet: string, deviceId: DeviceId): string {
  return `${TOPIC_ROOT}/${fleet}/${deviceId}/${STATUS_LEVEL}`
}

/** Filters a gateway (or any observer) subscribes to. `+` is one device id. */
export const topicFilters = {
  telemetry: (fleet: string = DEFAULT_FLEET) => `${TOPIC_ROOT}/${fleet}/+/${TELEMETRY_LEVEL}`,
  json: (fleet: string = DEFAULT_FLEET) => `${TOPIC_ROOT}/${fleet}/+/${JSON_LEVEL}`,
  status: (fleet: string = DEFAULT_FLEET) => `${TOPIC_ROOT}/${fleet}/+/${STATUS_LEVEL}`,
  fleet: (fleet: string = DEFAULT_FLEET) => `${TOPIC_ROOT}/${fleet}/#`
} as const

export type TopicKind = 'frame' | 'json' | 'status'

export type ParsedTopic =
  | { ok: true, fleet: string, deviceId: DeviceId, kind: TopicKind, /** device topic: "telemetry", "events/door"; "" for status */ deviceTopic: string }
  | { ok: false, /** under iotmesh/ but not of the layout; undefined when not under iotmesh/ at all */ fleet?: string, why: 'not-iotmesh' | 'bad-fleet' | 'bad-device-id' | 'bad-layout' }

/** Reads an MQTT topic name against the layout above. Pure; never throws. */
export function parseTopic (topic: string): ParsedTopic {
  const levels = topic.split('/')
  if (levels[0] !== TOPIC_ROOT) return { ok: false, why: 'not-iotmesh' }
  const fleet = levels[1]
  if (!isFleetName(fleet)) return { ok: false, why: 'bad-fleet' }
  const deviceId = levels[2]
  if (!isDeviceId(deviceId)) return { ok: false, fleet, why: 'bad-device-id' }
  const rest = levels.slice(3)
  const head = rest[0]
  if (head === undefined || rest.some((level) => !/^[A-Za-z0-9._-]+$/.test(level))) return { ok: false, fleet, why: 'bad-layout' }
  if (head === STATUS_LEVEL) {
    return rest.length === 1 ? { ok: true, fleet, deviceId, kind: 'status', deviceTopic: '' } : { ok: false, fleet, why: 'bad-layout' }
  }
  if (head === JSON_LEVEL) {
    const deviceTopic = rest.length === 1 ? TELEMETRY_LEVEL : rest.slice(1).join('/')
    return { ok: true, fleet, deviceId, kind: 'json', deviceTopic }
  }
  const deviceTopic = rest.join('/')
  if (deviceTopic.length > 128) return { ok: false, fleet, why: 'bad-layout' }
  return { ok: true, fleet, deviceId, kind: 'frame', deviceTopic }
}

/** True for a device topic a frame may carry on MQTT (not starting with a reserved level). */
export function isFrameDeviceTopic (deviceTopic: string): boolean {
  return !RESERVED.has(deviceTopic.split('/')[0] ?? '')
}
