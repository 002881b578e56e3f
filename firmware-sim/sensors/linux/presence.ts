import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { meshError, type SenmlRecord } from '../../../shared/index.js'
import { TELEMETRY_TOPIC, stderrLogger, type Sensor, type SensorLogger, type SensorNotice, type SensorReading } from '../types.js'

/** What every Linux sensor takes: where the file system starts (tests point it at a fake tree). */
export interface LinuxInit {
  /** Root of the file system whose /sys and /proc are read; default `/`. */
  root?: string
}

export interface LinuxComponents {
  logger?: SensorLogger
}

/** Thrown by a sensor's probe when its hardware or file is not there; the sensor reports it once. */
export class SensorAbsent extends Error {
  readonly code: string | undefined
  constructor (reason: string, code?: string) {
    super(reason)
    this.name = 'SensorAbsent'
    this.code = code
  }
}

/** Reads `path` below `root` as text; a missing file is a SensorAbsent naming the file. */
export async function readSysFile (root: string, path: string, what: string): Promise<string> {
  const full = join(root, path)
  try {
    return await readFile(full, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EACCES' || code === 'ENODEV' || code === 'ENXIO') {
      throw new SensorAbsent(`${what}: cannot read ${full} (${code})`, code)
    }
    throw err
  }
}

/**
 * A sensor backed by the machine. `probe` returns records, or throws SensorAbsent when the
 * hardware is not there. The first absence (and the first after being present) is reported
 * through the logger with the sensor's name and why; later reads stay quiet and yield nothing,
 * and a sensor that comes back is reported once as present. Any other failure is reported once
 * per distinct cause and yields nothing: one bad sensor never stops the device.
 */
export function hardwareSensor (spec: {
  name: string
  fields: readonly string[]
  logger: SensorLogger | undefined
  probe: () => Promise<SenmlRecord[]>
  /** True when absence is final (no point probing again): an I²C chip that is not on the bus. */
  permanent?: boolean
  close?: () => Promise<void>
}): Sensor & { readonly state: 'unknown' | 'present' | 'absent' } {
  const logger = spec.logger ?? stderrLogger
  let state: 'unknown' | 'present' | 'absent' = 'unknown'
  let lastError: string | undefined
  let closed = false
  const notify = (level: 'warn' | 'info', notice: SensorNotice, message: string): void => {
    if (level === 'info') (logger.info ?? logger.warn).call(logger, message, notice)
    else logger.warn(message, notice)
  }
  return {
    name: spec.name,
    fields: spec.fields,
    topic: TELEMETRY_TOPIC,
    get state () { return state },
    async read (): Promise<SensorReading> {
      if (closed || (state === 'absent' && spec.permanent === true)) return undefined
      try {
        const records = await spec.probe()
        if (state === 'absent') notify('info', { sensor: spec.name, event: 'present', reason: 'readable again' }, `sensor ${spec.name} is back`)
        state = 'present'
        lastError = undefined
        return records
      } catch (err) {
        if (err instanceof SensorAbsent) {
          if (state !== 'absent') {
            const notice: SensorNotice = err.code === undefined ? { sensor: spec.name, event: 'absent', reason: err.message } : { sensor: spec.name, event: 'absent', reason: err.message, code: err.code }
            notify('warn', notice, `sensor ${spec.name} is absent: ${err.message}; the device runs on without it`)
          }
          state = 'absent'
          return undefined
        }
        const code = (err as { code?: unknown }).code
        const key = `${typeof code === 'string' ? code : ''}:${(err as Error).message}`
        if (key !== lastError) {
          lastError = key
          const reason = (err as Error).message
          notify('warn', typeof code === 'string' ? { sensor: spec.name, event: 'error', reason, code } : { sensor: spec.name, event: 'error', reason }, `sensor ${spec.name} failed to read: ${reason}`)
        }
        return undefined
      }
    },
    async close () {
      if (closed) return
      closed = true
      await spec.close?.()
    }
  }
}

/** A number parsed from a /sys or /proc field; ERR_BAD_INPUT saying what was there instead. */
export function parseNumber (text: string | undefined, what: string): number {
  const n = Number(text?.trim())
  if (text === undefined || text.trim() === '' || !Number.isFinite(n)) throw meshError('ERR_BAD_INPUT', `${what}: expected a number, found ${JSON.stringify(text?.trim() ?? '')}`)
  return n
}
