import { Child } from './child.js'
import { percentile, round } from './measure.js'

/**
 * The floor of one signed hop on this machine: one Ed25519 sign, one verify and one loopback TCP
 * round trip between two processes (Nagle off), with no iotmesh code in between (floor-child.ts).
 * Sampled in the same loop as the paths it is the floor of (paths.ts), one sample at a time
 * between theirs, so that the load of the moment hits both alike. Also a "raw signed hop": the
 * same sign, one one-way TCP write and the verify, timed end to end as the paths are.
 */
export const FLOOR_CHILD = new URL('./floor-child.js', import.meta.url)

export interface FloorSamples {
  sign: number[]
  verify: number[]
  rtt: number[]
  raw: number[]
}

export class FloorPair {
  readonly sender = new Child(FLOOR_CHILD, { IOTMESH_BENCH_ROLE: 'sender' })
  readonly receiver = new Child(FLOOR_CHILD, { IOTMESH_BENCH_ROLE: 'receiver' })
  readonly samples: FloorSamples = { sign: [], verify: [], rtt: [], raw: [] }

  async start (): Promise<void> {
    await Promise.all([this.sender.ready, this.receiver.ready])
    const { port, secretKey } = await this.receiver.call<{ port: number, secretKey: string }>('info')
    await this.sender.call('connect', { port, secretKey })
  }

  /** One round trip, in ms (undefined when lost); `keep` false for a warm-up. */
  async rtt (seq: number, keep: boolean): Promise<number | undefined> {
    const m = await this.#await(this.sender, 'rtt', seq, () => { this.sender.send({ cmd: 'ping', seq }) })
    if (m === undefined) return undefined
    if (keep) this.samples.rtt.push((m.lat as number) / 1e6)
    return (m.lat as number) / 1e6
  }

  /** One raw signed hop, in ms; keeps its sign and verify times too. */
  async raw (seq: number, keep: boolean): Promise<number | undefined> {
    const m = await this.#await(this.receiver, 'rx', seq, () => { this.sender.send({ cmd: 'pubfast', seq, tag: 4 }) })
    if (m === undefined) return undefined
    if (keep) {
      this.samples.raw.push((m.lat as number) / 1e6)
      this.samples.sign.push((m.signNs as number) / 1e6)
      this.samples.verify.push((m.verifyNs as number) / 1e6)
    }
    return (m.lat as number) / 1e6
  }

  async #await (child: Child, ev: string, seq: number, go: () => void): Promise<Record<string, unknown> | undefined> {
    return await new Promise((resolve) => {
      const timer = setTimeout(() => { child.onEvent = undefined; resolve(undefined) }, 1000)
      child.onEvent = (m) => {
        if (m.ev !== ev || m.seq !== seq) return
        clearTimeout(timer)
        child.onEvent = undefined
        resolve(m)
      }
      go()
    })
  }

  /** The floor (sum of the medians of sign, verify and round trip, ms) and its parts. */
  summary (): Record<string, unknown> & { floor_ms: number } {
    const s = this.samples
    const p50 = (xs: number[]): number => percentile(xs, 50)
    const floor = p50(s.sign) + p50(s.verify) + p50(s.rtt)
    return {
      floor_ms: round(floor, 4),
      sign_p50_ms: round(p50(s.sign), 4),
      verify_p50_ms: round(p50(s.verify), 4),
      tcp_rtt: { p50_ms: round(p50(s.rtt), 4), p99_ms: round(percentile(s.rtt, 99), 4) },
      raw_signed_hop: { p50_ms: round(p50(s.raw), 4), p99_ms: round(percentile(s.raw, 99), 4) },
      samples: s.rtt.length
    }
  }

  async stop (): Promise<void> {
    await Promise.all([this.sender.stop(), this.receiver.stop()])
  }
}

/** A path's p50 and p99 as ratios to the floor. */
export function overFloor (path: { p50_ms: number, p99_ms: number }, floorMs: number): { p50: number, p99: number } {
  return { p50: round(path.p50_ms / floorMs, 2), p99: round(path.p99_ms / floorMs, 2) }
}

/**
 * Section "floor" alone: `npm run bench -- --only floor`. The paths section measures the same
 * floor in its own loop and prints every path over it.
 */
export async function benchFloor (quick: boolean): Promise<Record<string, unknown>> {
  const n = quick ? 300 : 2000
  const warmup = quick ? 50 : 200
  const pair = new FloorPair()
  try {
    await pair.start()
    let lost = 0
    for (let i = 0; i < warmup + n; i++) {
      const keep = i >= warmup
      if (await pair.raw(i, keep) === undefined && keep) lost++
      if (await pair.rtt(i, keep) === undefined && keep) lost++
    }
    const summary = pair.summary()
    const raw = summary.raw_signed_hop as { p50_ms: number, p99_ms: number }
    return { floor: { ...summary, lost, raw_signed_hop_over_floor: overFloor(raw, summary.floor_ms) } }
  } finally {
    await pair.stop()
  }
}
