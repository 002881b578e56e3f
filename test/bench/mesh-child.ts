/**
 * One iotmesh node in a child process, driven over IPC. It speaks the protocol of
 * ../shared/anchors-bench (README "Running B/M against another mesh implementation"), so the same
 * program is the anchors adapter:
 *
 *   ANCHORS_P2P_NODE=$PWD/dist/test/bench/mesh-child.js node ../shared/anchors-bench/bench.mjs
 *
 * and the device process of our own benchmarks and multi-process tests. Environment:
 *   IOTMESH_CHILD_HOST   address to listen on (default 127.0.0.1)
 *   IOTMESH_CHILD_MDNS   "1" to announce and browse with mDNS (only inside a private namespace)
 *   IOTMESH_CHILD_FLEET  fleet name (default "default")
 */
import dc from 'node:diagnostics_channel'
import type { Socket } from 'node:net'
import { MeshNode, encodeData, encodeMessage, MSG } from '../../mesh/index.js'
import { encodeFrame, generateKeyPair, type KeyPair } from '../../shared/index.js'

const now = (): bigint => process.hrtime.bigint()
const PAYLOAD_BYTES = 110

/** The anchors' 110-byte payload: u64 send time (ns), u32 seq, u8 tag, filler. */
function makePayload (seq: number, tag: number): Uint8Array {
  const b = Buffer.alloc(PAYLOAD_BYTES)
  b.writeBigUInt64BE(now(), 0)
  b.writeUInt32BE(seq >>> 0, 8)
  b[12] = tag & 0xff
  for (let i = 13; i < PAYLOAD_BYTES; i++) b[i] = (i * 37 + 11) & 0xff
  return new Uint8Array(b)
}

const sockets: Socket[] = []
const track = ({ socket }: { socket: Socket }): void => { sockets.push(socket) }
dc.subscribe('net.client.socket', track as (m: unknown) => void)
dc.subscribe('net.server.socket', track as (m: unknown) => void)

const send = (m: unknown): void => { process.send?.(m) }
process.on('disconnect', () => process.exit(0))

const keys = generateKeyPair()
const host = process.env.IOTMESH_CHILD_HOST ?? '127.0.0.1'
const node = new MeshNode({
  host,
  fleet: process.env.IOTMESH_CHILD_FLEET ?? 'default',
  mdns: process.env.IOTMESH_CHILD_MDNS === '1',
  dialTarget: process.env.IOTMESH_CHILD_MDNS === '1' ? 3 : 0,
  maxLinks: 64,
  announceLinks: 0,
  ...(process.env.IOTMESH_CHILD_NAME === undefined ? {} : { name: process.env.IOTMESH_CHILD_NAME })
}, { keys })
await node.start()

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
      send({ ev: 'reading', origin: d.origin, seq: d.seq, hops: d.hops, records: d.records.map((r) => ({ n: r.n, v: r.v })) })
      continue
    }
    const t = now()
    const b = Buffer.from(vd.buffer, vd.byteOffset, vd.byteLength)
    const ts = b.readBigUInt64BE(0)
    if (rxMode === 'each') send({ ev: 'rx', seq: b.readUInt32BE(8), tag: b[12], lat: Number(t - ts), hops: d.hops })
    else if (++rxCount % every === 0) send({ ev: 'cnt', n: rxCount, t: String(t) })
  }
})()

let acked = 0
let ackWake: (() => void) | undefined

async function tput ({ n, window, capMs, tag }: { n: number, window: number, capMs: number, tag: number }): Promise<unknown> {
  acked = 0
  let sent = 0
  const t0 = now()
  const cap = BigInt(capMs) * 1_000_000n
  while (sent < n && now() - t0 < cap) {
    if (sent - acked >= window) {
      await new Promise<void>((resolve) => { ackWake = resolve; setTimeout(resolve, 200) })
      ackWake = undefined
      continue
    }
    node.publish('telemetry', [{ n: 'p', vd: makePayload(sent, tag) }])
    sent++
    if (sent % 64 === 0) await new Promise((resolve) => setImmediate(resolve)) // let links flush
  }
  return { sent, errors: 0, t0: String(t0) }
}

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
  info: async () => ({ peerId: node.id, addrs: [`${node.address?.host === '0.0.0.0' ? '127.0.0.1' : node.address?.host}:${node.address?.port}`] }),
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
  peers: async () => node.peers(),
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
      sock: { read, written, sockets: sockets.length },
      metrics: { gossipsub_rpc_sent_bytes_total: c.bytesOut, gossipsub_msg_received_prevalidation_total: c.framesIn, gossipsub_pre_validation_duplicate_total: c.duplicates },
      rss: process.memoryUsage().rss
    }
  },
  stop: async () => { await node.stop(); setTimeout(() => process.exit(0), 20); return {} }
}

process.on('message', (m: Record<string, unknown>) => {
  if (m.cmd === 'ack') { acked = m.n as number; ackWake?.(); return }
  if (m.cmd === 'pubfast') { node.publish('telemetry', [{ n: 'p', vd: makePayload(m.seq as number, m.tag as number) }]); return }
  const handler = handlers[m.cmd as string]
  if (handler === undefined) { send({ id: m.id, ok: false, err: `unknown command ${String(m.cmd)}` }); return }
  handler(m).then((res) => send({ id: m.id, ok: true, res }), (err: Error) => send({ id: m.id, ok: false, err: String(err.stack ?? err) }))
})
send({ ev: 'ready', id: node.id })
