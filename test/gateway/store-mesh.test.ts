import { join } from 'node:path'
import { expect, it } from 'vitest'
import { topicFilters } from '../../shared/index.js'
import { createMemoryNetwork } from '../../mesh/testing.js'
import type { Reading } from '../../gateway/index.js'
import { describeNet } from '../helpers/netns.js'
import { tempDir } from '../shared/support.js'
import { MESH_LINK, MESH_ROUTING, barrier, connectClient, linked, meshAddress, mqttUrl, nextEvent, seededKeys, startMeshGateway, startMeshNode } from './support.js'

/**
 * Issue 11: "mesh catch-up re-delivers up to 256 old readings per device after every gateway
 * restart". With its state in a store, the restarted gateway's replay window says it has them:
 * the catch-up still runs (the gateway's mesh node asks), but nothing old reaches MQTT again.
 */
describeNet('mesh catch-up after a gateway restart (state in SQLite)', () => {
  it('re-offered old readings are duplicates: none is published downstream again; new ones are', async () => {
    const path = join(await tempDir(), 'gateway.db')
    const net = createMemoryNetwork({ seed: 41 })
    const a = await startMeshNode(net, 'a', seededKeys(141))
    const mesh = { host: 'gw', mdns: false, dialTarget: 0, announceLinks: 0, link: MESH_LINK, routing: MESH_ROUTING, peers: [meshAddress(a)] }

    const first = await startMeshGateway(net, { store: path, mesh })
    await linked(first.mesh!, a.id)
    await barrier([first.mesh, a], [a, first.mesh])
    for (let i = 0; i < 20; i++) a.publish('telemetry', [{ n: 'temp', u: 'Cel', v: i }])
    while (first.counters.acceptedByPath.mesh < 20) await nextEvent<Reading>(first, 'reading')
    await first.stop()

    const second = await startMeshGateway(net, { store: path, mesh })
    const readings: Reading[] = []
    second.on('reading', (r) => readings.push(r))
    const mqtt = await connectClient(mqttUrl(second))
    await mqtt.client.subscribeAsync(topicFilters.json(), { qos: 1 })
    await linked(second.mesh!, a.id)
    await barrier([second.mesh, a], [a, second.mesh])
    // Catch-up: the gateway's mesh node asks a for what it has not seen; the gateway finds them all duplicates.
    while (second.counters.dropped.duplicate < 20) await nextEvent(second, 'drop', () => true, 10_000)
    const { seq } = a.publish('telemetry', [{ n: 'temp', u: 'Cel', v: 99 }])
    await nextEvent<Reading>(second, 'reading', (r) => r.seq === seq)
    expect(readings.map((r) => r.seq)).toEqual([seq])
    expect(second.counters.dropped.duplicate).toBe(20)
    await mqtt.next((topic) => topic.endsWith('/json'))
    expect(mqtt.messages).toHaveLength(1)
  })
})
