import { cp, readFile, readdir, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import {
  checkFsync, checkSequenceAhead, createMemoryOutbox, openDiskOutbox, openOutbox,
  type DeliveryPath, type Outbox, type OutboxInit
} from '../../firmware-sim/index.js'
import { codeOf, codeOfAsync, tempDir } from './support.js'

const frame = (seq: number, size = 20): Uint8Array => Uint8Array.from({ length: size }, (_, i) => (seq * 7 + i) & 0xff)

async function drain (outbox: Outbox, path: DeliveryPath): Promise<number[]> {
  const seqs: number[] = []
  for await (const entry of outbox.pending(path)) {
    expect(entry.frame).toEqual(frame(entry.seq, entry.frame.length))
    seqs.push(entry.seq)
  }
  return seqs
}

async function drainAfter (outbox: Outbox, after: number): Promise<number[]> {
  const seqs: number[] = []
  for await (const entry of outbox.pending('mesh', { after })) seqs.push(entry.seq)
  return seqs
}

async function putAll (outbox: Outbox, seqs: number[], size = 20): Promise<void> {
  for (const seq of seqs) await outbox.put(seq, frame(seq, size))
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i)

type Factory = (init: OutboxInit) => Promise<Outbox>

const kinds: Array<[string, Factory]> = [
  ['memory', async (init) => createMemoryOutbox(init)],
  ['disk', async (init) => openDiskOutbox({ ...init, dir: join(await tempDir(), 'outbox'), segmentBytes: 512 })]
]

describe.each(kinds)('%s outbox (contract)', (_kind, create) => {
  const make = async (init: OutboxInit = {}): Promise<Outbox> => {
    const outbox = await create(init)
    onTestFinished(() => outbox.close())
    return outbox
  }

  it('holds frames until every configured path acknowledged them', async () => {
    const outbox = await make({ paths: ['mesh', 'broker'] })
    await putAll(outbox, range(1, 6))
    await outbox.ack('mesh', [1, 2, 3])
    await outbox.ack('broker', 2)
    expect(await drain(outbox, 'mesh')).toEqual([4, 5, 6])
    expect(await drain(outbox, 'broker')).toEqual([1, 3, 4, 5, 6])
    expect(outbox.stats()).toMatchObject({ frames: 5, bytes: 100, pending: { mesh: 3, broker: 5 }, highWater: 6, dropped: 0 })
    await outbox.ack('broker', [1, 3, 4])
    await outbox.ack('mesh', range(4, 6))
    expect(outbox.stats()).toMatchObject({ frames: 2, pending: { mesh: 0, broker: 2 } })
    expect(await drain(outbox, 'broker')).toEqual([5, 6])
  })

  it('acks are idempotent and ignore seqs it does not hold', async () => {
    const outbox = await make()
    await putAll(outbox, [1, 2])
    await outbox.ack('mesh', [1, 1, 99])
    await outbox.ack('mesh', 1)
    expect(await drain(outbox, 'mesh')).toEqual([2])
    expect(outbox.paths).toEqual(['mesh'])
  })

  it('refuses a path that is not configured, a seq that does not increase, a frame larger than the outbox', async () => {
    const outbox = await make({ paths: ['broker'], maxBytes: 100 })
    await outbox.put(5, frame(5))
    expect(await codeOfAsync(() => outbox.ack('mesh', 5))).toBe('ERR_BAD_ARGUMENT')
    expect(codeOf(() => outbox.pending('mesh'))).toBe('ERR_BAD_ARGUMENT')
    expect(await codeOfAsync(() => outbox.put(5, frame(5)))).toBe('ERR_BAD_ARGUMENT')
    expect(await codeOfAsync(() => outbox.put(4, frame(4)))).toBe('ERR_BAD_ARGUMENT')
    expect(await codeOfAsync(() => outbox.put(1.5, frame(4)))).toBe('ERR_BAD_ARGUMENT')
    expect(await codeOfAsync(() => outbox.put(6, frame(6, 101)))).toBe('ERR_FRAME_TOO_LARGE')
    expect(await codeOfAsync(() => make({ paths: [] }))).toBe('ERR_BAD_ARGUMENT')
    expect(await codeOfAsync(() => make({ paths: ['mesh', 'mesh'] }))).toBe('ERR_BAD_ARGUMENT')
    expect(await codeOfAsync(() => make({ paths: ['lora' as DeliveryPath] }))).toBe('ERR_BAD_ARGUMENT')
    expect(await codeOfAsync(() => make({ maxFrames: 0 }))).toBe('ERR_BAD_ARGUMENT')
  })

  it('is bounded by frames: the oldest are dropped and counted', async () => {
    const outbox = await make({ paths: ['mesh', 'broker'], maxFrames: 5 })
    await putAll(outbox, range(1, 8))
    expect(await drain(outbox, 'mesh')).toEqual(range(4, 8))
    expect(outbox.stats()).toMatchObject({ frames: 5, dropped: 3, highWater: 8 })
    await outbox.ack('mesh', 4)
    await outbox.ack('broker', 4) // 4 leaves: room for one more without dropping
    await outbox.put(9, frame(9))
    expect(outbox.stats()).toMatchObject({ frames: 5, dropped: 3 })
  })

  it('is bounded by bytes', async () => {
    const outbox = await make({ maxBytes: 100 })
    await putAll(outbox, range(1, 4), 30)
    expect(await drain(outbox, 'mesh')).toEqual([2, 3, 4])
    await outbox.put(5, frame(5, 70))
    expect(await drain(outbox, 'mesh')).toEqual([4, 5])
    expect(outbox.stats()).toMatchObject({ bytes: 100, dropped: 3 })
  })

  it('pending() sees frames put while iterating and skips those acknowledged meanwhile', async () => {
    const outbox = await make()
    await putAll(outbox, [1, 2, 3])
    const seen: number[] = []
    for await (const { seq } of outbox.pending('mesh')) {
      seen.push(seq)
      if (seq === 1) {
        await outbox.ack('mesh', 2)
        await outbox.put(10, frame(10))
      }
    }
    expect(seen).toEqual([1, 3, 10])
  })

  it('pending() with `after` starts past that seq, held or not, and refuses an after that is not a seq', async () => {
    const outbox = await make()
    await putAll(outbox, range(1, 8))
    await outbox.ack('mesh', [4, 6])
    expect(await drainAfter(outbox, 3)).toEqual([5, 7, 8])
    expect(await drainAfter(outbox, 4)).toEqual([5, 7, 8]) // 4 is acknowledged: the next held frame after it
    expect(await drainAfter(outbox, 0)).toEqual([1, 2, 3, 5, 7, 8])
    expect(await drainAfter(outbox, 8)).toEqual([])
    expect(await drainAfter(outbox, 100)).toEqual([])
    for (const after of [-1, 1.5, Number.NaN]) {
      expect(await codeOfAsync(async () => await drainAfter(outbox, after))).toBe('ERR_BAD_ARGUMENT')
    }
  })

  it('pending() stops with ERR_ABORTED when its signal is aborted', async () => {
    const outbox = await make()
    await putAll(outbox, [1, 2, 3])
    const controller = new AbortController()
    const seen: number[] = []
    const run = async (): Promise<void> => {
      for await (const { seq } of outbox.pending('mesh', { signal: controller.signal })) {
        seen.push(seq)
        controller.abort()
      }
    }
    expect(await codeOfAsync(run)).toBe('ERR_ABORTED')
    expect(seen).toEqual([1])
  })

  it('close is idempotent; put and ack after close are ERR_ABORTED', async () => {
    const outbox = await make()
    await outbox.put(1, frame(1))
    await outbox.close()
    await outbox.close()
    expect(await codeOfAsync(() => outbox.put(2, frame(2)))).toBe('ERR_ABORTED')
    expect(await codeOfAsync(() => outbox.ack('mesh', 1))).toBe('ERR_ABORTED')
  })

  it('supports await using', async () => {
    let kept: Outbox | undefined
    {
      await using outbox = await create({})
      kept = outbox
      await outbox.put(1, frame(1))
    }
    expect(await codeOfAsync(() => (kept as Outbox).put(2, frame(2)))).toBe('ERR_ABORTED')
  })
})

describe('disk outbox', () => {
  const open = async (dir: string, init: OutboxInit & { segmentBytes?: number, fsync?: 'always' | 'never' | number } = {}): Promise<Outbox> => {
    const outbox = await openDiskOutbox({ segmentBytes: 512, ...init, dir })
    onTestFinished(() => outbox.close())
    return outbox
  }

  it('keeps frames, acks, the high-water mark and the drop count across a restart', async () => {
    const dir = await tempDir()
    const first = await open(dir, { paths: ['mesh', 'broker'], maxFrames: 50 })
    await putAll(first, range(1, 60))
    await first.ack('mesh', range(11, 40))
    await first.ack('broker', [...range(11, 20), 45, 47])
    await first.close()
    const second = await open(dir, { paths: ['mesh', 'broker'], maxFrames: 50 })
    expect(await drain(second, 'mesh')).toEqual(range(41, 60))
    expect(await drain(second, 'broker')).toEqual([...range(21, 44), 46, ...range(48, 60)])
    expect(second.highWater).toBe(60)
    expect(second.stats()).toMatchObject({ dropped: 10, discarded: 0, frames: 40 })
    await second.put(61, frame(61))
    expect(await codeOfAsync(() => second.put(60, frame(60)))).toBe('ERR_BAD_ARGUMENT')
  })

  it('after a crash, frames acknowledged since the last flush are delivered again (at least once)', async () => {
    const dir = await tempDir()
    const crashed = await openDiskOutbox({ dir })
    onTestFinished(() => crashed.close())
    await putAll(crashed, range(1, 10))
    await crashed.ack('mesh', [1, 2])
    await crashed.flush()
    await crashed.ack('mesh', [3, 4]) // not flushed: this process "dies" here
    const reopened = await openDiskOutbox({ dir })
    expect(await drain(reopened, 'mesh')).toEqual(range(3, 10))
    await reopened.close()
  })

  it('deletes a segment once every frame in it has left, and keeps the one being written', async () => {
    const dir = await tempDir()
    const outbox = await open(dir, { segmentBytes: 200 })
    await putAll(outbox, range(1, 30), 40) // 56-byte records: 3 to a segment
    const segments = async (): Promise<string[]> => (await readdir(dir)).filter((n) => n.startsWith('seg-')).sort()
    expect((await segments()).length).toBe(10)
    await outbox.ack('mesh', range(1, 15))
    expect(await segments()).toEqual(['seg-0000000000000016.log', 'seg-0000000000000019.log', 'seg-0000000000000022.log', 'seg-0000000000000025.log', 'seg-0000000000000028.log'])
    await outbox.ack('mesh', range(16, 30))
    expect(await segments()).toEqual(['seg-0000000000000028.log'])
    // the high-water mark survives even with nothing held
    await outbox.close()
    const again = await open(dir, { segmentBytes: 200 })
    expect(again.highWater).toBe(30)
    expect(await drain(again, 'mesh')).toEqual([])
  })

  it('a torn last record, cut at any byte, is discarded and the rest kept', async () => {
    const source = await tempDir()
    const outbox = await open(source, { segmentBytes: 4096 })
    await putAll(outbox, [1, 2, 3], 24)
    await outbox.close()
    const [segment] = (await readdir(source)).filter((n) => n.startsWith('seg-'))
    const full = (await readFile(join(source, segment as string))).length
    const boundaries = [8, 8 + 40, 8 + 80, 8 + 120] // magic, then 16 + 24 bytes per record
    expect(full).toBe(128)
    for (let cut = 0; cut <= full; cut++) {
      const dir = await tempDir()
      await cp(source, dir, { recursive: true })
      await writeFile(join(dir, 'cursor.json'), '') // no cursor: everything pending
      await truncate(join(dir, segment as string), cut)
      const reopened = await openDiskOutbox({ dir })
      const complete = boundaries.filter((b) => b <= cut).length - 1
      expect(await drain(reopened, 'mesh')).toEqual(range(1, Math.max(0, complete)))
      expect(reopened.stats().discarded).toBe(boundaries.includes(cut) || cut === 0 ? 0 : 1)
      // appending after the cut is clean
      await reopened.put(10, frame(10, 24))
      await reopened.close()
      const third = await openDiskOutbox({ dir })
      expect(await drain(third, 'mesh')).toEqual([...range(1, Math.max(0, complete)), 10])
      expect(third.stats().discarded).toBe(0)
      await third.close()
    }
  })

  it('skips a corrupt record (bad CRC) but keeps the ones after it, and keeps a foreign file aside', async () => {
    const dir = await tempDir()
    const outbox = await open(dir, { segmentBytes: 4096 })
    await putAll(outbox, [1, 2, 3], 24)
    await outbox.close()
    const [segment] = (await readdir(dir)).filter((n) => n.startsWith('seg-'))
    const bytes = await readFile(join(dir, segment as string))
    bytes[8 + 40 + 16 + 3] = (bytes[8 + 40 + 16 + 3] as number) ^ 0xff // a bit flip in frame 2
    await writeFile(join(dir, segment as string), bytes)
    await writeFile(join(dir, 'seg-0000000000000099.log'), 'not an outbox segment')
    const reopened = await open(dir)
    // Issue 11: one flipped byte used to cost every record after it (here 3); now only its own.
    expect(await drain(reopened, 'mesh')).toEqual([1, 3])
    expect(reopened.stats().discarded).toBe(2)
    expect(reopened.stats().corrupt?.map((e) => e.code)).toEqual(['ERR_OUTBOX_CORRUPT', 'ERR_OUTBOX_CORRUPT'])
    expect((await readdir(dir)).sort()).toContain('seg-0000000000000099.log.corrupt')
    expect((await readdir(dir)).sort()).toContain(`${segment as string}.corrupt`)
  })

  it('applies smaller bounds and new paths on reopen', async () => {
    const dir = await tempDir()
    const first = await open(dir, { paths: ['mesh'] })
    await putAll(first, range(1, 10))
    await first.ack('mesh', [1, 2])
    await first.close()
    const second = await open(dir, { paths: ['mesh', 'broker'], maxFrames: 5 })
    expect(await drain(second, 'broker')).toEqual(range(6, 10)) // a new path has everything still held
    expect(second.stats()).toMatchObject({ dropped: 3 })
  })

  it('accepts the fsync policies and refuses others', async () => {
    for (const fsync of ['always', 'never', 0, 250] as const) {
      const now = { t: 0 }
      const outbox = await openDiskOutbox({ dir: await tempDir(), fsync }, { now: () => now.t })
      for (let seq = 1; seq <= 5; seq++) {
        now.t += 100
        await outbox.put(seq, frame(seq))
      }
      await outbox.flush()
      expect(await drain(outbox, 'mesh')).toEqual(range(1, 5))
      await outbox.close()
    }
    expect(codeOf(() => checkFsync('sometimes' as 'always'))).toBe('ERR_BAD_ARGUMENT')
    expect(codeOf(() => checkFsync(-1))).toBe('ERR_BAD_ARGUMENT')
    expect(await codeOfAsync(() => openDiskOutbox({ dir: '/tmp/x', fsync: 1.5 }))).toBe('ERR_BAD_ARGUMENT')
  })

  it('openOutbox picks disk when given a directory, memory otherwise', async () => {
    const dir = await tempDir()
    const disk = await openOutbox({ dir })
    await disk.put(1, frame(1))
    await disk.close()
    expect((await openOutbox({ dir })).highWater).toBe(1)
    expect((await openOutbox({})).highWater).toBe(0)
  })
})

describe('sequence numbers against the outbox', () => {
  it('checkSequenceAhead refuses a sequence store behind the outbox', () => {
    expect(codeOf(() => checkSequenceAhead({ current: 1000 }, { highWater: 912 }))).toBe('no error')
    expect(codeOf(() => checkSequenceAhead({ current: 912 }, { highWater: 912 }))).toBe('no error')
    expect(codeOf(() => checkSequenceAhead({ current: 0 }, { highWater: 912 }))).toBe('ERR_SEQUENCE_STORE')
  })
})
