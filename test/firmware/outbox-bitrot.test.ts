import { cp, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { beforeAll, afterAll, describe, expect, it } from 'vitest'
import { openDiskOutbox, type Outbox } from '../../firmware-sim/index.js'
import { RECORD_HEADER, SEGMENT_MAGIC, scanSegment } from '../../firmware-sim/outbox/segment.js'
import { tempDir } from './support.js'

/**
 * Bit rot in a disk outbox (issue 11: a flipped byte in record 10 of 112 truncated the file at
 * restart, 102 readings gone, the only trace `discarded: 1`). Real files, real reopen: a damaged
 * record costs that record alone, is reported with ERR_OUTBOX_CORRUPT, and the file as found is
 * kept aside as `<segment>.corrupt`.
 */

const COUNT = 112
const SIZE = 40 // frame bytes: records of 56 bytes
const RECORD = RECORD_HEADER + SIZE
const frame = (seq: number): Uint8Array => Uint8Array.from({ length: SIZE }, (_, i) => (seq * 13 + i * 7) & 0xff)

async function drain (outbox: Outbox): Promise<number[]> {
  const seqs: number[] = []
  for await (const entry of outbox.pending('mesh')) {
    expect(entry.frame).toEqual(frame(entry.seq)) // every record returned is the one put, byte for byte
    seqs.push(entry.seq)
  }
  return seqs
}

let source: string
let segment: string
let pristine: Buffer

beforeAll(async () => {
  source = await mkdtemp(join(tmpdir(), 'iotmesh-bitrot-'))
  const outbox = await openDiskOutbox({ dir: source, fsync: 'never', segmentBytes: 1024 * 1024 })
  for (let seq = 1; seq <= COUNT; seq++) await outbox.put(seq, frame(seq))
  await outbox.close()
  segment = (await readdir(source)).find((n) => n.startsWith('seg-')) as string
  pristine = await readFile(join(source, segment))
  expect(pristine.length).toBe(SEGMENT_MAGIC.length + COUNT * RECORD)
})

afterAll(async () => { await rm(source, { recursive: true, force: true }) })

/** A copy of the outbox with the given bytes xored into its segment, reopened. */
async function damaged (flips: Array<[number, number]>): Promise<{ dir: string, bytes: Buffer, outbox: Outbox }> {
  const dir = await mkdtemp(join(tmpdir(), 'iotmesh-bitrot-'))
  await cp(source, dir, { recursive: true })
  const bytes = Buffer.from(pristine)
  for (const [at, mask] of flips) bytes[at] = (bytes[at] as number) ^ mask
  await writeFile(join(dir, segment), bytes)
  return { dir, bytes, outbox: await openDiskOutbox({ dir }) }
}

/** The seq of the record holding byte `at` (0: the magic). */
const recordOf = (at: number): number => at < SEGMENT_MAGIC.length ? 0 : Math.floor((at - SEGMENT_MAGIC.length) / RECORD) + 1

describe('disk outbox: bit rot', () => {
  it('a flipped byte in record 10 of 112 costs record 10 alone, reported with ERR_OUTBOX_CORRUPT, the file kept aside', async () => {
    const at = SEGMENT_MAGIC.length + 9 * RECORD + RECORD_HEADER + 5 // a byte of frame 10
    const { dir, bytes, outbox } = await damaged([[at, 0x01]])
    try {
      const all = Array.from({ length: COUNT }, (_, i) => i + 1)
      expect(await drain(outbox)).toEqual(all.filter((s) => s !== 10))
      const stats = outbox.stats()
      expect(stats.discarded).toBe(1)
      expect(stats.corrupt).toHaveLength(1)
      expect(stats.corrupt?.[0]).toMatchObject({ code: 'ERR_OUTBOX_CORRUPT', details: { offset: SEGMENT_MAGIC.length + 9 * RECORD, bytes: RECORD, keptAs: join(dir, `${segment}.corrupt`) } })
      expect(await readFile(join(dir, `${segment}.corrupt`))).toEqual(bytes) // as found
      await outbox.put(COUNT + 1, frame(COUNT + 1))
      await outbox.close()
      // The repair is durable: reopened, nothing more is reported and nothing is lost.
      const again = await openDiskOutbox({ dir })
      expect(await drain(again)).toEqual([...all.filter((s) => s !== 10), COUNT + 1])
      expect(again.stats()).toMatchObject({ discarded: 0, corrupt: [] })
      await again.close()
    } finally {
      await outbox.close()
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('fast-check: a byte flipped at any position costs at most the record that holds it', async () => {
    await fc.assert(fc.asyncProperty(fc.integer({ min: 0, max: pristine.length - 1 }), fc.integer({ min: 1, max: 255 }), async (at, mask) => {
      const { dir, outbox } = await damaged([[at, mask]])
      try {
        const hit = recordOf(at)
        const seqs = await drain(outbox)
        const lost = Array.from({ length: COUNT }, (_, i) => i + 1).filter((s) => !seqs.includes(s))
        expect(lost.every((s) => s === hit)).toBe(true)
        const stats = outbox.stats()
        const files = await readdir(dir)
        if (hit === 0 || (lost.length > 0 && hit !== COUNT)) {
          // A damaged magic or record inside the file: reported and kept aside (the magic loses no reading).
          expect(stats.corrupt?.[0]?.code).toBe('ERR_OUTBOX_CORRUPT')
          expect(files).toContain(`${segment}.corrupt`)
        }
        // The last record with a length made larger is what a crash mid-append leaves: discarded (counted) either way.
        if (lost.length > 0) expect(stats.discarded).toBeGreaterThanOrEqual(1)
        const repaired = scanSegment(new Uint8Array(await readFile(join(dir, segment))))
        expect(repaired).toMatchObject({ ours: true, torn: false, damaged: [] })
      } finally {
        await outbox.close()
        await rm(dir, { recursive: true, force: true })
      }
    }), { numRuns: 150 })
  })

  it('fast-check: several flipped bytes cost at most one record each, never the records after them', async () => {
    await fc.assert(fc.asyncProperty(fc.array(fc.tuple(fc.integer({ min: 0, max: pristine.length - 1 }), fc.integer({ min: 1, max: 255 })), { minLength: 2, maxLength: 6 }), async (flips) => {
      const { dir, outbox } = await damaged(flips)
      try {
        const hits = new Set(flips.map(([at]) => recordOf(at)))
        const seqs = await drain(outbox)
        const lost = Array.from({ length: COUNT }, (_, i) => i + 1).filter((s) => !seqs.includes(s))
        expect(lost.filter((s) => !hits.has(s))).toEqual([])
      } finally {
        await outbox.close()
        await rm(dir, { recursive: true, force: true })
      }
    }), { numRuns: 50 })
  })

  it('a segment of garbage (no magic, no record) is moved aside whole, reported; a segment of zeros after a crash is a torn tail', async () => {
    const dir = await tempDir()
    await writeFile(join(dir, 'seg-0000000000000001.log'), Buffer.alloc(4096, 0x5a))
    await writeFile(join(dir, 'seg-0000000000000500.log'), Buffer.concat([Buffer.from(SEGMENT_MAGIC), Buffer.alloc(300)]))
    const outbox = await openDiskOutbox({ dir })
    expect(outbox.stats().corrupt?.map((e) => e.code)).toEqual(['ERR_OUTBOX_CORRUPT'])
    expect(outbox.stats().discarded).toBe(2)
    const files = await readdir(dir)
    expect(files).toContain('seg-0000000000000001.log.corrupt')
    expect(files).not.toContain('seg-0000000000000500.log.corrupt')
    await outbox.close()
  })
})
