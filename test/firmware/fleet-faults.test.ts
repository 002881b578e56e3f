import { describe, expect, it, onTestFinished } from 'vitest'
import { closeRaw, rawMdns, type RawRecord } from '../helpers/mdns.js'
import { describeNet } from '../helpers/netns.js'
import { applyFault, Fleet, parseFaultSpec } from '../../firmware-sim/index.js'

/**
 * The fleet's faults are one fault model (mesh/links/faults.ts, `fleet.faults`) that its memory
 * network and its TCP transports both apply; the model itself is tested in test/mesh/faults.test.ts,
 * partitions and heals of a running fleet in failover.test.ts.
 */
describe('fleet faults', () => {
  it('loss, dup and delay from --faults change the settings of the fleet\'s fault model by parts', async () => {
    const fleet = new Fleet({ seed: 7 })
    const details: string[] = []
    fleet.on('fault', (f) => details.push(f.detail))
    for (const event of parseFaultSpec('loss:0.05@0,dup:0.01@1,delay:5-20@2,loss:0@3')) await applyFault(fleet, event)
    expect(fleet.faults.seed).toBe(7)
    expect(fleet.faults.settings).toEqual({ loss: 0, duplicate: 0.01, delay: [5, 20] })
    expect(details).toEqual([
      { loss: 0.05 }, { loss: 0.05, duplicate: 0.01 }, { loss: 0.05, duplicate: 0.01, delay: [5, 20] }, { loss: 0, duplicate: 0.01, delay: [5, 20] }
    ].map((s) => JSON.stringify(s)))
  })

  it('partitions by groups of devices (one in no group reaches no one), a new partition replacing the last; heal lifts it', async () => {
    const fleet = new Fleet({ devices: 4, mode: 'mesh', gateway: false, transport: 'memory', interval: 60_000, fleet: `fleet-faults-${process.pid}` })
    onTestFinished(async () => { await fleet.stop() })
    await fleet.start()
    const [d0, d1, d2, d3] = fleet.devices.map((d) => d.keys.id) as [string, string, string, string]
    fleet.partition([[0, 1], [2]])
    const { blocked } = fleet.faults
    expect([blocked(d0, d1), blocked(d0, d2), blocked(d3, d0), blocked(d3, d2)]).toEqual([false, true, true, true])
    expect(fleet.stats().partitioned).toBe(true)
    fleet.partition([[0, 1, 2, 3]])
    expect([blocked(d0, d2), blocked(d3, d0)]).toEqual([false, false])
    fleet.heal()
    expect(fleet.stats().partitioned).toBe(false)
  })
})

describeNet('fleet faults on real sockets', () => {
  it('a crash is a power cut: the device sends no DNS-SD goodbye (heard on the group by an independent listener); a stop does', async () => {
    const fleet = new Fleet({ devices: 3, mode: 'mesh', gateway: false, transport: 'tcp', interval: 60_000, fleet: `crash-${process.pid}` })
    onTestFinished(async () => { await fleet.stop() })
    await fleet.start()
    const listener = await rawMdns()
    onTestFinished(async () => { await closeRaw(listener) })
    const goodbyes = new Set<string>()
    listener.on('response', (packet: { answers?: RawRecord[], additionals?: RawRecord[] }) => {
      for (const r of [...packet.answers ?? [], ...packet.additionals ?? []]) {
        for (const d of fleet.devices) if (r.ttl === 0 && JSON.stringify(r).includes(d.name)) goodbyes.add(d.name)
      }
    })
    const [crashed, stopped] = fleet.devices.map((d) => d.name) as [string, string]
    await fleet.crash(0)
    await fleet.devices[1]?.device?.stop()
    await new Promise((resolve) => setTimeout(resolve, 1500))
    expect([...goodbyes]).toEqual([stopped])
    expect(crashed).not.toBe(stopped)
  })

  it('a crash is a power cut on TCP too: peers hear no close, no FIN and no RST, and end the link by keepalive; a stop closes at once', async () => {
    const link = { keepaliveInterval: 400, keepaliveTimeout: 1200 }
    const fleet = new Fleet({ devices: 3, mode: 'mesh', gateway: false, transport: 'tcp', interval: 60_000, link, fleet: `power-${process.pid}` })
    onTestFinished(async () => { await fleet.stop() })
    await fleet.start()
    const ids = fleet.devices.map((d) => d.keys.id)
    const node = (i: number): NonNullable<NonNullable<typeof fleet.devices[0]['device']>['node']> => fleet.devices[i]?.device?.node as never
    const linked = (): boolean => [0, 1, 2].every((i) => [0, 1, 2].every((j) => i === j || node(i).links.has(ids[j] as never)))
    for (const end = Date.now() + 10_000; Date.now() < end && !linked();) await new Promise((resolve) => setTimeout(resolve, 100))
    const closed = (peer: number, from: number): Promise<{ afterMs: number, error: string }> => {
      const l = node(from).links.get(ids[peer] as never)
      if (l === undefined) throw new Error(`device ${from} has no link to ${peer}`)
      const t0 = Date.now()
      return new Promise((resolve) => l.once('close', (info) => { resolve({ afterMs: Date.now() - t0, error: String(info.error?.message ?? info.reason) }) }))
    }
    // The crashed device dialed the link watched, so its own dialed socket is what must go silent
    // (one it accepted is found by its listening port; a dialed one by the dial that opened it).
    const dialer = [0, 1, 2].find((i) => [0, 1, 2].some((j) => node(i).links.get(ids[j] as never)?.initiator === true)) as number
    const peer = [0, 1, 2].find((j) => node(dialer).links.get(ids[j] as never)?.initiator === true) as number
    const other = 3 - dialer - peer
    const crashSeen = closed(dialer, peer)
    await fleet.crash(dialer)
    const crash = await crashSeen
    // Silence for the keepalive's timeout at least (1,200 ms), then its verdict.
    expect(crash.afterMs).toBeGreaterThanOrEqual(1000)
    expect(crash.error).toMatch(/no frame from .* the link is dead/)
    const stopSeen = closed(other, peer)
    await fleet.devices[other]?.device?.stop()
    const stop = await stopSeen
    expect(stop.afterMs).toBeLessThan(1000)
    expect(stop.error).not.toMatch(/link is dead/)
  })

  it('a crashed broker-mode device keeps its MQTT connection open at the broker, silent, until the broker\'s keepalive', async () => {
    const fleet = new Fleet({ devices: 2, mode: 'broker', transport: 'tcp', interval: 60_000, fleet: `power-mqtt-${process.pid}` })
    onTestFinished(async () => { await fleet.stop() })
    await fleet.start()
    const gateway = fleet.gateway
    if (gateway === undefined) throw new Error('no gateway')
    for (const end = Date.now() + 10_000; Date.now() < end && gateway.connectedClients < 2;) await new Promise((resolve) => setTimeout(resolve, 100))
    expect(gateway.connectedClients).toBe(2)
    await fleet.crash(0)
    await new Promise((resolve) => setTimeout(resolve, 1500))
    expect(gateway.connectedClients).toBe(2) // a FIN would have closed it within milliseconds
    await fleet.devices[1]?.device?.stop()
    for (const end = Date.now() + 3000; Date.now() < end && gateway.connectedClients > 1;) await new Promise((resolve) => setTimeout(resolve, 50))
    expect(gateway.connectedClients).toBe(1) // the clean stop: DISCONNECT, closed at once
  })
})
