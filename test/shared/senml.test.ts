import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  SENML_LABELS, SENML_UNITS, packFromJson, packToJson, recordFromCbor, recordToCbor, resolvePack, type SenmlPack,
  type SenmlRecord
} from '../../shared/index.js'
import { codeOf } from './support.js'

const NOW = 1_700_000_000

describe('CBOR labels', () => {
  it('are RFC 8428 §6 Table 6, plus the iotmesh "seq" text label', () => {
    // RFC 8428 §6, Table 6: CBOR Representation Integers for SenML Labels
    const table6 = {
      'Base Version': ['bver', -1],
      'Base Name': ['bn', -2],
      'Base Time': ['bt', -3],
      'Base Unit': ['bu', -4],
      'Base Value': ['bv', -5],
      'Base Sum': ['bs', -6],
      Name: ['n', 0],
      Unit: ['u', 1],
      Value: ['v', 2],
      'String Value': ['vs', 3],
      'Boolean Value': ['vb', 4],
      Sum: ['s', 5],
      Time: ['t', 6],
      'Update Time': ['ut', 7],
      'Data Value': ['vd', 8]
    } as const
    expect(SENML_LABELS).toEqual({ ...Object.fromEntries(Object.values(table6)), seq: 'seq' })
  })

  it('recordToCbor uses them, and recordFromCbor reads them back', () => {
    const record: SenmlRecord = { bver: 10, bn: 'dev:', bt: NOW, bu: 'Cel', bv: 1, bs: 2, n: 'x', u: 'V', v: 3, s: 4, t: -1, ut: 60, seq: 9 }
    const map = recordToCbor(record)
    expect([...map.entries()]).toEqual([[-1, 10], [-2, 'dev:'], [-3, NOW], [-4, 'Cel'], [-5, 1], [-6, 2], [0, 'x'], [1, 'V'], [2, 3], [5, 4], [6, -1], [7, 60], ['seq', 9]])
    expect(recordFromCbor(map, 0)).toEqual(record)
    expect(recordToCbor({ vs: 'a' }).get(3)).toBe('a')
    expect(recordToCbor({ vb: false }).get(4)).toBe(false)
    expect(recordToCbor({ vd: Uint8Array.of(1) }).get(8)).toEqual(Uint8Array.of(1))
  })

  it('SENML_UNITS holds registered unit symbols (RFC 8428 §12.1)', () => {
    for (const unit of ['Cel', '%RH', 'Pa', 'V', 'A', 'W', '%EL', 's', 'm', 'lx', 'dBm', 'B', '/', 'count']) expect(SENML_UNITS).toHaveProperty([unit])
  })
})

describe('resolution (RFC 8428 §4.6)', () => {
  it('bn + n', () => {
    expect(resolvePack([{ bn: 'urn:dev:ow:10e2073a01080063:', n: 'voltage', u: 'V', v: 120.1 }, { n: 'current', u: 'A', v: 1.2 }], NOW).map((r) => r.name))
      .toEqual(['urn:dev:ow:10e2073a01080063:voltage', 'urn:dev:ow:10e2073a01080063:current'])
  })

  it('a later bn replaces the earlier one; a record without n is named by bn alone', () => {
    expect(resolvePack([{ bn: 'a:', n: 'x', v: 1 }, { bn: 'b:', n: 'x', v: 2 }, { bn: 'c', v: 3 }], NOW).map((r) => r.name)).toEqual(['a:x', 'b:x', 'c'])
  })

  it('bt + t, with t relative to bt', () => {
    const readings = resolvePack([{ bt: NOW, n: 'a', v: 1 }, { n: 'a', v: 2, t: 10 }, { n: 'a', v: 3, t: -5.5 }], 0)
    expect(readings.map((r) => r.time)).toEqual([NOW, NOW + 10, NOW - 5.5])
  })

  it('times below 2^28 are relative to now (§4.5.3)', () => {
    expect(resolvePack([{ n: 'a', v: 1 }], NOW)[0]?.time).toBe(NOW)
    expect(resolvePack([{ n: 'a', v: 1, t: -60 }], NOW)[0]?.time).toBe(NOW - 60)
    expect(resolvePack([{ bt: -10, n: 'a', v: 1, t: 2 }], NOW)[0]?.time).toBe(NOW - 8)
    expect(resolvePack([{ n: 'a', v: 1, t: 2 ** 28 }], NOW)[0]?.time).toBe(2 ** 28) // absolute from 2^28 on
  })

  it('bu is inherited until a record says u, and until the next bu', () => {
    const readings = resolvePack([
      { bu: 'Cel', n: 'a', v: 1 }, { n: 'b', v: 2 }, { n: 'c', u: '%RH', v: 3 }, { bu: 'V', n: 'd', v: 4 }, { n: 'e', vs: 'x' }
    ], NOW)
    expect(readings.map((r) => r.unit)).toEqual(['Cel', 'Cel', '%RH', 'V', 'V'])
    expect(resolvePack([{ n: 'a', v: 1 }], NOW)[0]).not.toHaveProperty('unit')
  })

  it('bv + v and bs + s; bv does not touch string, boolean or data values', () => {
    const readings = resolvePack([
      { bv: 100, bs: 1000, n: 'a', v: 1 }, { n: 'b', v: -1.5 }, { n: 'c', s: 5 }, { n: 'd', vs: 'x' }, { n: 'e', vb: true }
    ], NOW)
    expect(readings).toEqual([
      { name: 'a', value: 101, time: NOW },
      { name: 'b', value: 98.5, time: NOW },
      { name: 'c', sum: 1005, time: NOW },
      { name: 'd', stringValue: 'x', time: NOW },
      { name: 'e', boolValue: true, time: NOW }
    ])
  })

  it('a record of base fields only yields no reading; ut carries through', () => {
    expect(resolvePack([{ bn: 'a:', bt: NOW }, { n: 'x', v: 1, ut: 30 }], 0)).toEqual([{ name: 'a:x', value: 1, time: NOW, updateTime: 30 }])
  })

  it.each(['', ' x', 'x y', '-x', '.x', '_x', 'x!', 'é', 'x\u0000'])('refuses the resolved name %j (§4.5.1; ERR_BAD_SENML)', (name) => {
    expect(codeOf(() => resolvePack([{ n: name, v: 1 }], NOW))).toBe('ERR_BAD_SENML')
  })

  it('accepts names of letters, digits and ":./_-", starting with a letter or digit', () => {
    for (const name of ['a', '0', 'Z9', 'urn:dev:mac:0024befffe804ff1', 'a.b/c_d-e:f']) expect(resolvePack([{ n: name, v: 1 }], NOW)[0]?.name).toBe(name)
  })
})

describe('records from CBOR (untrusted)', () => {
  it.each([
    ['v and vs', new Map<number | string, unknown>([[2, 1], [3, 'x']])],
    ['v and vb', new Map<number | string, unknown>([[2, 1], [4, true]])],
    ['vs and vd', new Map<number | string, unknown>([[3, 'x'], [8, Uint8Array.of(1)]])],
    ['all four', new Map<number | string, unknown>([[2, 1], [3, 'x'], [4, true], [8, Uint8Array.of(1)]])]
  ])('more than one value: %s (§4.2; ERR_BAD_SENML)', (_what, map) => {
    expect(codeOf(() => recordFromCbor(map, 0))).toBe('ERR_BAD_SENML')
  })

  it('a value and a sum together are fine (§4.2)', () => {
    expect(recordFromCbor(new Map([[2, 1], [5, 2]]), 0)).toEqual({ v: 1, s: 2 })
  })

  it('must-understand labels (ending in "_", §4.4) are refused; other unknown labels are ignored', () => {
    expect(codeOf(() => recordFromCbor(new Map<number | string, unknown>([[2, 1], ['foo_', 1]]), 0))).toBe('ERR_BAD_SENML')
    expect(codeOf(() => recordFromCbor(new Map<number | string, unknown>([[2, 1], ['_', 1]]), 0))).toBe('ERR_BAD_SENML')
    expect(recordFromCbor(new Map<number | string, unknown>([[2, 1], ['foo', 1], [99, 'x'], [-99, 'y']]), 0)).toEqual({ v: 1 })
  })

  it.each([
    ['not a map', 1],
    ['an object, not a Map', { 2: 1 }],
    ['a byte-string label', new Map<unknown, unknown>([[Uint8Array.of(1), 1]])],
    ['n that is a number', new Map([[0, 1]])],
    ['v that is text', new Map([[2, '1']])],
    ['v that is NaN', new Map([[2, Number.NaN]])],
    ['t that is infinite', new Map([[6, Infinity]])],
    ['vb that is 1', new Map([[4, 1]])],
    ['vd that is text', new Map([[8, 'AQ']])],
    ['bver that is negative', new Map([[-1, -1]])],
    ['seq that is fractional', new Map<number | string, unknown>([['seq', 0.5]])],
    ['seq beyond 2^53', new Map<number | string, unknown>([['seq', 2 ** 53]])],
    ['vs with a lone surrogate', new Map([[3, '\uDC00']])]
  ])('refuses %s (ERR_BAD_SENML)', (_what, map) => {
    expect(codeOf(() => recordFromCbor(map, 0))).toBe('ERR_BAD_SENML')
  })

  it('vd comes back as a copy', () => {
    const vd = Uint8Array.of(1, 2)
    const record = recordFromCbor(new Map([[8, vd]]), 0)
    vd[0] = 9
    expect(record.vd).toEqual(Uint8Array.of(1, 2))
  })
})

describe('SenML JSON (RFC 8428 §5)', () => {
  it('reads one record or an array; vd is base64url', () => {
    expect(packFromJson({ n: 'x', v: 1 })).toEqual([{ n: 'x', v: 1 }])
    expect(packFromJson([{ bn: 'a:', n: 'x', v: 1 }, { n: 'y', vd: 'AQL_' }])).toEqual([{ bn: 'a:', n: 'x', v: 1 }, { n: 'y', vd: Uint8Array.of(1, 2, 0xff) }])
    expect(packToJson([{ n: 'y', vd: Uint8Array.of(1, 2, 0xff) }])).toEqual([{ n: 'y', vd: 'AQL_' }])
  })

  it('refuses a vd that is not base64url (ERR_BAD_SENML), where Buffer used to drop the stray characters', () => {
    expect(codeOf(() => packFromJson({ n: 'y', vd: 'AQ!L_' }))).toBe('ERR_BAD_SENML')
    expect(codeOf(() => packFromJson({ n: 'y', vd: 'A' }))).toBe('ERR_BAD_SENML')
    expect(packFromJson({ n: 'y', vd: 'AQL/' })).toEqual([{ n: 'y', vd: Uint8Array.of(1, 2, 0xff) }]) // standard base64 is tolerated
  })

  it('ignores unknown fields, including names of Object.prototype members; refuses "_" fields', () => {
    expect(packFromJson({ n: 'x', v: 1, foo: 2 })).toEqual([{ n: 'x', v: 1 }])
    expect(packFromJson(JSON.parse('{"n": "x", "v": 1, "toString": 2, "constructor": 3, "hasOwnProperty": 5, "valueOf": 6}'))).toEqual([{ n: 'x', v: 1 }])
    expect(codeOf(() => packFromJson({ n: 'x', v: 1, foo_: 2 }))).toBe('ERR_BAD_SENML')
  })

  it.each([
    ['null', null], ['a number', 1], ['a string', 'x'], ['an array in an array', [[{ v: 1 }]]], ['null in an array', [null]],
    ['v that is text', { v: '1' }], ['two values', { v: 1, vb: true }]
  ])('refuses %s (ERR_BAD_SENML)', (_what, json) => {
    expect(codeOf(() => packFromJson(json))).toBe('ERR_BAD_SENML')
  })

  it('packFromJson(packToJson(pack)) = pack; and through JSON text', () => {
    const finite = fc.double({ noNaN: true, noDefaultInfinity: true }).map((v) => v + 0)
    const record = fc.record({
      bn: fc.string({ maxLength: 8 }),
      bt: finite,
      bu: fc.constantFrom(...Object.keys(SENML_UNITS)),
      n: fc.string({ maxLength: 8 }),
      u: fc.string({ maxLength: 4 }),
      value: fc.oneof(finite.map((v) => ({ v })), fc.string({ maxLength: 8 }).map((vs) => ({ vs })), fc.boolean().map((vb) => ({ vb })), fc.uint8Array({ maxLength: 8 }).map((vd) => ({ vd }))),
      s: finite,
      t: finite,
      ut: finite,
      seq: fc.maxSafeNat()
    }, { requiredKeys: ['value'] }).map(({ value, ...rest }): SenmlRecord => ({ ...rest, ...value }))
    fc.assert(fc.property(fc.array(record, { minLength: 1, maxLength: 5 }), (pack: SenmlPack) => {
      expect(packFromJson(packToJson(pack))).toEqual(pack)
      expect(packFromJson(JSON.parse(JSON.stringify(packToJson(pack))))).toEqual(pack)
    }), { seed: 51, numRuns: 200 })
  })
})
