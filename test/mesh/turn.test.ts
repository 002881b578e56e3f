import { describe, expect, it } from 'vitest'
import { MAX_SLICE_MS, SLICE_MS, SLICE_SHARE, Turn, sharedTurn } from '../../mesh/links/turn.js'

/**
 * The event loop's delivery slices (mesh/links/turn.ts). Time is what the caller passes to
 * `open(now)`; a turn ends when the process reaches its next `setImmediate`.
 */
async function nextTurn (): Promise<void> { await new Promise((resolve) => setImmediate(resolve)) }

describe('Turn: delivery slices of the event loop', () => {
  it('a turn delivers for its slice (4 ms) and then waits for the next turn', async () => {
    const turn = new Turn(SLICE_MS, { share: SLICE_SHARE })
    expect(turn.open(1000)).toBe(true)
    expect(turn.open(1000 + SLICE_MS - 0.1)).toBe(true)
    expect(turn.open(1000 + SLICE_MS)).toBe(false)
    expect(turn.open(1000 + SLICE_MS + 1)).toBe(false)
    await nextTurn()
    expect(turn.open(1010)).toBe(true)
  })

  it('with a share (a fleet\'s), after a turn that ran out the next delivers for 3 times the rest of the loop: the devices\' timers do not take the whole CPU', async () => {
    const turn = new Turn(SLICE_MS, { share: SLICE_SHARE })
    expect(turn.open(0)).toBe(true)
    expect(turn.open(3)).toBe(true) // the last delivery of this turn
    expect(turn.open(5)).toBe(false) // ran out: a backlog
    await nextTurn()
    // Timers and I/O took 10 ms since the last delivery: this turn may deliver for 30 ms.
    expect(turn.open(13)).toBe(true)
    expect(turn.slice).toBe(10 * SLICE_SHARE)
    expect(turn.open(13 + 10 * SLICE_SHARE - 0.1)).toBe(true)
    expect(turn.open(13 + 10 * SLICE_SHARE)).toBe(false)
    await nextTurn()
    // A long rest of the loop: at most MAX_SLICE_MS, so no timer waits longer than that for delivery.
    expect(turn.open(1000)).toBe(true)
    expect(turn.slice).toBe(MAX_SLICE_MS)
    expect(turn.open(1000 + MAX_SLICE_MS - 1)).toBe(true)
    expect(turn.open(1000 + MAX_SLICE_MS)).toBe(false)
    await nextTurn()
    // A short rest: never below 4 ms.
    expect(turn.open(1000 + MAX_SLICE_MS + 0.2)).toBe(true)
    expect(turn.slice).toBe(SLICE_MS)
  })

  it('without a backlog (the turn before did not run out) a turn keeps 4 ms however long the loop was idle', async () => {
    const turn = new Turn(SLICE_MS, { share: SLICE_SHARE })
    expect(turn.open(0)).toBe(true)
    expect(turn.open(1)).toBe(true)
    await nextTurn()
    expect(turn.open(5000)).toBe(true)
    expect(turn.slice).toBe(SLICE_MS)
    expect(turn.open(5000 + SLICE_MS)).toBe(false)
  })

  it('the default (every link\'s shared turn) is the fixed 4 ms slice, whatever the backlog; a manual clock (time stands still) never ends a turn', async () => {
    expect(sharedTurn.share).toBe(0)
    const fixed = new Turn()
    expect(fixed.open(0)).toBe(true)
    expect(fixed.open(SLICE_MS)).toBe(false)
    await nextTurn()
    expect(fixed.open(100)).toBe(true)
    expect(fixed.slice).toBe(SLICE_MS)
    const manual = new Turn(SLICE_MS, { share: SLICE_SHARE })
    for (let i = 0; i < 10_000; i++) expect(manual.open(42)).toBe(true)
  })

  it('once a link has used up the turn, the links still waiting are not called in it: each keeps its place and is served in its turn (round robin)', async () => {
    const turn = new Turn()
    let now = 0
    const calls: number[] = []
    const served: number[] = []
    // A link with more to deliver than a slice holds, as base-link.ts pumps it.
    const pump = (id: number) => (): void => {
      calls.push(id)
      if (!turn.open(now)) { turn.later(pump(id), true); return } // used up before it delivered: starved
      served.push(id)
      now += SLICE_MS
      expect(turn.open(now)).toBe(false)
      turn.later(pump(id))
    }
    const links = 100
    for (let id = 0; id < links; id++) turn.later(pump(id))
    await nextTurn()
    expect(calls).toEqual([0]) // the 99 others were not asked only to be told the turn was over
    for (let t = 1; t < links; t++) await nextTurn()
    expect(served).toEqual([...Array(links).keys()])
    expect(calls).toEqual(served) // each called once, when its turn came: not 100 calls a turn
    await nextTurn()
    expect(served.at(-1)).toBe(0) // and round again
  })
})
