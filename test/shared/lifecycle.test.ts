import { describe, expect, it } from 'vitest'
import { Lifecycle, isMeshError } from '../../shared/index.js'

/** shared/lifecycle.ts: the one start/stop discipline of node, gateway, device and fleet. */

function deferred (): { promise: Promise<void>, resolve: () => void } {
  let resolve: () => void = () => {}
  const promise = new Promise<void>((r) => { resolve = r })
  return { promise, resolve }
}

describe('Lifecycle', () => {
  it('start and stop are idempotent; teardown runs in reverse order', async () => {
    const life = new Lifecycle('thing')
    const log: string[] = []
    let runs = 0
    const work = async (_signal: AbortSignal, defer: (name: string, step: () => void) => void): Promise<void> => {
      runs++
      defer('a', () => { log.push('stop a') })
      defer('b', () => { log.push('stop b') })
    }
    await Promise.all([life.start(work), life.start(work)])
    await life.start(work)
    expect(runs).toBe(1)
    expect(life.started).toBe(true)
    await Promise.all([life.stop(), life.stop()])
    await life.stop()
    expect(log).toEqual(['stop b', 'stop a'])
    expect(life.state).toBe('stopped')
  })

  it('stop during start wins: the start signal aborts, start rejects with ERR_ABORTED, what it brought up is torn down', async () => {
    const life = new Lifecycle('thing')
    const log: string[] = []
    const gate = deferred()
    let seen: AbortSignal | undefined
    const starting = life.start(async (signal, defer) => {
      seen = signal
      defer('first', () => { log.push('stop first') })
      await gate.promise
      defer('second', () => { log.push('stop second') })
    })
    const stopping = life.stop()
    expect(seen?.aborted).toBe(true)
    expect(life.live).toBe(false)
    gate.resolve()
    await expect(starting).rejects.toMatchObject({ code: 'ERR_ABORTED' })
    await stopping
    expect(log).toEqual(['stop second', 'stop first'])
    expect(life.state).toBe('stopped')
  })

  it('a failed start tears down what it brought up and can be retried', async () => {
    const life = new Lifecycle('thing')
    const log: string[] = []
    let attempt = 0
    const work = async (_signal: AbortSignal, defer: (name: string, step: () => void) => void): Promise<void> => {
      attempt++
      defer('socket', () => { log.push(`close socket ${attempt}`) })
      if (attempt === 1) throw new Error('port taken')
    }
    await expect(life.start(work)).rejects.toThrow('port taken')
    expect(life.state).toBe('stopped')
    expect(log).toEqual(['close socket 1'])
    await life.start(work)
    expect(life.started).toBe(true)
  })

  it('teardown runs every step and reports all failures together', async () => {
    const life = new Lifecycle('thing')
    const log: string[] = []
    await life.start(async (_signal, defer) => {
      defer('a', () => { log.push('a') })
      defer('b', () => { throw new Error('b failed') })
      defer('c', async () => { throw new Error('c failed') })
      defer('d', () => { log.push('d') })
    })
    const err = await life.stop().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(AggregateError)
    expect((err as AggregateError).errors.map((e: Error) => e.message)).toEqual(['c failed', 'b failed'])
    expect(log).toEqual(['d', 'a'])
    expect(life.state).toBe('stopped')
  })

  it("the caller's signal aborts a start; an aborted signal refuses to start at all", async () => {
    const life = new Lifecycle('thing')
    const controller = new AbortController()
    const starting = life.start(async (signal) => {
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => { resolve() }, { once: true }))
    }, { signal: controller.signal })
    controller.abort()
    const err = await starting.catch((e: unknown) => e)
    expect(isMeshError(err, 'ERR_ABORTED')).toBe(true)
    expect(life.state).toBe('stopped')
    await expect(life.start(async () => {}, { signal: AbortSignal.abort() })).rejects.toBeDefined()
  })
})
