import { describe, expect, it } from 'vitest'
import { refreshScale, scaleChecks } from '../../lab/index.js'
import type { ScalePoint } from '../../lab/results/types.js'
import { scaleFixture } from './fixtures.js'

/** `scale-delivery` judged per fleet on the 95 % Wilson interval of its delivery (lab/results/checks.ts). */

function point (mode: ScalePoint['mode'], devices: number, readings: number, delivered: number, recorded = true): ScalePoint {
  return {
    mode, devices, transport: 'tcp', seconds: 10, readings, ...(recorded ? { delivered } : {}), delivery: readings === 0 ? null : Math.round(delivered / readings * 1e4) / 1e4,
    latencyMs: null, perDevice: null, broker: null, gateway: null
  }
}

const delivery = (points: ScalePoint[]): ReturnType<typeof scaleChecks>[number] | undefined => scaleChecks(points).find((c) => c.id === 'scale-delivery')

describe('scale: delivery as a hypothesis per fleet', () => {
  it('holds only where the window has readings enough: 2,000 of 2,000 holds, 50 of 50 is undecided, not a pass', () => {
    expect(delivery([point('mesh', 200, 2000, 2000)])?.status).toBe('pass')
    const small = delivery([point('mesh', 5, 50, 50), point('mesh', 200, 2000, 2000)])
    expect(small?.status).toBe('undecided')
    expect(small?.observed).toBe('1 of 2 fleets hold; mesh with 5 devices: 50 of 50, [92.9, 100.0] % (undecided; ≥ 99 % needs ≥ 381 readings, all delivered)')
  })

  it('fails a fleet whose interval lies below 99 %, and one that published nothing', () => {
    expect(delivery([point('broker', 200, 2000, 1940)])?.status).toBe('fail') // 97 %: [96.2, 97.6] %
    expect(delivery([point('mesh', 50, 0, 0)])?.status).toBe('fail')
    // One reading of 50 missing is not a failure: the interval still reaches 99 %.
    expect(delivery([point('mesh', 5, 50, 49)])?.status).toBe('undecided')
  })

  it('judges a report saved before the count was recorded from its share, and --render-only re-judges it', () => {
    expect(delivery([point('mesh', 5, 50, 50, false)])?.status).toBe('undecided')
    const saved = scaleFixture()
    const old = { ...saved, checks: saved.checks.map((c) => c.id === 'scale-delivery' ? { ...c, status: 'pass' as const } : c), points: saved.points.map(({ delivered: _, ...p }) => p) }
    expect(refreshScale(old).checks.find((c) => c.id === 'scale-delivery')?.status).toBe('undecided') // the 5-device windows hold 50 readings
  })
})
