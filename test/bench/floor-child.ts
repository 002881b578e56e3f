/**
 * The floor of one signed hop on this machine, in two child processes (floor.ts), no iotmesh code
 * on the path: IOTMESH_BENCH_ROLE selects
 *   receiver  a TCP server (Nagle off) that echoes ping records and verifies signed ones
 *   sender    a TCP client (Nagle off) that times one ping round trip (`ping`), or signs a 110-byte
 *             payload with Ed25519 (node:crypto) and writes it (`pubfast`)
 * Records have a fixed size: type (1), payload (110: u64 send time, u32 seq, u8 tag), signature (64),
 * the sender's signing time in ns (u32, outside the signature). A signed record's receiver verifies it
 * and reports {ev:'rx', seq, tag, lat, signNs, verifyNs}; the sender reports {ev:'rtt', seq, lat} for a ping.
 * Latencies are process.hrtime (CLOCK_MONOTONIC, one clock for every process of the machine).
 * Same IPC protocol as lab/children: {ev:'ready'}, {cmd, id} → {id, ok, res}.
 */
import { createServer, connect, type Socket } from 'node:net'
import { generateKeyPair } from '../../shared/index.js'
import { nodeEd25519 } from '../../shared/node.js'

const now = (): bigint => process.hrtime.bigint()
const send = (m: unknown): void => { process.send?.(m) }
process.on('disconnect', () => process.exit(0))

const PAYLOAD = 110
const SIG = 64
const RECORD = 1 + PAYLOAD + SIG + 4
const PING = 0x50
const SIGNED = 0x53

/** Calls `onRecord` for each whole record of the stream. */
function records (socket: Socket, onRecord: (r: Buffer) => void): void {
  let pending = Buffer.alloc(0)
  socket.on('data', (chunk: Buffer) => {
    let buf = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
    while (buf.length >= RECORD) {
      onRecord(buf.subarray(0, RECORD))
      buf = buf.subarray(RECORD)
    }
    pending = buf.length === 0 ? Buffer.alloc(0) : Buffer.from(buf)
  })
}

const role = process.env.IOTMESH_BENCH_ROLE
const handlers: Record<string, (m: Record<string, unknown>) => Promise<unknown>> = {}
const keys = generateKeyPair()

if (role === 'receiver') {
  const server = createServer({ noDelay: true }, (socket) => {
    records(socket, (r) => {
      if (r[0] === PING) { socket.write(Buffer.from(r)); return }
      const payload = r.subarray(1, 1 + PAYLOAD)
      const v0 = now()
      const ok = nodeEd25519.verify(r.subarray(1 + PAYLOAD, 1 + PAYLOAD + SIG), payload, keys.publicKey)
      const t = now()
      if (!ok) { send({ ev: 'bad' }); return }
      send({ ev: 'rx', seq: payload.readUInt32BE(8), tag: payload[12], lat: Number(t - payload.readBigUInt64BE(0)), signNs: r.readUInt32BE(1 + PAYLOAD + SIG), verifyNs: Number(t - v0) })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  handlers.info = async () => ({ port: (server.address() as { port: number }).port, secretKey: Buffer.from(keys.secretKey).toString('base64') })
} else {
  let socket: Socket | undefined
  let secretKey: Uint8Array | undefined
  handlers.connect = async ({ port, secretKey: sk }) => {
    secretKey = Buffer.from(sk as string, 'base64')
    const s = connect({ host: '127.0.0.1', port: port as number, noDelay: true })
    await new Promise<void>((resolve, reject) => { s.once('connect', resolve); s.once('error', reject) })
    records(s, (r) => { send({ ev: 'rtt', seq: r.readUInt32BE(1 + 8), lat: Number(now() - r.readBigUInt64BE(1)) }) })
    socket = s
    return {}
  }
  const record = (type: number, seq: number, tag: number): Buffer => {
    const r = Buffer.alloc(RECORD)
    r[0] = type
    r.writeBigUInt64BE(now(), 1)
    r.writeUInt32BE(seq >>> 0, 1 + 8)
    r[1 + 12] = tag & 0xff
    return r
  }
  process.on('message', (m: Record<string, unknown>) => {
    if (m.cmd === 'ping') socket?.write(record(PING, m.seq as number, 0))
    if (m.cmd !== 'pubfast' || secretKey === undefined) return
    const r = record(SIGNED, m.seq as number, m.tag as number)
    const s0 = now()
    const sig = nodeEd25519.sign(r.subarray(1, 1 + PAYLOAD), secretKey)
    r.set(sig, 1 + PAYLOAD)
    r.writeUInt32BE(Math.min(0xffff_ffff, Number(now() - s0)), 1 + PAYLOAD + SIG)
    socket?.write(r)
  })
}

handlers.stats = async () => { const u = process.cpuUsage(); return { cpuUs: u.user + u.system, userUs: u.user, systemUs: u.system } }
handlers.stop = async () => { setTimeout(() => process.exit(0), 20); return {} }
process.on('message', (m: Record<string, unknown>) => {
  const handler = typeof m.id === 'number' ? handlers[m.cmd as string] : undefined
  if (handler === undefined) return
  handler(m).then((res) => send({ id: m.id, ok: true, res }), (err: Error) => send({ id: m.id, ok: false, err: String(err.stack ?? err) }))
})
send({ ev: 'ready' })
