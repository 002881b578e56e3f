import type { DeviceId } from '../../shared/index.js'
import type { BaseLink } from './base-link.js'

/**
 * One link per pair of devices (the duplicate rule behind hyperswarm's `_handleServerConnection`).
 * When two links join the same devices, both ends keep the same one, because they apply the same
 * total order to facts both know identically:
 *   1. the link initiated by the lexicographically smaller device id wins;
 *   2. between links initiated by the same device, the one with the higher dial sequence wins
 *      (the initiator signs its sequence into HELLO, so a device that restarts replaces its
 *      stale links).
 * Each end closes a link only when it holds a better one, so the winner is never closed by either
 * side; a loser a side sees first is closed as soon as the winner reaches it. To avoid even that
 * churn in the common race (both devices dial at once), the device with the smaller id answers
 * the peer's handshake only after its own dial to that peer has settled. The other device never
 * waits, so the two can not wait on each other.
 */

export interface LinkOrigin {
  /** The device that dialed. */
  readonly initiatorId: DeviceId
  /** The initiator's dial sequence: increases with every dial and across restarts. */
  readonly seq: number
}

/** True when `a` should be kept over `b` (both join the same two devices). */
export function beats (a: LinkOrigin, b: LinkOrigin): boolean {
  if (a.initiatorId !== b.initiatorId) return a.initiatorId < b.initiatorId
  return a.seq > b.seq
}

export class LinkRegistry {
  readonly #localId: DeviceId
  readonly links = new Map<DeviceId, BaseLink>()
  readonly #origins = new WeakMap<BaseLink, LinkOrigin>()
  /** Handshakes in progress, by remote id: `out` are ours (dials), `all` both directions. */
  readonly #out = new Map<DeviceId, Set<Promise<unknown>>>()
  readonly #all = new Map<DeviceId, Set<Promise<unknown>>>()

  constructor (localId: DeviceId) {
    this.#localId = localId
  }

  /** Registers a handshake with `remoteId` until `done()` is called. */
  track (remoteId: DeviceId, outbound: boolean): () => void {
    let release!: () => void
    const settled = new Promise<void>((resolve) => { release = resolve })
    const sets = outbound ? [this.#all, this.#out] : [this.#all]
    for (const map of sets) {
      let set = map.get(remoteId)
      if (set === undefined) map.set(remoteId, set = new Set())
      set.add(settled)
    }
    return () => {
      for (const map of sets) {
        const set = map.get(remoteId)
        set?.delete(settled)
        if (set?.size === 0) map.delete(remoteId)
      }
      release()
    }
  }

  /**
   * The responder's verdict on a proven inbound handshake. Waits first when our own dial to the
   * same device is in progress and would win (we have the smaller id); refuses the newcomer when
   * an open link beats it, and probes that link so a stale one is found dead quickly.
   */
  async decideInbound (remoteId: DeviceId, candidate: LinkOrigin): Promise<'accept' | 'duplicate'> {
    const ours = this.#out.get(remoteId)
    if (this.#localId < remoteId && ours !== undefined && ours.size > 0) await Promise.all([...ours])
    const existing = this.links.get(remoteId)
    if (existing === undefined || !existing.open) return 'accept'
    const origin = this.#origins.get(existing)
    if (origin === undefined || !beats(origin, candidate)) return 'accept'
    existing.ping().catch(() => {})
    return 'duplicate'
  }

  /**
   * Makes `link` the link to its remote unless an open one beats it. Returns the link kept; the
   * loser is closed with reason `replaced`.
   */
  adopt (link: BaseLink, origin: LinkOrigin): BaseLink {
    const id = link.remote.id
    this.#origins.set(link, origin)
    const existing = this.links.get(id)
    if (existing !== undefined && existing.open && existing !== link) {
      const existingOrigin = this.#origins.get(existing)
      if (existingOrigin !== undefined && beats(existingOrigin, origin)) {
        link.replace()
        return existing
      }
      existing.replace()
    }
    this.links.set(id, link)
    link.once('close', () => {
      if (this.links.get(id) === link) this.links.delete(id)
    })
    return link
  }

  /** The open link to `remoteId` once every handshake with it has settled (after a `duplicate` verdict). */
  async settled (remoteId: DeviceId): Promise<BaseLink | undefined> {
    for (;;) {
      const pending = this.#all.get(remoteId)
      if (pending === undefined || pending.size === 0) break
      await Promise.all([...pending])
    }
    const link = this.links.get(remoteId)
    return link?.open === true ? link : undefined
  }
}
