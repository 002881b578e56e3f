import type { IncomingMessage, ServerResponse } from 'node:http'
import { EventEmitter } from 'node:events'
import { describe, expect, it, onTestFinished } from 'vitest'
import { createMemoryNetwork } from '../../mesh/testing.js'
import { DeviceRegistry, LiveFeed, sseMessage, type DeviceInfo, type LiveReading, type Reading, type TopologySnapshot } from '../../gateway/index.js'
import { describeNet } from '../helpers/netns.js'
import { manualClock } from './clock.js'
import {
  barrier, connectDevice, linked, meshAddress, mqttUrl, nextEvent, seededKeys, startGateway, startMeshGateway, startMeshNode
} from './support.js'

/** The HTTP side beyond the basic API: the live event stream, the topology, metrics of the bridge, the dashboard's files. */

interface SseEvent { event: string, data: unknown }

/** Reads a text/event-stream response (WHATWG HTML §9.2.6) event by event. */
async function openStream (url: string): Promise<{ next: (event: string, filter?: (data: never) => boolean) => Promise<unknown>, queued: (event: string) => unknown[], status: number }> {
  const controller = new AbortController()
  onTestFinished(() => { controller.abort() })
  const response = await fetch(url, { signal: controller.signal })
  const reader = response.body!.getReader()
  const decoder = new TextDecoder()
  const queue: SseEvent[] = []
  let buffer = ''
  const read = async (): Promise<void> => {
    const { value, done } = await reader.read()
    if (done) throw new Error('the event stream ended')
    buffer += decoder.decode(value, { stream: true })
    let end: number
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      const event = /^event: (.*)$/m.exec(block)?.[1]
      const data = /^data: (.*)$/m.exec(block)?.[1]
      if (event !== undefined && data !== undefined) queue.push({ event, data: JSON.parse(data) })
    }
  }
  return {
    status: response.status,
    queued: (event) => queue.filter((e) => e.event === event).map((e) => e.data),
    async next (event, filter = () => true) {
      const deadline = AbortSignal.timeout(5000)
      for (;;) {
        const index = queue.findIndex((e) => e.event === event && filter(e.data as never))
        if (index >= 0) return queue.splice(index, 1)[0]?.data
        if (deadline.aborted) throw new Error(`no "${event}" event within 5000 ms`)
        await Promise.race([read(), new Promise((_resolve, reject) => deadline.addEventListener('abort', () => reject(new Error(`no "${event}" event within 5000 ms`)), { once: true }))])
      }
    }
  }
}

describeNet('live event stream, topology, metrics and dashboard over HTTP', () => {
  it('streams hello, readings, device changes and log entries; a device that dies goes offline', async () => {
    const gateway = await startGateway({ http: { host: '127.0.0.1', port: 0 }, live: { flushMs: 10 } })
    const base = `http://127.0.0.1:${gateway.ports.http ?? 0}`
    const alice = seededKeys(81)
    const device = await connectDevice(mqttUrl(gateway), alice, { name: 'porch' })
    await device.publishFrame(1)
    const stream = await openStream(`${base}/api/events`)
    expect(stream.status).toBe(200)
    const hello = await stream.next('hello') as { devices: DeviceInfo[], latest: Record<string, LiveReading['values']>, summary: { fleet: string }, topology: TopologySnapshot }
    expect(hello.summary.fleet).toBe('default')
    expect(hello.devices).toEqual([expect.objectContaining({ id: alice.id, name: 'porch', online: true, readings: 1 })])
    expect(hello.latest[alice.id]).toEqual([expect.objectContaining({ n: 'temp', u: 'Cel', v: 20.1 })])
    expect(hello.topology.nodes.map((n) => n.id).sort()).toEqual([alice.id, 'gateway'].sort())

    await device.publishFrame(2)
    const batch = await stream.next('readings') as { readings: LiveReading[] }
    expect(batch.readings).toEqual([expect.objectContaining({ id: alice.id, seq: 2, path: 'broker', topic: 'telemetry', values: [expect.objectContaining({ n: 'temp', v: 20.2 })] })])
    await stream.next('devices', (d: { devices: DeviceInfo[] }) => d.devices.some((x) => x.id === alice.id && x.readings === 2))

    await device.publishFrame(2) // a second copy: de-duplication, not news for the log
    await device.publishFrame(3, Buffer.from('not a frame'))
    const log = await stream.next('log', (l: { entries: Array<{ what: string }> }) => l.entries.some((e) => e.what === 'malformed')) as { entries: Array<{ id: string, kind: string, what: string }> }
    expect(log.entries.find((e) => e.kind === 'drop')?.id).toBe(alice.id)
    expect(log.entries.filter((e) => e.what === 'duplicate')).toEqual([])
    expect(stream.queued('log').flatMap((l) => (l as { entries: Array<{ what: string }> }).entries).filter((e) => e.what === 'duplicate')).toEqual([])

    device.client.stream.destroy() // no DISCONNECT: the broker publishes the last will
    await stream.next('devices', (d: { devices: DeviceInfo[] }) => d.devices.some((x) => x.id === alice.id && !x.online))
    await stream.next('log', (l: { entries: Array<{ what: string }> }) => l.entries.some((e) => e.what === 'offline'))
  })

  it('/api/topology: the gateway, its links, the announced links of the mesh and the devices on the broker', async () => {
    const net = createMemoryNetwork({ seed: 31 })
    const gateway = await startMeshGateway(net, { http: { host: '127.0.0.1', port: 0 } })
    const a = await startMeshNode(net, 'a', seededKeys(82), [meshAddress(gateway.mesh)])
    const b = await startMeshNode(net, 'b', seededKeys(83), [meshAddress(a)])
    await linked(a, gateway.mesh?.id ?? '', b.id)
    await linked(gateway.mesh!, a.id)
    await barrier([a, gateway.mesh], [b, a])
    const announced = nextEvent<Reading>(gateway, 'reading', (r) => r.origin === b.id && r.deviceTopic === 'mesh/links')
    b.announceLinks()
    await announced
    const broker = seededKeys(84)
    await connectDevice(mqttUrl(gateway), broker)
    const topology = await (await fetch(`http://127.0.0.1:${gateway.ports.http ?? 0}/api/topology`)).json() as TopologySnapshot
    const gw = gateway.mesh?.id ?? ''
    expect(topology.gateway).toBe(gw)
    const kinds = Object.fromEntries(topology.nodes.map((n) => [n.id, n.kind]))
    expect(kinds).toEqual({ [gw]: 'gateway', [a.id]: 'mesh', [b.id]: 'mesh', [broker.id]: 'broker' })
    const edges = topology.edges.map((e) => `${[e.source, e.target].sort().join('-')} ${e.kind}`).sort()
    expect(edges).toEqual([`${[gw, a.id].sort().join('-')} mesh`, `${[a.id, b.id].sort().join('-')} mesh`, `${[gw, broker.id].sort().join('-')} mqtt`].sort())
    // An announcement is a reading too: on MQTT like any other, not drawn as a chart.
    expect(gateway.devices.get(b.id)?.readings).toBe(1)
  })

  it('/metrics: readings in and out per path, latency histograms, mesh peers, MQTT clients, rejects by reason', async () => {
    const net = createMemoryNetwork({ seed: 32 })
    const gateway = await startMeshGateway(net, { http: { host: '127.0.0.1', port: 0 } })
    const a = await startMeshNode(net, 'a', seededKeys(85), [meshAddress(gateway.mesh)])
    await linked(a, gateway.mesh?.id ?? '')
    await linked(gateway.mesh!, a.id)
    await barrier([a, gateway.mesh])
    const fromMesh = nextEvent<Reading>(gateway, 'reading', (r) => r.origin === a.id)
    a.publish('telemetry', [{ n: 'temp', v: 1 }])
    await fromMesh
    const dev = seededKeys(86)
    const device = await connectDevice(mqttUrl(gateway), dev)
    const fromBroker = nextEvent<Reading>(gateway, 'reading', (r) => r.origin === dev.id)
    await device.publishFrame(1)
    await fromBroker
    await device.publishFrame(1) // again: a duplicate

    const text = await (await fetch(`http://127.0.0.1:${gateway.ports.http ?? 0}/metrics`)).text()
    /** The value of the sample `name` whose labels include `labels` (label order is the exporter's business). */
    const value = (name: string, labels: Record<string, string> = {}): number => {
      for (const line of text.split('\n')) {
        const match = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line)
        if (match?.[1] !== name) continue
        const set = new Set((match[2] ?? '').split(',').filter(Boolean))
        if (Object.entries({ fleet: 'default', ...labels }).every(([k, v]) => set.has(`${k}="${v}"`))) return Number(match[3])
      }
      return NaN
    }
    expect(value('iotmesh_gateway_readings_total', { path: 'mesh' })).toBe(1)
    expect(value('iotmesh_gateway_readings_total', { path: 'broker' })).toBe(1)
    expect(value('iotmesh_gateway_readings_out_total', { path: 'broker' })).toBe(1)
    expect(value('iotmesh_gateway_readings_out_total', { path: 'mesh' })).toBe(1)
    expect(value('iotmesh_gateway_reading_latency_seconds_count', { path: 'mesh' })).toBe(1)
    expect(value('iotmesh_gateway_reading_latency_seconds_count', { path: 'broker' })).toBe(1)
    expect(value('iotmesh_gateway_reading_latency_seconds_bucket', { le: '60', path: 'mesh' })).toBe(1)
    // A second copy is de-duplication, not a drop (issue 16): counted apart, with the path of the kept copy.
    expect(value('iotmesh_gateway_deduplicated_total', { path: 'broker', first: 'broker' })).toBe(1)
    expect(value('iotmesh_gateway_dropped_total', { reason: 'duplicate' })).toBeNaN()
    expect(value('iotmesh_gateway_mesh_peers')).toBe(1)
    expect(value('iotmesh_gateway_mqtt_clients')).toBe(1)
    expect(value('iotmesh_gateway_json_published_total')).toBe(2)
    expect(text).toMatch(/^# TYPE iotmesh_gateway_mesh_rejected_total counter$/m)
  })

  it('serves the dashboard: the page, its assets with a strict CSP, nothing outside its folder', async () => {
    const gateway = await startGateway({ http: { host: '127.0.0.1', port: 0 } })
    const base = `http://127.0.0.1:${gateway.ports.http ?? 0}`
    const page = await fetch(`${base}/`)
    expect(page.status).toBe(200)
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8')
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'")
    const html = await page.text()
    expect(html).toContain('<script type="module" src="/assets/app.js"></script>')
    expect(html).not.toMatch(/https?:\/\//) // nothing from a CDN
    for (const asset of ['app.js', 'table.js', 'chart.js', 'graph.js', 'format.js', 'style.css', 'favicon.svg']) {
      const response = await fetch(`${base}/assets/${asset}`)
      expect(response.status, asset).toBe(200)
      expect(await response.text(), asset).not.toMatch(/(src|href)="?https?:|import .* from 'https?:/)
    }
    expect((await fetch(`${base}/assets/app.js`)).headers.get('content-type')).toBe('text/javascript; charset=utf-8')
    const missing = await fetch(`${base}/assets/missing.js`)
    expect(missing.status).toBe(404)
    expect(await missing.json()).toEqual({ error: 'no dashboard file missing.js', code: 'ERR_NOT_FOUND' })
    expect((await fetch(`${base}/assets/..%2Fgateway.ts`)).status).toBe(404)
    expect((await fetch(`${base}/assets/%2e%2e/dashboard.ts`)).status).toBe(404)

    const plain = await startGateway({ http: { host: '127.0.0.1', port: 0 }, dashboard: false })
    expect((await fetch(`http://127.0.0.1:${plain.ports.http ?? 0}/`)).status).toBe(404)
  })
})

describe('LiveFeed', () => {
  class FakeResponse extends EventEmitter {
    writableLength = 0
    chunks: string[] = []
    destroyed = false
    status = 0
    writeHead (status: number): this { this.status = status; return this }
    write (chunk: string): boolean { this.chunks.push(chunk); return true }
    end (chunk?: string): this { if (chunk !== undefined) this.chunks.push(chunk); return this }
    destroy (): this { this.destroyed = true; return this }
  }

  function feed (init: ConstructorParameters<typeof LiveFeed>[0] = {}) {
    const clock = manualClock()
    const devices = new DeviceRegistry({}, { now: () => 1000 })
    const live = new LiveFeed({ flushMs: 10, sweepMs: 1000, ...init }, { devices, topology: () => ({ gateway: 'gateway', nodes: [], edges: [] }), summary: () => ({}), clock, now: () => 1000 })
    live.start()
    const attach = (): FakeResponse => {
      const res = new FakeResponse()
      live.attach(new EventEmitter() as IncomingMessage, res as unknown as ServerResponse)
      return res
    }
    return { live, clock, devices, attach }
  }

  const reading = (seq: number): Reading => ({ origin: seededKeys(87).id, fleet: 'default', seq, time: 1, deviceTopic: 'telemetry', records: [{ n: 'v', v: seq }], frame: new Uint8Array(), path: 'broker', receivedAt: 1000 })

  it('batches readings per flush, bounded; counts what it skipped', () => {
    const { live, clock, attach } = feed({ maxReadingsPerBatch: 3 })
    const res = attach()
    for (let seq = 1; seq <= 5; seq++) live.reading(reading(seq))
    clock.advance(10)
    const batches = res.chunks.filter((c) => c.startsWith('event: readings'))
    expect(batches).toHaveLength(1)
    const data = JSON.parse(/^data: (.*)$/m.exec(batches[0] ?? '')?.[1] ?? '{}') as { readings: LiveReading[], skipped: number }
    expect(data.readings.map((r) => r.seq)).toEqual([1, 2, 3])
    expect(data.skipped).toBe(2)
  })

  it('drops a client that does not keep up, makes room beyond maxClients (the idle one first), ends streams on stop', () => {
    const { live, clock, attach } = feed({ maxBufferedBytes: 100, maxClients: 2 })
    const first = attach()
    attach()
    // Beyond maxClients a new client is no longer turned away (64 idle streams locked the dashboard
    // out for good): the oldest idle one (unsent bytes waiting) makes room for it.
    const idle = attach()
    idle.writableLength = 1
    const newest = attach()
    expect(newest.status).toBe(200)
    expect(idle.chunks.at(-1)).toMatch(/^event: evicted\ndata: \{"code":"ERR_SSE_EVICTED"/)
    expect(first.chunks.at(-1)).toMatch(/^event: evicted\n/)
    expect(live.evicted).toBe(2) // the oldest made room for idle, idle (unsent bytes waiting) for newest
    expect(live.clients).toBe(2)
    newest.destroy()
    live.stop()
    expect(live.clients).toBe(0)
    expect(clock.pending).toBe(0)
  })

  it('drops a client that does not keep up, ends streams on stop', () => {
    const { live, clock, attach } = feed({ maxBufferedBytes: 100, maxClients: 2 })
    const slow = attach()
    const fine = attach()
    slow.writableLength = 101
    live.reading(reading(1))
    clock.advance(10)
    expect(slow.destroyed).toBe(true)
    expect(live.dropped).toBe(1)
    expect(fine.chunks.some((c) => c.startsWith('event: readings'))).toBe(true)
    expect(live.clients).toBe(1)
    live.stop()
    expect(live.clients).toBe(0)
    expect(clock.pending).toBe(0)
  })

  it('finds presence that changed with time alone (a quiet mesh device) in its sweep', () => {
    let now = 0
    const clock = manualClock()
    const devices = new DeviceRegistry({ presenceMs: 500 }, { now: () => now })
    const live = new LiveFeed({ flushMs: 10, sweepMs: 1000 }, { devices, topology: () => ({ gateway: 'gateway', nodes: [], edges: [] }), summary: () => ({}), clock, now: () => now })
    live.start()
    onTestFinished(() => { live.stop() })
    const res = new FakeResponse()
    live.attach(new EventEmitter() as IncomingMessage, res as unknown as ServerResponse)
    devices.recordReading({ ...reading(1), path: 'mesh', receivedAt: 0 })
    live.reading({ ...reading(1), path: 'mesh', receivedAt: 0 })
    clock.advance(10)
    now = 1000
    clock.advance(1000) // the sweep
    clock.advance(10) // its flush
    const updates = res.chunks.filter((c) => c.startsWith('event: devices')).map((c) => JSON.parse(/^data: (.*)$/m.exec(c)?.[1] ?? '{}') as { devices: DeviceInfo[] })
    expect(updates.map((u) => u.devices[0]?.online)).toEqual([true, false])
  })

  it('formats one SSE message per event, JSON on one data line', () => {
    expect(sseMessage('x', { a: 'line\nbreak' })).toBe('event: x\ndata: {"a":"line\\nbreak"}\n\n')
  })
})
