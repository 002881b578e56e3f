import { expect, it, onTestFinished } from 'vitest'
import { describeNet } from '../helpers/netns.js'
import { createFleet, type Fleet } from '../../firmware-sim/index.js'

/**
 * Fleet.flow() (issue 15): when readings do not reach the gateway, the fleet says where they are,
 * step by step: dropped (by code) or still waiting (outboxes, link queues). The fleet bench prints
 * it for every size, so a size that misses the mark explains itself.
 */

async function until (what: string, check: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

describeNet('fleet flow', () => {
  it('readings cut off from the gateway wait in the outboxes, counted, not dropped; after the heal they all arrive and nothing waits', async () => {
    const fleet: Fleet = await createFleet({ devices: 6, mode: 'mesh', transport: 'memory', mdns: false, interval: 200, gateway: {}, seed: 15 })
    onTestFinished(async () => { await fleet.stop() })
    await until('readings at the gateway', () => fleet.stats().atGateway >= 12)
    const before = fleet.flow()
    expect(before.links.open).toBeGreaterThan(0)
    expect(before.gatewayNode?.delivered).toBeGreaterThan(0)
    // The gateway alone in the first group: every device is cut off from it.
    fleet.partition([[], [0, 1, 2, 3, 4, 5]])
    const cutAt = fleet.stats().published
    await until('readings published behind the cut', () => fleet.stats().published >= cutAt + 30)
    const cut = fleet.flow()
    expect(cut.outbox.frames).toBeGreaterThanOrEqual(30) // waiting, not lost
    expect(cut.outbox.dropped).toBe(0)
    expect(cut.relays.rejected).toEqual({})
    expect(cut.gateway).toEqual({})
    expect(cut.bridge).toEqual({ overflow: 0, refused: 0 })
    fleet.heal()
    await until('every reading at the gateway', () => { const s = fleet.stats(); return s.atGateway >= s.published - 6 && fleet.flow().outbox.frames <= 6 }, 30_000)
    const healed = fleet.flow()
    expect(healed.outbox.frames).toBeLessThanOrEqual(6) // at most the readings of the last moment
    expect(healed.outbox.dropped).toBe(0)
    expect(fleet.stats().deliveryRatio).toBe(1)
  })
})
