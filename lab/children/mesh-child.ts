/**
 * One iotmesh node in a child process, driven over IPC. It speaks the protocol of
 * ../shared/anchors-bench (README "Running B/M against another mesh implementation"), so the same
 * program is the anchors adapter:
 *
 *   ANCHORS_P2P_NODE=$PWD/dist/lab/children/mesh-child.js node ../shared/anchors-bench/bench.mjs
 *
 * and the mesh node process of `iotmesh experiment latency`, of our own benchmarks and of the
 * multi-process tests. Environment:
 *   IOTMESH_CHILD_HOST   address to listen on (default 127.0.0.1)
 *   IOTMESH_CHILD_MDNS   "1" to announce and browse with mDNS (only inside a private namespace)
 *   IOTMESH_CHILD_FLEET  fleet name (default "default")
 *   IOTMESH_CHILD_NAME   the device's name (its DNS-SD instance name)
 *   IOTMESH_CHILD_KEEPALIVE_INTERVAL, IOTMESH_CHILD_KEEPALIVE_TIMEOUT   link keepalive, ms (default 10 s / 30 s)
 *   IOTMESH_CHILD_SYNC_INTERVAL   routing DIGEST interval, ms (default 2 s)
 *   IOTMESH_CHILD_DATA_BUDGET     frames a second one neighbour, and one origin, may send (routing budgets.data and
 *                        originRate, rate and burst; default the node's, 5,000/s and 500/s): benchmarks that measure
 *                        how fast a node takes frames in raise it
 *   IOTMESH_CHILD_RELAY_EARLY "1" to relay frames before verifying them (routing `relayBeforeVerify`; default off)
 *   IOTMESH_CHILD_EVENTS "1" to also emit, for tests: {ev:'link', peer, up} when a link opens or
 *                        closes, {ev:'drop', code, origin?, seq?, from?} for every refused message,
 *                        and {ev:'state', peers, invalid} whenever the peer list (node.peers()) or
 *                        discovery's invalid counts change (MeshNode has no event for those).
 * Besides the anchors' commands, for tests: `stream {every, count?}` publishes `{n:'i', v}` every
 * `every` ms until `streamStop`, which answers `{seqs}`; `info` also answers `publicKey` (base64url);
 * `reading` events carry `from`, the neighbour the reading came through. `eld` answers the event
 * loop's delay since the last `eld` (perf_hooks.monitorEventLoopDelay: how late its 10 ms timer ran; p50, p99,
 * max in µs), for benchmarks.
 */
import dc from 'node:diagnostics_channel'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import type { Socket } from 'node:net'
import { MeshNode, encodeData, encodeMessage, MSG } from '../../mesh/index.js'
import { encodeFrame, generateKeyPair, toBase64url, type KeyPair } from '../../shared/index.js'
import { anchorsPayload, Windowed, type TputRequest } from './anchors.js'

const now = (): bigint => process.hrtime.bigint()
/** The anchors' payload as a plain Uint8Array (a reading's `vd`). */
const makePayload = (seq: number, tag: number): Uint8Array => new Uint8Array(anchorsPayload(seq, tag))

const sockets: Socket[] = []
const track = ({ socket }: { socket: Socket }): void => { sockets.push(socket) }
dc.subscribe('net.client.socket', track as (m: unknown) => void)
dc.subscribe('net.server.socket', track as (m: unknown) => void)

const send = (m: unknown): void => { process.send?.(m) }
const loopDelay = monitorEventLoopDelay({ resolution: 10 })
loopDelay.enable()
process.on('disconnect', () => process.exit(0))

/** A non-negative number of ms from the environment, or undefined when unset. */
function envMs (name: string): number | undefined {
  const text = process.env[name]
  if (text === undefined || text === '') return undefined
  const ms = Number(text)
  if (!Number.isFinite(ms) || ms < 0) throw new Error(`${name}=${text} is not a number of milliseconds`)
  return ms
}
const keepaliveInterval = envMs('IOTMESH_CHILD_KEEPALIVE_INTERVAL')
const keepaliveTimeout = envMs('IOTMESH_CHILD_KEEPALIVE_TIMEOUT')
const syncInterval = envMs('IOTMESH_CHILD_SYNC_INTERVAL')
const dataBudget = ((text) => {
  if (text === undefined || text === '') return undefined
  const n = Number(text)
  if (!Number.isFinite(n) || n < 1) throw new Error(`IOTMESH_CHILD_DATA_BUDGET=${text} is not a number of frames a second`)
  return n
})(process.env.IOTMESH_CHILD_DATA_BUDGET)

const keys = generateKeyPair()
const host = process.env.IOTMESH_CHILD_HOST ?? '127.0.0.1'
const node = new MeshNode({
  host,
  fleet: process.env.IOTMESH_CHILD_FLEET ?? 'default',
  mdns: process.env.IOTMESH_CHILD_MDNS === '1',
  dialTarget: process.env.IOTMESH_CHILD_MDNS === '1' ? 3 : 0,
  maxLinks: 64,
  // Peers dialed by `dial` come after construction, past the default outbound slots (8 with no static peers): the
  // anchors' M section has node i dial nodes 0..i-1 (9 of them for a 10-node full mesh).
  maxOutbound: 64,
  announceLinks: 0,
  link: {
    ...(keepaliveInterval === undefined ? {} : { keepaliveInterval }),
    ...(keepaliveTimeout === undefined ? {} : { keepaliveTimeout })
  },
  routing: {
    ...(syncInterval === undefined ? {} : { syncInterval }),
    ...(process.env.IOTMESH_CHILD_RELAY_EARLY === '1' ? { relayBeforeVerify: true } : {}),
    ...(dataBudget === undefined ? {} : { budgets: { data: { rate: dataBudget, burst: dataBudget } }, originRate: { rate: dataBudget, burst: dataBudget } })
  },
  ...(process.env.IOTMESH_CHILD_NAME === undefined ? {} : { name: process.env.IOTMESH_CHILD_NAME })
}, { keys })
if (process.env.IOTMESH_CHILD_EVENTS === '1') watch()
await node.start()

/** Test events (IOTMESH_CHILD_EVENTS=1); attached before start so that no link goes unreported. */
function watch (): void {
  node.on('link:open', (peer) => { send({ ev: 'link', peer, up: true }); report() })
  node.on('link:close', (peer) => { send({ ev: 'link', peer, up: false }); report() })
  node.on('drop', (info) => { send({ ev: 'drop', ...info }) })
  node.on('peer:discovered', () => { report() })
  let last = ''
  // Discovery forgets peers (goodbye, expiry) and counts refused announcements without a node
  // event: look again every 50 ms and report only changes.
  const report = (): void => {
    if (!node.running && last !== '') return
    const peers = node.peers().map((p) => ({ id: p.id, linked: p.linked, source: p.source, port: p.port, addresses: p.addresses })).sort((a, b) => a.id < b.id ? -1 : 1)
    const invalid = Object.fromEntries(node.counters.discovery.flatMap((d) => Object.entries(d.invalid)).filter(([, n]) => n > 0))
    const text = JSON.stringify({ peers, invalid })
    if (text === last) return
    last = text
    send({ ev: 'state', peers, invalid })
  }
  setInterval(report, 50).unref()
}

let rxMode: 'each' | 'count' = 'each'
let every = 50
let rxCount = 0
const seen = new Map<string, number>() // origin -> deliveries, for tests
void (async () => {
  for await (const d of node.subscribe('#', { buffer: 100_000 })) {
    if (d.origin === node.id) continue // like gossipsub's emitSelf: false
    seen.set(d.origin, (seen.get(d.origin) ?? 0) + 1)
    const vd = d.records[0]?.vd
    if (vd === undefined || vd.length < 13) {
      send({ ev: 'reading', origin: d.origin, seq: d.seq, hops: d.hops, from: d.from, records: d.records.map((r) => ({ n: r.n, v: r.v })) })
      continue
    }
    const t = now()
    const b = Buffer.from(vd.buffer, vd.byteOffset, vd.byteLength)
    const ts = b.readBigUInt64BE(0)
    if (rxMode === 'each') send({ ev: 'rx', seq: b.readUInt32BE(8), tag: b[12], lat: Number(t - ts), hops: d.hops })
    else if (++rxCount % every === 0) send({ ev: 'cnt', n: rxCount, t: String(t) })
  }
})()

let streaming: { timer: NodeJS.Timeout, seqs: number[] } | undefined

/** Publishes `{n:'i', v:k}` every `every` ms (`count` times at most) until `streamStop`, which returns the sequence numbers. */
function stream ({ every: ms, count = Infinity }: { every: number, count?: number }): unknown {
  if (streaming !== undefined) throw new Error('already streaming')
  const seqs: number[] = []
  const timer = setInterval(() => {
    if (seqs.length < count) seqs.push(node.publish('telemetry', [{ n: 'i', v: seqs.length }]).seq)
  }, ms)
  streaming = { timer, seqs }
  return {}
}

const windowed = new Windowed()
const tput = async (m: TputRequest): Promise<unknown> => await windowed.run(m, (seq, tag) => {
  node.publish('telemetry', [{ n: 'p', vd: makePayload(seq, tag) }])
})

/** Pushes pre-signed frames from `origins` devices straight down every link, as fast as links take them. */
async function blast ({ n, origins }: { n: number, origins: number }): Promise<unknown> {
  const signers: KeyPair[] = Array.from({ length: origins }, () => generateKeyPair())
  const frames = Array.from({ length: n }, (_, i) => encodeData(1, encodeFrame({ keys: signers[i % origins] as KeyPair, seq: i + 1, records: [{ n: 'p', vd: makePayload(i, 9) }] })))
  const links = [...node.links.values()]
  for (const link of links) link.send(encodeMessage({ kind: MSG.KEY, keys: signers.map((s) => s.publicKey) }))
  const t0 = now()
  for (const frame of frames) {
    for (const link of links) {
      while (!link.writable) await link.next('drain')
      link.send(frame)
    }
  }
  return { sent: n, t0: String(t0) }
}

const handlers: Record<string, (m: Record<string, unknown>) => Promise<unknown>> = {
  info: async () => ({ peerId: node.id, publicKey: toBase64url(keys.publicKey), addrs: [`${node.address?.host === '0.0.0.0' ? '127.0.0.1' : node.address?.host}:${node.address?.port}`] }),
  dial: async ({ addrs }) => {
    for (const a of addrs as string[]) node.addPeer(a)
    return { conns: node.links.size }
  },
  subscribe: async () => ({}),
  status: async () => ({ subs: node.links.size, mesh: node.links.size, conns: node.links.size }),
  rxmode: async ({ mode, every: e }) => { rxMode = mode as 'each' | 'count'; every = (e as number | undefined) ?? 50; rxCount = 0; return {} },
  pub: async ({ seq, tag }) => { node.publish('telemetry', [{ n: 'p', vd: makePayload(seq as number, tag as number) }]); return { recipients: node.links.size } },
  publish: async ({ records }) => node.publish('telemetry', records as never).seq,
  tput: async (m) => await tput(m as never),
  blast: async (m) => await blast(m as never),
  stream: async (m) => stream(m as never),
  streamStop: async () => {
    const current = streaming
    streaming = undefined
    if (current !== undefined) clearInterval(current.timer)
    return { seqs: current?.seqs ?? [] }
  },
  peers: async () => node.peers(),
  eld: async () => {
    // The histogram holds the time between the monitor's 10 ms ticks: the delay is what is beyond 10 ms.
    const us = (ns: number): number => Math.max(0, Math.round(ns / 1000) - 10_000)
    const res = { p50_us: us(loopDelay.percentile(50)), p99_us: us(loopDelay.percentile(99)), max_us: us(loopDelay.max) }
    loopDelay.reset()
    return res
  },
  seen: async () => Object.fromEntries(seen),
  counters: async () => node.counters,
  stats: async () => {
    let read = 0
    let written = 0
    for (const s of sockets) { read += s.bytesRead; written += s.bytesWritten }
    const c = node.counters
    const u = process.cpuUsage()
    return {
      cpuUs: u.user + u.system,
      userUs: u.user,
      sock: { read, written, sockets: sockets.length },
      metrics: { gossipsub_rpc_sent_bytes_total: c.bytesOut, gossipsub_msg_received_prevalidation_total: c.framesIn, gossipsub_pre_validation_duplicate_total: c.duplicates },
      rss: process.memoryUsage().rss,
      relay: { relayed: c.relayed, relayedEarly: c.relayedEarly, earlyForgeries: c.earlyForgeries }
    }
  },
  stop: async () => { await node.stop(); setTimeout(() => process.exit(0), 20); return {} }
}

process.on('message', (m: Record<string, unknown>) => {
  if (m.cmd === 'ack') { windowed.ack(m.n as number); return }
  if (m.cmd === 'pubfast') { node.publish('telemetry', [{ n: 'p', vd: makePayload(m.seq as number, m.tag as number) }]); return }
  const handler = handlers[m.cmd as string]
  if (handler === undefined) { send({ id: m.id, ok: false, err: `unknown command ${String(m.cmd)}` }); return }
  handler(m).then((res) => send({ id: m.id, ok: true, res }), (err: Error) => send({ id: m.id, ok: false, err: String(err.stack ?? err) }))
})
send({ ev: 'ready', id: node.id })
