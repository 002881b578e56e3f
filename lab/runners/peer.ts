import type { Socket } from 'node:net'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { decodeFrame, openFrame, topicFilters, type DeviceId, type PublicKey } from '../../shared/index.js'
import type { MeshNode, Subscription } from '../../mesh/index.js'

/**
 * The peer subscriber of the failover experiment: a device of the fleet that takes every reading
 * of the others, beside the gateway. Its arrivals are stamped when the reading reaches the
 * subscriber's application, verified end to end with the origin's key (never trusting a relay or
 * the broker).
 *
 * - mesh and hybrid: a subscription on the peer device's own mesh node (`iotmesh/#`), which the
 *   node declares to the mesh, so readings are routed to it as to the gateway; the node has
 *   verified each frame before delivering it.
 * - broker: an MQTT client of the gateway's broker on `iotmesh/<fleet>/+/telemetry` that opens
 *   every frame with the origin's public key. It reconnects every 100 ms while the broker is
 *   down; the embedded broker keeps no session across a restart, so what devices send before it
 *   has subscribed again does not reach it (the figures show it). It stands for a fleet member, so
 *   the fleet's faults apply to its connection (`connect`: Fleet.mqttFaults.connectFor): a
 *   partition that cuts that member off the broker cuts the subscriber off too.
 */

export interface PeerArrival { origin: DeviceId, seq: number, at: number }

export interface PeerSubscriber {
  /** Subscribed (broker: connected and subscribed; mesh: always, once started). */
  readonly ready: boolean
  /** Frames that failed verification (broker) or were dropped by a full buffer (mesh). */
  readonly refused: number
  stop (): Promise<void>
}

export function meshPeer (node: MeshNode, onArrival: (a: PeerArrival) => void): PeerSubscriber {
  const subscription: Subscription = node.subscribe('iotmesh/#', { buffer: 1 << 16 })
  void (async () => {
    for await (const d of subscription) onArrival({ origin: d.origin, seq: d.seq, at: d.receivedAt })
  })()
  return {
    get ready () { return !subscription.closed },
    get refused () { return subscription.dropped },
    async stop () { subscription.close() }
  }
}

export interface MqttPeerInit {
  url: string
  fleet: string
  /** Public keys of the fleet's devices, by id. */
  keyOf: (id: DeviceId) => PublicKey | undefined
  now: () => number
  /** An MQTT user of the gateway (its `credentials`): the secure broker refuses anonymous clients. */
  username?: string
  password?: string
  /** Told of each connection's socket (so traffic counters can leave the experiment's own client out). */
  onConnection?: (socket: Socket) => void
  /** mqtt.js's `connect`, or one that runs it over the fleet's faults (default mqtt.connect). */
  connect?: (url: string, options: IClientOptions) => MqttClient
}

export async function mqttPeer (init: MqttPeerInit, onArrival: (a: PeerArrival) => void): Promise<PeerSubscriber> {
  let ready = false
  let refused = 0
  const client: MqttClient = (init.connect ?? mqtt.connect)(init.url, {
    clientId: `iotmesh-experiment-peer-${process.pid}`,
    reconnectPeriod: 100,
    connectTimeout: 2000,
    clean: true,
    ...(init.username === undefined ? {} : { username: init.username, password: init.password ?? '' })
  })
  client.on('error', () => {}) // refused connections while the broker is down: it retries
  client.on('close', () => { ready = false })
  client.on('connect', () => {
    // Over the fleet's fault layer the stream wraps the socket (FaultyMqttStream.socket).
    const stream = client.stream as Socket & { socket?: Socket }
    init.onConnection?.(stream.socket ?? stream)
    client.subscribe(topicFilters.telemetry(init.fleet), { qos: 1 }, (err) => { ready = err === null || err === undefined })
  })
  client.on('message', (_topic, payload) => {
    const at = init.now()
    try {
      const origin = decodeFrame(payload).origin
      const key = init.keyOf(origin)
      if (key === undefined) { refused++; return }
      const frame = openFrame(payload, key)
      onArrival({ origin: frame.origin, seq: frame.seq, at })
    } catch {
      refused++
    }
  })
  return {
    get ready () { return ready },
    get refused () { return refused },
    async stop () { await client.endAsync(true).catch(() => {}) }
  }
}
