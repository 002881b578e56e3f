import { meshError, systemClock, toHex, type Clock, type DeviceId } from '../shared/index.js'
import type { Link, RemotePeer } from './links/index.js'

/**
 * Cloned identities at the link layer (issue 10, "two boards with the same key"): one SD-card
 * image flashed onto two boards gives them one key. Each node draws a random instance id once per
 * process start and shows it in every link handshake (links/handshake.ts, extension type 2).
 *
 * The rule: a live first instance is proof that a second one is a clone. When a peer proves key K
 * with instance B while this node holds an open link to K from instance A (the link was authenticated
 * by A's handshake, and everything on it is sealed with that session's keys: links/secure.ts), the
 * open link is asked for a liveness proof only A can give: a ping on it, answered within `probeMs`.
 *   answered      A is alive, so B is a second device with A's key: B is refused with
 *                 ERR_CLONED_IDENTITY (told to it in the handshake's REFUSE), and B's instance id is
 *                 kept out for `holdMs` without another probe; A keeps its link.
 *   not answered  A is gone (a restart, a power cut that left the old link looking alive, a move):
 *                 the old link is destroyed and B takes its place. A restart is never a clone.
 * The same instance relinking (from another address of its own, or both ends dialing at once) is
 * never judged, and peers that show no instance id (older nodes) are not judged either.
 *
 * What this node keeps is the instance it met first, among those it sees alive at once; a clone
 * that only ever links where the first board never does is not found here (see the report's limits).
 * Costs: no signature is spent (the peer has proven its key before it is judged), one ping per
 * open link at a time (newcomers of one key share the probe in flight), and `maxDevices` keys with
 * `history` refused instance ids each.
 */

export interface InstanceBookInit {
  /** How long an instance id found to be a clone is refused (default 10 minutes). */
  holdMs?: number
  /** How long the open link has to answer the liveness probe, ms (default 1,500). */
  probeMs?: number
  /** Keys remembered (default 4,096; the least recently seen first out). */
  maxDevices?: number
  /** Refused instance ids remembered per key (default 4; the oldest first out). */
  history?: number
}

/** What `vouch` found: a first or the same instance, a restart (the old link was dead), or a peer without an instance id. */
export type Judgement = 'new' | 'same' | 'restart' | 'unjudged'

/** One key as this node knows it. */
interface Record_ {
  /** The instance this node keeps for the key (the latest let in). */
  current: string
  /** Instance ids refused as clones, and until when (clock ms). */
  refused: Map<string, number>
}

export class InstanceBook {
  readonly #holdMs: number
  readonly #probeMs: number
  readonly #maxDevices: number
  readonly #history: number
  readonly #clock: Clock
  readonly #keys = new Map<DeviceId, Record_>()
  /** The liveness probe in flight on an open link (one at a time; weak: gone with the link). */
  readonly #probes = new WeakMap<Link, Promise<boolean>>()
  /** Second instances refused as clones. */
  clones = 0
  /** New instances let in because the old one no longer answered (restarts). */
  restarts = 0

  constructor (init: InstanceBookInit = {}, clock: Clock = systemClock) {
    this.#holdMs = init.holdMs ?? 600_000
    this.#probeMs = init.probeMs ?? 1500
    this.#maxDevices = Math.max(1, init.maxDevices ?? 4096)
    this.#history = Math.max(1, init.history ?? 4)
    this.#clock = clock
  }

  /** Instance ids of `id` refused as clones right now (0: none). */
  cloned (id: DeviceId): number {
    const record = this.#keys.get(id)
    if (record === undefined) return 0
    const now = this.#clock.now()
    for (const [instance, until] of record.refused) if (until <= now) record.refused.delete(instance)
    return record.refused.size
  }

  /**
   * Judges a peer that has proven its key, beside this node's open link to that key (`open`):
   * throws ERR_CLONED_IDENTITY for a clone (refused now or earlier), else says what it found and
   * remembers the instance. On a restart the old, silent link is destroyed.
   */
  async vouch (peer: RemotePeer, open: Link | undefined): Promise<Judgement> {
    const { id, instance } = peer
    if (instance === undefined) return 'unjudged'
    const key = toHex(instance)
    const record = this.#touch(id)
    const until = record.refused.get(key)
    if (until !== undefined && until > this.#clock.now()) throw cloned(id, key, 'it was found earlier: another device with this key answers here')
    const theirs = open?.remote.instance
    if (open === undefined || theirs === undefined) return this.#keep(record, key)
    if (toHex(theirs) === key) return this.#keep(record, key)
    if (await this.#alive(open)) {
      if (!((record.refused.get(key) ?? 0) > this.#clock.now())) this.clones++ // once per instance: dials that shared the probe count once
      record.refused.delete(key)
      record.refused.set(key, this.#clock.now() + this.#holdMs)
      if (record.refused.size > this.#history) record.refused.delete(record.refused.keys().next().value as string)
      throw cloned(id, key, `instance ${toHex(theirs).slice(0, 8)}… of this key is linked here and answered a liveness probe`)
    }
    open.destroy(meshError('ERR_LINK_CLOSED', `${id} came back as a new instance and the old link did not answer within ${this.#probeMs} ms: a restart`))
    this.restarts++
    record.current = key
    return 'restart'
  }

  #keep (record: Record_, key: string): Judgement {
    if (record.current === key) return 'same'
    record.current = key
    return 'new'
  }

  /** The key's record, most recently seen last (a new one may push out the least recently seen). */
  #touch (id: DeviceId): Record_ {
    const record = this.#keys.get(id) ?? { current: '', refused: new Map<string, number>() }
    this.#keys.delete(id)
    if (this.#keys.size >= this.#maxDevices) this.#keys.delete(this.#keys.keys().next().value as DeviceId)
    this.#keys.set(id, record)
    return record
  }

  /**
   * True when `open` answers a ping within probeMs, or when anything else came in on it meanwhile
   * (its session is sealed: only the first instance can send on it; a busy or throttled link may
   * answer late, and a first board taken for gone would lose its link to its clone). A probe in flight is shared.
   */
  async #alive (open: Link): Promise<boolean> {
    let probe = this.#probes.get(open)
    if (probe === undefined) {
      const abort = new AbortController()
      const timer = this.#clock.setTimeout(() => { abort.abort(meshError('ERR_TIMEOUT', 'no answer to the liveness probe')) }, this.#probeMs)
      const before = open.counters.bytesIn
      const heard = (): boolean => open.open && open.counters.bytesIn > before
      probe = open.ping({ signal: abort.signal }).then(() => true, heard).finally(() => { this.#clock.clearTimeout(timer) })
      this.#probes.set(open, probe)
    }
    const alive = await probe
    this.#probes.delete(open)
    return alive
  }
}

function cloned (id: DeviceId, instance: string, why: string): Error {
  return meshError('ERR_CLONED_IDENTITY', `${id} (instance ${instance.slice(0, 8)}…) is a cloned identity: ${why}; ` +
    'give each device its own key (iotmesh keygen) and enroll it', { details: { id, instance } })
}
