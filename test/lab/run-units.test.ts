import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { MqttPacketCounter, summarizeMode, summaryText, textTable } from '../../lab/index.js'
import { failoverFixture, quickTimeline, simulateMode } from './fixtures.js'

/** MQTT 3.1.1 packets, byte for byte (§3.1 CONNECT, §3.3 PUBLISH, §3.4 PUBACK, §3.12 PINGREQ). */
const CONNECT = Buffer.from('101000044d5154540402003c0004746573 74'.replace(/ /g, ''), 'hex') // remaining length 16
const PINGREQ = Buffer.from('c000', 'hex')
const PUBACK = Buffer.from('40020001', 'hex')
/** A PUBLISH whose remaining length takes two bytes (§2.2.3: 200 = 0xc8 0x01). */
const BIG_PUBLISH = Buffer.concat([Buffer.from([0x30, 0xc8, 0x01]), Buffer.alloc(200, 7)])

describe('MqttPacketCounter (MQTT 3.1.1 §2.2 fixed header)', () => {
  it('counts packets with one- and two-byte remaining lengths and empty bodies', () => {
    const c = new MqttPacketCounter()
    c.push(Buffer.concat([CONNECT, PINGREQ, PUBACK, BIG_PUBLISH, PINGREQ]))
    expect(c.packets).toBe(5)
  })

  it('counts the same however the stream is cut into chunks', () => {
    const stream = Buffer.concat([CONNECT, BIG_PUBLISH, PUBACK, PINGREQ, BIG_PUBLISH, PUBACK])
    fc.assert(fc.property(fc.uniqueArray(fc.integer({ min: 1, max: stream.length - 1 }), { maxLength: 30 }), (cuts) => {
      const c = new MqttPacketCounter()
      let from = 0
      for (const at of [...cuts].sort((a, b) => a - b)) { c.push(stream.subarray(from, at)); from = at }
      c.push(stream.subarray(from))
      return c.packets === 6
    }))
  })

  it('counts a packet when its header arrives, before its body', () => {
    const c = new MqttPacketCounter()
    c.push(BIG_PUBLISH.subarray(0, 1))
    expect(c.packets).toBe(1)
    c.push(BIG_PUBLISH.subarray(1, 100))
    c.push(BIG_PUBLISH.subarray(100))
    c.push(PINGREQ)
    expect(c.packets).toBe(2)
  })
})

describe('the summary printed at the end of a run', () => {
  it('aligns columns, numbers to the right', () => {
    expect(textTable(['mode', 'n'], [['mesh', '7'], ['broker', '120']], new Set([1]))).toBe([
      'mode      n',
      '------  ---',
      'mesh      7',
      'broker  120'
    ].join('\n'))
  })

  it('shows every mode and phase of a failover run and every check', () => {
    const { results } = failoverFixture()
    const text = summaryText(results)
    for (const m of results.modes) for (const p of m.phases) expect(text).toMatch(new RegExp(`^${m.mode} +${p.name} `, 'm'))
    for (const c of results.checks) expect(text).toContain(`${c.id}: ${c.observed}`)
  })
})

describe('sequence numbers spent on other frames (ModeObservations.otherFrames)', () => {
  it('a number a node spent on its mesh/links announcement is not a hole; one nobody accounts for is lost', () => {
    const timeline = quickTimeline()
    const full = simulateMode(timeline, 'mesh')
    const spent = full.readings.find((r) => r.origin === 'dev01' && r.seq === 5)
    expect(spent).toBeDefined()
    const readings = full.readings.filter((r) => r !== spent)
    const unexplained = summarizeMode(timeline, { ...full, readings })
    expect(unexplained.sequenceHoles).toBe(1)
    expect(unexplained.total.lostForGood).toBe(1)
    const explained = summarizeMode(timeline, { ...full, readings, otherFrames: [{ origin: 'dev01', seq: 5 }, { origin: 'dev02', seq: 999_999 }] })
    expect(explained.sequenceHoles).toBe(0)
    expect(explained.total.lostForGood).toBe(0)
  })
})
