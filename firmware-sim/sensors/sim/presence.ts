import { meshError } from '../../../shared/index.js'
import { unitAt } from '../../random.js'
import type { Sensor } from '../types.js'
import { simSensor } from './base.js'
import { reporter } from './events.js'

/**
 * People passing through a place, as seeded visits: the first begins `gapS` after `start`, each
 * next one a gap drawn uniformly from [gapS[0], gapS[1]] after the one before, and each lasts
 * `holdS` (a PIR detector's hold time). A pure function of (seed, key, start): the same seed gives
 * the same visits on every run.
 */
export interface PresenceInit {
  seed?: number
  /** Names the visits' stream (default "presence"). */
  key?: string
  /** Gap between two visits' starts, s, [min, max] (default [20, 60]). */
  gapS?: [number, number]
  /** How long motion reads true after a visit begins, s (default 30). */
  holdS?: number
}

/** Seeded visits of people through a place, as a motion detector sees them. */
export class Presence {
  readonly start: number
  readonly gapMs: [number, number]
  readonly holdMs: number
  readonly #starts: number[] = []
  readonly #draw: () => number

  constructor (init: PresenceInit = {}, start = 0, draw?: () => number) {
    const [lo, hi] = init.gapS ?? [20, 60]
    const hold = init.holdS ?? 30
    if (!(lo > 0) || !(hi >= lo) || !Number.isFinite(hi)) throw meshError('ERR_BAD_ARGUMENT', `presence gapS must be [min, max] seconds with 0 < min ≤ max, got ${JSON.stringify(init.gapS)}`)
    if (!(hold > 0) || hold >= lo) throw meshError('ERR_BAD_ARGUMENT', `presence holdS must be above 0 and below the shortest gap (${lo} s), got ${hold}`)
    this.start = start
    this.gapMs = [lo * 1000, hi * 1000]
    this.holdMs = hold * 1000
    this.#draw = draw ?? seededUnits(init.seed ?? 1, init.key ?? 'presence')
  }

  /** Starts of the visits in [from, to), ascending. */
  visits (from: number, to: number): number[] {
    this.#extend(to)
    return this.#starts.filter((t) => t >= from && t < to)
  }

  /** Whether a visit is under way at `t`. */
  motionAt (t: number): boolean {
    this.#extend(t)
    return this.#starts.some((s) => s <= t && t < s + this.holdMs)
  }

  #extend (t: number): void {
    let last = this.#starts.at(-1) ?? this.start
    while (last <= t) {
      last += this.gapMs[0] + this.#draw() * (this.gapMs[1] - this.gapMs[0])
      this.#starts.push(last)
    }
  }
}

/** `motion` (vb) on the `events/motion` topic from a Presence: reported when it changes (and at the first read). */
export function createPresenceMotionSensor (presence: Presence): Sensor {
  const report = reporter<boolean>('change')
  return simSensor('motion', ['motion'], (now) => {
    const moving = presence.motionAt(now)
    return report(moving) ? [{ n: 'motion', vb: moving }] : undefined
  }, 'events/motion')
}

function seededUnits (seed: number, key: string): () => number {
  let i = 0
  return () => unitAt(seed, 'presence', key, i++)
}
