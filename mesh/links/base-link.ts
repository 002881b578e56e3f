import { meshError, type Clock, type MeshError, type TimerHandle } from '../../shared/index.js'
import { TypedEmitter } from '../events.js'
import { TokenBucket } from './token-bucket.js'
import { sharedTurn, type Turn } from './turn.js'
import {
  CLOSE_WHY, DEFAULT_RECEIVE_BUDGET, type Link, type LinkCloseInfo, type LinkCounters, type LinkEvents,
  type LinkFlowCounters, type ReceiveBudget, type RemotePeer, type SendOptions
} from './types.js'

/**
 * Control messages a link delivers at once, ahead of its inbox and outside the event loop's turn
 * (`receivedUrgent`): at most this many a second, with this burst. Past it they queue as any message.
 */
export const URGENT_RATE = 50
export const URGENT_BURST = 200

interface PendingPing {
  readonly start: number
  resolve (rtt: number): void
  reject (err: Error): void
}

/** What a link implementation tells the base class about its input. */
export interface LinkInit {
  readonly remote: RemotePeer
  readonly initiator: boolean
  readonly clock: Clock
  /** The receive budget, defaults filled in; false for none. */
  readonly budget: Required<ReceiveBudget> | false
  /** The frame limit: the byte bucket holds at least two such messages. */
  readonly maxMessageBytes: number
  readonly remoteAddress?: string | undefined
  /** Bytes the inbox holds for a link nobody listens to yet before it stops reading (the send-queue bound). */
  readonly inboxLimit: number
  /** The event loop's slices (default: the one every link of the process shares). */
  readonly turn?: Turn
}

/** The receive budget's two buckets. */
class Budget {
  readonly messages: TokenBucket
  readonly bytes: TokenBucket

  constructor (budget: Required<ReceiveBudget>, maxMessageBytes: number, now: number) {
    const burst = Math.max(budget.burstSeconds, 0.001)
    this.messages = new TokenBucket(budget.messagesPerSecond, Math.max(1, Math.round(budget.messagesPerSecond * burst)), now)
    this.bytes = new TokenBucket(budget.bytesPerSecond, Math.max(budget.bytesPerSecond * burst, 2 * maxMessageBytes), now)
  }
}

/**
 * What every link implementation shares: counters, the open → closing → closed lifecycle with
 * exactly one `close` event and nothing after it, ping bookkeeping, and receive flow control.
 * Every message received goes through one queue (the inbox) and is delivered when three things
 * allow: someone listens (a link handed out by `dial()` or the `link` event may already have
 * messages in flight), the receive budget has tokens, and the event loop's turn has time left
 * (`turn.ts`). While a message waits for the budget or the turn, or the peer is in debt on its
 * budget, the link stops reading (`pauseInput`): TCP pushes back on the sender, and the inbox
 * holds no more than what was already read (one chunk off the socket). While nobody listens, the
 * inbox takes up to `inboxLimit` bytes before the link stops reading (a link used only for pings
 * still gets its pongs). A remote close waits in the inbox behind the messages sent before it
 * (`inOrder`).
 */
export abstract class BaseLink extends TypedEmitter<LinkEvents> implements Link {
  readonly remote: RemotePeer
  readonly initiator: boolean
  readonly remoteAddress: string | undefined
  readonly openedAt: number
  readonly counters: LinkCounters = { framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0 }
  readonly #flow: LinkFlowCounters = { overBudget: 0, throttled: 0, throttledMs: 0, yields: 0, urgent: 0 }
  protected readonly clock: Clock
  #state: 'open' | 'closing' | 'closed' = 'open'
  #closeInfo: LinkCloseInfo | undefined
  readonly #closed: Promise<void>
  #resolveClosed!: () => void
  readonly #pings = new Map<number, PendingPing>()
  #nextPing = 1
  #lastMessageAt: number
  readonly #budget: Budget | undefined
  readonly #turn: Turn
  /** Messages waiting for delivery, and control actions (a remote close) that must wait behind them. */
  #inbox: Array<Uint8Array | (() => void)> = []
  #inboxBytes = 0
  readonly #inboxLimit: number
  /** The inbox's head already counted in `flow.overBudget`. */
  #headHeld = false
  /** Input stopped (pauseInput(true)) and why: the inbox holds messages, or the peer owes bytes. */
  #paused = false
  #debtTimer: TimerHandle | undefined
  #budgetTimer: TimerHandle | undefined
  /** When the current throttle began (the clock's now()), while the budget holds the peer back. */
  #throttledSince: number | undefined
  #pumpQueued = false
  readonly #urgent: TokenBucket

  constructor (init: LinkInit) {
    super()
    this.remote = init.remote
    this.initiator = init.initiator
    this.clock = init.clock
    this.remoteAddress = init.remoteAddress
    this.openedAt = this.#lastMessageAt = init.clock.now()
    this.#budget = init.budget === false ? undefined : new Budget(init.budget, init.maxMessageBytes, this.openedAt)
    this.#turn = init.turn ?? sharedTurn
    this.#inboxLimit = init.inboxLimit
    this.#urgent = new TokenBucket(URGENT_RATE, URGENT_BURST, this.openedAt)
    this.#closed = new Promise((resolve) => { this.#resolveClosed = resolve })
  }

  get open (): boolean {
    return this.#state === 'open'
  }

  /** A snapshot; `throttledMs` includes a throttle still going on. */
  get flow (): Readonly<LinkFlowCounters> {
    const since = this.#throttledSince
    return { ...this.#flow, throttledMs: this.#flow.throttledMs + (since === undefined ? 0 : this.clock.now() - since) }
  }

  get pending (): number {
    return this.#inbox.length
  }

  get lastMessageAt (): number {
    return this.#lastMessageAt
  }

  abstract get writable (): boolean
  abstract get bufferedBytes (): number
  abstract send (msg: Uint8Array, options?: SendOptions): void
  abstract close (options?: { why?: string }): Promise<void>
  abstract destroy (err?: Error): void
  /** Sends a ping frame carrying `token`; the peer echoes it in a pong. */
  protected abstract sendPing (token: number): void
  /** Stops (true) or restarts (false) reading from the peer. Restarting may deliver at once (re-entrantly). */
  protected abstract pauseInput (paused: boolean): void

  override on<K extends keyof LinkEvents & string> (event: K, listener: (...args: LinkEvents[K]) => void): this {
    super.on(event, listener)
    if (event === 'message' && this.#inbox.length > 0) this.#schedulePump()
    return this
  }

  override once<K extends keyof LinkEvents & string> (event: K, listener: (...args: LinkEvents[K]) => void): this {
    super.once(event, listener)
    if (event === 'message' && this.#inbox.length > 0) this.#schedulePump()
    return this
  }

  async ping (options: { signal?: AbortSignal } = {}): Promise<number> {
    if (this.#state !== 'open') throw this.closedError()
    options.signal?.throwIfAborted()
    const token = this.#nextPing
    this.#nextPing = this.#nextPing >= 0xffff_ffff ? 1 : this.#nextPing + 1
    return await new Promise<number>((resolve, reject) => {
      const onAbort = (): void => {
        this.#pings.delete(token)
        reject(meshError('ERR_ABORTED', 'ping aborted', { cause: options.signal?.reason }))
      }
      options.signal?.addEventListener('abort', onAbort, { once: true })
      this.#pings.set(token, {
        start: this.clock.now(),
        resolve: (rtt) => { options.signal?.removeEventListener('abort', onAbort); resolve(rtt) },
        reject: (err) => { options.signal?.removeEventListener('abort', onAbort); reject(err) }
      })
      this.sendPing(token)
    })
  }

  /** Call when a pong arrives; token 0 is a keepalive ping nobody waits for. */
  protected receivedPong (token: number): void {
    this.receivedControl(0)
    const ping = this.#pings.get(token)
    if (ping === undefined) return
    this.#pings.delete(token)
    ping.resolve(this.clock.now() - ping.start)
  }

  /**
   * Call for each control item received (ping, pong): it costs the peer one message of its budget
   * and `bytes` bytes (0 where the transport counts wire bytes itself, `receivedBytes`). Never held
   * back, but a peer that floods them goes into debt, and the link stops reading until it is paid.
   */
  protected receivedControl (bytes: number): void {
    const budget = this.#budget
    if (budget === undefined || this.#state !== 'open') return
    const now = this.clock.now()
    budget.messages.charge(1, now)
    if (bytes > 0) budget.bytes.charge(bytes, now)
    this.#checkDebt()
  }

  /** Call for each frame read off the wire (TCP): its bytes count against the byte budget. */
  protected receivedBytes (bytes: number): void {
    const budget = this.#budget
    if (budget === undefined || this.#state !== 'open') return
    budget.bytes.charge(bytes, this.clock.now())
    this.#checkDebt()
  }

  /**
   * Call for each message received, in order; counts it and delivers it now or later. `bytes`:
   * what it costs the byte budget (memory links; TCP passes 0 and counts frames instead).
   */
  protected receivedMessage (msg: Uint8Array, bytes = 0): void {
    if (this.#state !== 'open') return
    this.counters.framesIn++
    this.#lastMessageAt = this.clock.now()
    if (bytes > 0) this.#budget?.bytes.charge(bytes, this.#lastMessageAt)
    if (this.#inbox.length === 0 && this.#ready()) {
      this.#deliver(msg)
    } else {
      this.#inbox.push(msg)
      this.#inboxBytes += msg.length
      this.#setPaused()
    }
    if (bytes > 0) this.#checkDebt()
  }

  /**
   * True when a control message would be delivered at once (`receivedUrgent`): someone listens and
   * the link's urgent allowance (URGENT_RATE, URGENT_BURST) holds a token. Nothing is taken.
   */
  protected takesUrgent (): boolean {
    return this.#state === 'open' && this.listenerCount('message') > 0 && this.#urgent.tokens(this.clock.now()) >= 1
  }

  /**
   * A control message (a revocation: the sender marked it, lanes.ts): delivered now, ahead of the
   * messages in the inbox and whatever the turn says, while the urgent allowance lasts; it still
   * costs the receive budget (charged, so a peer that overdoes it goes into debt and is throttled).
   * Past the allowance, or with nobody listening, it queues as any message. On a process that hosts
   * a whole fleet (the simulator), every link waits its turn among hundreds: a revocation that
   * waited too took a round of the round robin per hop (100-device grid: ~200 ms a hop, 2.6–9.7 s end to end).
   */
  protected receivedUrgent (msg: Uint8Array, bytes: number): void {
    if (this.#state !== 'open') return
    const now = this.clock.now()
    if (!this.takesUrgent() || !this.#urgent.take(1, now)) {
      this.receivedMessage(msg, bytes)
      return
    }
    this.counters.framesIn++
    this.#flow.urgent++
    this.#lastMessageAt = now
    const budget = this.#budget
    if (budget !== undefined) {
      budget.messages.charge(1, now)
      if (bytes > 0) budget.bytes.charge(bytes, now)
    }
    this.#deliver(msg)
    this.#checkDebt()
  }

  /**
   * True when the inbox's head (or a message arriving at an empty inbox) may be delivered now:
   * someone listens, the turn has time, the budget has a message token. Otherwise arranges for the
   * pump to run when that changes, and counts what the budget holds back.
   */
  #ready (delivered = 0): boolean {
    if (this.listenerCount('message') === 0) return false // on('message') pumps
    if (!this.#turn.open(this.clock.now())) {
      this.#flow.yields++
      this.#schedulePump(delivered === 0)
      return false
    }
    const budget = this.#budget
    if (budget === undefined) return true
    const now = this.clock.now()
    if (budget.messages.take(1, now)) {
      this.#headHeld = false
      return true
    }
    if (!this.#headHeld) {
      this.#headHeld = true
      this.#flow.overBudget++
    }
    this.#startThrottle(now)
    if (this.#budgetTimer === undefined) {
      this.#budgetTimer = this.clock.setTimeout(() => {
        this.#budgetTimer = undefined
        this.#pump()
      }, Math.max(1, budget.messages.waitFor(1, now)))
    }
    return false
  }

  /** `starved`: this link found the turn used up before it delivered anything (turn.ts puts it first next time). */
  #schedulePump (starved = false): void {
    if (this.#pumpQueued) return
    this.#pumpQueued = true
    this.#turn.later(() => {
      this.#pumpQueued = false
      this.#pump()
    }, starved)
  }

  /** Delivers from the inbox while allowed; reading restarts once it is empty. */
  #pump (): void {
    let delivered = 0
    while (this.#state === 'open' && this.#inbox.length > 0) {
      const head = this.#inbox[0]
      if (typeof head === 'function') {
        this.#inbox.shift()
        head()
        continue
      }
      if (!this.#ready(delivered)) return
      this.#inbox.shift()
      this.#inboxBytes -= (head as Uint8Array).length
      this.#deliver(head as Uint8Array)
      delivered++
    }
    this.#setPaused()
  }

  /**
   * Runs `action` once every message received before it has been delivered (a remote close, the
   * end of the stream), or now when nothing waits or nobody listens (then what waits is dropped).
   */
  protected inOrder (action: () => void): void {
    if (this.#inbox.length === 0 || this.listenerCount('message') === 0) action()
    else this.#inbox.push(action)
  }

  /** The peer's byte or message budget is in debt: stop reading until it is paid. */
  #checkDebt (): void {
    const budget = this.#budget
    if (budget === undefined || this.#debtTimer !== undefined || this.#state !== 'open') return
    const now = this.clock.now()
    const wait = Math.max(budget.bytes.waitFor(0, now), budget.messages.waitFor(0, now))
    if (wait <= 0) return
    this.#startThrottle(now)
    this.#debtTimer = this.clock.setTimeout(() => {
      this.#debtTimer = undefined
      this.#checkDebt()
      this.#setPaused()
    }, wait)
    this.#setPaused()
  }

  #startThrottle (now: number): void {
    if (this.#throttledSince !== undefined) return
    this.#throttledSince = now
    this.#flow.throttled++
  }

  /** Reading stops while messages wait for the budget or the turn (or, unheard, fill the inbox), or the peer owes its budget. */
  #setPaused (): void {
    const waiting = this.#inbox.length > 0 && (this.listenerCount('message') > 0 || this.#inboxBytes >= this.#inboxLimit)
    const paused = this.#state === 'open' && (waiting || this.#debtTimer !== undefined)
    if (!paused && this.#throttledSince !== undefined) {
      this.#flow.throttledMs += this.clock.now() - this.#throttledSince
      this.#throttledSince = undefined
    }
    if (paused === this.#paused || this.#state !== 'open') return
    this.#paused = paused
    this.pauseInput(paused)
  }

  /** A listener that throws does not unwind into the transport: the link is destroyed with its error. */
  #deliver (msg: Uint8Array): void {
    try {
      this.emit('message', msg)
    } catch (err) {
      this.destroy(meshError('ERR_LINK_CLOSED', `a 'message' listener threw (${err instanceof Error ? err.message : String(err)}); the link is destroyed`, { cause: err }))
    }
  }

  /** Moves to `closing` once; returns false if already closing or closed. The first reason given wins. */
  protected beginClose (info: LinkCloseInfo): boolean {
    if (this.#state !== 'open') return false
    this.#state = 'closing'
    this.#closeInfo = info
    const actions = this.#inbox.filter((entry): entry is () => void => typeof entry === 'function')
    this.#inbox = []
    this.#inboxBytes = 0
    for (const timer of [this.#debtTimer, this.#budgetTimer]) if (timer !== undefined) this.clock.clearTimeout(timer)
    this.#debtTimer = this.#budgetTimer = undefined
    if (this.#throttledSince !== undefined) this.#flow.throttledMs += this.clock.now() - this.#throttledSince
    this.#throttledSince = undefined
    for (const action of actions) action() // what waited behind the messages (the socket's end and close) still happens
    return true
  }

  /** Emits `close` exactly once and silences the link for good. */
  protected finishClose (fallback: LinkCloseInfo): void {
    if (this.#state === 'closed') return
    this.#state = 'closed'
    const info = this.#closeInfo ?? fallback
    this.#closeInfo = info
    const err = this.closedError()
    for (const ping of this.#pings.values()) ping.reject(err)
    this.#pings.clear()
    this.emit('close', info)
    this.removeAllListeners()
    this.#resolveClosed()
  }

  protected get closedPromise (): Promise<void> {
    return this.#closed
  }

  /** Why the link closed, once it is closing. */
  get closeInfo (): LinkCloseInfo | undefined {
    return this.#closeInfo
  }

  /** The checks before every send: the link is open and `msg` within the frame limit (ERR_LINK_CLOSED, ERR_FRAME_TOO_LARGE). */
  protected checkSend (msg: Uint8Array, maxMessageBytes: number): void {
    if (this.#state !== 'open') throw this.closedError()
    if (msg.length > maxMessageBytes) {
      throw meshError('ERR_FRAME_TOO_LARGE', `a ${msg.length}-byte message exceeds the link limit of ${maxMessageBytes} bytes; split it`, { details: { length: msg.length, limit: maxMessageBytes } })
    }
  }

  /** The error for a send refused because the `control` or data queue holds `held` bytes of its `limit`. */
  protected backpressureError (control: boolean, held: number, limit: number): MeshError {
    return meshError('ERR_BACKPRESSURE', `the ${control ? 'control' : 'send'} queue to ${this.remote.id} holds ${held} bytes (limit ${limit}); wait for 'drain'`, { details: { bufferedBytes: held, limit, control } })
  }

  protected closedError (): MeshError {
    return meshError('ERR_LINK_CLOSED', `the link to ${this.remote.id} is closed${this.#closeInfo === undefined ? '' : ` (${this.#closeInfo.reason})`}; wait for a new link`, { cause: this.#closeInfo?.error })
  }

  /** Closes gracefully with reason `replaced`: the transport keeps another link to the same device. */
  abstract replace (): void

  async [Symbol.asyncDispose] (): Promise<void> {
    await this.close()
  }
}

/** A local close, with its `why` when it is a valid token (`CLOSE_WHY`; anything else is left out). */
export function closeInfo (why: string | undefined): LinkCloseInfo {
  return why !== undefined && CLOSE_WHY.test(why) ? { reason: 'local', why } : { reason: 'local' }
}

/** `LinkOptions.receiveBudget` with its defaults filled in (false: none). */
export function resolveBudget (budget: ReceiveBudget | false | undefined): Required<ReceiveBudget> | false {
  if (budget === false) return false
  return {
    messagesPerSecond: budget?.messagesPerSecond ?? DEFAULT_RECEIVE_BUDGET.messagesPerSecond,
    bytesPerSecond: budget?.bytesPerSecond ?? DEFAULT_RECEIVE_BUDGET.bytesPerSecond,
    burstSeconds: budget?.burstSeconds ?? DEFAULT_RECEIVE_BUDGET.burstSeconds
  }
}
