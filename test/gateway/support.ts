/** Helpers shared by the gateway tests: simulated devices (plain mqtt.js + shared encodeFrame), subscribers, servers. Not a test file. */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { connect, type IClientOptions, type MqttClient } from 'mqtt'
import { onTestFinished } from 'vitest'
import { DEFAULT_FLEET, encodeFrame, type KeyPair, type SenmlRecord } from '../../shared/index.js'
import { createGateway, deviceLastWill, onlineStatus, telemetryTopic, type Gateway, type GatewayComponents, type GatewayInit } from '../../gateway/index.js'

export { seededKeys } from '../shared/support.js'

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

/** An embedded gateway on 127.0.0.1, every port 0, stopped when the test ends. */
export async function startGateway (init: GatewayInit = {}, components: GatewayComponents = {}): Promise<Gateway> {
  const gateway = await createGateway({ host: '127.0.0.1', port: 0, wsPort: 0, ...init }, components)
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

/** A simulated device: connects with its last will, announces itself with a retained online status. */
export async function connectDevice (url: string, keys: KeyPair, options: { fleet?: string, name?: string, status?: boolean, mqtt?: IClientOptions } = {}): Promise<TestClient & { publishFrame: (seq: number, frame?: Buffer, topic?: string) => Promise<void> }> {
  const fleet = options.fleet ?? DEFAULT_FLEET
  const device = await connectClient(url, { clientId: `dev-${keys.id.slice(0, 10)}-${Math.random().toString(16).slice(2, 8)}`, will: deviceLastWill(fleet, keys.id), ...options.mqtt })
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
