import { describe, expect, it } from 'vitest'
import { linksRecords } from '../../mesh/announce.js'
import { Topology } from '../../gateway/index.js'
import { decodeFrame, signFrame } from '../../shared/index.js'
import { seededKeys } from '../gateway/support.js'

// Issue 15: 100 devices over TCP in one process gave nodes more than 37 links, whose ids no longer
// fit in one SenML string; the node's own signer refused its mesh/links announcement (a throw in a timer: the process ended).
const ids = Array.from({ length: 56 }, (_, i) => seededKeys(900 + i).id).sort() // 48 inbound + 8 outbound slots

describe('mesh/links announcements', () => {
  it('one string of 56 ids is refused by the signer: the reason for the split', () => {
    expect(() => signFrame({ keys: seededKeys(1), seq: 1, topic: 'mesh/links', records: [{ n: 'links', vs: ids.join(' ') }] })).toThrow(expect.objectContaining({ code: 'ERR_STRING_TOO_LONG' }))
  })

  it('splits the ids over links records of at most 1,024 bytes, which sign, decode and give every id back', () => {
    const records = linksRecords(ids)
    const parts = records.filter((r) => r.n === 'links').map((r) => r.vs as string)
    expect(parts.length).toBeGreaterThan(1)
    expect(parts.every((p) => Buffer.byteLength(p) <= 1024)).toBe(true)
    expect(parts.join(' ').split(' ')).toEqual(ids)
    expect(records.at(-1)).toEqual({ n: 'degree', v: 56 })
    const frame = signFrame({ keys: seededKeys(1), seq: 1, topic: 'mesh/links', records })
    expect(decodeFrame(frame.bytes).records.filter((r) => r.n === 'links').map((r) => r.vs)).toEqual(parts)
  })

  it('keeps the single record of a node with few or no links', () => {
    expect(linksRecords([])).toEqual([{ n: 'links', vs: '' }, { n: 'degree', v: 0 }])
    expect(linksRecords(ids.slice(0, 2))).toEqual([{ n: 'links', vs: ids.slice(0, 2).join(' ') }, { n: 'degree', v: 2 }])
  })

  it('the gateway draws a link from every links record of an announcement', () => {
    const topology = new Topology({ maxLinksPerNode: 64 })
    const origin = seededKeys(1).id
    topology.record(origin, linksRecords(ids), 0)
    expect(topology.snapshot(0).edges).toHaveLength(56)
  })
})
