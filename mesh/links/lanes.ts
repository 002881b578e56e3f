/**
 * A link's send queue in two lanes: data (frames, the catch-up exchange, everything else) and
 * control (owner-signed revocations and configurations: `SendOptions.control`). What waits goes
 * out control first, so a revocation is not stuck behind a full queue of readings (issue 13: on a
 * busy 100-device mesh a REVOKE waited on each link behind up to 1 MiB of data). Bounded both
 * ways:
 * - the control lane holds at most `controlLimit` bytes (its own bound: a full data lane does not
 *   refuse control, a full control lane does not refuse data);
 * - while data waits, at most `burst` control items go out in a row before one data item does, so
 *   a flood of control messages slows data to 1 in `burst + 1` items at worst and never stops it.
 * What a neighbour can make this node send on the control lane is bounded before it gets here:
 * only a new, owner-signed revocation or a higher configuration version is passed on, and each
 * neighbour's REVOKE and CONFIG are read at their own rate (routing/budget.ts).
 * Pure bookkeeping: the link decides when to take (queued-link.ts and its subclasses, tcp-link.ts).
 */

/** Default: up to 4 control items in a row while data waits. */
export const DEFAULT_CONTROL_BURST = 4

export interface LaneItem {
  /** Bytes the item counts against its lane's bound. */
  readonly bytes: number
}

export class SendLanes<T extends LaneItem> {
  readonly #data: T[] = []
  readonly #control: T[] = []
  #dataHead = 0
  #controlHead = 0
  #dataBytes = 0
  #controlBytes = 0
  /** Control items taken in a row while data waited. */
  #run = 0
  readonly controlLimit: number
  readonly burst: number

  constructor (controlLimit: number, burst = DEFAULT_CONTROL_BURST) {
    this.controlLimit = Math.max(0, controlLimit)
    this.burst = Math.max(1, Math.floor(burst))
  }

  get dataBytes (): number { return this.#dataBytes }
  get controlBytes (): number { return this.#controlBytes }
  get bytes (): number { return this.#dataBytes + this.#controlBytes }
  get length (): number { return this.#data.length - this.#dataHead + this.#control.length - this.#controlHead }

  /**
   * The next control item, taken out whatever data waits (the link's peer takes it at once while it
   * does not read: base-link.ts receivedUrgent, and data is held back by the peer, not by the lane).
   */
  shiftControl (): T | undefined {
    if (this.#controlHead >= this.#control.length) return undefined
    const item = this.#control[this.#controlHead++] as T
    this.#controlBytes -= item.bytes
    this.#compact()
    return item
  }

  /** True when a control item of `bytes` fits its lane. */
  controlFits (bytes: number): boolean {
    return this.#controlBytes + bytes <= this.controlLimit
  }

  push (item: T, control = false): void {
    if (control) {
      this.#control.push(item)
      this.#controlBytes += item.bytes
    } else {
      this.#data.push(item)
      this.#dataBytes += item.bytes
    }
  }

  /** The next item to send, taken out: control first, but data after `burst` control items in a row. */
  shift (): T | undefined {
    const dataWaits = this.#dataHead < this.#data.length
    const controlWaits = this.#controlHead < this.#control.length
    if (controlWaits && (!dataWaits || this.#run < this.burst)) {
      const item = this.#control[this.#controlHead++] as T
      this.#controlBytes -= item.bytes
      if (dataWaits) this.#run++
      this.#compact()
      return item
    }
    if (!dataWaits) return undefined
    const item = this.#data[this.#dataHead++] as T
    this.#dataBytes -= item.bytes
    this.#run = 0
    this.#compact()
    return item
  }

  clear (): void {
    this.#data.length = this.#control.length = 0
    this.#dataHead = this.#controlHead = this.#dataBytes = this.#controlBytes = this.#run = 0
  }

  /** Drops taken items from the arrays' fronts once they are a good share (amortised O(1) per item). */
  #compact (): void {
    if (this.#dataHead > 64 && this.#dataHead * 2 >= this.#data.length) {
      this.#data.splice(0, this.#dataHead)
      this.#dataHead = 0
    }
    if (this.#controlHead > 64 && this.#controlHead * 2 >= this.#control.length) {
      this.#control.splice(0, this.#controlHead)
      this.#controlHead = 0
    }
  }
}
