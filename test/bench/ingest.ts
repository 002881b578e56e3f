import { generateKeyPair } from '../../shared/index.js'
import { nodeEd25519 } from '../../shared/node.js'
import { Child, MESH_CHILD, UNBUDGETED, waitFor } from './child.js'
import { rate, round } from './measure.js'

/**
 * Section "ingest": verified frames per second one node takes in. A sender process pushes
 * pre-signed frames from 50 origins down a link as fast as the link accepts them; the receiver
 * decrypts, parses, deduplicates, verifies, stores and delivers each. Compared with the raw
 * node:crypto verify rate measured in this process just before and after.
 */
export async function benchIngest (quick: boolean): Promise<Record<string, unknown>> {
  const n = quick ? 5000 : 30_000
  const keys = generateKeyPair()
  const message = new Uint8Array(220)
  const sig = nodeEd25519.sign(message, keys.secretKey)
  const rawVerify = (): number => rate(() => nodeEd25519.verify(sig, message, keys.publicKey), quick ? 300 : 1000)
  const before = rawVerify()
  const receiver = new Child(MESH_CHILD, UNBUDGETED)
  const sender = new Child(MESH_CHILD)
  try {
    await Promise.all([receiver.ready, sender.ready])
    const info = await receiver.call<{ addrs: string[] }>('info')
    await sender.call('dial', { addrs: info.addrs })
    await waitFor('the link', async () => (await receiver.call<{ conns: number }>('status')).conns === 1)
    await receiver.call('rxmode', { mode: 'count', every: 500 })
    let last = { n: 0, t: 0n }
    const done = new Promise<void>((resolve) => {
      receiver.onEvent = (m) => {
        if (m.ev !== 'cnt') return
        last = { n: m.n as number, t: BigInt(m.t as string) }
        if (last.n >= n) resolve()
      }
    })
    const { t0 } = await sender.call<{ t0: string }>('blast', { n, origins: 50 }, 120_000)
    await Promise.race([done, new Promise((resolve) => setTimeout(resolve, 30_000))])
    const counters = await receiver.call<{ rejected: Record<string, number>, delivered: number }>('counters')
    const after = rawVerify()
    const ingest = last.n / (Number(last.t - BigInt(t0)) / 1e9)
    const raw = (before + after) / 2
    return {
      ingest: {
        frames: n,
        delivered: last.n,
        rejected: counters.rejected,
        verified_frames_per_s: Math.round(ingest),
        raw_node_verify_per_s: Math.round(raw),
        ingest_over_raw_verify: round(ingest / raw),
        goal_ingest_over_raw_verify: 0.7
      }
    }
  } finally {
    await Promise.all([receiver.stop(), sender.stop()])
  }
}
