import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { describe, expect, it, onTestFinished } from 'vitest'
import { openDiskOutbox } from '../../firmware-sim/index.js'
import { keyPairFromSecret, openFrame } from '../../shared/index.js'
import { tempDir } from './support.js'

const FIXTURE = new URL('./fixtures/outbox-writer.mjs', import.meta.url).pathname
const DIST = new URL('../../dist/firmware-sim/index.js', import.meta.url)
const keys = keyPairFromSecret(Uint8Array.from({ length: 32 }, (_, i) => i + 1))

/** Runs the writer child until it printed `atLeast` seqs (or killed itself), SIGKILLs it, and returns the seqs it printed. */
async function runAndKill (args: string[], atLeast: number): Promise<number[]> {
  const child = spawn(process.execPath, [FIXTURE, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  onTestFinished(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  const seqs: number[] = []
  let partial = ''
  let stderr = ''
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    partial += chunk
    const lines = partial.split('\n')
    partial = lines.pop() as string
    for (const line of lines) if (line !== 'ready') seqs.push(Number(line))
    if (seqs.length >= atLeast) child.kill('SIGKILL')
  })
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])))
  if (signal !== 'SIGKILL') expect.fail(`the writer exited (code ${code}) instead of being killed: ${stderr}`)
  return seqs
}

async function held (dir: string): Promise<{ seqs: Record<'mesh' | 'broker', number[]>, highWater: number, discarded: number }> {
  const outbox = await openDiskOutbox({ dir, paths: ['mesh', 'broker'] })
  onTestFinished(() => outbox.close())
  const seqs = { mesh: [] as number[], broker: [] as number[] }
  for (const path of ['mesh', 'broker'] as const) {
    for await (const { seq, frame } of outbox.pending(path)) {
      expect(openFrame(frame, keys.publicKey).seq).toBe(seq) // intact and signed
      seqs[path].push(seq)
    }
  }
  return { seqs, highWater: outbox.highWater, discarded: outbox.stats().discarded }
}

describe('a disk outbox survives SIGKILL', () => {
  it('killed mid-loop three times: every frame put is there, intact, in order, none repeated', async () => {
    expect(existsSync(DIST), 'dist/firmware-sim/index.js is missing: run `npm run build`').toBe(true)
    const dir = await tempDir()
    const printed: number[] = []
    for (const atLeast of [200, 37, 350]) {
      const seqs = await runAndKill([dir, 'loop'], atLeast)
      // each run goes on after the last frame held, which is the last printed or one put but not yet printed
      expect((seqs[0] as number) - (printed.at(-1) ?? 0)).toBeGreaterThanOrEqual(1)
      expect((seqs[0] as number) - (printed.at(-1) ?? 0)).toBeLessThanOrEqual(2)
      printed.push(...seqs)
    }
    const { seqs, highWater } = await held(dir)
    for (const path of ['mesh', 'broker'] as const) {
      // 1, 2, … highWater: every frame ever put, once, in order, nothing torn left in between
      expect(seqs[path]).toEqual(Array.from({ length: highWater }, (_, i) => i + 1))
    }
    for (const seq of printed) expect(seqs.mesh).toContain(seq)
    expect(highWater).toBeGreaterThanOrEqual(printed.at(-1) as number)
  })

  it('a record torn mid-write is detected and discarded; appending afterwards is clean', async () => {
    expect(existsSync(DIST), 'dist/firmware-sim/index.js is missing: run `npm run build`').toBe(true)
    const dir = await tempDir()
    const [last] = await runAndKill([dir, 'tear', '25'], 1)
    expect(last).toBe(25)
    const before = await held(dir)
    expect(before.seqs.mesh).toEqual(Array.from({ length: 25 }, (_, i) => i + 1))
    expect(before.discarded).toBe(1)
    expect(before.highWater).toBe(25)
    // the next run appends after the last good record, and a fresh open finds everything
    await runAndKill([dir, 'loop'], 5)
    const after = await held(dir)
    expect(after.seqs.broker.slice(0, 30)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1))
    expect(after.discarded).toBe(0)
  })
})
