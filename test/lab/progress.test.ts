import { describe, expect, it } from 'vitest'
import { clockTime, createProgress, progressStyle, type ProgressStream } from '../../lab/index.js'

function stream (isTTY: boolean, columns = 100): ProgressStream & { chunks: string[] } {
  const chunks: string[] = []
  return { isTTY, columns, chunks, write: (c: string) => { chunks.push(c); return true } }
}

/** A clock the test moves by hand, in ms. */
function clock (): { now: () => number, advance: (s: number) => void } {
  let t = 1000
  return { now: () => t, advance: (s) => { t += s * 1000 } }
}

describe('experiment progress', () => {
  it('picks bar on a TTY, plain lines otherwise, nothing with --json', () => {
    expect(progressStyle(stream(true))).toBe('bar')
    expect(progressStyle(stream(false))).toBe('lines')
    expect(progressStyle(stream(true), true)).toBe('none')
  })

  it('TTY: redraws one line with the phase, a bar, elapsed and time left', () => {
    const out = stream(true, 100)
    const c = clock()
    const p = createProgress({ totalS: 120 }, { stream: out, now: c.now })
    c.advance(30)
    p.update({ mode: 'broker', step: '1/3', phase: 'broker-down' })
    const line = out.chunks.at(-1) as string
    expect(line.startsWith('\r\u001b[2K')).toBe(true)
    expect(line).toContain('experiment: broker 1/3 · broker-down [')
    expect(line).toContain(' 25 % 0:30 elapsed, 1:30 left')
    const bar = /\[(█*)(░*)\]/.exec(line)
    expect(bar?.[1]?.length).toBe(Math.round(0.25 * ((bar?.[1]?.length ?? 0) + (bar?.[2]?.length ?? 0))))
    expect(line.length - '\r\u001b[2K'.length).toBeLessThan(100) // fits the terminal without wrapping
    expect(line).not.toContain('\n')
  })

  it('TTY: a log line goes above the bar, which is drawn again', () => {
    const out = stream(true)
    const p = createProgress({ totalS: 60 }, { stream: out, now: () => 0 })
    p.update({ phase: 'steady', elapsedS: 10 })
    p.log('broker stopped')
    expect(out.chunks.slice(1)).toEqual(['\r\u001b[2Kbroker stopped\n', expect.stringContaining('steady [')])
    p.finish('done: report.md')
    expect(out.chunks.slice(-2)).toEqual(['\r\u001b[2K', 'done: report.md\n'])
  })

  it('not a TTY: a line when the phase changes and every 10 s, not on every update', () => {
    const out = stream(false)
    const p = createProgress({ totalS: 100 }, { stream: out, now: () => 0 })
    for (let s = 0; s <= 25; s++) p.update({ mode: 'mesh', phase: s < 12 ? 'steady' : 'broker-down', elapsedS: s })
    expect(out.chunks).toEqual([
      'experiment: mesh · steady, 0:00 elapsed, about 1:40 left (0 %)\n',
      'experiment: mesh · steady, 0:10 elapsed, about 1:30 left (10 %)\n',
      'experiment: mesh · broker-down, 0:12 elapsed, about 1:28 left (12 %)\n',
      'experiment: mesh · broker-down, 0:22 elapsed, about 1:18 left (22 %)\n'
    ])
    expect(out.chunks.join('')).not.toContain('\r')
  })

  it('with --json: nothing at all', () => {
    const out = stream(true)
    const p = createProgress({ totalS: 10, json: true }, { stream: out })
    p.update({ phase: 'steady' })
    p.log('x')
    p.finish('done')
    expect(out.chunks).toEqual([])
  })

  it('nothing after finish, and finish is idempotent', () => {
    const out = stream(false)
    const p = createProgress({ totalS: 10 }, { stream: out, now: () => 0 })
    p.finish('done')
    p.finish('again')
    p.update({ phase: 'steady', elapsedS: 50 })
    p.log('late')
    expect(out.chunks).toEqual(['done\n'])
  })

  it('past the estimate it says 0:00 left, never a negative time', () => {
    const out = stream(false)
    createProgress({ totalS: 10 }, { stream: out }).update({ phase: 'drain', elapsedS: 75 })
    expect(out.chunks[0]).toBe('experiment: drain, 1:15 elapsed, about 0:00 left (100 %)\n')
    expect(clockTime(3725)).toBe('1:02:05')
  })

  it('when the runner counts its work, the bar and the time left follow the pace, not the plan (a loaded machine runs 4× over it)', () => {
    const out = stream(true, 120)
    const p = createProgress({ totalS: 120 }, { stream: out, now: () => 0 })
    p.update({ phase: 'rounds', elapsedS: 40, done: 0.1 })
    // The plan says 1:20 left and 33 %; a tenth of the rounds took 40 s, so nine tenths take 6 minutes.
    expect(out.chunks.at(-1)).toContain(' 10 % 0:40 elapsed, 6:00 left')
    const lines = stream(false)
    const q = createProgress({ totalS: 120 }, { stream: lines, now: () => 0 })
    q.update({ phase: 'starting', elapsedS: 5, done: 0.01 }) // too little done to judge the pace: the plan's share of what is left
    q.update({ phase: 'rounds', elapsedS: 100, done: 0.5 })
    q.update({ phase: 'a phase that counts nothing', elapsedS: 110 }) // keeps the share done: it never goes back to the plan's
    q.update({ phase: 'rounds 2', elapsedS: 300, done: 1 })
    expect(lines.chunks).toEqual([
      'experiment: starting, 0:05 elapsed, about 1:59 left (1 %)\n',
      'experiment: rounds, 1:40 elapsed, about 1:40 left (50 %)\n',
      'experiment: a phase that counts nothing, 1:50 elapsed, about 1:50 left (50 %)\n',
      'experiment: rounds 2, 5:00 elapsed, about 0:00 left (100 %)\n'
    ])
  })
})
