import { describe, expect, it, onTestFinished } from 'vitest'
import { meshError } from '../../shared/index.js'
import { createMemoryOutbox, type DeliveryPath, type Outbox, type OutboxEntry } from '../../firmware-sim/index.js'
import { AckBook } from '../../firmware-sim/device/acks.js'
import { Pump } from '../../firmware-sim/device/pump.js'
import type { PathSender, SendOutcome } from '../../firmware-sim/device/types.js'
import { ManualClock } from '../helpers/clock.js'

/**
 * The device's outbox pump (firmware-sim/device/pump.ts) against a path whose sends settle only
 * when the test says so, as the mesh path's do (an end-to-end ack a round trip later): frames in
 * sequence order, a failed send again before newer ones, nothing sent twice while in flight, and
 * a drain that resumes after the frames already handed to the path instead of walking them.
 */

interface Sending { resolve: (outcome: SendOutcome) => void, reject: (error: Error) => void }

class FakePath implements PathSender {
  readonly path: DeliveryPath = 'mesh'
  readonly overlap = true
  up = true
  /** Every send, in order. */
  readonly sent: number[] = []
  readonly inflight = new Map<number, Sending>()
  #waiters: Array<{ count: number, resolve: () => void }> = []

  constructor (readonly window: number) {}

  async send (entry: OutboxEntry): Promise<SendOutcome> {
    if (this.inflight.has(entry.seq)) throw new Error(`seq ${entry.seq} sent twice while in flight`)
    this.sent.push(entry.seq)
    const settled = new Promise<SendOutcome>((resolve, reject) => { this.inflight.set(entry.seq, { resolve, reject }) })
    this.#waiters = this.#waiters.filter((w) => { if (this.sent.length < w.count) return true; w.resolve(); return false })
    try {
      return await settled
    } finally {
      this.inflight.delete(entry.seq)
    }
  }

  onChange (): void {}

  /** Resolves once `count` sends were made in all. */
  async sends (count: number): Promise<void> {
    if (this.sent.length >= count) return
    await new Promise<void>((resolve) => this.#waiters.push({ count, resolve }))
  }

  settle (seq: number, outcome: SendOutcome | Error): void {
    const sending = this.inflight.get(seq)
    if (sending === undefined) throw new Error(`seq ${seq} is not in flight`)
    if (outcome instanceof Error) sending.reject(outcome)
    else sending.resolve(outcome)
  }
}

/** The outbox, counting every entry its pending() iterators hand out. */
function counting (outbox: Outbox): { outbox: Outbox, taken: () => number } {
  let taken = 0
  const counted: Outbox = Object.create(outbox, {
    pending: {
      value: async function * (path: DeliveryPath, options?: Parameters<Outbox['pending']>[1]) {
        for await (const entry of outbox.pending(path, options)) {
          taken++
          yield entry
        }
      }
    }
  })
  return { outbox: counted, taken: () => taken }
}

const frame = (seq: number): Uint8Array => Uint8Array.of(seq & 0xff, seq >> 8)
const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i)
const down = (): Error => meshError('ERR_LINK_CLOSED', 'the test took the path down')

/** A pump on a memory outbox and a FakePath; no pacing to speak of (the bucket never runs dry). */
function setup (window: number): { pump: Pump, path: FakePath, outbox: Outbox, taken: () => number, put: (seqs: number[]) => Promise<void> } {
  const clock = new ManualClock()
  const { outbox, taken } = counting(createMemoryOutbox({ paths: ['mesh'] }))
  const acks = new AckBook({ outbox, policy: 'never', clock, onDurable: () => {}, onError: (error) => { throw error } })
  const path = new FakePath(window)
  const pump = new Pump({ outbox, sender: path, acks, clock, rate: 1e9, burst: 1_000_000 }, {
    onOutcome: () => {},
    onFailed: () => {},
    onError: (error) => { throw error }
  })
  onTestFinished(async () => {
    for (const seq of [...path.inflight.keys()]) path.settle(seq, meshError('ERR_ABORTED', 'test over'))
    await pump.stop(0)
  })
  const put = async (seqs: number[]): Promise<void> => {
    for (const seq of seqs) await outbox.put(seq, frame(seq))
    pump.wake()
  }
  return { pump, path, outbox, taken, put }
}

/** Waits, turn by turn of the event loop, until the pump has `n` sends awaiting their outcome. */
async function settled (pump: Pump, n: number): Promise<void> {
  while (pump.inflight !== n) await new Promise((resolve) => setImmediate(resolve))
}

describe('outbox pump', () => {
  it('with W frames in flight, a new frame costs one entry taken from the outbox, not W', async () => {
    const W = 200
    const { pump, path, taken, put } = setup(256)
    await put(range(1, W))
    pump.start()
    await path.sends(W)
    expect(path.sent).toEqual(range(1, W))
    for (let n = 1; n <= 5; n++) {
      const before = taken()
      await put([W + n])
      await path.sends(W + n)
      // Walking from the oldest frame not acknowledged took W + n entries here (W + n - 1 of them in flight, skipped).
      expect(taken() - before).toBe(1)
    }
    expect(path.sent).toEqual(range(1, W + 5))
    expect(pump.inflight).toBe(W + 5)
  })

  it('a frame acknowledged out of order is not sent again, and the drain goes on from the last frame sent', async () => {
    const { pump, path, outbox, put } = setup(256)
    await put(range(1, 10))
    pump.start()
    await path.sends(10)
    path.settle(5, 'delivered')
    path.settle(1, 'delivered')
    await put([11])
    await path.sends(11)
    expect(path.sent).toEqual(range(1, 11))
    expect(outbox.stats().pending.mesh).toBe(9)
  })

  it('sends that fail (the path went down) go again, oldest first, before newer frames once the path is back', async () => {
    const { pump, path, put } = setup(256)
    await put(range(1, 6))
    pump.start()
    await path.sends(6)
    path.settle(1, 'delivered')
    path.settle(2, 'delivered')
    path.up = false
    for (const seq of [6, 4, 3, 5]) path.settle(seq, down()) // in any order
    await put([7, 8])
    await settled(pump, 0) // every failure has reached the pump
    path.up = true
    pump.wake()
    await path.sends(12)
    expect(path.sent).toEqual([...range(1, 6), 3, 4, 5, 6, 7, 8])
  })

  it('one failed send, the path still up: it goes again before newer frames, the frames still in flight are not sent twice', async () => {
    const { pump, path, put } = setup(256)
    await put(range(1, 5))
    pump.start()
    await path.sends(5)
    path.settle(2, down())
    await path.sends(6)
    await put([6])
    await path.sends(7)
    expect(path.sent).toEqual([...range(1, 5), 2, 6])
    expect([...path.inflight.keys()].sort((a, b) => a - b)).toEqual(range(1, 6))
  })

  it('a send that fails while the drain waits for room in the window goes again before the frame that waited', async () => {
    const { pump, path, put } = setup(3)
    await put(range(1, 5))
    pump.start()
    await path.sends(3)
    path.settle(2, down()) // room for one: the failed frame takes it, not 4
    await path.sends(4)
    path.settle(1, 'delivered')
    await path.sends(5)
    path.settle(3, 'delivered')
    await path.sends(6)
    expect(path.sent).toEqual([1, 2, 3, 2, 4, 5])
  })
})
