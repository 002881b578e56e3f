import type { SenmlRecord } from '../../shared/index.js'

/**
 * The sensor contract. A sensor turns a sample time into SenML records (RFC 8428): names without
 * a base name, values with their SenML units, no times (the device runtime stamps the frame's base
 * time). `undefined` means "nothing this time": a dropout, an absent sensor, an event sensor with
 * no change.
 */
export type SensorReading = SenmlRecord[] | undefined

export interface Sensor {
  /** The name it has in a sensor list (`temperature`, `cpu-temp`, `bme280`). */
  readonly name: string
  /** The record names it can produce, so a list whose sensors would clash is refused up front. */
  readonly fields: readonly string[]
  /** Device-relative topic of its readings; `telemetry` unless it reports events (`events/door`). */
  readonly topic: string
  /**
   * Reads at sample time `now` (ms since the Unix epoch). A simulated sensor's values are a
   * function of (seed, device, now); a real sensor reads the hardware and ignores `now`.
   */
  read (now: number): SensorReading | Promise<SensorReading>
  /** Releases what it holds (an I²C bus). Idempotent; `read` after `close` yields nothing. */
  close (): void | Promise<void>
}

/** What a sensor tells its device about itself: absent once, back once, a read that failed. */
export interface SensorNotice {
  readonly sensor: string
  readonly event: 'absent' | 'present' | 'error'
  /** What a person needs to know: what was looked for, where, and what to do. */
  readonly reason: string
  /** An errno or MeshError code when there was one (`ENOENT`, `ERR_BAD_INPUT`). */
  readonly code?: string
}

/** Where notices go. `warn` for absence and errors, `info` for a sensor that came back. */
export interface SensorLogger {
  warn (message: string, notice: SensorNotice): void
  info? (message: string, notice: SensorNotice): void
}

/** The default logger: one line on stderr. */
export const stderrLogger: SensorLogger = {
  warn: (message) => { process.stderr.write(`iotmesh: ${message}\n`) },
  info: (message) => { process.stderr.write(`iotmesh: ${message}\n`) }
}

/** A logger that drops everything (simulated fleets of thousands of devices). */
export const silentLogger: SensorLogger = { warn: () => {} }

export const TELEMETRY_TOPIC = 'telemetry'
