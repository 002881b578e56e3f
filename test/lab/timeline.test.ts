import { createHash } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  canonicalJson, faultEvents, phaseAt, planFailover, timelineDurationS, timelineFingerprint,
  FAILOVER_DEFAULTS, FAILOVER_QUICK, type FailoverParams
} from '../../lab/index.js'
import { isMeshError } from '../../shared/index.js'

describe('failover timeline', () => {
  it('is a pure function of seed and parameters: same input, same timeline and fingerprint', () => {
    const a = planFailover({ seed: 42 })
    const b = planFailover({ seed: 42 })
    expect(b).toEqual(a)
    expect(JSON.stringify(b)).toBe(JSON.stringify(a))
    expect(b.fingerprint).toBe(a.fingerprint)
    expect(a.fingerprint).toMatch(/^sha256:[0-9a-f]{64}$/)
  })

  it('changes with the seed, and the fingerprint tells', () => {
    const seen = new Set<string>()
    const choices = new Set<string>()
    for (let seed = 0; seed < 20; seed++) {
      const t = planFailover({ seed })
      seen.add(t.fingerprint)
      choices.add(JSON.stringify(faultEvents(t).map((e) => e.devices ?? e.groups ?? null)))
    }
    expect(seen.size).toBe(20)
    expect(choices.size).toBeGreaterThan(15)
  })

  it('pins the default plan for seed 1 (known answer: a change here breaks reproducibility across versions)', () => {
    const t = planFailover({ seed: 1 })
    expect(t.phases.map((p) => [p.name, p.startS, p.endS])).toEqual([
      ['steady', 0, 20], ['broker-down', 20, 50], ['broker-back', 50, 70], ['crashed', 70, 90],
      ['restarted', 90, 110], ['partitioned', 110, 130], ['healed', 130, 150]
    ])
    expect(faultEvents(t)).toEqual([
      { atS: 20, kind: 'broker-stop' },
      { atS: 50, kind: 'broker-start' },
      { atS: 70, kind: 'crash', devices: [0, 14, 17] },
      { atS: 90, kind: 'restart', devices: [0, 14, 17] },
      { atS: 110, kind: 'partition', groups: [[0, 1, 2, 3, 5, 6, 7, 10, 11, 12, 14, 15, 16, 18, 19], [4, 8, 9, 13, 17]] },
      { atS: 130, kind: 'heal' }
    ])
    expect(t.peer).toBe(18)
    expect(t.fingerprint).toBe('sha256:f9dc60e711290d1f8df709d19165a72be5678a3d653b6d7d0f8d1bca7a671aad')
  })

  it('fingerprint is the sha256 of the canonical JSON of everything else', () => {
    const t = planFailover(FAILOVER_QUICK)
    const { fingerprint, ...body } = t
    expect(fingerprint).toBe(`sha256:${createHash('sha256').update(canonicalJson(body)).digest('hex')}`)
    expect(timelineFingerprint(t)).toBe(fingerprint)
    const edited = structuredClone(t)
    edited.phases[1]?.faults.push({ atS: 5, kind: 'heal' })
    expect(timelineFingerprint(edited)).not.toBe(fingerprint)
  })

  it('canonical JSON sorts keys, drops undefined members and refuses what JSON cannot hold', () => {
    expect(canonicalJson({ b: 1, a: [true, null, { d: 'x', c: undefined }], é: 0.5 })).toBe('{"a":[true,null,{"d":"x"}],"b":1,"é":0.5}')
    expect(canonicalJson({ a: 1, b: 2 })).toBe(canonicalJson({ b: 2, a: 1 }))
    expect(() => canonicalJson({ x: Infinity })).toThrow(RangeError)
  })

  it('defaults take about 2.5 minutes per mode, the quick preset 30-40 s', () => {
    const full = planFailover()
    expect(full.params).toEqual(FAILOVER_DEFAULTS)
    expect(timelineDurationS(full)).toBeGreaterThanOrEqual(120)
    expect(timelineDurationS(full)).toBeLessThanOrEqual(180)
    const quick = planFailover(FAILOVER_QUICK)
    expect(timelineDurationS(quick)).toBeGreaterThanOrEqual(30)
    expect(timelineDurationS(quick)).toBeLessThanOrEqual(45)
    expect(quick.phases).toHaveLength(7)
  })

  it('holds its invariants for any valid parameters', () => {
    const params = fc.integer({ min: 2, max: 300 }).chain((devices) => fc.record({
      seed: fc.nat({ max: 0xffff_ffff }),
      devices: fc.constant(devices),
      steadyS: fc.integer({ min: 1, max: 60 }),
      brokerDownS: fc.integer({ min: 0, max: 60 }),
      crashCount: fc.integer({ min: 0, max: devices - 1 }),
      crashS: fc.integer({ min: 0, max: 60 }),
      partitionS: fc.integer({ min: 0, max: 60 }),
      gapS: fc.integer({ min: 1, max: 60 }),
      drainS: fc.integer({ min: 0, max: 30 })
    }))
    fc.assert(fc.property(params, (p: FailoverParams) => {
      const t = planFailover(p)
      expect(t.phases[0]?.startS).toBe(0)
      t.phases.forEach((phase, i) => {
        expect(phase.endS).toBeGreaterThan(phase.startS)
        if (i > 0) expect(phase.startS).toBe(t.phases[i - 1]?.endS)
        for (const f of phase.faults) expect(f.atS).toBe(phase.startS)
        expect(phaseAt(t, phase.startS)).toBe(phase)
      })
      expect(t.endS).toBe(t.phases.at(-1)?.endS)
      const crash = faultEvents(t).find((e) => e.kind === 'crash')
      if (crash !== undefined) {
        expect(crash.devices).toHaveLength(p.crashCount)
        expect(new Set(crash.devices).size).toBe(p.crashCount)
        expect(crash.devices).toEqual([...(crash.devices ?? [])].sort((a, b) => a - b))
        expect(crash.devices).not.toContain(t.peer)
        expect(faultEvents(t).find((e) => e.kind === 'restart')?.devices).toEqual(crash.devices)
      }
      const partition = faultEvents(t).find((e) => e.kind === 'partition')
      if (partition !== undefined) {
        const [keep, cut] = partition.groups as [number[], number[]]
        expect([...keep, ...cut].sort((a, b) => a - b)).toEqual(Array.from({ length: p.devices }, (_, i) => i))
        expect(cut.length).toBeGreaterThanOrEqual(1)
        expect(cut.length).toBeLessThanOrEqual(Math.max(1, Math.floor(p.devices / 2)))
        expect(keep.length).toBeGreaterThanOrEqual(cut.length)
      }
      expect(t.peer).toBeGreaterThanOrEqual(0)
      expect(t.peer).toBeLessThan(p.devices)
    }), { numRuns: 200 })
  })

  it('leaves out a fault whose duration is 0, with its recovery phase', () => {
    const t = planFailover({ brokerDownS: 0, partitionS: 0 })
    expect(t.phases.map((p) => p.name)).toEqual(['steady', 'crashed', 'restarted'])
    expect(planFailover({ crashCount: 0 }).phases.map((p) => p.name)).not.toContain('crashed')
  })

  it('the crash choice does not move the partition (one stream per choice)', () => {
    const split = (crashCount: number): unknown => faultEvents(planFailover({ seed: 9, crashCount })).find((e) => e.kind === 'partition')?.groups
    expect(split(1)).toEqual(split(5))
  })

  it.each([
    [{ seed: -1 }], [{ seed: 1.5 }], [{ seed: 2 ** 32 }], [{ devices: 1 }], [{ devices: 20, crashCount: 20 }],
    [{ steadyS: 0 }], [{ gapS: -1 }], [{ brokerDownS: Number.NaN }], [{ drainS: -1 }], [{ partitionS: Infinity }]
  ])('refuses %j with ERR_BAD_ARGUMENT', (bad) => {
    let caught: unknown
    try { planFailover(bad) } catch (err) { caught = err }
    expect(isMeshError(caught, 'ERR_BAD_ARGUMENT')).toBe(true)
  })
})
