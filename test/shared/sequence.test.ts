import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readFile, writeFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { memorySequence } from '../../shared/index.js'
import { openSequenceFile } from '../../shared/node.js'
import { codeOf, fixturePath, tempDir } from './support.js'

function take (path: string, block: number, count: number): number[] {
  const sequence = openSequenceFile(path, { block })
  return Array.from({ length: count }, () => sequence.next())
}

function expectStrictlyIncreasing (numbers: number[]): void {
  for (let i = 1; i < numbers.length; i++) {
    if (!((numbers[i] as number) > (numbers[i - 1] as number))) expect.fail(`not increasing at ${i}: ${numbers[i - 1]} then ${numbers[i]}`)
  }
}

describe('durable sequence numbers', () => {
  it.each([1, 7, 1000])('strictly increase across re-opens (restarts), block %i', async (block) => {
    const path = join(await tempDir(), 'device.seq')
    const runs = [take(path, block, 5), take(path, block, 1), take(path, block, 2 * block + 3), take(path, block, 5)]
    const all = runs.flat()
    expectStrictlyIncreasing(all)
    expect(all[0]).toBe(1)
    // a restart skips at most the rest of the reserved block: a gap, never a repeat
    for (let r = 1; r < runs.length; r++) {
      const last = (runs[r - 1] as number[]).at(-1) as number
      const first = (runs[r] as number[])[0] as number
      expect(first - last).toBeLessThanOrEqual(block)
    }
    if (block === 1) expect(all).toEqual(Array.from({ length: all.length }, (_, i) => i + 1))
  })

  it('persists the reservation as {"reserved": N} before handing numbers out', async () => {
    const path = join(await tempDir(), 'device.seq')
    const sequence = openSequenceFile(path, { block: 10 })
    expect(sequence.current).toBe(0)
    expect(existsSync(path)).toBe(false)
    expect(sequence.next()).toBe(1)
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({ reserved: 10 })
    for (let i = 0; i < 9; i++) sequence.next()
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({ reserved: 10 })
    expect(sequence.next()).toBe(11)
    expect(sequence.current).toBe(11)
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({ reserved: 20 })
  })

  it('starts after an existing reservation, and creates missing directories', async () => {
    const dir = await tempDir()
    await writeFile(join(dir, 'device.seq'), '{"reserved": 41}\n')
    expect(take(join(dir, 'device.seq'), 1, 2)).toEqual([42, 43])
    expect(take(join(dir, 'a', 'b', 'device.seq'), 1, 1)).toEqual([1])
  })

  it.each([
    ['not JSON', 'garbage'],
    ['empty', ''],
    ['JSON null', 'null'],
    ['no reserved field', '{}'],
    ['a negative number', '{"reserved": -1}'],
    ['a fraction', '{"reserved": 1.5}'],
    ['text', '{"reserved": "12"}'],
    ['beyond 2^53', '{"reserved": 9007199254740993}']
  ])('a corrupt file (%s) is refused, never guessed (ERR_SEQUENCE_STORE)', async (_what, contents) => {
    const path = join(await tempDir(), 'device.seq')
    await writeFile(path, contents)
    expect(codeOf(() => openSequenceFile(path))).toBe('ERR_SEQUENCE_STORE')
  })

  it('a path that cannot be read or written (ERR_SEQUENCE_STORE)', async () => {
    const dir = await tempDir()
    await mkdir(join(dir, 'is-a-directory'))
    expect(codeOf(() => openSequenceFile(join(dir, 'is-a-directory')))).toBe('ERR_SEQUENCE_STORE')
    await writeFile(join(dir, 'file'), '')
    expect(codeOf(() => openSequenceFile(join(dir, 'file', 'device.seq')))).toBe('ERR_SEQUENCE_STORE') // ENOTDIR
    await mkdir(join(dir, 'device.seq.tmp')) // where the next reservation is written first
    const sequence = openSequenceFile(join(dir, 'device.seq'))
    expect(codeOf(() => sequence.next())).toBe('ERR_SEQUENCE_STORE')
    expect(sequence.current).toBe(0) // nothing handed out that was not reserved
  })

  it('memorySequence counts from its start', () => {
    const sequence = memorySequence(41)
    expect(sequence.current).toBe(41)
    expect([sequence.next(), sequence.next()]).toEqual([42, 43])
    expect(memorySequence().next()).toBe(1)
  })
})

/**
 * Runs test/fixtures/sequence-child.mjs until it has printed `atLeast` numbers, then SIGKILLs it
 * (no chance to clean up) and returns every number it printed.
 */
async function runAndKill (path: string, block: number, atLeast: number): Promise<number[]> {
  const child = spawn(process.execPath, [fixturePath('sequence-child.mjs'), path, String(block)], { stdio: ['ignore', 'pipe', 'pipe'] })
  const numbers: number[] = []
  let pending = ''
  let stderr = ''
  let killed = false
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk
    const lines = pending.split('\n')
    pending = lines.pop() as string
    for (const line of lines) if (line !== 'ready') numbers.push(Number(line))
    if (!killed && numbers.length >= atLeast) {
      killed = true
      child.kill('SIGKILL')
    }
  })
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])))
  if (signal !== 'SIGKILL') expect.fail(`the child exited (code ${code}) before it was killed: ${stderr}`)
  return numbers
}

describe('sequence numbers survive a real crash (SIGKILL of a child process)', () => {
  const dist = new URL('../../dist/shared/node.js', import.meta.url)
  it.each([1, 1000])('block %i: killed three times mid-loop, no number repeats', async (block) => {
    expect(existsSync(dist), 'dist/shared/node.js is missing: run `npm run build`').toBe(true)
    const path = join(await tempDir(), 'device.seq')
    const runs: number[][] = []
    for (const atLeast of [50, 137, 20]) runs.push(await runAndKill(path, block, atLeast))
    const all = runs.flat()
    expectStrictlyIncreasing(all)
    expect(new Set(all).size).toBe(all.length)
    for (let r = 1; r < runs.length; r++) {
      const last = (runs[r - 1] as number[]).at(-1) as number
      const first = (runs[r] as number[])[0] as number
      expect(first).toBeGreaterThan(last)
      expect(first - last).toBeLessThanOrEqual(block + 1) // the rest of a block, plus one taken but never printed
    }
    // and the file still holds a valid reservation above everything handed out
    const reserved = (JSON.parse(await readFile(path, 'utf8')) as { reserved: number }).reserved
    expect(reserved).toBeGreaterThanOrEqual(all.at(-1) as number)
  })
})
