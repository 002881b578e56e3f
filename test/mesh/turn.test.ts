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
})
