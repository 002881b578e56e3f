import { meshError } from './errors.js'
import { isDeviceId, type DeviceId } from './identity.js'

/**
 * The topic contract of an iotmesh fleet: one module for every topic, on MQTT and in the mesh.
 *
 * Topic names and filters follow MQTT (3.1.1 §4.7, 5.0 §4.7): levels separated by "/", "+"
 * matches one level, "#" (last level only) matches any number of levels, including none.
 *
 * The layout (one root, one level per fleet and per device, in the spirit of Homie's
 * `homie/<device>/…` and Sparkplug's `spBv1.0/<group>/…/<node>`):
 *
 *   iotmesh/<fleet>/<deviceId>/telemetry      the exact COSE_Sign1 bytes the device signed
 *   iotmesh/<fleet>/<deviceId>/<tp>           a frame whose signed device topic ("tp") is <tp>, e.g. events/door
 *   iotmesh/<fleet>/<deviceId>/json           the same readings as SenML JSON (RFC 8428 §5); the gateway publishes it
 *   iotmesh/<fleet>/<deviceId>/json/<tp>      the same for a frame with device topic <tp>
 *   iotmesh/<fleet>/<deviceId>/status         retained {"state":"online","pk":…} on connect, {"state":"offline"} as last will
 *   iotmesh/<fleet>/<deviceId>/cmd/<action>   a signed command to the device (shared/command.ts), e.g. cmd/relay/set
 *   iotmesh/<fleet>/<deviceId>/result/<issuer>       the device's signed result of a command of <issuer>
 *   iotmesh/<fleet>/<deviceId>/result/<issuer>/json  the same result as JSON; the gateway publishes it
 *   iotmesh/<fleet>/<deviceId>/set/<actuator>  a plain JSON set request that the gateway signs as a command
 *   iotmesh/<fleet>/<deviceId>/value/<sensor>  the latest value of one sensor as a plain number, retained; the gateway
 *                                              publishes it (for Home Assistant, gateway/homeassistant.ts)
 *
 * The mesh uses the same names: a frame of device D with device topic tp is delivered on
 * iotmesh/<fleet>/D/<tp>, so one filter means the same on both architectures. A frame's MQTT topic
 * is bound to what it signs: the device id to its kid, the last levels to its "tp" header. The
 * reserved levels (json, status, cmd, result, set, value) are never the first level of a signed device topic.
 */

export const TOPIC_ROOT = 'iotmesh'
export const DEFAULT_FLEET = 'default'
/** The device topic of plain telemetry (a frame without a "tp" header). */
export const TELEMETRY_LEVEL = 'telemetry'
export const JSON_LEVEL = 'json'
export const STATUS_LEVEL = 'status'
export const CMD_LEVEL = 'cmd'
export const RESULT_LEVEL = 'result'
export const SET_LEVEL = 'set'
export const VALUE_LEVEL = 'value'
/** First levels no signed device topic may start with. */
export const RESERVED_LEVELS: ReadonlySet<string> = new Set([JSON_LEVEL, STATUS_LEVEL, CMD_LEVEL, RESULT_LEVEL, SET_LEVEL, VALUE_LEVEL])
/** The device topic on which mesh nodes announce their neighbours (a signed reading). */
export const LINKS_TOPIC = 'mesh/links'

/**
 * A fleet name: one MQTT topic level and one DNS label (it is announced in TXT records and
 * instance names, RFC 1035 §2.3.4): 1 to 63 letters, digits, ".", "_" or "-".
 */
const FLEET_PATTERN = /^[A-Za-z0-9._-]{1,63}$/
export const FLEET_NAME_RULE = '1 to 63 letters, digits, ".", "_" or "-"'
/** A device topic: levels of letters, digits, "-", "_", "." separated by "/"; no MQTT wildcards. */
const DEVICE_TOPIC_PATTERN = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/
const LEVEL_PATTERN = /^[A-Za-z0-9._-]+$/
export const MAX_DEVICE_TOPIC_BYTES = 128

/** Throws ERR_BAD_TOPIC for an MQTT topic name that is not valid: empty, or with `+`, `#` or NUL (MQTT 3.1.1 §4.7.3). */
export function validateTopic (topic: string): void {
  if (topic.length === 0 || topic.includes('+') || topic.includes('#') || topic.includes('\u0000')) {
    throw meshError('ERR_BAD_TOPIC', `${JSON.stringify(topic)} is not a topic name: non-empty, without "+", "#" or NUL (MQTT 3.1.1 §4.7.3)`)
  }
}

/** Throws ERR_BAD_TOPIC for an MQTT topic filter that is not valid: `#` a whole level and the last, `+` a whole level (MQTT 3.1.1 §4.7.1). */
export function validateFilter (filter: string): void {
  if (filter.length === 0 || filter.includes('\u0000')) throw meshError('ERR_BAD_TOPIC', `${JSON.stringify(filter)} is not a topic filter`)
  const levels = filter.split('/')
  levels.forEach((level, i) => {
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) {
      throw meshError('ERR_BAD_TOPIC', `in ${JSON.stringify(filter)}, "#" must be a whole level and the last one (MQTT 3.1.1 §4.7.1.2)`)
    }
    if (level.includes('+') && level !== '+') throw meshError('ERR_BAD_TOPIC', `in ${JSON.stringify(filter)}, "+" must be a whole level (MQTT 3.1.1 §4.7.1.3)`)
  })
}

/** Whether an MQTT topic filter matches a topic name, level by level (MQTT 3.1.1 §4.7). */
export function topicMatches (filter: string, topic: string): boolean {
  const f = filter.split('/')
  const t = topic.split('/')
  // MQTT 3.1.1 §4.7.2: filters starting with a wildcard do not match topics starting with "$".
  if ((f[0] === '#' || f[0] === '+') && topic.startsWith('$')) return false
  for (let i = 0; i < f.length; i++) {
    const level = f[i]
    if (level === '#') return true
    if (i >= t.length) return false
    if (level !== '+' && level !== t[i]) return false
  }
  return f.length === t.length
}

/** Whether a value is a valid fleet name: 1 to 63 letters, digits, `.`, `_` or `-`. */
export function isFleetName (text: unknown): text is string {
  return typeof text === 'string' && FLEET_PATTERN.test(text)
}

/** Checks a device-relative topic ("telemetry", "events/door"); returns it, or throws ERR_BAD_TOPIC. */
export function checkDeviceTopic (topic: string): string {
  if (topic.length > MAX_DEVICE_TOPIC_BYTES || !DEVICE_TOPIC_PATTERN.test(topic)) {
    throw meshError('ERR_BAD_TOPIC', `${JSON.stringify(topic)} is not a device topic: levels of letters, digits, ".", "_", "-" separated by "/", at most ${MAX_DEVICE_TOPIC_BYTES} bytes`)
  }
  return topic
}

/** True for a device topic a signed frame may carry (not starting with a reserved level). */
export function isFrameDeviceTopic (deviceTopic: string): boolean {
  return !RESERVED_LEVELS.has(deviceTopic.split('/')[0] ?? '')
}

/** iotmesh/<fleet>/<deviceId>: the prefix of every topic of one device. */
export function deviceRoot (fleet: string, deviceId: DeviceId): string {
  return `${TOPIC_ROOT}/${fleet}/${deviceId}`
}

/** iotmesh/<fleet>/<deviceId>/<deviceTopic>: where a signed frame travels, on MQTT and in the mesh. */
export function frameTopic (fleet: string, deviceId: DeviceId, deviceTopic: string = TELEMETRY_LEVEL): string {
  return `${deviceRoot(fleet, deviceId)}/${deviceTopic}`
}

/** iotmesh/<fleet>/<deviceId>/telemetry */
export function telemetryTopic (fleet: string, deviceId: DeviceId): string {
  return frameTopic(fleet, deviceId, TELEMETRY_LEVEL)
}

/** iotmesh/<fleet>/<deviceId>/json, or …/json/<tp> for a frame with another device topic. */
export function jsonTopic (fleet: string, deviceId: DeviceId, deviceTopic: string = TELEMETRY_LEVEL): string {
  const base = `${deviceRoot(fleet, deviceId)}/${JSON_LEVEL}`
  return deviceTopic === TELEMETRY_LEVEL ? base : `${base}/${deviceTopic}`
}

/** iotmesh/<fleet>/<deviceId>/status */
export function statusTopic (fleet: string, deviceId: DeviceId): string {
  return `${deviceRoot(fleet, deviceId)}/${STATUS_LEVEL}`
}

/** The device-relative part of a full topic of `deviceId` (iotmesh/<fleet>/<id>/events/door → events/door), or undefined. */
export function deviceTopicOf (fleet: string, deviceId: DeviceId, topic: string): string | undefined {
  const prefix = `${deviceRoot(fleet, deviceId)}/`
  return topic.startsWith(prefix) ? topic.slice(prefix.length) : undefined
}

/** iotmesh/<fleet>/<target>/cmd/<action>: where a signed command to `target` travels on MQTT. */
export function cmdTopic (fleet: string, target: DeviceId, action: string): string {
  return `${deviceRoot(fleet, target)}/${CMD_LEVEL}/${action}`
}

/** iotmesh/<fleet>/<target>/result/<issuer>: where `target`'s signed result of a command of `issuer` travels on MQTT. */
export function resultTopic (fleet: string, target: DeviceId, issuer: DeviceId): string {
  return `${deviceRoot(fleet, target)}/${RESULT_LEVEL}/${issuer}`
}

/** iotmesh/<fleet>/<target>/result/<issuer>/json: the same result as JSON (the gateway publishes it). */
export function resultJsonTopic (fleet: string, target: DeviceId, issuer: DeviceId): string {
  return `${resultTopic(fleet, target, issuer)}/${JSON_LEVEL}`
}

/** iotmesh/<fleet>/<target>/set/<actuator>: a plain JSON set request the gateway signs as a command. */
export function setTopic (fleet: string, target: DeviceId, actuator: string): string {
  return `${deviceRoot(fleet, target)}/${SET_LEVEL}/${actuator}`
}

/** iotmesh/<fleet>/<deviceId>/value/<sensor>: one sensor's latest value as a plain number (the gateway publishes it). */
export function valueTopic (fleet: string, deviceId: DeviceId, sensor: string): string {
  return `${deviceRoot(fleet, deviceId)}/${VALUE_LEVEL}/${sensor}`
}

/** Filters a gateway (or any observer) subscribes to. `+` is one device id. */
export const topicFilters = {
  telemetry: (fleet: string = DEFAULT_FLEET) => `${TOPIC_ROOT}/${fleet}/+/${TELEMETRY_LEVEL}`,
  json: (fleet: string = DEFAULT_FLEET) => `${TOPIC_ROOT}/${fleet}/+/${JSON_LEVEL}`,
  status: (fleet: string = DEFAULT_FLEET) => `${TOPIC_ROOT}/${fleet}/+/${STATUS_LEVEL}`,
  fleet: (fleet: string = DEFAULT_FLEET) => `${TOPIC_ROOT}/${fleet}/#`,
  device: (fleet: string, deviceId: DeviceId) => `${deviceRoot(fleet, deviceId)}/#`,
  /** Every command to one device (the device subscribes to it). */
  commands: (fleet: string, deviceId: DeviceId) => `${deviceRoot(fleet, deviceId)}/${CMD_LEVEL}/#`,
  /** Every signed result for one issuer, from any device. */
  results: (fleet: string, issuer: DeviceId) => `${TOPIC_ROOT}/${fleet}/+/${RESULT_LEVEL}/${issuer}`,
  /** Every set request of a fleet (the gateway subscribes to it). */
  sets: (fleet: string = DEFAULT_FLEET) => `${TOPIC_ROOT}/${fleet}/+/${SET_LEVEL}/#`
} as const

export type TopicKind = 'frame' | 'json' | 'status' | 'cmd' | 'result' | 'result-json' | 'set' | 'value'

export type ParsedTopic =
  | {
    ok: true
    fleet: string
    deviceId: DeviceId
    kind: TopicKind
    /**
     * frame, json: the device topic ("telemetry", "events/door"); cmd: the action ("relay/set");
     * result, result-json: the issuer's device id; set: the actuator ("relay"); value: the sensor; status: ""
     */
    deviceTopic: string
  }
  | { ok: false, /** under iotmesh/ but not of the layout; undefined when not under iotmesh/ at all */ fleet?: string, why: 'not-iotmesh' | 'bad-fleet' | 'bad-device-id' | 'bad-layout' }

/** Reads a topic name against the layout above. Pure; never throws. */
export function parseTopic (topic: string): ParsedTopic {
  const levels = topic.split('/')
  if (levels[0] !== TOPIC_ROOT) return { ok: false, why: 'not-iotmesh' }
  const fleet = levels[1]
  if (!isFleetName(fleet)) return { ok: false, why: 'bad-fleet' }
  const deviceId = levels[2]
  if (!isDeviceId(deviceId)) return { ok: false, fleet, why: 'bad-device-id' }
  const rest = levels.slice(3)
  const head = rest[0]
  if (head === undefined || rest.some((level) => !LEVEL_PATTERN.test(level))) return { ok: false, fleet, why: 'bad-layout' }
  if (head === STATUS_LEVEL) {
    return rest.length === 1 ? { ok: true, fleet, deviceId, kind: 'status', deviceTopic: '' } : { ok: false, fleet, why: 'bad-layout' }
  }
  if (head === JSON_LEVEL) {
    const deviceTopic = rest.length === 1 ? TELEMETRY_LEVEL : rest.slice(1).join('/')
    return { ok: true, fleet, deviceId, kind: 'json', deviceTopic }
  }
  if (head === CMD_LEVEL || head === SET_LEVEL || head === VALUE_LEVEL) {
    const action = rest.slice(1).join('/')
    return rest.length > 1 && action.length <= MAX_DEVICE_TOPIC_BYTES ? { ok: true, fleet, deviceId, kind: head, deviceTopic: action } : { ok: false, fleet, why: 'bad-layout' }
  }
  if (head === RESULT_LEVEL) {
    const issuer = rest[1]
    if (!isDeviceId(issuer) || rest.length > 3 || (rest.length === 3 && rest[2] !== JSON_LEVEL)) return { ok: false, fleet, why: 'bad-layout' }
    return { ok: true, fleet, deviceId, kind: rest.length === 3 ? 'result-json' : 'result', deviceTopic: issuer }
  }
  const deviceTopic = rest.join('/')
  if (deviceTopic.length > MAX_DEVICE_TOPIC_BYTES) return { ok: false, fleet, why: 'bad-layout' }
  return { ok: true, fleet, deviceId, kind: 'frame', deviceTopic }
}

/**
 * A filter that could match some topic of `deviceId` in `fleet` (iotmesh/<fleet>/<id>/…): used to
 * tell whether a subscriber wants anything at all from a device.
 */
export function filterCoversDevice (filter: string, fleet: string, deviceId: DeviceId): boolean {
  const levels = filter.split('/')
  const want = [TOPIC_ROOT, fleet, deviceId]
  for (let i = 0; i < 3; i++) {
    const level = levels[i]
    if (level === '#') return true
    if (level === undefined) return false
    if (level !== '+' && level !== want[i]) return false
  }
  return levels.length > 3
}
