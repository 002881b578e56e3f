import { describe, expect, it } from 'vitest'
import { createMemoryOutbox, type Outbox } from '../../firmware-sim/index.js'
import { TokenBucket } from '../../firmware-sim/device/rate.js'
import { AckBook } from '../../firmware-sim/device/acks.js'
import { ManualClock } from '../helpers/clock.js'

describe('drain pacing (token bucket)', () => {
  it('lets a burst through, then one frame per 1/rate s', async () => {
    const clock = new ManualClock()
    const bucket = new TokenBucket({ rate: 10, burst: 3 }, clock)
    const signal = new AbortController().signal
    for (let i = 0; i < 3; i++) await bucket.take(signal)
    expect(bucket.wait()).toBe(100)
    const fourth = bucket.take(signal)
    expect(clock.scheduled).toEqual([100])
    clock.advance(100)
    await fourth
    clock.advance(1000) // idle time refills up to the burst, no more
    for (let i = 0; i < 3; i++) {
      expect(bucket.wait()).toBe(0)
      await bucket.take(signal)
    }
    expect(bucket.wait()).toBe(100)
  })

  it('refuses a rate or burst that would never send', () => {
    const clock = new ManualClock()
    expect(() => new TokenBucket({ rate: 0, burst: 1 }, clock)).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }) as Error)
    expect(() => new TokenBucket({ rate: 1, burst: 0 }, clock)).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }) as Error)
  })
})

/** A memory outbox that counts flushes. */
function countingOutbox (): Outbox & { flushes: number } {
  const inner = createMemoryOutbox({ paths: ['broker'] })
  const outbox = Object.assign(Object.create(inner) as Outbox, { flushes: 0 })
  outbox.flush = async () => { outbox.flushes++ }
  return outbox
}

describe('durable acks (AckBook)', () => {
  it('always: flushes after each batch, acks arriving meanwhile in the next; reports after the flush', async () => {
    const clock = new ManualClock()
    const outbox = countingOutbox()
    for (let seq = 1; seq <= 3; seq++) await outbox.put(seq, new Uint8Array([seq]))
    const durable: number[] = []
    const book = new AckBook({ outbox, policy: 'always', clock, onDurable: (_p, seq) => durable.push(seq), onError: () => {} })
    await Promise.all([book.ack('broker', 1, 'delivered'), book.ack('broker', 2, 'delivered'), book.ack('broker', 3, 'delivered')])
    await book.close()
    expect(durable).toEqual([1, 2, 3])
    expect(outbox.flushes).toBeGreaterThanOrEqual(1)
    expect(outbox.flushes).toBeLessThanOrEqual(3)
    expect(outbox.stats().pending.broker).toBe(0)
  })

  it('N ms: at most one flush per N ms; never: none until close', async () => {
    const clock = new ManualClock()
    const outbox = countingOutbox()
    for (let seq = 1; seq <= 2; seq++) await outbox.put(seq, new Uint8Array([seq]))
    const durable: number[] = []
    const book = new AckBook({ outbox, policy: 500, clock, onDurable: (_p, seq) => durable.push(seq), onError: () => {} })
    await book.ack('broker', 1, 'delivered') // the first flush is due at once
    await Promise.resolve()
    await book.ack('broker', 2, 'delivered')
    await new Promise((resolve) => setImmediate(resolve))
    expect(outbox.flushes).toBe(1)
    expect(durable).toEqual([1])
    clock.advance(500)
    await new Promise((resolve) => setImmediate(resolve))
    expect(outbox.flushes).toBe(2)
    expect(durable).toEqual([1, 2])

    const never = countingOutbox()
    await never.put(1, new Uint8Array([1]))
    const reported: number[] = []
    const lazy = new AckBook({ outbox: never, policy: 'never', clock, onDurable: (_p, seq) => reported.push(seq), onError: () => {} })
    await lazy.ack('broker', 1, 'delivered')
    expect([never.flushes, reported]).toEqual([0, [1]])
  })
})
