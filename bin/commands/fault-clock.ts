import type { ScheduledFault } from '../../firmware-sim/index.js'
import { meshError } from '../../shared/index.js'

/**
 * The fault loop of `iotmesh sim`: runs scheduled faults at their times on one clock and records
 * when each one fired.
 *
 * The clock counts seconds from `epochMs`, a wall-clock instant (ms since 1970): the fleet's start
 * for a plain `sim`, the command's start for the hosts of `sim --hosts` (`--faults-epoch`; namespace
 * hosts share the machine's clock, only their network is their own, so one epoch means one time
 * line). A fault whose time has already passed when the loop starts (a host whose fleet came up
 * late) fires at once; faults fire in spec order, one after the other (crash:0@5,restart:0@5 never
 * overlap), so a fault can fire later than its time because the one before it takes long. Each
 * fault's timing records when it began (`firedAt`, wall clock, and `firedS` on the fault clock), how
 * late that was (`lateS`, ≥ 0 up to the timers' precision), and when it was done (`doneAt`, `doneS`).
 */

export interface FaultTiming {
  /** Wall-clock ms (since 1970) at which the fault began to be applied. */
  firedAt: number
  /** Seconds from the epoch at which it began. */
  firedS: number
  /** `firedS` minus the fault's scheduled `atS`. */
  lateS: number
  /** Wall-clock ms and seconds from the epoch at which it was done (failed or not); unset while it runs. A slow one holds back the next. */
  doneAt?: number
  doneS?: number
}

export interface FaultClockInit {
  /** Wall-clock ms (since 1970) from which the faults' `atS` count. */
  epochMs: number
  /** Applies one fault; a rejection is reported to `onDone` and the next fault still runs. */
  apply: (fault: ScheduledFault, index: number) => Promise<void>
  /** Called once each fault is done (`error` set if it failed). */
  onDone?: (fault: ScheduledFault, timing: FaultTiming, error?: Error) => void
}

export interface FaultClockComponents {
  /** The wall clock (default `Date.now`): the epoch's clock, so hosts agree on it. */
  now?: () => number
}

export interface FaultClock {
  /** Per fault (spec order), its timing once it has fired. */
  readonly timings: ReadonlyArray<FaultTiming | undefined>
  /** No further fault becomes due; resolves when those already due are done (as before the clock, a due fault still runs). Idempotent. */
  stop: () => Promise<void>
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000

/** Starts the loop over `faults` (sorted by `atS`, as parseFaultSpec returns them). */
export function startFaultClock (faults: readonly ScheduledFault[], init: FaultClockInit, components: FaultClockComponents = {}): FaultClock {
  const now = components.now ?? Date.now
  const timings: Array<FaultTiming | undefined> = faults.map(() => undefined)
  let next = 0
  let stopped = false
  let timer: NodeJS.Timeout | undefined
  let applying = Promise.resolve()

  const run = (index: number): void => {
    const fault = faults[index] as ScheduledFault
    applying = applying.then(async () => {
      const firedAt = now()
      const firedS = round3((firedAt - init.epochMs) / 1000)
      const timing: FaultTiming = { firedAt, firedS, lateS: round3(firedS - fault.atS) }
      timings[index] = timing
      const done = (): void => {
        timing.doneAt = now()
        timing.doneS = round3((timing.doneAt - init.epochMs) / 1000)
      }
      try {
        await init.apply(fault, index)
        done()
        init.onDone?.(fault, timing)
      } catch (err) {
        done()
        init.onDone?.(fault, timing, err as Error)
      }
    })
  }

  const tick = (): void => {
    timer = undefined
    if (stopped) return
    const elapsedMs = now() - init.epochMs
    while (next < faults.length && (faults[next] as ScheduledFault).atS * 1000 <= elapsedMs) run(next++)
    const upcoming = faults[next]
    // One timer, to the next fault's time (not a polling tick): a fault fires at its time, not up to a tick later.
    // (setTimeout takes at most 2^31 - 1 ms: a later fault is re-timed when that one ends.)
    if (upcoming !== undefined) timer = setTimeout(tick, Math.min(2 ** 31 - 1, Math.max(0, upcoming.atS * 1000 - elapsedMs)))
  }
  tick()

  return {
    timings,
    async stop () {
      stopped = true
      clearTimeout(timer)
      timer = undefined
      await applying
    }
  }
}

/** The faults with their timings, as a summary shows them (a fault that never fired has none). */
export function timedFaults (faults: readonly ScheduledFault[], timings: ReadonlyArray<FaultTiming | undefined>): Array<ScheduledFault & Partial<FaultTiming>> {
  return faults.map((f, i) => ({ ...f, ...timings[i] }))
}

/** How far from this machine's clock `--faults-epoch` may be: a day either way. */
const EPOCH_WINDOW_MS = 24 * 3600_000

/**
 * `--faults-epoch MS`: the wall-clock instant (ms since 1970, e.g. `date +%s%3N`) from which the
 * faults' times count, instead of the fleet's start; undefined when not given. Refused
 * (ERR_BAD_ARGUMENT) unless an integer within a day of this machine's clock: anything else is a
 * mistake (seconds for milliseconds, a stale value), not a schedule.
 */
export function faultsEpochFlag (values: Record<string, unknown>, nowMs: number): number | undefined {
  const raw = values['faults-epoch']
  if (raw === undefined) return undefined
  const ms = /^\d+$/.test(String(raw)) ? Number(raw) : NaN
  if (!Number.isSafeInteger(ms) || Math.abs(ms - nowMs) > EPOCH_WINDOW_MS) {
    throw meshError('ERR_BAD_ARGUMENT', `--faults-epoch must be a wall-clock time in ms since 1970 within a day of this machine's clock (now ${nowMs}, e.g. $(date +%s%3N)), got ${JSON.stringify(raw)}`)
  }
  return ms
}
