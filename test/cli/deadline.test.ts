import { expect, it, onTestFinished } from 'vitest'
import { deadline } from '../../bin/cli.js'
import { exposeGc } from '../helpers/gc.js'

/**
 * The CLI's waits with a time limit (`iotmesh cmd --timeout`, `iotmesh peers --gateway`) end when
 * the limit passes even if garbage collections run meanwhile: AbortSignal.any([s, AbortSignal.timeout(ms)])
 * does not, in Node 20 (nodejs/node#57736).
 */

it('deadline(signal, ms) aborts after ms, garbage collections or not; clear() stops it; the caller\'s signal still aborts it', async () => {
  const gc = exposeGc()
  const collector = setInterval(gc, 10)
  onTestFinished(() => { clearInterval(collector) })
  const started = Date.now()
  const timed = deadline(new AbortController().signal, 150)
  await new Promise<void>((resolve, reject) => {
    const give = setTimeout(() => { reject(new Error('not aborted after 3 s')) }, 3000)
    timed.signal.addEventListener('abort', () => { clearTimeout(give); resolve() }, { once: true })
  })
  expect(Date.now() - started).toBeGreaterThanOrEqual(140)
  expect((timed.signal.reason as Error).name).toBe('TimeoutError')

  const cleared = deadline(new AbortController().signal, 50)
  cleared.clear()
  await new Promise((resolve) => setTimeout(resolve, 150))
  expect(cleared.signal.aborted).toBe(false)

  const caller = new AbortController()
  const early = deadline(caller.signal, 60_000)
  caller.abort()
  expect(early.signal.aborted).toBe(true)
  early.clear()
})
