import { EventEmitter } from 'node:events'

/**
 * A typed EventEmitter (in the spirit of libp2p's TypedEventEmitter): `Events` maps an event
 * name to the tuple of its arguments, so `on('peer', (info) => …)` is checked by the compiler.
 */
export class TypedEmitter<Events extends { [K in keyof Events]: unknown[] }> {
  readonly #emitter = new EventEmitter({ captureRejections: false })

  on<K extends keyof Events & string> (event: K, listener: (...args: Events[K]) => void): this {
    this.#emitter.on(event, listener as (...args: unknown[]) => void)
    return this
  }

  once<K extends keyof Events & string> (event: K, listener: (...args: Events[K]) => void): this {
    this.#emitter.once(event, listener as (...args: unknown[]) => void)
    return this
  }

  off<K extends keyof Events & string> (event: K, listener: (...args: Events[K]) => void): this {
    this.#emitter.off(event, listener as (...args: unknown[]) => void)
    return this
  }

  /** Resolves with the arguments of the next `event` (use in tests instead of sleeping). */
  async next<K extends keyof Events & string> (event: K, options: { signal?: AbortSignal } = {}): Promise<Events[K]> {
    return await (EventEmitter.once(this.#emitter, event, options) as Promise<Events[K]>)
  }

  protected emit<K extends keyof Events & string> (event: K, ...args: Events[K]): boolean {
    return this.#emitter.emit(event, ...args)
  }

  protected removeAllListeners (): void {
    this.#emitter.removeAllListeners()
  }

  listenerCount<K extends keyof Events & string> (event: K): number {
    return this.#emitter.listenerCount(event)
  }
}
