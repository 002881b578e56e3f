import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { describeNet } from '../helpers/netns.js'
import { defaultEd25519, generateKeyPair } from '../../shared/index.js'
import { createFleet, type Fleet } from '../../firmware-sim/index.js'
import { sharedEd25519 } from '../../firmware-sim/fleet/shared-verify.js'
import { until } from '../helpers/memory-mesh.js'

/**
 * Signature checks shared between the simulated devices of one process (issue 15,
 * `FleetInit.shareVerification`, `iotmesh sim --share-verification`): sound (content-addressed, only
 * what holds is remembered), bounded, and the fleet delivers as before, labelled "shared".
 */

describe('a shared Ed25519 backend', () => {
  const keys = generateKeyPair()
  const message = new TextEncoder().encode('a reading')

  it('answers a check of what it signed without the curve, and checks anything else for real', () => {
    const ed = sharedEd25519(defaultEd25519)
    const verify = vi.spyOn(defaultEd25519, 'verify')
    onTestFinished(() => { verify.mockRestore() })
    const signature = ed.sign(message, keys.secretKey)
    expect(ed.verify(signature, message, keys.publicKey)).toBe(true)
    expect(verify).not.toHaveBeenCalled()
    expect(ed.counters).toEqual({ shared: 1, checked: 0 })
    // A flipped signature bit, another message, another key: none remembered, each checked and refused.
    const forged = Uint8Array.from(signature)
    forged[0] = (forged[0] as number) ^ 1
    expect(ed.verify(forged, message, keys.publicKey)).toBe(false)
    expect(ed.verify(signature, new TextEncoder().encode('a reading!'), keys.publicKey)).toBe(false)
    expect(ed.verify(signature, message, generateKeyPair().publicKey)).toBe(false)
    expect(verify).toHaveBeenCalledTimes(3)
    // A refusal is not remembered: the same forgery is checked again.
    expect(ed.verify(forged, message, keys.publicKey)).toBe(false)
    expect(verify).toHaveBeenCalledTimes(4)
    expect(ed.counters).toEqual({ shared: 1, checked: 4 })
  })

  it('checks a signature made elsewhere once, then shares it; forgets the oldest past its bound', () => {
    const ed = sharedEd25519(defaultEd25519, 2)
    const verify = vi.spyOn(defaultEd25519, 'verify')
    onTestFinished(() => { verify.mockRestore() })
    const signatures = [0, 1, 2].map((i) => defaultEd25519.sign(Uint8Array.of(i), keys.secretKey))
    for (const [i, s] of signatures.entries()) expect(ed.verify(s, Uint8Array.of(i), keys.publicKey)).toBe(true)
    expect(verify).toHaveBeenCalledTimes(3)
    expect(ed.verify(signatures[2] as Uint8Array, Uint8Array.of(2), keys.publicKey)).toBe(true) // remembered
    expect(ed.verify(signatures[1] as Uint8Array, Uint8Array.of(1), keys.publicKey)).toBe(true) // remembered
    expect(verify).toHaveBeenCalledTimes(3)
    expect(ed.verify(signatures[0] as Uint8Array, Uint8Array.of(0), keys.publicKey)).toBe(true) // the oldest, forgotten: checked again
    expect(verify).toHaveBeenCalledTimes(4)
  })
})

describeNet('a fleet sharing its signature checks', () => {
  it('delivers every reading as a fleet that does not, says so, and checks no signature the process made', async () => {
    const fleet: Fleet = await createFleet({ devices: 12, mode: 'mesh', transport: 'memory', mdns: false, interval: 100, gateway: {}, seed: 16, shareVerification: true })
    onTestFinished(async () => { await fleet.stop() })
    await until(() => fleet.stats().atGateway >= 60, 'readings at the gateway', 20_000)
    const verify = vi.spyOn(defaultEd25519, 'verify')
    onTestFinished(() => { verify.mockRestore() })
    const before = fleet.stats()
    await until(() => fleet.stats().atGateway >= before.atGateway + 300, '300 more readings at the gateway', 20_000)
    await new Promise((resolve) => setTimeout(resolve, 2500)) // past the 2 s settle time of the last ones counted
    await until(() => fleet.stats().missing === 0, 'every settled reading at the gateway', 20_000)
    const after = fleet.stats()
    expect(after.verification).toBe('shared')
    expect(after.deliveryRatio).toBe(1)
    expect(after.rejects).toBe(0)
    // Every signature was made in this process: each check (frames at each hop, acks, declarations) was shared.
    expect(verify).not.toHaveBeenCalled()
    expect((after.sharedChecks?.shared ?? 0) - (before.sharedChecks?.shared ?? 0)).toBeGreaterThan(after.atGateway - before.atGateway)
    expect(after.sharedChecks?.checked).toBe(0)
  })
})
