import {
  enroll, frameTopic, generateKeyPair, meshError, mixSeed, parseFleetPolicy, revoke, seededRandom, toBase64url,
  type DeviceId, type FleetPolicy, type KeyPair
} from '../../shared/index.js'
import { Fleet, topologyHops } from '../../firmware-sim/index.js'
import { REVOCATION_PATHS, type NodeObservation, type PathObservation, type RevocationPath } from '../metrics/revocation.js'
import { finishProvenance, startProvenance } from '../results/environment.js'
import { revocationResults, type RevocationRunObservations } from '../results/revocation.js'
import type { RevocationParameters, RevocationResults } from '../results/types.js'
import { writeReport } from '../report/write.js'
import { hiResClock, hiResNow, sleep, ticking, until, type RunComponents } from './support.js'

/**
 * `iotmesh experiment revocation` (issue 13), the runner. Per seed and per path, a fresh fleet
 * closed by credential: two owners (threshold 2) enrolled every device and the gateway. One device
 * (the one farthest from the gateway) publishes every `victimIntervalMs`; the others every
 * `intervalMs`. After the fleet has settled and `beforeS` of normal traffic, the owners revoke the
 * device and hand the revocation to the gateway, as `iotmesh fleet revoke --publish` does; the
 * device goes on publishing (a stolen device's thief would).
 *
 *   mesh    devices in mesh mode on in-memory links in a fixed line or grid (firmware-sim/fleet/
 *           topology.ts): the gateway hangs off device 0, so the revocation crosses every relay on
 *           the way. `transport: 'tcp'`: the same links over TCP on 127.0.0.1, each node with its own
 *           transport (Fleet `nodeTransport`), so every handshake shows and checks a credential and
 *           every node checks relayed origins' credentials (CRED), as deployed devices do. Every device subscribes to the revoked device's readings: each node is a place
 *           where its frame can be accepted, and each is watched for when it takes the revocation.
 *   broker  devices in broker mode, each with its own MQTT session at the gateway's embedded
 *           broker: the broker closes the revoked device's session and refuses its CONNECTs; the
 *           gateway's ingest (the broker's subscriber) is where its frames are accepted.
 */

/** One run's parameters: the results' record of them (lab/results/types.ts) without the repetitions and paths of the whole experiment. */
export type RevocationParams = Omit<RevocationParameters, 'repeat' | 'paths'>

/**
 * 100 devices in one process: every device subscribes to the revoked one, so each of its readings is
 * verified and delivered about 100 times. At one reading a second per device and ten a second from
 * the revoked one, a loaded 2-core machine (load 13–17) could not carry the fleet: it never settled
 * and the revocation queued behind the backlog for 6–10 s a hop (docs/experiments/revocation-overloaded).
 * The defaults carry a fifth of that; the quick preset (12 devices) keeps the finer rates.
 */
export const REVOCATION_DEFAULTS: Readonly<RevocationParams & { repeat: number }> = Object.freeze({
  seed: 1, devices: 100, topology: 'grid', intervalMs: 5000, victimIntervalMs: 500, beforeS: 3, afterS: 8, settleS: 60, linkDelayMs: 0, transport: 'memory', repeat: 5
})
export const REVOCATION_QUICK: Readonly<RevocationParams & { repeat: number }> = Object.freeze({
  ...REVOCATION_DEFAULTS, devices: 12, intervalMs: 1000, victimIntervalMs: 100, beforeS: 2, afterS: 4, settleS: 30, repeat: 3
})
export const REVOCATION_PRESETS = Object.freeze({ default: REVOCATION_DEFAULTS, quick: REVOCATION_QUICK })

export interface RevocationRunInit extends Partial<RevocationParams> {
  preset?: keyof typeof REVOCATION_PRESETS
  paths?: RevocationPath[]
  /** Runs with seeds seed, seed + 1, …; every figure gets a 95 % t-interval over them. */
  repeat?: number
  out?: string
}

export interface RevocationRun {
  results: RevocationResults
  observations: RevocationRunObservations[]
  files: string[]
}

/** Starting a fleet and waiting for it to settle: about 4 s and half a second a device (100 devices at load 13–17 on 2 cores: 60–90 s). */
const SETUP_ESTIMATE_S = 4
const SETUP_PER_DEVICE_S = 0.5

export function revocationParams (init: RevocationRunInit = {}): RevocationParams & { repeat: number, paths: RevocationPath[] } {
  const base = REVOCATION_PRESETS[init.preset ?? 'default']
  const defined = Object.fromEntries(Object.entries(init).filter(([k, v]) => v !== undefined && k !== 'preset' && k !== 'out'))
  const p = { ...base, paths: [...REVOCATION_PATHS], ...defined } as RevocationParams & { repeat: number, paths: RevocationPath[] }
  const bad = (name: string, want: string, got: unknown): never => { throw meshError('ERR_BAD_ARGUMENT', `revocation: ${name} must be ${want}, got ${JSON.stringify(got)}`) }
  if (!Number.isSafeInteger(p.devices) || p.devices < 3 || p.devices > 1000) bad('devices', 'an integer from 3 to 1000', p.devices)
  if (p.topology !== 'grid' && p.topology !== 'line') bad('topology', 'grid or line', p.topology)
  if (!Number.isSafeInteger(p.repeat) || p.repeat < 1 || p.repeat > 100) bad('repeat', 'an integer from 1 to 100', p.repeat)
  if (!Number.isSafeInteger(p.seed) || p.seed < 0 || p.seed + p.repeat - 1 > 0xffff_ffff) bad('seed', 'an integer from 0 with seed + repeat − 1 at most 4294967295', p.seed)
  if (!Number.isSafeInteger(p.intervalMs) || p.intervalMs < 50) bad('intervalMs', 'an integer of at least 50', p.intervalMs)
  if (!Number.isSafeInteger(p.victimIntervalMs) || p.victimIntervalMs < 20) bad('victimIntervalMs', 'an integer of at least 20', p.victimIntervalMs)
  if (!(p.linkDelayMs >= 0 && p.linkDelayMs <= 10_000)) bad('linkDelayMs', 'ms from 0 to 10000', p.linkDelayMs)
  if (p.transport !== 'memory' && p.transport !== 'tcp') bad('transport', 'memory or tcp', p.transport)
  // Each node's own TCP transport is outside the fleet's fault model: no delay can be added to it.
  if (p.transport === 'tcp' && p.linkDelayMs > 0) bad('linkDelayMs', '0 with transport tcp (the nodes\' own TCP links take no injected delay)', p.linkDelayMs)
  for (const k of ['beforeS', 'afterS', 'settleS'] as const) if (!(p[k] >= 0 && p[k] <= 86_400)) bad(k, 'seconds from 0 to 86400', p[k])
  if (!(p.afterS >= 1)) bad('afterS', 'at least 1 s', p.afterS)
  if (p.paths.length === 0 || p.paths.some((x) => !REVOCATION_PATHS.includes(x)) || new Set(p.paths).size !== p.paths.length) bad('paths', `distinct paths from ${REVOCATION_PATHS.join(', ')}`, p.paths)
  return p
}

export function revocationRunSeconds (init: RevocationRunInit = {}): number {
  const p = revocationParams(init)
  return p.repeat * p.paths.length * (SETUP_ESTIMATE_S + p.devices * SETUP_PER_DEVICE_S + p.beforeS + p.afterS)
}

/** The fleet's two owners and its fleet file (threshold 2), from the seed. */
export function revocationOwners (seed: number): { owners: KeyPair[], policy: FleetPolicy } {
  const owners = [0, 1].map((i) => generateKeyPair(seededRandom(mixSeed(seed, 'owner', i)).bytes(32)))
  const policy = parseFleetPolicy({ fleet: 'default', threshold: 2, owners: owners.map((o, i) => ({ name: `owner-${i + 1}`, key: toBase64url(o.publicKey) })) })
  return { owners, policy }
}

export async function runRevocation (init: RevocationRunInit = {}, components: RunComponents = {}): Promise<RevocationRun> {
  const p = revocationParams(init)
  const now = components.now ?? hiResNow
  const provenance = startProvenance(components.command)
  const startedAt = now()
  const notes: string[] = [
    p.transport === 'tcp'
      ? `mesh: TCP links on 127.0.0.1 in a ${p.topology} (the gateway linked to device 0, the revoked device the farthest from it), each node with its own transport: every handshake shows and checks an owner-signed credential, every node checks relayed origins' credentials (CRED); every device, the gateway and its broker in one process (iotmesh fleet simulator)`
      : `mesh: in-memory links in a ${p.topology} (the gateway linked to device 0, the revoked device the farthest from it), ${p.linkDelayMs === 0 ? 'adding no delay: the times are the nodes\' own work (verifying, gossiping) under this machine\'s load, a floor for a real network' : `each adding ${p.linkDelayMs} ms to every message`}; no credentials shown at the handshake (the fleet's in-memory transport); every device, the gateway and its broker in one process (iotmesh fleet simulator)`,
    'broker: every device has its own MQTT session (TCP on loopback) at the gateway\'s embedded broker',
    'the revocation is signed by both owners (threshold 2) and handed to the gateway: its mesh node (mesh path) or its broker (broker path), as `iotmesh fleet revoke --publish` does'
  ]
  const observations: RevocationRunObservations[] = []
  for (let r = 0; r < p.repeat; r++) {
    const seed = p.seed + r
    const run: RevocationRunObservations = { seed, paths: [] }
    for (const [i, path] of p.paths.entries()) {
      const step = `${i + 1}/${p.paths.length}${p.repeat === 1 ? '' : `, run ${r + 1}/${p.repeat}`}`
      run.paths.push(await runPath(path, { ...p, seed }, notes, { ...components, now, step }))
    }
    observations.push(run)
  }
  const results = revocationResults({ params: p, paths: p.paths, observations, startedAt, finishedAt: now(), notes, provenance: finishProvenance(provenance) })
  const files = init.out === undefined ? [] : await writeReport(init.out, results)
  return { results, observations, files }
}

async function runPath (path: RevocationPath, p: RevocationParams, notes: string[], components: RunComponents & { now: () => number, step: string }): Promise<PathObservation> {
  const { now, progress, signal, step } = components
  const show = (phase: string): void => { progress?.update({ mode: path, step, phase }) }
  const { owners, policy } = revocationOwners(p.seed)
  const victim = p.devices - 1
  const fleet = new Fleet({
    devices: p.devices,
    mode: path === 'mesh' ? 'mesh' : 'broker',
    seed: p.seed,
    interval: p.intervalMs,
    sensors: 'battery',
    // TCP: each node's own transport (credentials at every handshake); the fixed links then start one device at a time.
    ...(p.transport === 'tcp' ? { transport: 'tcp' as const, nodeTransport: true } : { transport: 'memory' as const }),
    mdns: false,
    topology: p.topology,
    roles: { [victim]: { interval: p.victimIntervalMs } },
    enrollment: {
      policy,
      credential: (keys, index) => enroll({ policy, publicKey: keys.publicKey, name: index < 0 ? 'gateway' : `sim-${index}`, cti: seededRandom(mixSeed(p.seed, 'cti', index)).bytes(8), owners })
    }
  }, { clock: hiResClock })
  const hops = topologyHops(p.topology, p.devices, -1)
  const nodes = new Map<number, NodeObservation & { accepted: number[] }>()
  const seen = (index: number): NodeObservation & { accepted: number[] } => {
    let n = nodes.get(index)
    if (n === undefined) nodes.set(index, n = { index, hops: path === 'mesh' ? (index < 0 ? 0 : hops[index] ?? null) : null, accepted: [] })
    return n
  }
  let issuedAt = Infinity
  let cutAt: number | undefined
  let refusedConnects = 0
  let refusedFrames = 0
  let publishedAfter = 0
  try {
    if (p.linkDelayMs > 0) fleet.linkFaults({ delay: p.linkDelayMs })
    show('starting the fleet')
    await ticking(500, () => { show('starting the fleet') }, fleet.start({ signal }))
    const gateway = fleet.gateway
    if (gateway === undefined) throw meshError('ERR_BAD_ARGUMENT', 'revocation: the fleet has no gateway')
    const victimId: DeviceId = fleet.devices[victim]?.keys.id as DeviceId
    fleet.on('reading', (r) => { if (r.device === victim && now() > issuedAt) publishedAfter++ })
    // The gateway: where frames are accepted on both paths (its ingest), and a node of the mesh.
    seen(-1)
    gateway.on('reading', (r) => { if (r.origin === victimId) seen(-1).accepted.push(now()) })
    gateway.on('drop', (d) => {
      if (d.code !== 'ERR_REVOKED' || d.deviceId !== victimId) return
      refusedConnects++
      // Broker: a device that was between sessions at the issue is refused at its next CONNECT: refused, and cut off, from then.
      if (path === 'broker' && cutAt === undefined) seen(-1).refusedFrom = cutAt = now()
    })
    gateway.on('connection', (c) => {
      if (c.state === 'disconnected' && c.clientId.includes(victimId) && now() >= issuedAt && cutAt === undefined) {
        cutAt = now()
        seen(-1).refusedFrom = cutAt
      }
    })
    const heard = new Set<DeviceId>()
    fleet.on('delivered', (d) => { heard.add(d.origin) })
    const subscriptions: Array<{ close: () => void }> = []
    if (path === 'mesh') {
      const watch = (index: number, node: NonNullable<NonNullable<Fleet['devices'][number]['device']>['node']>): void => {
        node.on('revoked', (info) => { if (info.device === victimId && seen(index).refusedFrom === undefined) seen(index).refusedFrom = now() })
        node.on('drop', (info) => {
          if (info.code !== 'ERR_REVOKED') return
          if (info.origin === victimId) refusedFrames++
          else if (info.from === victimId) refusedConnects++
        })
      }
      if (gateway.mesh !== undefined) watch(-1, gateway.mesh)
      for (const d of fleet.devices) {
        const node = d.device?.node
        if (node === undefined) continue
        if (d.index === victim) {
          // Its last link gone (looked at once the closing link has left the table).
          node.on('link:close', () => { const at = now(); setImmediate(() => { if (cutAt === undefined && at >= issuedAt && node.links.size === 0) cutAt = at }) })
          continue
        }
        watch(d.index, node)
        const sub = node.subscribe(frameTopic(fleet.init.fleet, victimId, '#'), { buffer: 4096 })
        subscriptions.push(sub)
        const obs = seen(d.index)
        void (async () => { for await (const delivery of sub) if (delivery.origin === victimId) obs.accepted.push(delivery.receivedAt) })()
      }
    }
    const ready = path === 'mesh'
      ? () => [...nodes.values()].every((n) => n.accepted.length > 0) && nodes.size === p.devices
      : () => heard.size >= fleet.devices.length
    const settled = await ticking(500, () => { show('settling') }, until(ready, p.settleS * 1000, { signal, everyMs: 100 }))
    if (!settled) notes.push(`seed ${p.seed}, ${path}: not every ${path === 'mesh' ? 'node had received the device\'s readings' : 'device was heard at the gateway'} after ${p.settleS} s; measured anyway`)
    await ticking(500, () => { show('before the revocation') }, sleep(p.beforeS * 1000, signal))
    const bytes = revoke({ policy, device: victimId, reason: 'experiment: a stolen device', owners })
    issuedAt = now()
    if (path === 'mesh') {
      const verdict = gateway.mesh?.revoke(bytes)
      if (verdict !== 'added') throw meshError('ERR_BAD_REVOCATION', `revocation: the gateway's node did not take the revocation (${String(verdict)})`)
    } else {
      if (gateway.revocations === undefined) throw meshError('ERR_BAD_ARGUMENT', 'revocation: the gateway holds no fleet file')
      gateway.revocations.add(bytes, 'mqtt')
    }
    await ticking(500, () => { show('after the revocation') }, sleep(p.afterS * 1000, signal))
    const endedAt = now()
    for (const sub of subscriptions) sub.close()
    return { path, issuedAt, endedAt, nodes: [...nodes.values()], ...(cutAt === undefined ? {} : { cutAt }), refusedConnects, refusedFrames, publishedAfter }
  } finally {
    show('stopping the fleet')
    await fleet.stop()
  }
}

