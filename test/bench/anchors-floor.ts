/**
 * The floor of the anchors harness (../shared/anchors-bench, README "Running B/M against another
 * mesh implementation"): a node that speaks the harness's adapter protocol with no iotmesh code on
 * the path, so the harness's sections B (one hop) and M (one publisher, every other node
 * receiving) measure what any design that signs at the publisher and verifies at each receiver,
 * over direct TCP links between processes, cannot go below on this machine:
 *
 *   ANCHORS_P2P_NODE=$PWD/dist/test/bench/anchors-floor.js node ../shared/anchors-bench/bench.mjs
 *
 * Each publish signs the harness's 110-byte payload once with Ed25519 (node:crypto, as iotmesh
 * does: shared/node.ts) and writes the same 174-byte record (payload, signature) to every link;
 * each receiver verifies it with the sender's key and reports the delivery over IPC as the
 * harness asks (`rx` per message, or `cnt` every `every`). A link is a plain TCP connection with
 * Nagle off whose first 32 bytes, each way, are the sender's public key. What it leaves out is
 * what the floor is the floor of: no framing beyond a fixed size, no encryption of the link, no
 * COSE or SenML, no routing, replay window, budgets or history, no acknowledgement.
 */
import { createServer, connect, type Socket } from 'node:net'
import { generateKeyPair } from '../../shared/index.js'
import { nodeEd25519 } from '../../shared/node.js'
import { ANCHORS_PAYLOAD_BYTES as PAYLOAD, anchorsPayload, Windowed, type TputRequest } from '../../lab/children/anchors.js'

const now = (): bigint => process.hrtime.bigint()
const send = (m: unknown): void => { process.send?.(m) }
process.on('disconnect', () => process.exit(0))

const KEY = 32
const RECORD = PAYLOAD + 64

const keys = generateKeyPair()
const links: Socket[] = []
let rxMode: 'each' | 'count' = 'each'
let every = 50
let received = 0

/** One signed record, written to every link. */
function publish (seq: number, tag: number): void {
  const p = anchorsPayload(seq, tag)
  const record = Buffer.concat([p, nodeEd25519.sign(p, keys.secretKey)])
  for (const link of links) link.write(record)
}

/** A link, either end: our key first, then the peer's key, then its records, each verified. */
function open (socket: Socket): void {
  socket.setNoDelay(true)
  socket.write(keys.publicKey)
  links.push(socket)
  let peerKey: Uint8Array | undefined
  let pending = Buffer.alloc(0)
  socket.on('data', (chunk: Buffer) => {
    let buf = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
    if (peerKey === undefined) {
      if (buf.length < KEY) { pending = Buffer.from(buf); return }
      peerKey = new Uint8Array(buf.subarray(0, KEY))
      buf = buf.subarray(KEY)
    }
    while (buf.length >= RECORD) {
      const p = buf.subarray(0, PAYLOAD)
      if (nodeEd25519.verify(buf.subarray(PAYLOAD, RECORD), p, peerKey)) deliver(p)
      else send({ ev: 'bad' })
      buf = buf.subarray(RECORD)
    }
    pending = buf.length === 0 ? Buffer.alloc(0) : Buffer.from(buf)
  })
  socket.on('error', () => { socket.destroy() })
}

function deliver (p: Buffer): void {
  const t = now()
  if (rxMode === 'each') send({ ev: 'rx', seq: p.readUInt32BE(8), tag: p[12], lat: Number(t - p.readBigUInt64BE(0)) })
  else if (++received % every === 0) send({ ev: 'cnt', n: received, t: String(t) })
}

const server = createServer({ noDelay: true }, open)
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))

const windowed = new Windowed()

const handlers: Record<string, (m: Record<string, unknown>) => Promise<unknown>> = {
  info: async () => ({ peerId: String(process.pid), addrs: [`127.0.0.1:${(server.address() as { port: number }).port}`] }),
  dial: async ({ addrs }) => {
    for (const a of addrs as string[]) {
      const [host, port] = a.split(':')
      const socket = connect({ host, port: Number(port), noDelay: true })
      await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
      open(socket)
    }
    return { conns: links.length }
  },
  subscribe: async () => ({}),
  status: async () => ({ subs: links.length, mesh: links.length, conns: links.length }),
  rxmode: async ({ mode, every: e }) => { rxMode = mode as 'each' | 'count'; every = (e as number | undefined) ?? 50; received = 0; return {} },
  pub: async ({ seq, tag }) => { publish(seq as number, tag as number); return { recipients: links.length } },
  tput: async (m) => await windowed.run(m as unknown as TputRequest, publish),
  stats: async () => {
    let read = 0
    let written = 0
    for (const s of links) { read += s.bytesRead; written += s.bytesWritten }
    const u = process.cpuUsage()
    return { cpuUs: u.user + u.system, userUs: u.user, sock: { read, written }, metrics: {}, rss: process.memoryUsage().rss }
  },
  stop: async () => { setTimeout(() => process.exit(0), 20); return {} }
}

process.on('message', (m: Record<string, unknown>) => {
  if (m.cmd === 'ack') { windowed.ack(m.n as number); return }
  if (m.cmd === 'pubfast') { publish(m.seq as number, m.tag as number); return }
  const handler = handlers[m.cmd as string]
  if (handler === undefined) { send({ id: m.id, ok: false, err: `unknown command ${String(m.cmd)}` }); return }
  handler(m).then((res) => send({ id: m.id, ok: true, res }), (err: Error) => send({ id: m.id, ok: false, err: String(err.stack ?? err) }))
})
send({ ev: 'ready' })
