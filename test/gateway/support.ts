/** Helpers shared by the gateway tests: simulated devices (plain mqtt.js + shared encodeFrame), subscribers, servers. Not a test file. */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { connect, type IClientOptions, type MqttClient } from 'mqtt'
import { onTestFinished } from 'vitest'
import {
  DEFAULT_FLEET, deviceLastWill, encodeFrame, keyPairFromSecret, onlineStatus, signDeviceToken, telemetryTopic, type KeyPair, type SenmlRecord
} from '../../shared/index.js'
import { MeshNode, type Delivery } from '../../mesh/index.js'
import type { MemoryNetwork } from '../../mesh/testing.js'
import { createGateway, type Gateway, type GatewayComponents, type GatewayInit } from '../../gateway/index.js'

/** A key pair from a small seed: the same seed, the same device (as test/shared/support.ts). */
export function seededKeys (seed: number): KeyPair {
  return keyPairFromSecret(Uint8Array.from({ length: 32 }, (_, i) => (seed + i) & 0xff))
}

/** Mesh timings for tests: fast catch-up, keepalive slow enough never to fire in a test. */
export const MESH_LINK = { keepaliveInterval: 5000, keepaliveTimeout: 20_000 }
export const MESH_ROUTING = { syncInterval: 100, graftDelay: 30, wantRetry: 200 }

/** A gateway that is also a mesh member on the in-memory network `net` (host `gw`), stopped when the test ends. */
export async function startMeshGateway (net: MemoryNetwork, init: GatewayInit = {}, components: GatewayComponents = {}, keys: KeyPair = seededKeys(200)): Promise<Gateway> {
  return await startGateway({
    mesh: { host: 'gw', mdns: false, dialTarget: 0, announceLinks: 0, link: MESH_LINK, routing: MESH_ROUTING },
    ...init
  }, { keys, transport: net.createTransport(MESH_LINK, { keys }), ...components })
}

/** A mesh node on `net` (no mDNS) linked to the static `peers`, stopped when the test ends. */
export async function startMeshNode (net: MemoryNetwork, name: string, keys: KeyPair, peers: string[] = [], options: { announceLinks?: number } = {}): Promise<MeshNode> {
  const node = new MeshNode({ name, host: name, mdns: false, peers, dialTarget: 0, announceLinks: options.announceLinks ?? 0, link: MESH_LINK, routing: MESH_ROUTING }, { keys, transport: net.createTransport(MESH_LINK, { keys }) })
  onTestFinished(async () => { await node.stop() })
  await node.start()
  return node
}

/** `host:port` of a node's link listener (or a gateway's mesh node). */
export function meshAddress (node: MeshNode | undefined): string {
  if (node?.address === undefined) throw new Error('the node does not listen')
  return `${node.address.host}:${node.address.port}`
}

/** Resolves once `node` has a link to each of `ids`. */
export async function linked (node: MeshNode, ...ids: string[]): Promise<void> {
  const signal = AbortSignal.timeout(5000)
  while (!ids.every((id) => node.links.has(id))) await node.next('link:open', { signal })
}

/**
 * Waits until every message sent so far from `to` to `from` has been processed by `from`: a ping
 * over their link is answered after them (links are ordered). Used after a subscription or a link
 * forms, so that interest declarations (a mesh routing by subscriptions) have arrived.
 */
export async function barrier (...pairs: Array<[MeshNode | undefined, MeshNode | undefined]>): Promise<void> {
  for (const [from, to] of pairs) {
    const link = from?.links.get(to?.id ?? '')
    if (link === undefined) throw new Error('barrier: the nodes are not linked')
    await link.ping({ signal: AbortSignal.timeout(5000) })
  }
}

/** The first delivery at `node` matching `filter` (a subscription opened before the call that causes it). */
export async function nextDelivery (node: MeshNode, filter: (d: Delivery) => boolean = () => true, timeoutMs = 5000): Promise<Delivery> {
  for await (const d of node.subscribe('iotmesh/#', { signal: AbortSignal.timeout(timeoutMs), buffer: 1024 })) {
    if (filter(d)) return d
  }
  throw new Error(`no matching delivery within ${timeoutMs} ms`)
}

/** A signed telemetry frame as a device makes it. */
export function makeFrame (keys: KeyPair, seq: number, options: { records?: SenmlRecord[], time?: number, topic?: string } = {}): Buffer {
  const bytes = encodeFrame({
    keys,
    seq,
    time: options.time ?? 1_767_225_600 + seq,
    records: options.records ?? [{ n: 'temp', u: 'Cel', v: 20 + seq / 10 }],
    ...(options.topic === undefined ? {} : { topic: options.topic })
  })
  return Buffer.from(bytes)
}

/**
 * An embedded gateway on 127.0.0.1, every port 0, stopped when the test ends. The suites written
 * before the broker knew its clients test an open LAN broker, so anonymous clients are opted in
 * here unless the gateway has users (`credentials`) or the test says otherwise; the secure
 * default is tested in auth.test.ts.
 */
export async function startGateway (init: GatewayInit = {}, components: GatewayComponents = {}): Promise<Gateway> {
  const gateway = await createGateway({ host: '127.0.0.1', port: 0, wsPort: 0, allowAnonymous: init.credentials === undefined, ...init }, components)
  onTestFinished(async () => { await gateway.stop() })
  return gateway
}

export function mqttUrl (gateway: Gateway): string {
  return `mqtt://127.0.0.1:${gateway.ports.mqtt ?? 0}`
}

/** A collecting MQTT client: every message goes into a queue that `next` reads, bounded in time. */
export interface TestClient {
  client: MqttClient
  messages: Array<{ topic: string, payload: Buffer, retain: boolean }>
  /** The oldest message not returned yet that matches `filter` (others stay queued); rejects after `timeoutMs`. */
  next (filter?: (topic: string, payload: Buffer) => boolean, timeoutMs?: number): Promise<{ topic: string, payload: Buffer, retain: boolean }>
}

export async function connectClient (url: string, options: IClientOptions = {}): Promise<TestClient> {
  const client = connect(url, { reconnectPeriod: 0, connectTimeout: 5000, ...options })
  onTestFinished(async () => { await client.endAsync(true) })
  client.on('error', () => {})
  const messages: TestClient['messages'] = []
  const taken = new Set<number>()
  const waiters = new Set<() => void>()
  client.on('message', (topic, payload, packet) => {
    messages.push({ topic, payload, retain: packet.retain })
    for (const w of waiters) w()
  })
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => { resolve() })
    client.once('error', reject)
    client.once('close', () => { reject(new Error(`could not connect to ${url}`)) })
  })
  return {
    client,
    messages,
    async next (filter = () => true, timeoutMs = 5000) {
      const signal = AbortSignal.timeout(timeoutMs)
      for (;;) {
        // The oldest message not taken yet that matches: messages that do not match stay for later calls.
        const index = messages.findIndex((m, i) => !taken.has(i) && filter(m.topic, m.payload))
        if (index >= 0) {
          taken.add(index)
          return messages[index] as TestClient['messages'][number]
        }
        await new Promise<void>((resolve, reject) => {
          const done = (): void => { waiters.delete(done); signal.removeEventListener('abort', fail); resolve() }
          const fail = (): void => { waiters.delete(done); reject(new Error(`no matching MQTT message within ${timeoutMs} ms (${messages.length} received)`)) }
          if (signal.aborted) return fail()
          waiters.add(done)
          signal.addEventListener('abort', fail, { once: true })
        })
      }
    }
  }
}

/** A device token (shared/token.ts) for `clientId`, made now: the MQTT password of a device signing in with its key. */
export function deviceToken (keys: KeyPair, clientId: string, fleet: string = DEFAULT_FLEET): string {
  return signDeviceToken({ keys, clientId, fleet, now: Date.now(), cti: crypto.getRandomValues(new Uint8Array(8)) })
}

/**
 * A simulated device: connects with its last will, announces itself with a retained online status.
 * `authenticate`: signs in with its key (user name = its id, password = a device token), as the
 * secure broker requires; otherwise it connects anonymously (an open LAN broker).
 */
export async function connectDevice (url: string, keys: KeyPair, options: { fleet?: string, name?: string, status?: boolean, authenticate?: boolean, mqtt?: IClientOptions } = {}): Promise<TestClient & { publishFrame: (seq: number, frame?: Buffer, topic?: string) => Promise<void> }> {
  const fleet = options.fleet ?? DEFAULT_FLEET
  const clientId = `dev-${keys.id.slice(0, 10)}-${Math.random().toString(16).slice(2, 8)}`
  const credentials = options.authenticate === true ? { username: keys.id, password: deviceToken(keys, clientId, fleet) } : {}
  const device = await connectClient(url, { clientId, will: deviceLastWill(fleet, keys.id), ...credentials, ...options.mqtt })
  if (options.status !== false) {
    await device.client.publishAsync(`iotmesh/${fleet}/${keys.id}/status`, onlineStatus({ publicKey: keys.publicKey, ...(options.name === undefined ? {} : { name: options.name }) }), { qos: 1, retain: true })
  }
  return {
    ...device,
    publishFrame: async (seq, frame, topic) => {
      await device.client.publishAsync(topic ?? telemetryTopic(fleet, keys.id), frame ?? makeFrame(keys, seq), { qos: 1 })
    }
  }
}

/** A free TCP port on 127.0.0.1 (bound to port 0, then released) for servers that need a concrete one. */
export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
  return port
}

/** The path of a Debian binary, or undefined (the test is then skipped, naming it). */
export function findBinary (...candidates: string[]): string | undefined {
  return candidates.find((path) => existsSync(path))
}

/**
 * Spawns a server and resolves once a line of its output matches `ready`; kills it (SIGKILL,
 * by pid) when the test ends.
 */
export async function spawnServer (command: string, args: string[], ready: RegExp, timeoutMs = 10_000): Promise<ChildProcess> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGKILL')
      await exited
    }
  })
  let output = ''
  await new Promise<void>((resolve, reject) => {
    const signal = AbortSignal.timeout(timeoutMs)
    const onData = (chunk: Buffer): void => {
      output += chunk.toString()
      if (ready.test(output)) { cleanup(); resolve() }
    }
    const onExit = (code: number | null): void => { cleanup(); reject(new Error(`${command} exited (${code}) before it was ready:\n${output}`)) }
    const onAbort = (): void => { cleanup(); reject(new Error(`${command} was not ready within ${timeoutMs} ms:\n${output}`)) }
    const cleanup = (): void => {
      child.stdout?.off('data', onData)
      child.stderr?.off('data', onData)
      child.off('exit', onExit)
      signal.removeEventListener('abort', onAbort)
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', onData)
    child.once('exit', onExit)
    signal.addEventListener('abort', onAbort, { once: true })
  })
  // Keep draining output so the child never blocks on a full pipe.
  child.stdout?.resume()
  child.stderr?.resume()
  return child
}

/** What nextEvent needs of an emitter (method syntax: any typed emitter fits). */
export interface Listenable {
  on (event: string, listener: (...args: never[]) => void): unknown
  off (event: string, listener: (...args: never[]) => void): unknown
}

/** Resolves with the first argument of the next `event` of `emitter` matching `filter`, or rejects after `timeoutMs`. */
export async function nextEvent<T = unknown> (emitter: Listenable, event: string, filter: (arg: T) => boolean = () => true, timeoutMs = 5000): Promise<T> {
  return await new Promise<T>((resolve, reject) => {
    const signal = AbortSignal.timeout(timeoutMs)
    const listener = (arg: T): void => {
      if (!filter(arg)) return
      emitter.off(event, listener as (...args: never[]) => void)
      signal.removeEventListener('abort', onAbort)
      resolve(arg)
    }
    const onAbort = (): void => { emitter.off(event, listener as (...args: never[]) => void); reject(new Error(`no matching "${event}" event within ${timeoutMs} ms`)) }
    emitter.on(event, listener as (...args: never[]) => void)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}
