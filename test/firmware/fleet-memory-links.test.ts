import { expect, it, onTestFinished } from 'vitest'
import { createFleet } from '../../firmware-sim/index.js'

/**
 * A fleet on memory links without DNS-SD: each device dials `dialTarget` random earlier devices
 * (and the first ones the gateway), and those are all the links it makes, whatever its neighbours
 * tell it. Since a HELLO names the port its sender listens on (peer exchange), a node learns every
 * device that dials it and passes them on; if the fleet let its nodes dial what they learn and
 * rotate, the graph a seed gives would change every run (and the fleet bench would measure another
 * mesh: three more outbound links a device, a swap every 10 s).
 */
it('memory links without DNS-SD: every device dials its configured peers only, the gateway none, with peer exchange and a fast rotation pace beside', async () => {
  const dialTarget = 2
  const fleet = await createFleet({ devices: 24, mode: 'mesh', transport: 'memory', mdns: false, interval: 500, gateway: {}, seed: 3, dialTarget, rotateInterval: 100 })
  onTestFinished(async () => { await fleet.stop() })
  const t0 = Date.now()
  while (fleet.stats().atGateway < 48 && Date.now() - t0 < 20_000) await new Promise((resolve) => setTimeout(resolve, 50))
  await new Promise((resolve) => setTimeout(resolve, 1500)) // 15 rotation periods, and peer exchange on every link
  const exchanged = fleet.devices.reduce((n, d) => n + (d.device?.node?.peers().filter((p) => p.source === 'exchange').length ?? 0), 0)
  expect(exchanged).toBeGreaterThan(0) // peer exchange did name peers: what the nodes could have dialled
  const gateway = fleet.gateway?.mesh
  expect(gateway).toBeDefined()
  expect([...gateway!.links.values()].filter((l) => l.initiator)).toEqual([])
  for (const d of fleet.devices) {
    const outbound = [...(d.device?.node?.links.values() ?? [])].filter((l) => l.initiator).length
    // Its configured peers: up to dialTarget earlier devices, and the gateway for the first dialTarget devices.
    expect(outbound, d.name).toBeLessThanOrEqual(Math.min(dialTarget, d.index) + (d.index < dialTarget ? 1 : 0))
  }
  expect(fleet.stats().deliveryRatio).toBe(1)
}, 40_000)
