import { createServer, type Socket } from 'node:net'
import { once } from 'node:events'
import { expect, it, onTestFinished } from 'vitest'
import { describeNet } from '../helpers/netns.js'
import { manualClock } from '../../shared/index.js'
import { Fleet, FaultyMqttStream, MQTT_RTO_MS } from '../../firmware-sim/index.js'

/**
 * The fleet's fault model on MQTT connections (firmware-sim/fleet/mqtt-faults.ts): a partition
 * cuts broker-mode devices on the far side off the broker (severs and refuses), delay and loss
 * (as retransmission timeouts) hold a TCP byte stream in order. Real sockets, real broker.
 */

async function sink (): Promise<{ port: number, received: () => string, connections: () => number }> {
  let data = ''
  let connections = 0
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    connections++
    sockets.add(socket)
    socket.on('data', (chunk: Buffer) => { data += chunk.toString() })
    socket.on('error', () => {})
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  onTestFinished(async () => {
    for (const s of sockets) s.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  return { port: (server.address() as { port: number }).port, received: () => data, connections: () => connections }
}

const settle = async (ms = 100): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

describeNet('MQTT under the fleet\'s fault model', () => {
  it('delay holds each chunk in order on the injected clock; loss adds doubling retransmission timeouts', async () => {
    const server = await sink()
    const clock = manualClock()
    let settings: { delay?: number, loss?: number } = { delay: 300 }
    const stream = new FaultyMqttStream('d0' as never, { blocked: () => false, next: () => 0.5, settings: () => settings, clock })
    onTestFinished(() => { stream.destroy() })
    stream.on('error', () => {})
    stream.open('127.0.0.1', server.port)
    await once(stream, 'connect')
    stream.write('a')
    stream.write('b')
    await settle()
    expect(server.received()).toBe('')
    clock.advance(299)
    await settle()
    expect(server.received()).toBe('')
    clock.advance(1)
    await settle()
    expect(server.received()).toBe('ab')
    // Every segment lost (loss 1): the cap of 6 retransmissions, 200 × (2^6 − 1) ms.
    settings = { loss: 1 }
    stream.write('c')
    clock.advance(MQTT_RTO_MS * 63 - 1)
    await settle()
    expect(server.received()).toBe('ab')
    clock.advance(1)
    await settle()
    expect(server.received()).toBe('abc')
  })

  it('a connection across a partition is refused before it reaches the broker', async () => {
    const server = await sink()
    const stream = new FaultyMqttStream('d0' as never, { blocked: () => true, next: () => 0, settings: () => ({}), clock: manualClock() })
    stream.open('127.0.0.1', server.port)
    const [err] = await once(stream, 'error') as [Error & { code?: string, errno?: string }]
    expect(err.code).toBe('ERR_LINK_CLOSED')
    expect(err.errno).toBe('EHOSTUNREACH')
    await settle()
    expect(server.connections()).toBe(0)
  })

  it('a partition cuts broker-mode devices on the far side off the broker; heal brings them back with their backlog', async () => {
    const fleet = new Fleet({ devices: 4, mode: 'broker', transport: 'memory', interval: 100, fleet: `mqtt-cut-${process.pid}` })
    onTestFinished(async () => { await fleet.stop() })
    await fleet.start()
    const ids = fleet.devices.map((d) => d.keys.id)
    const delivered: Array<{ origin: string, at: number }> = []
    const published: Array<{ origin: string, seq: number }> = []
    fleet.on('delivered', (d) => { delivered.push({ origin: d.origin, at: Date.now() }) })
    fleet.on('reading', (r) => { published.push({ origin: r.origin, seq: r.seq }) })
    const heardSince = (since: number): Set<string> => new Set(delivered.filter((d) => d.at >= since).map((d) => d.origin))
    const until = async (what: () => boolean, ms: number): Promise<void> => {
      for (const end = Date.now() + ms; !what() && Date.now() < end;) await settle(50)
    }
    await until(() => heardSince(0).size === 4, 10_000)
    expect(heardSince(0).size).toBe(4)
    expect(fleet.mqttFaults.open).toBe(4)

    fleet.partition([[0, 1], [2, 3]])
    expect(fleet.mqttFaults.open).toBe(2) // severed at once
    await settle(300) // what was in flight at the cut has arrived
    const cutAt = Date.now()
    await settle(2000) // the far side keeps trying (backoff 200..2000 ms) and is refused each time
    expect([...heardSince(cutAt)].sort()).toEqual([ids[0], ids[1]].sort())
    expect(fleet.mqttFaults.open).toBe(2)
    const farDuringCut = published.filter((p) => p.origin === ids[2] || p.origin === ids[3])
    expect(farDuringCut.length).toBeGreaterThan(20) // they kept sampling into their outboxes

    fleet.heal()
    const healedAt = Date.now()
    await until(() => heardSince(healedAt).size === 4, 10_000)
    expect(heardSince(healedAt).size).toBe(4)
    await until(() => farDuringCut.every((p) => fleet.delivered(p.origin as never, p.seq)), 10_000)
    expect(farDuringCut.filter((p) => !fleet.delivered(p.origin as never, p.seq))).toEqual([])
  })
})
