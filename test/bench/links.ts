/**
 * Link throughput with ~100-byte telemetry messages, sent as fast as a link takes them (honouring
 * backpressure): encrypted TCP links on loopback against a baseline of the same length-prefixed
 * frames on a raw socket without crypto, measured in alternating rounds (median); memory links;
 * the cipher per frame; handshakes. Loopback only. A section for `run.ts`
 * (`links: benchLinks`); standalone: `node dist/test/bench/links.js [--quick]`.
 */
import { once } from 'node:events'
import { connect, createServer, type AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'
import { pathToFileURL } from 'node:url'
import { generateKeyPair } from '../../shared/index.js'
import { createTcpTransport, type Link, type Transport } from '../../mesh/links/index.js'
import { createMemoryNetwork } from '../../mesh/testing.js'
import { FrameDecoder, encodeFrame } from '../../mesh/links/framing.js'
import { ReceiveCipher, SendCipher } from '../../mesh/links/secure.js'
import { median } from './measure.js'

const MESSAGE_BYTES = 100
const keys = (n: number): ReturnType<typeof generateKeyPair> => generateKeyPair(new Uint8Array(32).fill(n))

/** Messages per second through a link, sending while `writable` and waiting for `drain`. */
async function linkRate (outbound: Link, inbound: Link, count: number): Promise<number> {
  const msg = new Uint8Array(MESSAGE_BYTES)
  let received = 0
  const done = new Promise<void>((resolve) => {
    const onMessage = (): void => { if (++received === count) { inbound.off('message', onMessage); resolve() } }
    inbound.on('message', onMessage)
  })
  const start = performance.now()
  for (let sent = 0; sent < count;) {
    while (sent < count && outbound.writable) { outbound.send(msg); sent++ }
    if (sent < count) await outbound.next('drain')
  }
  await done
  return count / (performance.now() - start) * 1000
}

/** The baseline: the same frames, plaintext, on a raw socket pair (cork per tick, as the link does). */
async function rawRate (count: number): Promise<number> {
  let received = 0
  let finish!: () => void
  const done = new Promise<void>((resolve) => { finish = resolve })
  const server = createServer({ noDelay: true }, (socket) => {
    const decoder = new FrameDecoder(1 << 16, () => { if (++received === count) finish() })
    socket.on('data', (chunk: Buffer) => { decoder.push(chunk) })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const client = connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, noDelay: true })
  await once(client, 'connect')
  const msg = new Uint8Array(MESSAGE_BYTES + 17) // the same bytes on the wire as a sealed frame
  const start = performance.now()
  for (let sent = 0; sent < count;) {
    client.cork()
    let more = true
    while (sent < count && more) { more = client.write(encodeFrame(msg)); sent++ }
    client.uncork()
    if (!more) await once(client, 'drain')
  }
  await done
  const rate = count / (performance.now() - start) * 1000
  client.destroy()
  server.close()
  return rate
}

async function linked (a: Transport, b: Transport, host: string): Promise<[Link, Link]> {
  const arrived = b.next('link')
  const outbound = await a.dial(await b.listen({ host, port: 0 }))
  const [inbound] = await arrived
  return [outbound, inbound]
}

function cipherMicros (count: number): { seal: number, open: number } {
  const tx = new SendCipher(new Uint8Array(32))
  const rx = new ReceiveCipher(new Uint8Array(32))
  const bodies: Buffer[] = []
  const decoder = new FrameDecoder(1 << 16, (body) => { bodies.push(body) })
  const msg = new Uint8Array(MESSAGE_BYTES)
  let start = performance.now()
  for (let i = 0; i < count; i++) decoder.push(tx.seal(msg))
  const seal = (performance.now() - start) * 1000 / count
  start = performance.now()
  for (const body of bodies) rx.open(body)
  return { seal, open: (performance.now() - start) * 1000 / count }
}

export async function benchLinks (quick: boolean): Promise<Record<string, unknown>> {
  const count = quick ? 20_000 : 200_000
  const rounds = quick ? 1 : 5
  // The link's own speed: no receive budget, no handshake budget (their defaults would cap what is measured).
  const unbounded = { receiveBudget: false, handshakes: { repliesPerSecond: 1_000_000 } } as const
  const a = createTcpTransport(unbounded, { keys: keys(1) })
  const b = createTcpTransport(unbounded, { keys: keys(2) })
  const [outbound, inbound] = await linked(a, b, '127.0.0.1')
  const tcp: number[] = []
  const raw: number[] = []
  for (let r = 0; r < rounds; r++) {
    tcp.push(await linkRate(outbound, inbound, count))
    raw.push(await rawRate(count))
  }
  const wireBytes = outbound.counters.bytesOut / outbound.counters.framesOut
  const handshakes = quick ? 20 : 200
  const start = performance.now()
  for (let i = 0; i < handshakes; i++) await (await a.dial(b.address!)).close()
  const handshakeMs = (performance.now() - start) / handshakes
  await Promise.all([a.close(), b.close()])

  const net = createMemoryNetwork({ seed: 1 })
  const ma = net.createTransport({ receiveBudget: false }, { keys: keys(1) })
  const mb = net.createTransport({ receiveBudget: false }, { keys: keys(2) })
  const [mo, mi] = await linked(ma, mb, 'memory')
  const memoryRates: number[] = []
  for (let r = 0; r < rounds; r++) memoryRates.push(await linkRate(mo, mi, count))
  const memory = median(memoryRates)
  await Promise.all([ma.close(), mb.close()])

  const cipher = cipherMicros(count)
  return {
    links: {
      message_bytes: MESSAGE_BYTES,
      tcp_encrypted_msgs_per_s: Math.round(median(tcp)),
      baseline_raw_tcp_frames_per_s: Math.round(median(raw)),
      tcp_vs_baseline: Number((median(tcp) / median(raw)).toFixed(2)),
      tcp_wire_bytes_per_message: Number(wireBytes.toFixed(1)),
      memory_msgs_per_s: Math.round(memory),
      seal_us: Number(cipher.seal.toFixed(2)),
      open_us: Number(cipher.open.toFixed(2)),
      handshake_ms: Number(handshakeMs.toFixed(2))
    }
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const quick = process.argv.includes('--quick')
  process.stdout.write(`${JSON.stringify(await benchLinks(quick))}\n`)
}
