/**
 * What the children that speak the anchors harness's adapter protocol (../shared/anchors-bench,
 * README "Running B/M against another mesh implementation") share: its payload and its windowed
 * throughput command. Used by mesh-child.ts (iotmesh) and test/bench/anchors-floor.ts (the floor).
 */

const now = (): bigint => process.hrtime.bigint()

/** The payload's size and layout: u64 send time (ns, CLOCK_MONOTONIC), u32 seq, u8 tag, filler. */
export const ANCHORS_PAYLOAD_BYTES = 110

export function anchorsPayload (seq: number, tag: number): Buffer {
  const b = Buffer.alloc(ANCHORS_PAYLOAD_BYTES)
  b.writeBigUInt64BE(now(), 0)
  b.writeUInt32BE(seq >>> 0, 8)
  b[12] = tag & 0xff
  for (let i = 13; i < ANCHORS_PAYLOAD_BYTES; i++) b[i] = (i * 37 + 11) & 0xff
  return b
}

/** The `tput` command's arguments. */
export interface TputRequest { n: number, window: number, capMs: number, tag: number }

/**
 * `tput`: publishes while fewer than `window` messages are unacknowledged (the harness sends `ack`
 * with what the receiver counted), until `n` are sent or `capMs` passed; yields to the event loop
 * every 64 so that links flush.
 */
export class Windowed {
  #acked = 0
  #wake: (() => void) | undefined

  /** `{cmd:'ack', n}`. */
  ack (n: number): void {
    this.#acked = n
    this.#wake?.()
  }

  async run ({ n, window, capMs, tag }: TputRequest, publish: (seq: number, tag: number) => void): Promise<{ sent: number, errors: number, t0: string }> {
    this.#acked = 0
    let sent = 0
    const t0 = now()
    const cap = BigInt(capMs) * 1_000_000n
    while (sent < n && now() - t0 < cap) {
      if (sent - this.#acked >= window) {
        await new Promise<void>((resolve) => { this.#wake = resolve; setTimeout(resolve, 200) })
        this.#wake = undefined
        continue
      }
      publish(sent++, tag)
      if (sent % 64 === 0) await new Promise((resolve) => setImmediate(resolve))
    }
    return { sent, errors: 0, t0: String(t0) }
  }
}
