import { meshError } from './errors.js'

/**
 * MQTT topic names and filters (MQTT 3.1.1 §4.7, MQTT 5 §4.7): levels separated by "/",
 * "+" matches one level, "#" (last level only) matches any number of levels, including none.
 * Used by the mesh's publish/subscribe and by the gateway's MQTT topic layout.
 */

export function validateTopic (topic: string): void {
  if (topic.length === 0 || topic.includes('+') || topic.includes('#') || topic.includes('\u0000')) {
    throw meshError('ERR_BAD_TOPIC', `${JSON.stringify(topic)} is not a topic name: non-empty, without "+", "#" or NUL (MQTT 3.1.1 §4.7.3)`)
  }
}

export function validateFilter (filter: string): void {
  if (filter.length === 0 || filter.includes('\u0000')) throw meshError('ERR_BAD_TOPIC', `${JSON.stringify(filter)} is not a topic filter`)
  const levels = filter.split('/')
  levels.forEach((level, i) => {
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) throw meshError('ERR_BAD_TOPIC', `in ${JSON.stringify(filter)}, "#" must be a whole level and the last one (MQTT 3.1.1 §4.7.1.2)`)
    if (level.includes('+') && level !== '+') throw meshError('ERR_BAD_TOPIC', `in ${JSON.stringify(filter)}, "+" must be a whole level (MQTT 3.1.1 §4.7.1.3)`)
  })
}

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

/** The mesh topic of a device's telemetry, mirroring the MQTT layout: iotmesh/<fleet>/<deviceId>/telemetry. */
export function telemetryTopic (fleet: string, deviceId: string): string {
  return `iotmesh/${fleet}/${deviceId}/telemetry`
}

export const DEFAULT_FLEET = 'default'
