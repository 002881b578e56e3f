import { describe, expect, it, onTestFinished } from 'vitest'
import { Fleet } from '../../firmware-sim/index.js'

/**
 * The simulated gateway has room for every device's link. In one process every TCP link comes from
 * one source address (127.0.0.1), which the inbound eviction (mesh/links/eviction.ts, after Bitcoin
 * Core) reads as one peer's many links: with the default 12 inbound slots the gateway evicted honest
 * devices' links, and each eviction cut that device's route to the gateway until the gateway's next
 * declaration (up to 10 s): the hybrid hold-up of docs/experiments/failover-five-quick (one device's
 * readings 38.1–46.0 s held up and delivered together at 47.2 s while the broker was down).
 */

async function until (check: () => boolean, what: string, ms: number): Promise<void> {
  const t0 = Date.now()
  while (!check()) {
    if (Date.now() - t0 > ms) throw new Error(`not within ${ms} ms: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

describe('fleet simulator: the gateway\'s links', () => {
  it('keeps every device that dials it, so none loses its route to the gateway (14 devices all dial it; 12 slots evicted some)', async () => {
    const devices = 14
    // Each device dials every peer it discovers (the gateway among them); no rotation, so the links settle.
    const fleet = new Fleet({ devices, mode: 'mesh', transport: 'tcp', dialTarget: devices, rotateInterval: 0, interval: 60_000, fleet: `gw-links-${process.pid}` })
    onTestFinished(async () => { await fleet.stop() })
    await fleet.start()
    const gateway = fleet.gateway?.mesh
    if (gateway === undefined) throw new Error('no gateway node')
    const linkedToGateway = (): number => fleet.devices.filter((d) => d.device?.node?.links.get(gateway.id)?.open === true).length
    await until(() => linkedToGateway() === devices, `all ${devices} devices linked to the gateway (${linkedToGateway()} are; evicted so far ${gateway.counters.links.manager.evicted})`, 20_000)
    expect(gateway.counters.links.manager.evicted).toBe(0)
    expect(fleet.devices.every((d) => d.device?.node?.wanted() === true)).toBe(true)
  })
})
