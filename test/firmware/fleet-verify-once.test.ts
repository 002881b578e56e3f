import { expect, it, onTestFinished, vi } from 'vitest'
import { describeNet } from '../helpers/netns.js'
import { defaultEd25519 } from '../../shared/index.js'
import { createFleet, type Fleet } from '../../firmware-sim/index.js'

/**
 * Verify once per process (issue 15), end to end in a simulated fleet (one process): a device's
 * reading is checked by the gateway's mesh node and by nobody else in the process: not by the
 * device's own node (its device signed it), not by the gateway's ingest (its node checked it).
 * The device checks the gateway's ack of it. Every check in the process is counted.
 */

async function until (what: string, check: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

describeNet('verify once in a fleet', () => {
  it('one device beside the gateway: about two signature checks per reading (the gateway\'s node, the device\'s ack), not four', async () => {
    const fleet: Fleet = await createFleet({ devices: 1, mode: 'mesh', transport: 'memory', mdns: false, interval: 100, gateway: {}, seed: 16 })
    onTestFinished(async () => { await fleet.stop() })
    const gateway = fleet.gateway!
    await until('readings at the gateway', () => fleet.stats().atGateway >= 5)
    const verify = vi.spyOn(defaultEd25519, 'verify')
    onTestFinished(() => { verify.mockRestore() })
    const at0 = fleet.stats().atGateway
    const { checked, vouched } = gateway.ingest.verifier
    await until('30 more readings at the gateway', () => fleet.stats().atGateway >= at0 + 30)
    const readings = fleet.stats().atGateway - at0
    const checks = verify.mock.calls.length
    verify.mockRestore()
    expect(gateway.ingest.verifier.checked - checked).toBe(0)
    expect(gateway.ingest.verifier.vouched - vouched).toBeGreaterThanOrEqual(readings)
    // One check at the gateway's node and one of the ack at the device per reading; acks of readings close together may be one.
    expect(checks / readings).toBeGreaterThan(1)
    expect(checks / readings).toBeLessThanOrEqual(2.2) // before issue 15: ~4 (the device's node and the ingest checked too)
  })
})
