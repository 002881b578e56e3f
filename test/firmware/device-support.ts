/** Helpers for the device runtime tests. Not a test file itself. */
import { connect, type IClientOptions, type MqttClient } from 'mqtt'
import { onTestFinished } from 'vitest'
import { decodeFrame, type DeviceId, type KeyPair } from '../../shared/index.js'
import { MeshNode } from '../../mesh/index.js'
import { createMemoryNetwork, type MemoryNetwork } from '../../mesh/testing.js'
import { Gateway, type GatewayComponents, type GatewayInit, type Reading } from '../../gateway/index.js'
import { createDevice, silentLogger, type Device, type DeviceComponents, type DeviceInit } from '../../firmware-sim/index.js'
import { testKeys } from '../helpers/keys.js'

export { testKeys }

/** Fast keepalive and sync, so links and repairs settle within a test's time. */
export const LINK = { keepaliveInterval: 100, keepaliveTimeout: 1000 }
export const ROUTING = { syncInterval: 100, graftDelay: 30, wantRetry: 200 }

/**
 * A condition that is re-checked whenever something happens (`kick`), never by polling or
 * sleeping: `await w.until(() => got.size >= 5, 'five readings')` rejects after `ms` naming
 * what it waited for.
 */
export class Waiter {
  readonly #waiters = new Set<() => void>()

  kick = (): void => {
    for (const w of [...this.#waiters]) w()
  }

  async until (condition: () => boolean, what: string, ms = 10_000): Promise<void> {
    const signal = AbortSignal.timeout(ms)
    while (!condition()) {
      await new Promise<void>((resolve, reject) => {
        const done = (): void => { this.#waiters.delete(done); signal.removeEventListener('abort', fail); resolve() }
        const fail = (): void => { this.#waiters.delete(done); reject(new Error(`timed out after ${ms} ms waiting for ${what}`)) }
        if (signal.aborted) return fail()
        this.#waiters.add(done)
        signal.addEventListener('abort', fail, { once: true })
      })
    }
  }
}

/** A device stopped when the test ends; its readings and deliveries are recorded and kick `waiter`. */
export async function startDevice (init: DeviceInit, components: DeviceComponents, waiter: Waiter): Promise<{ device: Device, signed: number[], delivered: Record<string, number[]> }> {
  const signed: number[] = []
  const delivered: Record<string, number[]> = { mesh: [], broker: [] }
  const device = await createDevice({ interval: 100, stopTimeout: 1000, announceLinks: 0, meshCheckMs: 50, ...init }, { logger: silentLogger, ...components })
  onTestFinished(async () => { await device.stop() })
  device.on('reading', (r) => { signed.push(r.seq); waiter.kick() })
  device.on('delivered', ({ path, seq }) => { delivered[path]?.push(seq); waiter.kick() })
  device.on('path:up', waiter.kick)
  device.on('path:down', waiter.kick)
  device.on('tick', waiter.kick)
  return { device, signed, delivered }
}

/** A mesh node on a memory network, stopped when the test ends. */
export async function startPeer (net: MemoryNetwork, host: string, keys: KeyPair, peers: string[] = []): Promise<MeshNode> {
  const node = new MeshNode({ name: host, host, mdns: false, peers, dialTarget: 0, announceLinks: 0, link: LINK, routing: ROUTING },
    { keys, transport: net.createTransport(LINK, { keys }) })
  onTestFinished(async () => { await node.stop() })
  await node.start()
  return node
}

export function memoryNet (seed: number): MemoryNetwork {
  return createMemoryNetwork({ seed })
}

export const addressOf = (node: MeshNode | undefined): string => `${node?.address?.host}:${node?.address?.port}`

/** Mesh init for a device on a memory network. */
export function meshInit (host: string, peers: string[] = []): DeviceInit['mesh'] {
  return { host, mdns: false, peers, dialTarget: 0, link: LINK, routing: ROUTING }
}

/** The MQTT user the tests' subscribers read as (gateway() adds it to the gateway's users). */
export const TEST_READER_USER = { 'test-reader': 'test-reader-secret' } as const

/** An MQTT subscriber that records the sequence numbers of one device's frames (signed in as the test reader). */
export async function subscriber (url: string, filter: string, waiter: Waiter, options: IClientOptions = {}): Promise<{ client: MqttClient, seqs: number[], frames: Map<number, Uint8Array>, from: (origin: DeviceId) => number[] }> {
  const client = connect(url, { reconnectPeriod: 0, connectTimeout: 5000, username: 'test-reader', password: TEST_READER_USER['test-reader'], ...options })
  onTestFinished(async () => { await client.endAsync(true) })
  client.on('error', () => {})
  const all: Array<{ origin: DeviceId, seq: number }> = []
  const seqs: number[] = []
  const frames = new Map<number, Uint8Array>()
  client.on('message', (topic, payload) => {
    if (topic.endsWith('/status') || topic.includes('/json')) return
    const frame = decodeFrame(new Uint8Array(payload))
    all.push({ origin: frame.origin, seq: frame.seq })
    seqs.push(frame.seq)
    frames.set(frame.seq, new Uint8Array(payload))
    waiter.kick()
  })
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => { resolve() })
    client.once('close', () => { reject(new Error(`could not connect to ${url}`)) })
  })
  await client.subscribeAsync(filter, { qos: 1 })
  return { client, seqs, frames, from: (origin) => all.filter((m) => m.origin === origin).map((m) => m.seq) }
}

/** True when `xs` strictly increases. */
export function increasing (xs: readonly number[]): boolean {
  return xs.every((x, i) => i === 0 || x > (xs[i - 1] as number))
}

export const keysFor = (label: number): KeyPair => testKeys(label)

/** An embedded gateway on 127.0.0.1 (port 0 unless given), its readings recorded; stopped when the test ends. */
export async function gateway (waiter: Waiter, init: GatewayInit = {}, components: GatewayComponents = {}): Promise<{ gateway: Gateway, readings: Reading[], url: string }> {
  // Secure by default: devices sign in with their keys (tokens), the test's subscribers as a user.
  const gw = new Gateway({ host: '127.0.0.1', port: 0, wsPort: false, ...init, credentials: { ...init.credentials, ...TEST_READER_USER } }, components)
  const readings: Reading[] = []
  gw.on('reading', (r) => { readings.push(r); waiter.kick() })
  gw.on('drop', waiter.kick)
  gw.on('status', waiter.kick)
  onTestFinished(async () => { await gw.stop() })
  await gw.start()
  return { gateway: gw, readings, url: `mqtt://127.0.0.1:${gw.ports.mqtt ?? 0}` }
}
