import { describe, expect, it } from 'vitest'
import {
  DEFAULT_FLEET, RESERVED_LEVELS, VALUE_LEVEL, isFrameDeviceTopic, parseTopic, telemetryTopic, topicMatches, validateFilter, validateTopic, valueTopic
} from '../../shared/index.js'
import { codeOf } from './support.js'

describe('topic filters match topic names as MQTT 3.1.1 §4.7 says', () => {
  // [filter, topic, matches] — the examples of MQTT 3.1.1 §4.7.1.2, §4.7.1.3, §4.7.2 and §4.7.3
  const table: Array<[string, string, boolean]> = [
    // §4.7.1.2 multi-level wildcard
    ['sport/tennis/player1/#', 'sport/tennis/player1', true],
    ['sport/tennis/player1/#', 'sport/tennis/player1/ranking', true],
    ['sport/tennis/player1/#', 'sport/tennis/player1/score/wimbledon', true],
    ['sport/#', 'sport', true], // "#" also matches the parent level
    ['sport/#', 'sport/', true],
    ['#', 'sport/tennis/player1', true],
    ['#', '/', true],
    ['sport/tennis/#', 'sport/tennis', true],
    ['sport/tennis/#', 'sport/tennisplayer1', false],
    ['sport/tennis/player1/#', 'sport/tennis/player2', false],
    // §4.7.1.3 single-level wildcard
    ['sport/tennis/+', 'sport/tennis/player1', true],
    ['sport/tennis/+', 'sport/tennis/player2', true],
    ['sport/tennis/+', 'sport/tennis/player1/ranking', false],
    ['sport/+', 'sport', false],
    ['sport/+', 'sport/', true], // an empty level is a level
    ['+', 'sport', true],
    ['+/tennis/#', 'sport/tennis/player1', true],
    ['+/tennis/#', 'sport/tennis', true],
    ['sport/+/player1', 'sport/tennis/player1', true],
    ['sport/+/player1', 'sport/tennis/player2', false],
    ['+/+', '/finance', true],
    ['/+', '/finance', true],
    ['+', '/finance', false],
    ['+/+/+', 'a/b', false],
    // §4.7.2 topics beginning with $
    ['#', '$SYS/broker/clients', false],
    ['+/monitor/Clients', '$SYS/monitor/Clients', false],
    ['+', '$SYS', false],
    ['$SYS/#', '$SYS/monitor/Clients', true],
    ['$SYS/monitor/+', '$SYS/monitor/Clients', true],
    ['$SYS/#', '$SYS', true],
    ['a/#', 'a/$b', true], // only the first level is special
    // §4.7.3 topic semantics: case-sensitive, spaces allowed, "/" alone is two empty levels
    ['ACCOUNTS', 'Accounts', false],
    ['Accounts payable', 'Accounts payable', true],
    ['/', '/', true],
    ['/', '', false],
    ['a/b', 'a/b/', false],
    ['a/b/', 'a/b', false],
    // exact matches
    ['sport/tennis', 'sport/tennis', true],
    ['sport/tennis', 'sport/tennis/player1', false],
    ['sport/tennis/player1', 'sport/tennis', false]
  ]

  it.each(table)('%j matches %j: %s', (filter, topic, matches) => {
    validateFilter(filter)
    if (topic !== '') validateTopic(topic)
    expect(topicMatches(filter, topic)).toBe(matches)
  })

  it('the iotmesh telemetry layout, iotmesh/<fleet>/<deviceId>/telemetry', () => {
    const topic = telemetryTopic(DEFAULT_FLEET, 'mw3am46w5weex4a4fqrc3avnua')
    expect(topic).toBe('iotmesh/default/mw3am46w5weex4a4fqrc3avnua/telemetry')
    validateTopic(topic)
    expect(topicMatches('iotmesh/+/+/telemetry', topic)).toBe(true)
    expect(topicMatches('iotmesh/default/#', topic)).toBe(true)
    expect(topicMatches('iotmesh/other/#', topic)).toBe(false)
  })
})

describe('validation (ERR_BAD_TOPIC)', () => {
  it.each([
    ['', 'empty (§4.7.3: at least one character)'],
    ['sport/tennis#', '"#" not a whole level (§4.7.1.2)'],
    ['sport/tennis/#/ranking', '"#" not the last level'],
    ['#/a', '"#" not the last level'],
    ['##', '"#" twice in a level'],
    ['sport+', '"+" not a whole level (§4.7.1.3)'],
    ['sport/+tennis', '"+" not a whole level'],
    ['++', '"+" twice in a level'],
    ['a\u0000b', 'NUL (§4.7.3)']
  ])('filter %j: %s', (filter) => {
    expect(codeOf(() => validateFilter(filter))).toBe('ERR_BAD_TOPIC')
  })

  it.each(['#', '+', 'sport/#', 'sport/+/player1', '+/+', '/', '$SYS/#', 'a//b', ' '])('filter %j is valid', (filter) => {
    expect(codeOf(() => validateFilter(filter))).toBe('no error')
  })

  it.each([
    ['', 'empty'],
    ['sport/#', 'a wildcard'],
    ['sport/+', 'a wildcard'],
    ['a+b', 'a wildcard inside a level'],
    ['a\u0000b', 'NUL']
  ])('topic name %j: %s', (topic) => {
    expect(codeOf(() => validateTopic(topic))).toBe('ERR_BAD_TOPIC')
  })

  it.each(['/', 'a//b', '$SYS/x', 'Accounts payable', 'sport/tennis/player1'])('topic name %j is valid', (topic) => {
    expect(codeOf(() => validateTopic(topic))).toBe('no error')
  })
})

describe('the value level: iotmesh/<fleet>/<deviceId>/value/<sensor> (plain numbers the gateway publishes)', () => {
  const id = 'abcdefghijklmnopqrstuvwxyz'
  it('is reserved: no signed device topic may start with it, so a value topic is never a frame topic', () => {
    expect(RESERVED_LEVELS.has(VALUE_LEVEL)).toBe(true)
    expect(isFrameDeviceTopic('value/temp')).toBe(false)
    expect(isFrameDeviceTopic('values/temp')).toBe(true)
    expect(valueTopic('plant-a', id, 'temp')).toBe(`iotmesh/plant-a/${id}/value/temp`)
  })
  it('parses as its own kind, with the sensor as its device topic; a bare value level is not a topic of the layout', () => {
    expect(parseTopic(`iotmesh/plant-a/${id}/value/temp`)).toEqual({ ok: true, fleet: 'plant-a', deviceId: id, kind: 'value', deviceTopic: 'temp' })
    expect(parseTopic(`iotmesh/plant-a/${id}/value`)).toEqual({ ok: false, fleet: 'plant-a', why: 'bad-layout' })
  })
})
