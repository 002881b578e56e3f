import { randomBytes } from 'node:crypto'
import { Fleet, type FleetInit } from '../../firmware-sim/index.js'
import type { Mode } from '../observations.js'
import { meshPeer, mqttPeer, type PeerSubscriber } from './peer.js'
import { FleetRecorder } from './record.js'
import { ResourceSampler } from './resources.js'
import { hiResClock, until } from './support.js'

/**
 * One fleet under observation, as the failover and scale runners use it: the fleet simulator
 * (firmware-sim/fleet/fleet.ts) in one mode, what it does recorded from the start (runners/record.ts), resources
 * sampled (runners/resources.ts), optionally a peer subscriber (runners/peer.ts), and a wait until it has
 * settled: every device heard at the gateway (and at the peer) with readings that arrived after
 * the fleet was up, so the measured window starts on a formed mesh, not on its assembly.
 */

export interface ObservedFleetInit {
  mode: Mode
  devices: number
  seed: number
  /** Sampling interval, ms. */
  interval: number
  transport: 'tcp' | 'memory'
  /** The fleet member that subscribes to everything as the peer (failover); none when undefined. */
  peer?: number
  /** Longest wait for the fleet to settle, ms. */
  settleMs: number
  /** Called while devices start, with how many have. */
  onStarting?: (started: number, total: number) => void
}

export interface ObservedFleet {
  readonly fleet: Fleet
  readonly recorder: FleetRecorder
  readonly sampler: ResourceSampler
  readonly peer: PeerSubscriber | undefined
  /** Why the fleet had not settled when the wait ran out (undefined: it settled). */
  readonly unsettled: string | undefined
  stop (): Promise<void>
}

/** The experiment's own MQTT user on the fleet's gateway: a fresh password per process. */
const PEER_USER: Record<string, string> = { 'iotmesh-experiment': randomBytes(18).toString('base64url') }

export async function startObservedFleet (init: ObservedFleetInit, components: { now: () => number, signal?: AbortSignal }): Promise<ObservedFleet> {
  // The peer subscriber reads the broker as a user of the gateway (anonymous clients are refused).
  const fleetInit: FleetInit = { devices: init.devices, mode: init.mode, seed: init.seed, interval: init.interval, transport: init.transport, gateway: { credentials: PEER_USER } }
  const fleet = new Fleet(fleetInit, { clock: hiResClock })
  const recorder = new FleetRecorder(fleet)
  const sampler = new ResourceSampler(fleet, { now: components.now, mqtt: init.mode !== 'mesh' })
  let peer: PeerSubscriber | undefined
  const stop = async (): Promise<void> => {
    sampler.stop()
    await peer?.stop()
    await fleet.stop()
  }
  try {
    await fleet.start(init.onStarting === undefined ? {} : { onProgress: init.onStarting })
    recorder.watch()
    if (init.peer !== undefined) peer = await startPeer(fleet, recorder, sampler, init.mode, init.peer, components.now)
    const since = components.now()
    const ids = fleet.devices.map((d) => d.keys.id)
    const peerId = init.peer === undefined ? undefined : fleet.devices[init.peer]?.keys.id
    const missing = (): string[] => {
      const gateway = recorder.heardAtGateway(since)
      const atPeer = peerId === undefined ? undefined : recorder.heardAtPeer(since)
      const out: string[] = []
      const notAtGateway = ids.filter((id) => !gateway.has(id)).length
      if (notAtGateway > 0) out.push(`${notAtGateway} of ${ids.length} devices not heard at the gateway`)
      if (atPeer !== undefined) {
        const notAtPeer = ids.filter((id) => id !== peerId && !atPeer.has(id)).length
        if (notAtPeer > 0) out.push(`${notAtPeer} not heard at the peer subscriber`)
      }
      if (peer !== undefined && !peer.ready) out.push('the peer subscriber not subscribed')
      return out
    }
    const settled = await until(() => missing().length === 0, init.settleMs, { ...(components.signal === undefined ? {} : { signal: components.signal }), everyMs: 200 })
    const unsettled = settled ? undefined : `${init.mode}: not settled after ${(init.settleMs / 1000).toFixed(0)} s (${missing().join(', ')}); measured anyway`
    return { fleet, recorder, sampler, get peer () { return peer }, unsettled, stop }
  } catch (err) {
    await stop()
    throw err
  }
}

async function startPeer (fleet: Fleet, recorder: FleetRecorder, sampler: ResourceSampler, mode: Mode, index: number, now: () => number): Promise<PeerSubscriber> {
  const onArrival = (a: { origin: string, seq: number, at: number }): void => { recorder.peerArrival(a.origin, a.seq, a.at) }
  if (mode === 'broker') {
    const keys = new Map(fleet.devices.map((d) => [d.keys.id as string, d.keys.publicKey]))
    const member = fleet.devices[index]?.keys.id
    if (member === undefined) throw new RangeError(`the peer subscriber, member ${index}, is not in a fleet of ${fleet.devices.length}`)
    return await mqttPeer({
      url: fleet.brokerUrl as string,
      username: 'iotmesh-experiment',
      password: PEER_USER['iotmesh-experiment'],
      fleet: fleet.init.fleet,
      keyOf: (id) => keys.get(id),
      now,
      onConnection: (socket) => { sampler.tap?.exclude(socket) },
      // The subscriber is that member: the fleet's partition cuts its connection as the member's own.
      connect: fleet.mqttFaults.connectFor(member)
    }, onArrival)
  }
  const node = fleet.devices[index]?.device?.node
  if (node === undefined) throw new RangeError(`the peer subscriber, member ${index}, has no mesh node in a ${mode} fleet of ${fleet.devices.length}`)
  return meshPeer(node, onArrival)
}
