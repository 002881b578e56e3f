/**
 * Progress of an experiment run, on an injected stream (stderr in the CLI):
 * - `bar` (a TTY): one line redrawn in place: mode, phase, a bar, elapsed and time left;
 * - `lines` (a pipe, a CI log): a plain line when the mode or phase changes and every `everyS`;
 * - `none` (`--json`, so stdout and stderr carry nothing but the result): nothing.
 * Nothing is written after `finish()`. The clock is injected, so tests replay exactly.
 */

export interface ProgressStream {
  write (chunk: string): unknown
  isTTY?: boolean
  columns?: number
}

/** A redrawn bar (terminal), a line every so often (log), or nothing (`--json`). */
export type ProgressStyle = 'bar' | 'lines' | 'none'

/** How a progress display is set up: the expected duration and the style. */
export interface ProgressInit {
  /** Seconds the whole run is expected to take (every mode, drains included). */
  totalS: number
  /** Default: `none` with `json`, `bar` on a TTY, else `lines`. */
  style?: ProgressStyle
  json?: boolean
  /** `lines`: a line at least this often, seconds (default 10). */
  everyS?: number
  /** Prefix of every line (default `experiment`). */
  label?: string
}

/** Where progress is written, and the clock it is timed on. */
export interface ProgressComponents {
  stream: ProgressStream
  /** Milliseconds, monotonic (default performance.now). */
  now?: () => number
}

/** Where a run is: its phase, mode and time elapsed. */
export interface ProgressUpdate {
  /** The phase under way (`steady`, `broker-down`, `setup`, …). */
  phase: string
  /** The mode under way, and its place, e.g. `broker` and `1/3`. */
  mode?: string
  step?: string
  /** Seconds since the run began; default: measured by the clock since the progress was created. */
  elapsedS?: number
  /**
   * The share of the run's work done (0–1), when the runner can count it (rounds sent, say): the
   * bar follows it and the time left comes from the pace so far, not the plan, which a loaded
   * machine outruns (a latency run took 4× its plan at load 8).
   */
  done?: number
}

/** Time left is taken from `done` once this much of the work is done, and at least a second has gone by. */
const PACE_AFTER = 0.02

/** How to show progress on a stream: a redrawn bar on a terminal, lines otherwise, nothing with `--json`. */
export function progressStyle (stream: ProgressStream, json = false): ProgressStyle {
  if (json) return 'none'
  return stream.isTTY === true ? 'bar' : 'lines'
}

/** m:ss, or h:mm:ss from an hour on. */
export function clockTime (seconds: number): string {
  const s = Math.max(0, Math.round(seconds))
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  const ss = String(s % 60).padStart(2, '0')
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`
}

/** An experiment's progress line: phase, time elapsed and time left. */
export class Progress {
  readonly style: ProgressStyle
  readonly #init: Required<Pick<ProgressInit, 'totalS' | 'everyS' | 'label'>>
  readonly #stream: ProgressStream
  readonly #now: () => number
  readonly #startedAt: number
  #last: ProgressUpdate | undefined
  /** The largest `done` given so far: an update without one (a phase that counts nothing) keeps it, so the share never goes back. */
  #done: number | undefined
  #lastLineS = -Infinity
  #drawn = false
  #finished = false

  constructor (init: ProgressInit, components: ProgressComponents) {
    this.#stream = components.stream
    this.#now = components.now ?? (() => performance.now())
    this.#startedAt = this.#now()
    this.style = init.style ?? progressStyle(components.stream, init.json)
    this.#init = { totalS: Math.max(0, init.totalS), everyS: init.everyS ?? 10, label: init.label ?? 'experiment' }
  }

  /** Where the run is; draws the bar, or writes a line when due. */
  update (u: ProgressUpdate): void {
    if (this.#finished || this.style === 'none') return
    const elapsedS = u.elapsedS ?? (this.#now() - this.#startedAt) / 1000
    if (u.done !== undefined && Number.isFinite(u.done)) this.#done = Math.max(this.#done ?? 0, Math.min(1, u.done))
    const changed = this.#last === undefined || this.#last.phase !== u.phase || this.#last.mode !== u.mode || this.#last.step !== u.step
    this.#last = u
    if (this.style === 'bar') {
      this.#stream.write(`\r\u001b[2K${this.#barLine(u, elapsedS)}`)
      this.#drawn = true
      return
    }
    if (changed || elapsedS - this.#lastLineS >= this.#init.everyS) {
      this.#lastLineS = elapsedS
      this.#stream.write(`${this.#plainLine(u, elapsedS)}\n`)
    }
  }

  /** A message on its own line; on a TTY the bar is redrawn below it. */
  log (message: string): void {
    if (this.#finished || this.style === 'none') return
    if (this.style === 'bar' && this.#drawn) {
      this.#stream.write(`\r\u001b[2K${message}\n`)
      if (this.#last !== undefined) this.update(this.#last)
      return
    }
    this.#stream.write(`${message}\n`)
  }

  /** The last word; nothing is written after it. Idempotent. */
  finish (message?: string): void {
    if (this.#finished) return
    this.#finished = true
    if (this.style === 'none') return
    if (this.style === 'bar' && this.#drawn) this.#stream.write('\r\u001b[2K')
    if (message !== undefined) this.#stream.write(`${message}\n`)
  }

  #where (u: ProgressUpdate): string {
    const mode = u.mode === undefined ? '' : `${u.mode}${u.step === undefined ? '' : ` ${u.step}`} · `
    return `${mode}${u.phase}`
  }

  /** The share done and the seconds left: from the work done when the runner counts it, else from the plan. */
  #estimate (elapsedS: number): { fraction: number, leftS: number } {
    const { totalS } = this.#init
    const done = this.#done
    if (done === undefined) return { fraction: totalS === 0 ? 1 : Math.min(1, elapsedS / totalS), leftS: totalS - elapsedS }
    // Counted work: the share is what was done; the time left is the pace so far once there is one, else the plan's share of what remains.
    return { fraction: done, leftS: done >= PACE_AFTER && elapsedS >= 1 ? (elapsedS * (1 - done)) / done : totalS * (1 - done) }
  }

  #barLine (u: ProgressUpdate, elapsedS: number): string {
    const { label } = this.#init
    const { fraction, leftS } = this.#estimate(elapsedS)
    const times = `${String(Math.floor(fraction * 100)).padStart(3)} % ${clockTime(elapsedS)} elapsed, ${clockTime(leftS)} left`
    const head = `${label}: ${this.#where(u)} `
    const columns = this.#stream.columns ?? 80
    const width = Math.max(10, Math.min(40, columns - head.length - times.length - 4))
    const full = Math.round(fraction * width)
    return `${head}[${'█'.repeat(full)}${'░'.repeat(width - full)}] ${times}`.slice(0, Math.max(20, columns - 1))
  }

  #plainLine (u: ProgressUpdate, elapsedS: number): string {
    const { label } = this.#init
    const { fraction, leftS } = this.#estimate(elapsedS)
    return `${label}: ${this.#where(u)}, ${clockTime(elapsedS)} elapsed, about ${clockTime(leftS)} left (${Math.floor(fraction * 100)} %)`
  }
}

/** A {@link Progress} that writes to a stream in the style it suits. */
export function createProgress (init: ProgressInit, components: ProgressComponents): Progress {
  return new Progress(init, components)
}
