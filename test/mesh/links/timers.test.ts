import { describe, expect, it } from 'vitest'
import { mulberry32, seededRandom } from '../../../shared/index.js'
import { Backoff } from '../../../mesh/links/index.js'
import { Keepalive } from '../../../mesh/links/keepalive.js'
import { beats } from '../../../mesh/links/registry.js'
import { ManualClock } from '../../helpers/clock.js'

describe('keepalive', () => {
  it('pings only when idle, and declares the link dead within timeout + interval', () => {
    const clock = new ManualClock()
    const events: string[] = []
    const keepalive = new Keepalive(clock, 1000, 3000, {
      ping: () => events.push(`ping@${clock.now()}`),
      dead: (silent) => events.push(`dead@${clock.now()} after ${silent}`)
    })
    keepalive.start()
    keepalive.start() // idempotent
    for (let t = 0; t < 5; t++) {
      keepalive.heard() // traffic keeps it quiet
      clock.advance(1000)
    }
    expect(events).toEqual([])
    clock.advance(1000) // nothing heard for a whole interval
    expect(events).toEqual(['ping@6000'])
    keepalive.heard() // the pong, at t=6000
    clock.advance(1000)
    expect(events).toEqual(['ping@6000'])
    clock.advance(1000)
    expect(events).toEqual(['ping@6000', 'ping@8000'])
    clock.advance(10_000)
    // Last frame at 6000; declared dead at 10000, within timeout (3000) + interval (1000).
    expect(events).toEqual(['ping@6000', 'ping@8000', 'ping@9000', 'dead@10000 after 3000'])
    expect(clock.pending).toBe(0)
  })

  it('holds no silence against the peer while this node has stopped reading', () => {
    const clock = new ManualClock()
    const keepalive = new Keepalive(clock, 1000, 3000, { ping: () => {}, dead: () => { throw new Error('not dead') } })
    keepalive.start()
    keepalive.suspend(true)
    clock.advance(60_000)
    keepalive.suspend(false)
    clock.advance(2000) // silence counts again from here: two intervals are not yet the timeout
    expect(clock.pending).toBe(1)
    keepalive.stop()
  })

  it('stops cleanly and is disabled by a zero interval', () => {
    const clock = new ManualClock()
    const keepalive = new Keepalive(clock, 1000, 3000, { ping: () => {}, dead: () => { throw new Error('not dead') } })
    keepalive.start()
    keepalive.stop()
    expect(clock.pending).toBe(0)
    new Keepalive(clock, 0, 3000, { ping: () => {}, dead: () => {} }).start()
    expect(clock.pending).toBe(0)
  })
})

describe('backoff with jitter', () => {
  it('grows exponentially up to the cap, jittered by the injected random, and replays exactly', () => {
    const draw = mulberry32(99)
    const expected = [1000, 2000, 4000, 8000, 10_000, 10_000].map((base) => Math.round(base * (1 - 0.5 * draw())))
    const backoff = new Backoff({ initial: 1000, max: 10_000, factor: 2, jitter: 0.5 }, seededRandom(99))
    const delays = expected.map(() => backoff.next())
    expect(delays).toEqual(expected)
    expect(backoff.attempts).toBe(6)
    const again = new Backoff({ initial: 1000, max: 10_000 }, seededRandom(99))
    expect(expected.map(() => again.next())).toEqual(delays)
    backoff.reset()
    expect(backoff.next()).toBeLessThanOrEqual(1000)
  })
})

describe('duplicate link order', () => {
  it('prefers the link dialed by the smaller id, then the later dial', () => {
    expect(beats({ initiatorId: 'aaa', seq: 1 }, { initiatorId: 'bbb', seq: 9 })).toBe(true)
    expect(beats({ initiatorId: 'bbb', seq: 9 }, { initiatorId: 'aaa', seq: 1 })).toBe(false)
    expect(beats({ initiatorId: 'aaa', seq: 2 }, { initiatorId: 'aaa', seq: 1 })).toBe(true)
    expect(beats({ initiatorId: 'aaa', seq: 1 }, { initiatorId: 'aaa', seq: 2 })).toBe(false)
  })
})
