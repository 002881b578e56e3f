/**
 * Processes of the "commands" benchmark (commands.ts), one role each (IOTMESH_BENCH_ROLE):
 *   mesh      a MeshNode on TCP links; `serve` makes it a device that executes commands of the
 *             issuer key (a CommandExecutor with a relay, journal in memory), `issue` times one
 *             command from send to verified result
 *   gateway   the iotmesh gateway (embedded Aedes), which checks every command before forwarding it
 *   device    a device in broker mode (the firmware-sim runtime: MQTT, cmd/# subscribed, results on result/<issuer>)
 *   issuer    an MQTT client that publishes signed commands and verifies the results
 * IPC as the lab's children: {ev:'ready'}, {cmd, id} → {id, ok, res}.
 */
import mqtt from 'mqtt'
import { MeshNode } from '../../mesh/index.js'
import { createGateway } from '../../gateway/index.js'
import { CommandExecutor, createActuator, createDevice, memoryJournal, silentLogger } from '../../firmware-sim/index.js'
import {
  cmdTopic, decodeCommand, decodeResult, encodeCommand, keyPairFromSecret, parseCommanders, publicKeyText, resultTopic, verifySigned, type KeyPair
} from '../../shared/index.js'

const send = (m: unknown): void => { process.send?.(m) }
process.on('disconnect', () => process.exit(0))

const seeded = (seed: number): KeyPair => keyPairFromSecret(Uint8Array.from({ length: 32 }, (_, i) => (seed * 13 + i) & 0xff))
const ISSUER = seeded(Number(process.env.IOTMESH_BENCH_ISSUER_SEED ?? '1'))
const role = process.env.IOTMESH_BENCH_ROLE
const handlers: Record<string, (m: Record<string, unknown>) => Promise<unknown>> = {}
let nextId = Date.now() * 1000

const commanders = parseCommanders({ commanders: [{ name: 'bench', key: publicKeyText(ISSUER.publicKey), actions: ['#'] }] })
const command = (target: string, on: boolean): Uint8Array => encodeCommand({ keys: ISSUER, target, action: 'relay/set', args: { on }, id: nextId++, ttl: 10 })

if (role === 'mesh') {
  const keys = seeded(Number(process.env.IOTMESH_BENCH_SEED))
  const node = new MeshNode({ name: `bench-${keys.id.slice(0, 6)}`, host: '127.0.0.1', port: 0, mdns: false, announceLinks: 0, dialTarget: 0, rotateInterval: 0 }, { keys }) // the links dialed, no others: a line stays a line
  await node.start()
  handlers.info = async () => ({ id: node.id, port: node.address?.port })
  handlers.dial = async ({ port }) => { node.addPeer({ host: '127.0.0.1', port: port as number }); return {} }
  handlers.status = async () => ({ links: node.links.size, routes: node.interest().map((r) => ({ subscriber: r.subscriber, hops: r.hops })) })
  handlers.serve = async () => {
    const executor = new CommandExecutor({ rate: { rate: 1e6, burst: 1e6 } }, { keys, commanders, journal: memoryJournal(), actuators: [createActuator('relay')] })
    node.serveCommands((signed) => executor.handle(signed).result)
    return {}
  }
  /** Drops this node reported, by code (what a lost command may have met on its way). */
  const drops: Record<string, number> = {}
  node.on('drop', (d) => { drops[d.code] = (drops[d.code] ?? 0) + 1 })
  handlers.drops = async () => ({ ...drops })
  handlers.issue = async ({ target, on }) => {
    const t0 = process.hrtime.bigint()
    const ms = (): number => Number(process.hrtime.bigint() - t0) / 1e6
    try {
      const result = await node.command(command(target as string, on as boolean), { timeoutMs: 5000 })
      return { ms: ms(), status: result.status }
    } catch (err) {
      // No result: say why (ERR_TIMEOUT: sent but no result came; ERR_NO_ROUTE: never sent), and what this node counted meanwhile.
      return { ms: ms(), status: 'lost', code: (err as { code?: string }).code ?? 'ERR_UNKNOWN', counters: { ...node.counters.rejected } }
    }
  }
  handlers.stop = async () => { await node.stop(); setTimeout(() => process.exit(0), 20); return {} }
} else if (role === 'gateway') {
  // The issuer signs in as a user; the gateway forwards its commands only as its commanders file allows.
  const gateway = await createGateway({
    host: '127.0.0.1', port: 0, wsPort: false, mesh: false, credentials: { bench: 'bench-secret' }, commanders
  } as Parameters<typeof createGateway>[0])
  handlers.info = async () => ({ port: gateway.ports.mqtt })
  handlers.stop = async () => { await gateway.stop(); setTimeout(() => process.exit(0), 20); return {} }
} else if (role === 'device') {
  const keys = seeded(Number(process.env.IOTMESH_BENCH_SEED))
  const device = await createDevice({
    mode: 'broker', broker: process.env.IOTMESH_BENCH_BROKER ?? '', sensors: 'temperature', interval: 3_600_000, actuators: ['relay'], commanders, announceLinks: 0,
    commandRate: { rate: 1e6, burst: 1e6 } // as the mesh devices above: the figure is the round trip, not the per-issuer limit
  }, { keys, logger: silentLogger })
  handlers.info = async () => ({ id: device.id, publicKey: publicKeyText(device.publicKey), up: device.counters.paths.broker?.up === true })
  handlers.stop = async () => { await device.stop(); setTimeout(() => process.exit(0), 20); return {} }
} else if (role === 'issuer') {
  const client = await mqtt.connectAsync(process.env.IOTMESH_BENCH_BROKER ?? '', { reconnectPeriod: 0, username: 'bench', password: 'bench-secret' })
  const waiting = new Map<number, (result: ReturnType<typeof decodeResult>) => void>()
  client.on('message', (_topic, payload) => {
    try {
      const result = decodeResult(new Uint8Array(payload))
      waiting.get(result.id)?.(result)
    } catch { /* not a result */ }
  })
  handlers.issue = async ({ target, on, publicKey }) => {
    const signed = command(target as string, on as boolean)
    const { id } = decodeCommand(signed)
    await client.subscribeAsync(resultTopic('default', target as string, ISSUER.id), { qos: 1 })
    const t0 = process.hrtime.bigint()
    const result = await new Promise<ReturnType<typeof decodeResult> | undefined>((resolve) => {
      const timer = setTimeout(() => { waiting.delete(id); resolve(undefined) }, 5000)
      waiting.set(id, (r) => { clearTimeout(timer); waiting.delete(id); resolve(r) })
      client.publish(cmdTopic('default', target as string, 'relay/set'), Buffer.from(signed), { qos: 1 })
    })
    if (result === undefined) return { ms: Number(process.hrtime.bigint() - t0) / 1e6, status: 'lost', code: 'ERR_TIMEOUT' }
    verifySigned(result, target as string, Buffer.from(publicKey as string, 'base64url'))
    return { ms: Number(process.hrtime.bigint() - t0) / 1e6, status: result.status }
  }
  handlers.stop = async () => { await client.endAsync(); setTimeout(() => process.exit(0), 20); return {} }
}

process.on('message', (m: Record<string, unknown>) => {
  const handler = handlers[m.cmd as string]
  if (handler === undefined) { send({ id: m.id, ok: false, err: `unknown command ${String(m.cmd)}` }); return }
  handler(m).then((res) => { send({ id: m.id, ok: true, res }) }, (err: unknown) => { send({ id: m.id, ok: false, err: (err as Error).message }) })
})
send({ ev: 'ready' })
