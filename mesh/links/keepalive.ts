import type { Clock, TimerHandle } from '../../shared/index.js'

/**
 * Keepalive for one link (MQTT.js's KeepaliveManager takes a timer the same way). Every
 * `interval` ms it checks whether anything arrived since the last check; if not, it pings, and
 * once nothing has arrived for `timeout` ms it declares the link dead. A dead peer is therefore
 * detected at most `timeout + interval` ms after its last frame. One timer per link, re-armed per
 * tick: receiving a frame only sets a flag, so the hot path never touches a timer.
 */
export interface KeepaliveHooks {
  ping (): void
  dead (silentForMs: number): void
}

export class Keepalive {
  readonly #clock: Clock
  readonly #interval: number
  readonly #timeout: number
  readonly #hooks: KeepaliveHooks
  #timer: TimerHandle | undefined
  #heard = true
  #silentFor = 0
  #running = false
  #suspended = false

  constructor (clock: Clock, interval: number, timeout: number, hooks: KeepaliveHooks) {
    this.#clock = clock
    this.#interval = interval
    this.#timeout = Math.max(timeout, interval)
    this.#hooks = hooks
  }

  start (): void {
    if (this.#running || this.#interval <= 0) return
    this.#running = true
    this.#arm()
  }

  stop (): void {
    this.#running = false
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer)
    this.#timer = undefined
  }

  /** Call for every frame received. */
  heard (): void {
    this.#heard = true
  }

  /**
   * While suspended (this node has stopped reading the link: flow control), silence is not held
   * against the peer, and this end pings every interval: the peer, whose messages wait unread,
   * must still hear that this end is alive, or its own keepalive would end the link.
   */
  suspend (suspended: boolean): void {
    this.#suspended = suspended
  }

  #arm (): void {
    this.#timer = this.#clock.setTimeout(() => { this.#tick() }, this.#interval)
  }

  #tick (): void {
    this.#timer = undefined
    if (!this.#running) return
    if (this.#suspended) {
      this.#heard = false
      this.#silentFor = 0
      this.#arm()
      this.#hooks.ping()
      return
    }
    if (this.#heard) {
      this.#heard = false
      this.#silentFor = 0
    } else {
      this.#silentFor += this.#interval
      if (this.#silentFor >= this.#timeout) {
        this.stop()
        this.#hooks.dead(this.#silentFor)
        return
      }
    }
    this.#arm()
    if (this.#silentFor > 0) this.#hooks.ping()
  }
}
