import { describe, expect, it, onTestFinished } from 'vitest'
import { PeerRotation } from '../../mesh/peer-rotation.js'
import { ManualClock } from '../helpers/clock.js'
import { fixedRandom } from '../helpers/random.js'

/** The pace of peer rotation (mesh/peer-rotation.ts): what churned links in a TCP fleet after its start (test/mesh/link-churn.test.ts). */

describe('PeerRotation', () => {
  // fixedRandom(0.5): each wait drawn at 3/4 of its range's top ([w/2, w)).
  const steps = (clock: ManualClock, init: { interval: number, maxInterval?: number }, draw = 0.5): { rotation: PeerRotation, at: number[] } => {
    const at: number[] = []
    const rotation = new PeerRotation(init, { clock, random: fixedRandom(draw) }, () => { at.push(clock.now()) })
    onTestFinished(() => { rotation.stop() })
    return { rotation, at }
  }

  it('doubles the wait after each step while quiet, up to maxInterval (8 × interval by default)', () => {
    const clock = new ManualClock()
    const { rotation, at } = steps(clock, { interval: 1000 })
    rotation.start()
    clock.advance(24_000)
    // Waits 1, 2, 4, 8, 8, 8 s, each drawn at 0.75 of it: 750, 1,500, 3,000, 6,000, 6,000, 6,000 ms.
    expect(at).toEqual([750, 2250, 5250, 11_250, 17_250, 23_250])
    expect(rotation.wait).toBe(8000)
  })

  it('draws each wait in [w/2, w), so that nodes started together do not step together', () => {
    const clock = new ManualClock()
    const { rotation, at } = steps(clock, { interval: 1000, maxInterval: 1000 }, 0)
    rotation.start()
    clock.advance(2000)
    expect(at).toEqual([500, 1000, 1500, 2000])
  })

  it('unsettle: the waits start again from interval, and a step due later comes within it', () => {
    const clock = new ManualClock()
    const { rotation, at } = steps(clock, { interval: 1000, maxInterval: 16_000 })
    rotation.start()
    clock.advance(15_000)
    expect(at).toEqual([750, 2250, 5250, 11_250]) // the next was due at 23,250
    rotation.unsettle()
    clock.advance(1000)
    expect(at.at(-1)).toBe(15_750)
    clock.advance(2000)
    expect(at.at(-1)).toBe(17_250) // 1,500 after: doubled again from interval; the next is due at 20,250
    clock.advance(1500)
    rotation.unsettle() // due within interval already: left as it is
    clock.advance(1000)
    expect(at.at(-1)).toBe(20_250)
    clock.advance(1500)
    expect(at.at(-1)).toBe(21_750) // and the wait after it doubled from interval
  })

  it('nothing after stop; start and stop are idempotent', () => {
    const clock = new ManualClock()
    const { rotation, at } = steps(clock, { interval: 1000 })
    rotation.stop()
    rotation.start()
    rotation.start()
    clock.advance(750)
    rotation.stop()
    rotation.stop()
    rotation.unsettle()
    clock.advance(60_000)
    expect(at).toEqual([750])
    expect(clock.pending).toBe(0)
  })

  it('a steady pace when maxInterval is interval', () => {
    const clock = new ManualClock()
    const { rotation, at } = steps(clock, { interval: 1000, maxInterval: 1000 })
    rotation.start()
    clock.advance(4000)
    expect(at).toEqual([750, 1500, 2250, 3000, 3750])
  })
})
