import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { meshError } from '../../shared/index.js'

/**
 * GPIO outputs through the kernel's GPIO character device (`/dev/gpiochipN`, Linux ≥ 4.8), by way
 * of libgpiod's `gpioset` (Debian and Raspberry Pi OS package `gpiod`), not the deprecated sysfs
 * interface (/sys/class/gpio, removed from new kernels' defaults). A line is requested by the
 * process that sets it and released when that process exits, so a `gpioset` child holds each line
 * for as long as its value must stay: setting a new value stops the holder and starts another.
 *
 *   libgpiod 1.x: gpioset --mode=signal [--active-low] <chip> <offset>=<0|1>   (holds until a signal)
 *   libgpiod 2.x: gpioset --chip <chip> [--active-low] <offset>=<0|1>         (holds by default)
 *
 * A line is named "gpiochip0:17" (chip, offset) or "gpiochip0:17:active-low". Absent hardware (no
 * such chip under `<root>/dev`, or no `gpioset`) is reported once, and the actuator goes on as a
 * simulated one: its state changes and is published, nothing is driven.
 */

export interface GpioLineSpec {
  chip: string
  offset: number
  activeLow: boolean
}

/** Parses "gpiochip0:17" or "gpiochip0:17:active-low". Throws ERR_BAD_ARGUMENT. */
export function parseGpioLine (text: string): GpioLineSpec {
  const m = /^(gpiochip\d{1,3}):(\d{1,4})(:active-low)?$/.exec(text.trim())
  if (m === null) throw meshError('ERR_BAD_ARGUMENT', `${JSON.stringify(text)} is not a GPIO line: gpiochipN:OFFSET or gpiochipN:OFFSET:active-low, e.g. gpiochip0:17`)
  return { chip: m[1] as string, offset: Number(m[2]), activeLow: m[3] !== undefined }
}

/** A GPIO line as text: `chip:offset`, with `:active-low`. */
export const gpioLineText = (line: GpioLineSpec): string => `${line.chip}:${line.offset}${line.activeLow ? ':active-low' : ''}`

export interface GpioInit {
  /** The `gpioset` program (default: `gpioset` on PATH, or IOTMESH_GPIOSET). */
  gpioset?: string
  /** Where /dev is looked for (tests point it at a fake tree); default `/`. */
  root?: string
  /** Told once when the line cannot be driven, and on a failed set. */
  onWarning?: (error: Error) => void
}

/** The major version of libgpiod's tools, from `gpioset --version`; undefined when it does not run. */
function gpiodMajor (gpioset: string): number | undefined {
  const r = spawnSync(gpioset, ['--version'], { encoding: 'utf8', timeout: 5000 })
  if (r.error !== undefined || r.status !== 0) return undefined
  const m = /v(\d+)\.\d+/.exec(`${r.stdout}${r.stderr}`)
  return m === null ? undefined : Number(m[1])
}

/** A GPIO output line driven with libgpiod's `gpioset`, or simulated where the chip or the tool is missing. */
export class GpioOutput {
  readonly line: GpioLineSpec
  /** False when the hardware is absent (reported once): sets change nothing. */
  readonly present: boolean
  readonly #gpioset: string
  readonly #major: number
  readonly #onWarning: (error: Error) => void
  #holder: ChildProcess | undefined
  #chain: Promise<void> = Promise.resolve()
  #closed = false

  constructor (line: GpioLineSpec, init: GpioInit = {}) {
    this.line = line
    this.#gpioset = init.gpioset ?? process.env.IOTMESH_GPIOSET ?? 'gpioset'
    this.#onWarning = init.onWarning ?? (() => {})
    const device = join(init.root ?? '/', 'dev', line.chip)
    const major = existsSync(device) ? gpiodMajor(this.#gpioset) : undefined
    this.#major = major ?? 0
    this.present = major !== undefined
    if (!existsSync(device)) {
      this.#onWarning(meshError('ERR_BAD_ARGUMENT', `GPIO ${gpioLineText(line)}: ${device} is not there (no such GPIO chip); the actuator runs simulated`))
    } else if (major === undefined) {
      this.#onWarning(meshError('ERR_BAD_ARGUMENT', `GPIO ${gpioLineText(line)}: ${this.#gpioset} does not run (install libgpiod's tools: apt-get install gpiod); the actuator runs simulated`))
    }
  }

  /** The arguments that hold the line at `value`. */
  args (value: boolean): string[] {
    const low = this.line.activeLow ? ['--active-low'] : []
    const set = `${this.line.offset}=${value ? 1 : 0}`
    return this.#major >= 2 ? ['--chip', this.line.chip, ...low, set] : ['--mode=signal', ...low, this.line.chip, set]
  }

  /** Drives the line to `value` (in order with earlier sets); resolves once the new holder runs. Never rejects: failures are warnings. */
  async set (value: boolean): Promise<void> {
    this.#chain = this.#chain.then(async () => { await this.#set(value) }).catch((err: unknown) => { this.#onWarning(err as Error) })
    await this.#chain
  }

  /** Releases the line (the holder exits). */
  async close (): Promise<void> {
    this.#closed = true
    await this.#chain
    await this.#release()
  }

  async #set (value: boolean): Promise<void> {
    if (!this.present || this.#closed) return
    await this.#release()
    const holder = spawn(this.#gpioset, this.args(value), { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    holder.stderr?.on('data', (c: Buffer) => { stderr += c.toString() })
    // Requested and held: still running a moment later. An error (busy line, no permission) exits at once.
    const exited = await new Promise<number | null | 'running'>((resolve) => {
      const timer = setTimeout(() => { holder.off('exit', onExit); resolve('running') }, 150)
      const onExit = (code: number | null): void => { clearTimeout(timer); resolve(code) }
      holder.once('exit', onExit)
      holder.once('error', () => { clearTimeout(timer); resolve(-1) })
    })
    if (exited !== 'running') {
      throw meshError('ERR_BAD_ARGUMENT', `GPIO ${gpioLineText(this.line)}: ${this.#gpioset} ${this.args(value).join(' ')} failed (${String(exited)}): ${stderr.trim() || 'no message'}`)
    }
    this.#holder = holder
  }

  async #release (): Promise<void> {
    const holder = this.#holder
    this.#holder = undefined
    if (holder === undefined || holder.exitCode !== null || holder.signalCode !== null) return
    const exited = new Promise((resolve) => { holder.once('exit', resolve) })
    holder.kill('SIGTERM')
    await exited
  }
}
