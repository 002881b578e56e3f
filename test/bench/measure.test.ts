import { describe, expect, it } from 'vitest'
import { waitUntil, within } from './measure.js'

/**
 * `npm run bench` must finish (issue 15): its waits have deadlines and say what they waited for. The
 * traffic section once threw a bare "timed out" (the whole bench lost) or, waiting on a stop that
 * never settled, let Node exit 13 with no word of where.
 */
describe('bench waits', () => {
  it('waitUntil returns as soon as the check holds', async () => {
    let n = 0
    const r = await waitUntil(() => ++n >= 3, 5_000, () => 'never asked', 1)
    expect(r).toMatchObject({ met: true })
    expect(r.missing).toBeUndefined()
  })

  it('waitUntil never throws at its deadline: it reports what was missing, asked at the deadline', async () => {
    let have = 0
    const timer = setInterval(() => { have++ }, 5)
    try {
      const r = await waitUntil(() => false, 60, () => `deliveries: have ${have}`, 10)
      expect(r.met).toBe(false)
      expect(r.waitedMs).toBeGreaterThanOrEqual(60)
      expect(r.missing).toMatch(/^deliveries: have [1-9]/)
    } finally {
      clearInterval(timer)
    }
  })

  it('within reports a promise that never settles, on an otherwise empty event loop, instead of hanging', async () => {
    const never = new Promise<never>(() => {})
    await expect(within(never, 30)).resolves.toEqual({ settled: false })
    await expect(within(Promise.resolve(7), 1_000)).resolves.toEqual({ settled: true, value: 7 })
    const failed = await within(Promise.reject(new Error('boom')), 1_000)
    expect(failed.settled && failed.error instanceof Error).toBe(true)
  })
})
