import { expect, it, onTestFinished } from 'vitest'
import { isMeshError } from '../../shared/index.js'
import { Fleet, createFleet, type FleetInit } from '../../firmware-sim/index.js'
import { describeNet } from '../helpers/netns.js'
import { assertBuilt } from '../helpers/fresh-build.js'
import { Waiter, keyOf } from './fleet-support.js'

/**
 * A fleet split over worker threads (FleetInit.workers, issue 15): the devices run in two workers,
 * the gateway in this thread, and every reading crosses a thread on its way (links across threads
 * run over MessagePorts: mesh/links/port-link.ts, whose contract test/compliance/links.test.ts runs).
 * Over TCP (with DNS-SD) no port is needed: each worker has its own mDNS responder, and links are
 * TCP connections between threads as between hosts.
 * The workers run the build (dist/), so a stale build would test old code: said, not run.
 */

/**
 * Starts a 10-device fleet over two workers, waits for 50 readings from all ten devices and for
 * each of them at the gateway; returns the fleet (refreshed: its stats and flow current), what was
 * published, and the readings waited for.
 */
async function deliveredByAll (init: FleetInit): Promise<{ fleet: Fleet, published: Array<{ device: number, key: string }>, wanted: Array<{ device: number, key: string }> }> {
  assertBuilt(['firmware-sim', 'mesh', 'shared', 'gateway'])
  const waiter = new Waiter()
  const fleet = new Fleet({ devices: 10, mode: 'mesh', gateway: {}, workers: 2, ...init })
  onTestFinished(async () => { await fleet.stop() })
  const published: Array<{ device: number, key: string }> = []
  const arrived = new Set<string>()
  fleet.on('reading', (r) => { published.push({ device: r.device, key: keyOf(r) }); waiter.kick() })
  fleet.on('delivered', (d) => { arrived.add(keyOf(d)); waiter.kick() })
  await fleet.start()
  await waiter.until(() => new Set(published.map((p) => p.device)).size === 10 && published.length >= 50, 'readings from every device', 30_000)
  const wanted = published.slice()
  await waiter.until(() => wanted.every((p) => arrived.has(p.key)), 'each of those readings at the gateway', 30_000)
  // Both workers' devices published (the even ones in one, the odd ones in the other), and each reading reached the gateway in this thread.
  expect(new Set(wanted.map((p) => p.device))).toEqual(new Set(Array.from({ length: 10 }, (_, i) => i)))
  await fleet.refresh()
  return { fleet, published, wanted }
}

describeNet('fleet split over worker threads', () => {
  it('delivers every reading of every device to the gateway, and its stats and flow add up over the threads', async () => {
    const { fleet, published, wanted } = await deliveredByAll({ transport: 'memory', mdns: false, interval: 200, seed: 15, shareVerification: true })
    const stats = fleet.stats()
    const flow = fleet.flow()
    expect(stats).toMatchObject({ devices: 10, devicesUp: 10, workers: 2, verification: 'shared', rejects: 0 })
    expect(stats.published).toBe(published.length) // every reading the workers made, told to this thread
    expect(stats.atGateway).toBeGreaterThanOrEqual(wanted.length)
    // Links: one end in each thread for a link across threads; the merged flow counts every end once.
    expect(stats.links).toBe(flow.links.open / 2)
    expect(stats.links).toBeGreaterThanOrEqual(10) // the gateway and 10 devices, connected
    expect(flow.gatewayNode?.delivered).toBeGreaterThanOrEqual(wanted.length)
    expect(flow.relays.rejected).toEqual({})
    // Each thread has its own cache: the gateway's checks of the workers' signatures are real ones.
    expect(stats.sharedChecks?.checked).toBeGreaterThan(0)
    expect(stats.sharedChecks?.shared).toBeGreaterThan(0)
  }, 60_000)

  it('over TCP with DNS-SD: each worker\'s devices find the others\' and the gateway by mDNS, and every reading reaches the gateway', async () => {
    const { fleet, published } = await deliveredByAll({ transport: 'tcp', interval: 250, seed: 16 })
    const stats = fleet.stats()
    const flow = fleet.flow()
    expect(stats).toMatchObject({ devices: 10, devicesUp: 10, workers: 2, verification: 'per-device', rejects: 0 })
    expect(stats.published).toBe(published.length)
    // Each link is one TCP connection with an end in each of two nodes, in any threads; no MessagePort carries a link.
    expect(stats.links).toBe(flow.links.open / 2)
    expect(stats.links).toBeGreaterThanOrEqual(10)
    expect(flow.relays.rejected).toEqual({})
  }, 60_000)

  it('refuses device faults across threads, and configurations it cannot split, with ERR_BAD_ARGUMENT', async () => {
    assertBuilt(['firmware-sim', 'mesh', 'shared', 'gateway'])
    const fleet = await createFleet({ devices: 4, mode: 'mesh', transport: 'memory', mdns: false, gateway: {}, workers: 2 })
    onTestFinished(async () => { await fleet.stop() })
    const code = (fn: () => unknown): string | undefined => { try { fn() } catch (err) { return isMeshError(err) ? err.code : String(err) } return undefined }
    await expect(fleet.crash(0)).rejects.toSatisfy((err: unknown) => isMeshError(err, 'ERR_BAD_ARGUMENT'))
    await expect(fleet.restart(0)).rejects.toSatisfy((err: unknown) => isMeshError(err, 'ERR_BAD_ARGUMENT'))
    expect(code(() => { fleet.partition([[0, 1], [2, 3]]) })).toBe('ERR_BAD_ARGUMENT')
    expect(code(() => { fleet.linkFaults({ loss: 0.1 }) })).toBe('ERR_BAD_ARGUMENT')
    expect(code(() => { fleet.skew(0, 1000) })).toBe('ERR_BAD_ARGUMENT')
    expect(code(() => new Fleet({ transport: 'tcp', mdns: false, workers: 2 }))).toBe('ERR_BAD_ARGUMENT')
    expect(code(() => new Fleet({ transport: 'tcp', nodeTransport: true, workers: 2 }))).toBe('ERR_BAD_ARGUMENT')
    expect(code(() => new Fleet({ transport: 'memory', mdns: true, workers: 2 }))).toBe('ERR_BAD_ARGUMENT')
    expect(code(() => new Fleet({ transport: 'memory', topology: 'line', workers: 2 }))).toBe('ERR_BAD_ARGUMENT')
    expect(code(() => new Fleet({ transport: 'memory', roster: [], workers: 2 }))).toBe('ERR_BAD_ARGUMENT')
  }, 60_000)
})
