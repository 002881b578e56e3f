import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { isDeviceId, meshError, topicMatches, type Clock, type DeviceId } from '../../../shared/index.js'
import { DURABLE_FILTER, covers, type Ack, type MeshNode } from '../../../mesh/index.js'
import type { SendOutcome } from '../types.js'

/**
 * The mesh path's acknowledgement policy: a frame counts as delivered only once every durable
 * subscriber whose filters match it has acknowledged it (mesh/routing/ack.ts, a signed cumulative
 * ack). Until then the frame stays in the outbox, unacknowledged there, so a reboot or power cut
 * offers it again; a frame offered and not acknowledged within the re-offer timeout is offered
 * again (MeshNode.reoffer: history and DIGEST, so only a neighbour that lacks it fetches it).
 *
 * The re-offer timeout is TCP's retransmission timer (RFC 6298): computed from the delays
 * measured between offering a frame and its acknowledgement (§2: SRTT + 4·RTTVAR, only frames
 * offered once, Karn's rule, §3), never below `reofferMs` (§2.4) nor above `maxReofferMs` (§2.5),
 * and doubled each time it expires (§5.5) until the next measurement sets it again (§5.7). With a fixed 2 s, a fleet
 * that fell behind (a busy core: acks took longer than 2 s) offered every waiting frame again
 * every 2 s, each offer fetched again along the path, and the extra work kept it behind: a
 * 300-device soak collapsed at minute 26 under load (issue 11).
 *
 * Who the durable subscribers are: those whose signed interest declaration carries
 * DURABLE_FILTER (a relay cannot add or remove it). Once learned, a durable subscriber is kept,
 * also while no route leads to it (a partitioned gateway is the case this is for), until its own
 * declaration says it is durable no more; with a `file` the set survives restarts, so a device
 * that boots while cut off still waits for its gateway. A frame no durable subscriber wants is
 * delivered as before, when handed on towards a subscriber.
 *
 * Flow: a frame is offered only while it is fewer than `flow` sequence numbers above the oldest
 * frame still waiting, so no receiver's replay window (1,024 numbers) ever passes a frame it
 * has not had yet (it would refuse it for good as too old).
 */

interface Waiter {
  readonly seq: number
  readonly frame: Uint8Array
  readonly needs: readonly DeviceId[]
  offeredAt: number
  /** Times offered again (its ack is then no measurement: Karn's rule, RFC 6298 §3). */
  tries: number
  resolve: (outcome: SendOutcome) => void
  reject: (err: Error) => void
}

export interface MeshAcksInit {
  clock: Clock
  /** The least re-offer timeout, ms (default 2000); the timeout follows measured ack delays above it. */
  reofferMs?: number
  /** The most re-offer timeout, ms, backoff included (default 60,000, RFC 6298 §2.5). */
  maxReofferMs?: number
  /** Most sequence numbers between the oldest waiting frame and one offered (default 512). */
  flow?: number
  /** Where the durable subscribers learned are kept (JSON), if anywhere. */
  file?: string
}

/** Most durable subscribers remembered (a fleet has one or a few gateways). */
const MAX_DURABLE = 64
/** Most frames offered again per check. */
const REOFFER_PER_TICK = 64

export class MeshAcks {
  readonly #node: MeshNode
  readonly #clock: Clock
  readonly #reofferMs: number
  readonly #maxReofferMs: number
  /** Smoothed ack delay and its variation (RFC 6298 §2), ms; undefined before the first sample. */
  #srtt: number | undefined
  #rttvar = 0
  /** The re-offer timeout, ms (RFC 6298's RTO). */
  #rto: number
  readonly #flow: number
  readonly #file: string | undefined
  readonly #durable = new Map<DeviceId, readonly string[]>()
  readonly #acked = new Map<DeviceId, Ack>()
  readonly #waiting = new Map<number, Waiter>()
  #room: Array<{ resolve: () => void, reject: (err: Error) => void }> = []
  reoffered = 0

  constructor (node: MeshNode, init: MeshAcksInit) {
    this.#node = node
    this.#clock = init.clock
    this.#reofferMs = init.reofferMs ?? 2000
    this.#maxReofferMs = Math.max(this.#reofferMs, init.maxReofferMs ?? 60_000)
    this.#rto = this.#reofferMs
    this.#flow = init.flow ?? 512
    this.#file = init.file
    this.#load()
    node.on('ack', (ack) => { this.#onAck(ack) })
  }

  /** Frames offered and not acknowledged yet. */
  get waiting (): number { return this.#waiting.size }
  /** Durable subscribers known. */
  get durable (): number { return this.#durable.size }

  /** The re-offer timeout now, ms (RFC 6298's RTO: SRTT + 4·RTTVAR, clamped; doubled while offers go unanswered). */
  get reofferTimeout (): number { return this.#rto }

  /** The durable subscribers whose filters match `topic` (a full topic). */
  needs (topic: string): DeviceId[] {
    const out: DeviceId[] = []
    for (const [id, filters] of this.#durable) if (filters.some((f) => f !== DURABLE_FILTER && topicMatches(f, topic))) out.push(id)
    return out
  }

  /** True when every one of `needs` has acknowledged `seq` already. */
  covered (seq: number, needs: readonly DeviceId[]): boolean {
    return needs.every((id) => { const ack = this.#acked.get(id); return ack !== undefined && covers(ack, seq) })
  }

  /** Resolves when `seq` may be offered (see `flow`); rejects when the path goes down meanwhile. */
  async room (seq: number): Promise<void> {
    while (true) {
      const oldest = this.#waiting.keys().next()
      if (oldest.done === true || seq - this.#oldest() < this.#flow) return
      await new Promise<void>((resolve, reject) => { this.#room.push({ resolve, reject }) })
    }
  }

  /** Resolves 'delivered' once `needs` all acknowledged `seq`; rejects when the path goes down first. */
  async wait (seq: number, frame: Uint8Array, needs: readonly DeviceId[]): Promise<SendOutcome> {
    if (this.covered(seq, needs)) return 'delivered'
    return await new Promise<SendOutcome>((resolve, reject) => {
      this.#waiting.get(seq)?.reject(meshError('ERR_ABORTED', `frame ${seq} offered again`))
      this.#waiting.set(seq, { seq, frame, needs, offeredAt: this.#clock.now(), tries: 0, resolve, reject })
    })
  }

  /** Every check: learns durable subscribers from the interest table; offers again what waited too long. */
  tick (): void {
    this.learn()
    this.#reofferDue()
  }

  /**
   * Learns the durable subscribers from the interest table now. The path calls it before it hands
   * on a frame as wanted by no durable subscriber: a route to the gateway that appeared since the
   * last check (every 250 ms) would otherwise carry the frames of that moment as fire-and-forget:
   * handed on, counted delivered, and lost for good if a link then dropped them.
   */
  learn (): void {
    let changed = false
    for (const route of this.#node.interest()) {
      if (route.durable === true && (this.#durable.has(route.subscriber) || this.#durable.size < MAX_DURABLE)) {
        const before = this.#durable.get(route.subscriber)
        if (before === undefined || before.join('\n') !== route.filters.join('\n')) { this.#durable.set(route.subscriber, route.filters); changed = true }
      } else if (route.durable !== true && route.filters.length > 0 && this.#durable.delete(route.subscriber)) {
        this.#acked.delete(route.subscriber)
        changed = true
      }
    }
    if (changed) this.#save()
  }

  #reofferDue (): void {
    const now = this.#clock.now()
    let n = 0
    for (const waiter of this.#waiting.values()) {
      if (n >= REOFFER_PER_TICK) break
      if (now - waiter.offeredAt < this.#rto) continue
      waiter.offeredAt = now
      waiter.tries++
      n++
      if (this.#node.reoffer(waiter.frame)) this.reoffered++
      else if (this.#node.inject(waiter.frame).verdict === 'accepted') this.reoffered++ // a restarted node never took it
    }
    if (n > 0) this.#rto = Math.min(this.#maxReofferMs, 2 * this.#rto) // the timer expired: back off (§5.5)
  }

  /** The path went down or stops: every frame waiting goes back to the outbox's queue (sent again when it is up). */
  failAll (err: Error): void {
    const waiting = [...this.#waiting.values()]
    this.#waiting.clear()
    for (const w of waiting) w.reject(err)
    const room = this.#room
    this.#room = []
    for (const r of room) r.reject(err)
  }

  /** One ack delay, ms (RFC 6298 §2.2–2.3, α = 1/8, β = 1/4). */
  #measured (r: number): void {
    if (this.#srtt === undefined) {
      this.#srtt = r
      this.#rttvar = r / 2
    } else {
      this.#rttvar = 0.75 * this.#rttvar + 0.25 * Math.abs(this.#srtt - r)
      this.#srtt = 0.875 * this.#srtt + 0.125 * r
    }
    this.#rto = Math.min(this.#maxReofferMs, Math.max(this.#reofferMs, this.#srtt + 4 * this.#rttvar))
  }

  #oldest (): number {
    let low = Infinity
    for (const seq of this.#waiting.keys()) if (seq < low) low = seq
    return low
  }

  #onAck (ack: Ack): void {
    const last = this.#acked.get(ack.subscriber)
    if (last !== undefined && last.time >= ack.time) return
    this.#acked.set(ack.subscriber, ack)
    if (!this.#durable.has(ack.subscriber) && this.#durable.size < MAX_DURABLE) {
      const filters = this.#node.interest().find((r) => r.subscriber === ack.subscriber)?.filters
      if (filters !== undefined) { this.#durable.set(ack.subscriber, filters); this.#save() }
    }
    let settled = false
    let sample: Waiter | undefined
    for (const [seq, w] of this.#waiting) {
      if (!this.covered(seq, w.needs)) continue
      this.#waiting.delete(seq)
      // The newest frame offered once: its delay is the path's, not time spent waiting for a hole below it.
      if (w.tries === 0 && (sample === undefined || w.seq > sample.seq)) sample = w
      w.resolve('delivered')
      settled = true
    }
    if (sample !== undefined) this.#measured(this.#clock.now() - sample.offeredAt)
    if (settled) {
      const room = this.#room
      this.#room = []
      for (const r of room) r.resolve()
    }
  }

  #load (): void {
    if (this.#file === undefined) return
    try {
      const saved = JSON.parse(readFileSync(this.#file, 'utf8')) as { durable?: Record<string, unknown> }
      for (const [id, filters] of Object.entries(saved.durable ?? {})) {
        if (this.#durable.size >= MAX_DURABLE) break
        if (isDeviceId(id) && Array.isArray(filters) && filters.every((f) => typeof f === 'string')) this.#durable.set(id, filters as string[])
      }
    } catch {
      // absent or unreadable: learned again from the interest table
    }
  }

  #save (): void {
    if (this.#file === undefined) return
    try {
      const tmp = `${this.#file}.tmp`
      writeFileSync(tmp, JSON.stringify({ durable: Object.fromEntries(this.#durable) }) + '\n')
      renameSync(tmp, this.#file)
    } catch {
      // best effort: the set is learned again from the interest table
    }
  }
}
