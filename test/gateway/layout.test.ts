import { describe, expect, it } from 'vitest'
import {
  decodeFrame, deviceBaseName, deviceLastWill, encodeFrame, frameReadings, frameTopic, jsonTopic, offlineStatus, onlineStatus, packFromJson,
  cmdTopic, parseStatus, parseTopic, resolvePack, resultJsonTopic, resultTopic, setTopic, statusTopic, telemetryTopic, topicFilters, topicMatches,
  type SenmlRecord
} from '../../shared/index.js'
import { frameToSenmlJson } from '../../gateway/index.js'
import { seededKeys } from './support.js'

const keys = seededKeys(21)
const other = seededKeys(22)

describe('topic layout', () => {
  it('builds and parses iotmesh/<fleet>/<deviceId>/<kind>', () => {
    expect(telemetryTopic('default', keys.id)).toBe(`iotmesh/default/${keys.id}/telemetry`)
    expect(jsonTopic('default', keys.id)).toBe(`iotmesh/default/${keys.id}/json`)
    expect(jsonTopic('default', keys.id, 'events/door')).toBe(`iotmesh/default/${keys.id}/json/events/door`)
    expect(statusTopic('f1', keys.id)).toBe(`iotmesh/f1/${keys.id}/status`)
    expect(parseTopic(telemetryTopic('default', keys.id))).toEqual({ ok: true, fleet: 'default', deviceId: keys.id, kind: 'frame', deviceTopic: 'telemetry' })
    expect(parseTopic(frameTopic('default', keys.id, 'events/door'))).toMatchObject({ ok: true, kind: 'frame', deviceTopic: 'events/door' })
    expect(parseTopic(jsonTopic('default', keys.id, 'events/door'))).toMatchObject({ ok: true, kind: 'json', deviceTopic: 'events/door' })
    expect(parseTopic(statusTopic('default', keys.id))).toMatchObject({ ok: true, kind: 'status' })
    expect(parseTopic('home/light')).toEqual({ ok: false, why: 'not-iotmesh' })
    expect(parseTopic('iotmesh/default/NOTANID/telemetry')).toMatchObject({ ok: false, fleet: 'default', why: 'bad-device-id' })
    expect(parseTopic(`iotmesh/default/${keys.id}`)).toMatchObject({ ok: false, why: 'bad-layout' })
    expect(parseTopic(`iotmesh/default/${keys.id}/status/x`)).toMatchObject({ ok: false, why: 'bad-layout' })
    expect(parseTopic(`iotmesh/default/${keys.id}/a//b`)).toMatchObject({ ok: false, why: 'bad-layout' })
    expect(parseTopic('iotmesh/a+b/x/telemetry')).toMatchObject({ ok: false, why: 'bad-fleet' })
  })

  it('filters match exactly the topics they name (MQTT 3.1.1 §4.7)', () => {
    expect(topicMatches(topicFilters.telemetry(), telemetryTopic('default', keys.id))).toBe(true)
    expect(topicMatches(topicFilters.telemetry(), jsonTopic('default', keys.id))).toBe(false)
    expect(topicMatches(topicFilters.json('x'), jsonTopic('x', keys.id))).toBe(true)
    expect(topicMatches(topicFilters.status(), statusTopic('default', keys.id))).toBe(true)
    expect(topicMatches(topicFilters.fleet('x'), frameTopic('x', keys.id, 'events/door'))).toBe(true)
  })

  it('commands, results and set requests have their own levels, never read as readings', () => {
    expect(cmdTopic('default', keys.id, 'relay/set')).toBe(`iotmesh/default/${keys.id}/cmd/relay/set`)
    expect(parseTopic(cmdTopic('default', keys.id, 'relay/set'))).toEqual({ ok: true, fleet: 'default', deviceId: keys.id, kind: 'cmd', deviceTopic: 'relay/set' })
    expect(parseTopic(resultTopic('default', keys.id, other.id))).toEqual({ ok: true, fleet: 'default', deviceId: keys.id, kind: 'result', deviceTopic: other.id })
    expect(parseTopic(resultJsonTopic('default', keys.id, other.id))).toMatchObject({ ok: true, kind: 'result-json', deviceTopic: other.id })
    expect(parseTopic(setTopic('default', keys.id, 'relay'))).toMatchObject({ ok: true, kind: 'set', deviceTopic: 'relay' })
    for (const bad of ['cmd', 'set', 'result', 'result/NOTANID', `result/${other.id}/xml`, `result/${other.id}/json/x`]) {
      expect(parseTopic(`iotmesh/default/${keys.id}/${bad}`), bad).toMatchObject({ ok: false, why: 'bad-layout' })
    }
    expect(topicMatches(topicFilters.commands('default', keys.id), cmdTopic('default', keys.id, 'light/set'))).toBe(true)
    expect(topicMatches(topicFilters.commands('default', keys.id), cmdTopic('default', other.id, 'light/set'))).toBe(false)
    expect(topicMatches(topicFilters.results('default', other.id), resultTopic('default', keys.id, other.id))).toBe(true)
    expect(topicMatches(topicFilters.results('default', other.id), resultJsonTopic('default', keys.id, other.id))).toBe(false)
    expect(topicMatches(topicFilters.sets(), setTopic('default', keys.id, 'light'))).toBe(true)
  })
})

describe('device status', () => {
  it('online carries the pk that derives to the id; offline is the last will', () => {
    const online = Buffer.from(onlineStatus({ publicKey: keys.publicKey, name: 'porch' }))
    const parsed = parseStatus(online, keys.id)
    expect(parsed).toMatchObject({ ok: true, status: { state: 'online', name: 'porch' } })
    expect(parsed.ok && parsed.status?.state === 'online' && Buffer.from(parsed.status.publicKey).equals(Buffer.from(keys.publicKey))).toBe(true)
    expect(parseStatus(Buffer.from(offlineStatus()), keys.id)).toEqual({ ok: true, status: { state: 'offline' } })
    expect(parseStatus(new Uint8Array(0), keys.id)).toEqual({ ok: true, status: undefined })
    expect(deviceLastWill('default', keys.id)).toMatchObject({ topic: statusTopic('default', keys.id), qos: 1, retain: true })
    expect(JSON.parse(deviceLastWill('default', keys.id).payload.toString())).toEqual({ state: 'offline' })
  })

  it('refuses a pk of another device, and malformed statuses', () => {
    expect(parseStatus(Buffer.from(onlineStatus({ publicKey: other.publicKey })), keys.id)).toMatchObject({ ok: false, reason: 'status_key_mismatch' })
    for (const bad of ['', 'null', '[]', '{"state":"online"}', '{"state":"online","pk":"abc"}', '{"state":"online","pk":"!!"}', '{"state":"asleep"}', '{', 'x'.repeat(2000)]) {
      if (bad === '') continue
      expect(parseStatus(Buffer.from(bad), keys.id)).toMatchObject({ ok: false, reason: 'bad_status' })
    }
    const longName = JSON.stringify({ state: 'online', pk: Buffer.from(keys.publicKey).toString('base64url'), name: 'n'.repeat(65) })
    expect(parseStatus(Buffer.from(longName), keys.id)).toMatchObject({ ok: false, reason: 'bad_status' })
  })
})

describe('SenML JSON mirror (RFC 8428 §5)', () => {
  it('is a JSON array of records whose first carries bn = "<id>:", resolving to the same readings', () => {
    const records: SenmlRecord[] = [
      { n: 'temp', u: 'Cel', v: 21.5 },
      { n: 'hum', u: '%RH', v: 40, t: -10 },
      { n: 'door', vb: true },
      { n: 'note', vs: 'ok' },
      { n: 'blob', vd: new Uint8Array([0, 1, 2, 255]) },
      { n: 'energy', u: 'J', s: 1234 }
    ]
    const frame = decodeFrame(encodeFrame({ keys, seq: 3, time: 1_767_225_600.25, records }))
    const json = frameToSenmlJson(frame)
    const text = JSON.stringify(json)
    expect(json[0]).toEqual({ bn: `${keys.id}:`, bt: 1_767_225_600.25, n: 'temp', u: 'Cel', v: 21.5, seq: 3 })
    expect(json[4]).toEqual({ n: 'blob', vd: 'AAEC_w' }) // §5: vd is base64url without padding
    // §4.6 resolution of the JSON gives the frame's readings, named under the device.
    const resolved = resolvePack(packFromJson(JSON.parse(text)))
    const expected = frameReadings(frame).map((r) => ({ ...r, name: deviceBaseName(keys.id) + r.name }))
    expect(resolved).toEqual(expected)
    expect(resolved.map((r) => r.name)).toContain(`${keys.id}:temp`)
  })

  it("prefixes a pack's own base names, so every resolved name stays under the device", () => {
    const frame = decodeFrame(encodeFrame({ keys, seq: 4, time: 1_767_225_600, records: [{ bn: 'env:', n: 'temp', v: 1 }, { n: 'hum', v: 2 }, { bn: 'power:', n: 'v', v: 3 }] }))
    const names = resolvePack(packFromJson(frameToSenmlJson(frame))).map((r) => r.name)
    expect(names).toEqual([`${keys.id}:env:temp`, `${keys.id}:env:hum`, `${keys.id}:power:v`])
  })
})
