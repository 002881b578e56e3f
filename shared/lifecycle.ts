import { meshError } from './errors.js'

/**
 * The one start/stop lifecycle of iotmesh's long-lived objects (MeshNode, Gateway, Device, Fleet),
 * after libp2p's `startable.ts` and Go's `defer`:
 *
 * - `start()` and `stop()` are idempotent and may overlap; both take an AbortSignal.
 * - Start work registers a teardown step for each thing it brings up (`defer`), as it brings it
 *   up; `stop()` runs them in reverse order. A teardown runs **every** step, whatever fails, and
 *   reports all failures together (`AggregateError`).
 * - **Stop during start wins**: it aborts the start's signal, waits for the start work to return,
 *   tears down whatever it had brought up, and `start()` rejects with ERR_ABORTED.
 * - **A failed start can be retried**: what it brought up is torn down and the state is
 *   `stopped` again. Likewise a stopped object may be started again.
 * - `live` is true from `start()` until `stop()` is called: emit events only while it holds.
 */

export type LifecycleState = 'stopped' | 'starting' | 'started' | 'stopping'

/** Teardown steps, run last-in first-out. */
export interface Defer {
  (name: string, step: (signal: AbortSignal) => void | Promise<void>): void
}

interface Step { name: string, step: (signal: AbortSignal) => void | Promise<void> }

/** The idempotent start/stop of a long-lived object, with teardown steps run in reverse (see the file's header). */
export class Lifecycle {
  readonly name: string
  #state: LifecycleState = 'stopped'
  #steps: Step[] = []
  #controller = new AbortController()
  #starting: Promise<void> | undefined
  #stopping: Promise<void> | undefined

  constructor (name: string) {
    this.name = name
  }

  get state (): LifecycleState { return this.#state }
  get started (): boolean { return this.#state === 'started' }
  /** From start() until stop() is called: the window in which the object may emit. */
  get live (): boolean { return this.#state === 'starting' || this.#state === 'started' }
  /** Aborted when stop() is called (or the start's caller aborts): for work the object runs while started. */
  get signal (): AbortSignal { return this.#controller.signal }

  /**
   * Runs `work` once (concurrent calls share it). `work` brings things up and `defer`s their
   * teardown; it should pass `signal` to everything that waits.
   */
  async start (work: (signal: AbortSignal, defer: Defer) => Promise<void>, options: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#state === 'started') return
    if (this.#state === 'starting') return await this.#starting
    if (this.#state === 'stopping') await this.#stopping?.catch(() => {})
    if (this.live) return await this.#starting // another caller started it while we waited
    options.signal?.throwIfAborted()
    this.#state = 'starting'
    this.#controller = new AbortController()
    this.#steps = []
    const signal = options.signal === undefined ? this.#controller.signal : AbortSignal.any([this.#controller.signal, options.signal])
    const defer: Defer = (name, step) => { this.#steps.push({ name, step }) }
    this.#starting = (async () => {
      try {
        await work(signal, defer)
      } catch (err) {
        if (this.#state === 'starting') await this.#teardown(err)
        throw signal.aborted && this.#state !== 'starting' ? aborted(this.name, err) : err
      }
      if (this.#state !== 'starting') throw aborted(this.name) // stop() came during start: it tears down
      if (signal.aborted) {
        await this.#teardown()
        throw aborted(this.name)
      }
      this.#state = 'started'
    })()
    await this.#starting
  }

  /** Aborts a start in progress, then runs every teardown step (reverse order). Idempotent. */
  async stop (options: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#state === 'stopped') return
    if (this.#state === 'stopping') return await this.#stopping
    const starting = this.#state === 'starting' ? this.#starting : undefined
    this.#state = 'stopping'
    this.#controller.abort(meshError('ERR_ABORTED', `${this.name} is stopping`))
    this.#stopping = (async () => {
      await starting?.catch(() => {})
      await this.#teardown(undefined, options.signal)
    })()
    await this.#stopping
  }

  async #teardown (cause?: unknown, signal: AbortSignal = new AbortController().signal): Promise<void> {
    this.#state = 'stopping'
    const steps = this.#steps.reverse()
    this.#steps = []
    const errors: unknown[] = []
    for (const { name, step } of steps) {
      try {
        await step(signal)
      } catch (err) {
        errors.push(err instanceof Error ? Object.assign(err, { step: name }) : err)
      }
    }
    this.#state = 'stopped'
    if (errors.length > 0 && cause === undefined) throw new AggregateError(errors, `${this.name}: ${errors.length} teardown step(s) failed`)
  }
}

function aborted (name: string, cause?: unknown): Error {
  return meshError('ERR_ABORTED', `${name} was stopped while starting`, { cause })
}
