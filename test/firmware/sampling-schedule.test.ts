import { describe, expect, it } from 'vitest'
import { MAX_WRITES_IN_FLIGHT, createMemoryOutbox, type Outbox } from '../../firmware-sim/index.js'
import { Waiter, keysFor, meshInit, memoryNet, startDevice } from './device-support.js'

/**
 * Issue 10: "sampling runs on schedule under any load". A disk outbox writes and fsyncs each frame
 * (on an SD card, or on a machine busy with an attack, that can take hundreds of milliseconds); a
 * device that waited for it before its next interval skipped intervals: in the adversarial suite,
 * 62 of 80 beside a control device's 80 of 80. The outbox here is a memory one whose writes wait,
 * in order as disk.ts's do, until the test lets them through: a disk that stalls.
 */
function stallingOutbox (): { outbox: Outbox, release: () => void, handedOver: number[] } {
  const inner = createMemoryOutbox({ paths: ['mesh'] })
  let open = (): void => {}
  const gate = new Promise<void>((resolve) => { open = resolve })
  let chain: Promise<unknown> = Promise.resolve()
  const handedOver: number[] = []
  const outbox = Object.create(inner) as Outbox
  outbox.put = async (seq, frame) => {
    handedOver.push(seq)
    const write = chain.then(async () => { await gate }).then(async () => { await inner.put(seq, frame) })
    chain = write
    return await write
  }
  return { outbox, release: open, handedOver }
}

describe('sampling does not wait for the outbox', () => {
  it('a stalled outbox write does not make the device skip intervals; the frames enter it in order once it moves', async () => {
    const waiter = new Waiter()
    const keys = keysFor(71)
    const { outbox, release, handedOver } = stallingOutbox()
    const { device, signed } = await startDevice({ mode: 'mesh', sensors: 'temperature', interval: 50, mesh: meshInit('dev') },
      { keys, outbox, transport: memoryNet(71).createTransport({}, { keys }) }, waiter)
    const ticks = (): number => device.counters.samples + device.counters.skipped
    device.on('tick', waiter.kick)
    const timer = setInterval(waiter.kick, 10)
    try {
      await waiter.until(() => ticks() >= 12, 'twelve intervals with every write stalled')
      // Before: the first write held the sample, and every interval after it was skipped (samples 1).
      expect(device.counters.skipped).toBe(0)
      expect(device.counters.samples).toBeGreaterThanOrEqual(12)
      expect(signed).toEqual([]) // nothing is in the outbox yet: a reading event means "in the outbox"
      release()
      await waiter.until(() => signed.length >= handedOver.length && signed.length >= 12, 'the stalled frames written')
      expect(signed).toEqual([...handedOver].slice(0, signed.length))
      expect(signed.every((seq, i) => i === 0 || seq > (signed[i - 1] as number))).toBe(true)
      expect(outbox.stats().frames).toBe(signed.length)
    } finally { clearInterval(timer) }
  })

  it('a disk that stays stalled: at most MAX_WRITES_IN_FLIGHT frames handed over, then intervals are skipped and counted, and sampling resumes when it moves', async () => {
    const waiter = new Waiter()
    const keys = keysFor(72)
    const { outbox, release, handedOver } = stallingOutbox()
    const { device, signed } = await startDevice({ mode: 'mesh', sensors: 'temperature', interval: 10, mesh: meshInit('dev') },
      { keys, outbox, transport: memoryNet(72).createTransport({}, { keys }) }, waiter)
    const timer = setInterval(waiter.kick, 10)
    try {
      await waiter.until(() => device.counters.skipped >= 10, 'intervals skipped once the outbox is full of waiting writes')
      expect(handedOver).toHaveLength(MAX_WRITES_IN_FLIGHT)
      expect(device.counters.samples).toBe(MAX_WRITES_IN_FLIGHT)
      release()
      await waiter.until(() => signed.length >= MAX_WRITES_IN_FLIGHT + 10, 'sampling again after the disk moved')
      expect(signed.slice(0, MAX_WRITES_IN_FLIGHT)).toEqual(handedOver.slice(0, MAX_WRITES_IN_FLIGHT))
    } finally { clearInterval(timer) }
  })
})
