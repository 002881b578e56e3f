import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createMemoryOutbox, openDiskOutbox, type DeliveryPath, type Outbox } from '../../firmware-sim/index.js'
import { tempDir } from './support.js'

/**
 * Model-based: random puts, acks (in any order, on either path) and restarts, checked after every
 * step against a plain model of what each path still has to deliver, with the bounds applied.
 */
type Op = { kind: 'put', size: number, gap: number } | { kind: 'ack', path: DeliveryPath, pick: number } | { kind: 'restart' }

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('put' as const), size: fc.integer({ min: 1, max: 60 }), gap: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('ack' as const), path: fc.constantFrom<DeliveryPath>('mesh', 'broker'), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'restart' as const }) }
)

const PATHS: DeliveryPath[] = ['mesh', 'broker']
const LIMITS = { maxFrames: 12, maxBytes: 400 }

class Model {
  held: Array<{ seq: number, size: number, acked: Set<DeliveryPath> }> = []
  highWater = 0
  dropped = 0
  put (seq: number, size: number): void {
    while (this.held.length > 0 && (this.held.length + 1 > LIMITS.maxFrames || this.bytes() + size > LIMITS.maxBytes)) {
      this.held.shift()
      this.dropped++
    }
    this.held.push({ seq, size, acked: new Set() })
    this.highWater = seq
  }

  ack (path: DeliveryPath, seq: number): void {
    this.held.find((h) => h.seq === seq)?.acked.add(path)
    this.held = this.held.filter((h) => h.acked.size < PATHS.length)
  }

  bytes (): number { return this.held.reduce((s, h) => s + h.size, 0) }
  pending (path: DeliveryPath): number[] { return this.held.filter((h) => !h.acked.has(path)).map((h) => h.seq) }
}

async function pendingOf (outbox: Outbox, path: DeliveryPath): Promise<number[]> {
  const out: number[] = []
  for await (const { seq, frame } of outbox.pending(path)) {
    expect(frame[0]).toBe(seq & 0xff)
    out.push(seq)
  }
  return out
}

async function run (ops: Op[], open: () => Promise<Outbox>, restarts: boolean): Promise<void> {
  const model = new Model()
  let outbox = await open()
  let seq = 0
  try {
    for (const step of ops) {
      if (step.kind === 'put') {
        seq += step.gap
        await outbox.put(seq, new Uint8Array(step.size).fill(seq & 0xff))
        model.put(seq, step.size)
      } else if (step.kind === 'ack') {
        const candidates = model.pending(step.path)
        const target = candidates.length === 0 ? seq + 1 : candidates[step.pick % candidates.length] as number
        await outbox.ack(step.path, target)
        model.ack(step.path, target)
      } else if (restarts) {
        await outbox.close()
        outbox = await open()
      }
      for (const path of PATHS) expect(await pendingOf(outbox, path)).toEqual(model.pending(path))
      expect(outbox.stats()).toMatchObject({ frames: model.held.length, bytes: model.bytes(), dropped: model.dropped })
      expect(outbox.highWater).toBe(model.highWater)
    }
  } finally {
    await outbox.close()
  }
}

describe('outbox against a model', () => {
  it('memory', async () => {
    await fc.assert(fc.asyncProperty(fc.array(op, { maxLength: 60 }), async (ops) => {
      await run(ops, async () => createMemoryOutbox({ paths: PATHS, ...LIMITS }), false)
    }), { numRuns: 200 })
  })

  it('disk, with restarts', async () => {
    await fc.assert(fc.asyncProperty(fc.array(op, { maxLength: 40 }), async (ops) => {
      const dir = await tempDir()
      await run(ops, () => openDiskOutbox({ dir, paths: PATHS, ...LIMITS, segmentBytes: 128, fsync: 'never' }), true)
    }), { numRuns: 100 })
  })
})
