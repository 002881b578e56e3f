/**
 * The broker path in child processes, for `iotmesh experiment latency` (lab/runners/latency.ts)
 * and `npm run bench` (test/bench/paths.ts): IOTMESH_BENCH_ROLE selects
 *   gateway     the iotmesh gateway (embedded Aedes, verifying every frame before forwarding it)
 *   device      an MQTT client that signs frames and publishes them (QoS 0)
 *   subscriber  an MQTT client that verifies every frame end to end with the device's key
 * Same IPC protocol as mesh-child.ts: {ev:'ready'}, {cmd,id} → {id, ok, res}, {ev:'rx', seq, tag, lat}.
 */
import mqtt from 'mqtt'
import { createGateway } from '../../gateway/index.js'
import {
  decodeFrame, encodeFrame, generateKeyPair, onlineStatus, openFrame, parseStatus, statusTopic, telemetryTopic, type DeviceId, type PublicKey
} from '../../shared/index.js'

const now = (): bigint => process.hrtime.bigint()
const send = (m: unknown): void => { process.send?.(m) }
process.on('disconnect', () => process.exit(0))

/** The device key a retained online status announces (checked against the id in the topic). */
function parseStatusKey (topic: string, payload: Uint8Array): { id: DeviceId, publicKey: PublicKey } | undefined {
  const id = topic.split('/')[2] ?? ''
  const result = parseStatus(payload, id)
  return result.ok && result.status?.state === 'online' ? { id, publicKey: result.status.publicKey } : undefined
}

function payload (seq: number, tag: number): Uint8Array {
  const b = Buffer.alloc(110)
  b.writeBigUInt64BE(now(), 0)
  b.writeUInt32BE(seq >>> 0, 8)
  b[12] = tag & 0xff
  return new Uint8Array(b)
}

const role = process.env.IOTMESH_BENCH_ROLE
const url = process.env.IOTMESH_BENCH_BROKER ?? ''
const handlers: Record<string, (m: Record<string, unknown>) => Promise<unknown>> = {}
let onAck: ((n: number) => void) | undefined

if (role === 'gateway') {
  // The bench's device and subscriber are plain anonymous MQTT clients: an open LAN broker, opted into.
  const gateway = await createGateway({ host: '127.0.0.1', port: 0, wsPort: false, mesh: false, allowAnonymous: true })
  handlers.info = async () => ({ port: gateway.ports.mqtt })
  handlers.counters = async () => gateway.counters
  handlers.stop = async () => { await gateway.stop(); setTimeout(() => process.exit(0), 20); return {} }
} else if (role === 'device') {
  const keys = generateKeyPair()
  const client = await mqtt.connectAsync(url, { clientId: `bench-${keys.id}`, reconnectPeriod: 0 })
  await client.publishAsync(statusTopic('default', keys.id), onlineStatus({ publicKey: keys.publicKey, name: 'bench' }), { retain: true, qos: 1 })
  const topic = telemetryTopic('default', keys.id)
  let seq = 0
  const publish = (n: number, tag: number): void => {
    client.publish(topic, Buffer.from(encodeFrame({ keys, seq: ++seq, records: [{ n: 'p', vd: payload(n, tag) }] })), { qos: 0 })
  }
  handlers.pub = async ({ seq: n, tag }) => { publish(n as number, tag as number); return {} }
  handlers.tput = async ({ n, window, tag }) => {
    let acked = 0
    let sent = 0
    let wake: (() => void) | undefined
    onAck = (count) => { acked = count; wake?.() }
    const t0 = now()
    while (sent < (n as number)) {
      if (sent - acked >= (window as number)) {
        await new Promise<void>((resolve) => { wake = resolve; setTimeout(resolve, 200) })
        continue
      }
      publish(sent++, tag as number)
      if (sent % 64 === 0) await new Promise((resolve) => setImmediate(resolve))
    }
    return { sent, t0: String(t0) }
  }
  handlers.stop = async () => { await client.endAsync(); setTimeout(() => process.exit(0), 20); return {} }
} else if (role === 'subscriber') {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 0 })
  const keys = new Map<string, Uint8Array>()
  let mode: 'each' | 'count' = 'each'
  let every = 50
  let count = 0
  client.on('message', (topic, message) => {
    if (topic.endsWith('/status')) {
      const key = parseStatusKey(topic, message)
      if (key !== undefined) keys.set(key.id, key.publicKey)
      return
    }
    const t = now()
    const origin = decodeFrame(message).origin
    const key = keys.get(origin)
    if (key === undefined) return
    const frame = openFrame(message, key) // end to end: the subscriber trusts the device's key, not the broker
    const vd = frame.records[0]?.vd
    if (vd === undefined) return
    const b = Buffer.from(vd.buffer, vd.byteOffset, vd.byteLength)
    if (mode === 'each') send({ ev: 'rx', seq: b.readUInt32BE(8), tag: b[12], lat: Number(t - b.readBigUInt64BE(0)) })
    else if (++count % every === 0) send({ ev: 'cnt', n: count, t: String(t) })
  })
  await client.subscribeAsync(['iotmesh/default/+/status', 'iotmesh/default/+/telemetry'], { qos: 0 })
  handlers.rxmode = async ({ mode: m, every: e }) => { mode = m as 'each' | 'count'; every = (e as number | undefined) ?? 50; count = 0; return {} }
  handlers.keys = async () => keys.size
  handlers.stop = async () => { await client.endAsync(); setTimeout(() => process.exit(0), 20); return {} }
} else {
  throw new Error(`IOTMESH_BENCH_ROLE must be gateway, device or subscriber, not ${String(role)}`)
}

process.on('message', (m: Record<string, unknown>) => {
  if (m.cmd === 'ack') { onAck?.(m.n as number); return }
  if (m.cmd === 'pubfast') { void handlers.pub?.(m); return }
  const handler = handlers[m.cmd as string]
  if (handler === undefined) { send({ id: m.id, ok: false, err: `unknown command ${String(m.cmd)}` }); return }
  handler(m).then((res) => send({ id: m.id, ok: true, res }), (err: Error) => send({ id: m.id, ok: false, err: String(err.stack ?? err) }))
})
send({ ev: 'ready' })
