import { expect, it } from 'vitest'
import { deviceBaseName } from '../../shared/index.js'
import type { DeviceInfo, Reading } from '../../gateway/index.js'
import { describeNet } from '../helpers/netns.js'
import { connectDevice, mqttUrl, nextEvent, seededKeys, startGateway } from './support.js'

const alice = seededKeys(61)

describeNet('HTTP API and /metrics', () => {
  it('lists devices, their readings since a time, counters and Prometheus metrics', async () => {
    const gateway = await startGateway({ http: { host: '127.0.0.1', port: 0 } })
    const base = `http://127.0.0.1:${gateway.ports.http ?? 0}`
    const device = await connectDevice(mqttUrl(gateway), alice, { name: 'shed' })
    for (let seq = 1; seq <= 3; seq++) {
      const accepted = nextEvent<Reading>(gateway, 'reading', (r) => r.seq === seq)
      await device.publishFrame(seq)
      await accepted
    }
    await device.publishFrame(9, Buffer.from('garbage'))

    const list = await (await fetch(`${base}/api/devices`)).json() as { devices: DeviceInfo[] }
    expect(list.devices).toHaveLength(1)
    expect(list.devices[0]).toMatchObject({ id: alice.id, name: 'shed', online: true, readings: 3, lastSeq: 3, seqGaps: 0, path: 'broker', drops: { malformed: 1 } })
    expect(await (await fetch(`${base}/api/devices/${alice.id}`)).json()).toMatchObject({ id: alice.id })

    const since = 1_767_225_600 + 1 // the sampling time of seq 1
    const readings = await (await fetch(`${base}/api/devices/${alice.id}/readings?since=${since}`)).json() as { readings: Array<{ seq: number, senml: Array<Record<string, unknown>> }> }
    expect(readings.readings.map((r) => r.seq)).toEqual([2, 3])
    expect(readings.readings[0]?.senml[0]).toMatchObject({ bn: deviceBaseName(alice.id), n: 'temp', seq: 2 })
    expect((await fetch(`${base}/api/devices/${alice.id}/readings?limit=1`).then(async (r) => await r.json()) as { readings: unknown[] }).readings).toHaveLength(1)

    // Every refusal is a status, a sentence and a stable code.
    const refusal = async (url: string, init?: RequestInit): Promise<[number, unknown, string | null]> => {
      const res = await fetch(url, init)
      return [res.status, ((await res.json()) as { code?: string }).code, res.headers.get('allow')]
    }
    expect(await refusal(`${base}/api/devices/${alice.id}/readings?since=soon`)).toEqual([400, 'ERR_BAD_INPUT', null])
    expect(await refusal(`${base}/api/devices/${alice.id}/readings?limit=0`)).toEqual([400, 'ERR_BAD_INPUT', null])
    expect(await refusal(`${base}/api/devices/nope`)).toEqual([400, 'ERR_BAD_DEVICE_ID', null])
    expect(await refusal(`${base}/api/devices/${seededKeys(62).id}`)).toEqual([404, 'ERR_NOT_FOUND', null])
    expect(await refusal(`${base}/api/devices/${seededKeys(62).id}/readings`)).toEqual([404, 'ERR_NOT_FOUND', null])
    expect(await refusal(`${base}/api/nothing-here`)).toEqual([404, 'ERR_NOT_FOUND', null])
    expect(await refusal(`${base}/api/devices`, { method: 'POST' })).toEqual([405, 'ERR_HTTP_METHOD', 'GET, HEAD'])
    expect(await (await fetch(`${base}/api/counters`)).json()).toMatchObject({ accepted: 3, dropped: { malformed: 1 } })

    const metrics = await (await fetch(`${base}/metrics`)).text()
    expect(metrics).toContain('iotmesh_gateway_readings_total{path="broker",fleet="default"} 3')
    expect(metrics).toContain('iotmesh_gateway_dropped_total{reason="malformed",fleet="default"} 1')
    expect(metrics).toContain('iotmesh_gateway_dropped_total{reason="unknown_signer",fleet="default"} 0')
    expect(metrics).toContain('iotmesh_gateway_devices{state="online",fleet="default"} 1')
    expect(metrics).toContain('iotmesh_gateway_mqtt_clients{fleet="default"} 1')
  })

  it('takes extra handlers (the dashboard, later) before the built-in routes', async () => {
    const gateway = await startGateway({ http: { host: '127.0.0.1', port: 0 } })
    gateway.http?.use((_req, res, url) => {
      if (url.pathname !== '/') return false
      res.writeHead(200, { 'content-type': 'text/plain' }).end('dashboard')
      return true
    })
    expect(await (await fetch(`http://127.0.0.1:${gateway.ports.http ?? 0}/`)).text()).toBe('dashboard')
  })
})
