import { spawn } from 'node:child_process'
import { expect, it, onTestFinished } from 'vitest'
import { createMemoryNetwork } from '../../mesh/testing.js'
import type { DropEvent, Reading } from '../../gateway/index.js'
import { describeNet } from '../helpers/netns.js'
import {
  barrier, connectDevice, findBinary, linked, meshAddress, mqttUrl, nextEvent, seededKeys, startMeshGateway, startMeshNode
} from './support.js'

/**
 * /metrics as Prometheus reads it: the process and Node.js defaults beside the gateway's own
 * series, hybrid de-duplication counted apart from refusals, and the whole exposition checked by
 * Prometheus's own linter (`promtool check metrics`, Debian package `prometheus`; .ci/run installs
 * only its promtool binary).
 */

const PROMTOOL = findBinary('/usr/bin/promtool', '/usr/local/bin/promtool')
const inCi = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false'

/** Runs `promtool check metrics` on `text` (stdin): its exit code and everything it printed. */
async function promtoolCheck (promtool: string, text: string): Promise<{ code: number | null, output: string }> {
  const child = spawn(promtool, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] })
  onTestFinished(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  child.stdin.end(text)
  return { code: await exited, output }
}

/** The value of the sample `name` whose labels include `labels` (NaN when there is none). */
function sample (text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (match?.[1] !== name) continue
    const set = new Set((match[2] ?? '').split(',').filter(Boolean))
    if (Object.entries({ fleet: 'default', ...labels }).every(([k, v]) => set.has(`${k}="${v}"`))) return Number(match[3])
  }
  return NaN
}

it('promtool is installed where CI runs (.ci/run extracts it from the prometheus package)', () => {
  if (inCi) expect(PROMTOOL, 'promtool (Debian package prometheus) is missing').toBeDefined()
})

describeNet('/metrics for Prometheus', () => {
  it('hybrid de-duplication apart from drops, process and Node.js defaults, promtool check metrics clean', async () => {
    const net = createMemoryNetwork({ seed: 61 })
    // No injection of broker readings into the mesh: the mesh copy below must come from the device alone.
    const gateway = await startMeshGateway(net, { http: { host: '127.0.0.1', port: 0 }, injectBrokerReadings: false })
    const keys = seededKeys(91)
    const a = await startMeshNode(net, 'a', keys, [meshAddress(gateway.mesh)])
    await linked(a, gateway.mesh?.id ?? '')
    await linked(gateway.mesh!, a.id)
    await barrier([a, gateway.mesh])

    // A hybrid device: its reading comes through the mesh first, then the same frame through the broker.
    const fromMesh = nextEvent<Reading>(gateway, 'reading', (r) => r.origin === a.id)
    a.publish('telemetry', [{ n: 'temp', u: 'Cel', v: 21.5 }])
    const reading = await fromMesh
    expect(reading.path).toBe('mesh')
    const hybrid = await connectDevice(mqttUrl(gateway), keys)
    const second = nextEvent<DropEvent>(gateway, 'drop', (d) => d.deviceId === a.id)
    await hybrid.publishFrame(reading.seq, Buffer.from(reading.frame), `iotmesh/default/${a.id}/${reading.deviceTopic}`)
    expect(await second).toMatchObject({ reason: 'duplicate', path: 'broker', seq: reading.seq })

    // A broker device that resends (QoS 1 style) and one refusal.
    const dev = seededKeys(92)
    const device = await connectDevice(mqttUrl(gateway), dev)
    const accepted = nextEvent<Reading>(gateway, 'reading', (r) => r.origin === dev.id)
    await device.publishFrame(1)
    await accepted
    const resent = nextEvent<DropEvent>(gateway, 'drop', (d) => d.reason === 'duplicate' && d.deviceId === dev.id)
    await device.publishFrame(1)
    await resent
    const refused = nextEvent<DropEvent>(gateway, 'drop', (d) => d.reason === 'malformed')
    await device.publishFrame(2, Buffer.from('not a frame'))
    await refused

    const response = await fetch(`http://127.0.0.1:${gateway.ports.http ?? 0}/metrics`)
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
    const text = await response.text()
    expect(sample(text, 'iotmesh_gateway_deduplicated_total', { path: 'broker', first: 'mesh' })).toBe(1)
    expect(sample(text, 'iotmesh_gateway_deduplicated_total', { path: 'broker', first: 'broker' })).toBe(1)
    expect(sample(text, 'iotmesh_gateway_deduplicated_total', { path: 'mesh', first: 'broker' })).toBe(0)
    expect(sample(text, 'iotmesh_gateway_dropped_total', { reason: 'malformed' })).toBe(1)
    expect(text).not.toContain('reason="duplicate"')
    // The dashboard's counters are unchanged: a duplicate is still counted there, by its reason.
    expect(gateway.counters.dropped.duplicate).toBe(2)
    // prom-client's defaults, under their standard names.
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_p99_seconds']) {
      expect(sample(text, name), name).toBeGreaterThan(0)
    }
    expect(text).toMatch(/^nodejs_version_info\{version="v\d+\.\d+\.\d+",major="\d+",minor="\d+",patch="\d+",fleet="default"\} 1$/m)
    expect(text).toMatch(/^# TYPE nodejs_gc_duration_seconds histogram$/m)

    if (PROMTOOL === undefined) {
      console.warn('SKIPPED promtool check metrics: promtool not found (Debian package prometheus; .ci/run installs it)')
      return
    }
    const lint = await promtoolCheck(PROMTOOL, text)
    expect(lint.output).toBe('')
    expect(lint.code).toBe(0)
    // And promtool does find fault where there is one (the check is not a no-op): what prom-client's
    // nodejs_active_handles_total looks like, which the gateway therefore leaves out.
    const bad = await promtoolCheck(PROMTOOL, '# HELP nodejs_active_handles_total Handles\n# TYPE nodejs_active_handles_total gauge\nnodejs_active_handles_total 3\n')
    expect(bad.output).toContain('non-counter metrics should not have "_total" suffix')
    expect(bad.code).not.toBe(0)
    expect(text).not.toMatch(/^nodejs_active_handles_total/m)
    expect(sample(text, 'nodejs_active_handles', { type: 'Socket' })).toBeGreaterThan(0)
  })
})
