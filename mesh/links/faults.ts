import { mixSeed, mulberry32, type Clock, type DeviceId } from '../../shared/index.js'
import { faultyLink, type FaultyLink, type LinkFaults } from './faulty-link.js'
import type { Link } from './types.js'

/**
 * One fault model for every transport: the in-memory network, TCP links (`applyFaults`) and the
 * fleet simulator share it. It holds
 * - the seed: each link end gets its own mulberry32 stream, `mixSeed(seed, from, to, n)` for the
 *   n-th link from one device to another, so a run with the same seed and the same sends gives
 *   every message the same fate, whatever order links open in;
 * - the loss, delay and duplication settings, which every link it wrapped reads at each send, so
 *   `configure()` changes them at run time for links old and new;
 * - the partitions: `partition()` cuts devices apart until `heal()`; links across a cut drop
 *   what they carry and dials across it are refused.
 */
export interface FaultModelInit extends LinkFaults {
  /** Default 1. */
  seed?: number
}

export interface PartitionOptions {
  /**
   * Devices in none of the groups: `'group'` (the default) makes them one more group, so a single
   * group is one side against all the rest; `'isolated'` cuts each of them off from everyone.
   */
  rest?: 'group' | 'isolated'
}

interface Cut {
  readonly groups: ReadonlyMap<DeviceId, number>
  readonly rest: 'group' | 'isolated'
}

/** Whether a cut separates `a` from `b`. */
function separates (cut: Cut, a: DeviceId, b: DeviceId): boolean {
  const ga = cut.groups.get(a)
  const gb = cut.groups.get(b)
  if (cut.rest === 'isolated' && (ga === undefined || gb === undefined)) return a !== b
  return ga !== gb
}

export class FaultModel {
  readonly seed: number
  #settings: Readonly<LinkFaults>
  #cuts: Cut[] = []
  readonly #links = new Map<string, number>()

  constructor (init: FaultModelInit = {}) {
    const { seed, ...settings } = init
    this.seed = seed ?? 1
    this.#settings = settings
  }

  /** The loss, delay and duplication every link wrapped by this model applies now. */
  get settings (): Readonly<LinkFaults> { return this.#settings }

  /** Changes some settings (the others stay); links already open apply them from their next send. */
  configure (changes: LinkFaults): void {
    this.#settings = { ...this.#settings, ...changes }
  }

  /**
   * Cuts the network: devices in different groups cannot reach each other until `heal()`.
   * Cuts add up: a second call cuts further, it does not heal the first.
   */
  partition (groups: ReadonlyArray<Iterable<DeviceId>>, options: PartitionOptions = {}): void {
    const membership = new Map<DeviceId, number>()
    groups.forEach((group, i) => { for (const id of group) membership.set(id, i) })
    this.#cuts.push({ groups: membership, rest: options.rest ?? 'group' })
  }

  /** Lifts every partition. */
  heal (): void {
    this.#cuts = []
  }

  get partitioned (): boolean { return this.#cuts.length > 0 }

  /** Whether traffic between `a` and `b` is cut right now (either direction). */
  readonly blocked = (a: DeviceId, b: DeviceId): boolean => this.#cuts.some((cut) => separates(cut, a, b))

  /** Wraps one end of a new link (the end `localId` sends from) in this model's faults. */
  wrap (link: Link, localId: DeviceId, clock: Clock): FaultyLink {
    const remote = link.remote.id
    const pair = `${localId}>${remote}`
    const n = (this.#links.get(pair) ?? 0) + 1
    this.#links.set(pair, n)
    return faultyLink(link, {
      next: mulberry32(mixSeed(this.seed, localId, remote, n)),
      settings: () => this.#settings,
      blocked: () => this.blocked(localId, remote)
    }, clock)
  }
}

/** A fault model: seeded per-link faults and partitions to apply to any transport. */
export function createFaultModel (init: FaultModelInit = {}): FaultModel {
  return new FaultModel(init)
}
