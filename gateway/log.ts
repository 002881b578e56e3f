import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { pino, type DestinationStream, type Logger } from 'pino'
import { meshError } from '../shared/index.js'
import type { DropEvent, StatusEvent } from './ingest.js'

/**
 * The gateway's logs: levelled and structured (pino), with timestamps. JSON lines (one object per
 * line: `level`, `time` in ms, `msg`, and fields such as `code`, `deviceId`) to a file or to
 * stderr (journald keeps them as they are), or readable text lines on a terminal.
 *
 * What is logged: MQTT connections and disconnections of the embedded broker (debug), devices
 * going online and offline (info), and every refusal with its stable code (warn), at most
 * `maxRefusalsPerSecond` lines a second, then one line counting those left out. A second copy of
 * an accepted reading is de-duplication, not a refusal: not logged.
 */

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = typeof LOG_LEVELS[number]
export type LogFormat = 'json' | 'text'

export interface GatewayLogInit {
  /** Default 'info'. */
  level?: LogLevel
  /** Default: 'json' to a file, else 'text'. */
  format?: LogFormat
  /** Write here (created with its folder, appended to) instead of `stderr`. */
  file?: string
  /** Refusal lines a second before they are counted instead. Default 20. */
  maxRefusalsPerSecond?: number
}

/** Whether a value is one of the log levels `--log-level` takes. */
export function isLogLevel (text: unknown): text is LogLevel {
  return typeof text === 'string' && (LOG_LEVELS as readonly string[]).includes(text)
}

const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' }

/** A pino destination that turns each JSON line into `<ISO time> <LEVEL> <msg> key=value…`. */
function textDestination (out: { write: (text: string) => unknown }): DestinationStream {
  return {
    write (line: string): void {
      let entry: Record<string, unknown>
      try { entry = JSON.parse(line) as Record<string, unknown> } catch { out.write(line); return }
      const { level, time, msg, pid: _pid, hostname: _hostname, name: _name, ...fields } = entry
      const extra = Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`).join(' ')
      out.write(`${new Date(Number(time)).toISOString()} ${LEVEL_NAMES[Number(level)] ?? String(level)} ${String(msg ?? '')}${extra === '' ? '' : ` ${extra}`}\n`)
    }
  }
}

/** A pino logger for the gateway; `stderr` is where it writes without a file. */
export function createGatewayLogger (init: GatewayLogInit = {}, components: { stderr?: { write: (text: string) => unknown } } = {}): Logger {
  const level = init.level ?? 'info'
  if (!isLogLevel(level)) throw meshError('ERR_BAD_ARGUMENT', `a log level is one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(level)}`)
  const format = init.format ?? (init.file === undefined ? 'text' : 'json')
  let sink: { write: (text: string) => unknown }
  if (init.file !== undefined) {
    try {
      mkdirSync(dirname(init.file), { recursive: true })
      // Synchronous appends: a line is on disk when the call returns, and nothing is lost on exit.
      sink = pino.destination({ dest: init.file, sync: true, append: true })
    } catch (err) {
      throw meshError('ERR_BAD_ARGUMENT', `cannot write the log file ${init.file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err })
    }
  } else {
    sink = components.stderr ?? process.stderr
  }
  const destination: DestinationStream = format === 'text' ? textDestination(sink) : { write: (line: string) => { sink.write(line) } }
  return pino({ level, base: { name: 'iotmesh-gateway' }, timestamp: pino.stdTimeFunctions.epochTime }, destination)
}

/** What the logs follow (a Gateway; no import of it here). */
export interface LoggedGateway {
  on: ((event: 'drop', listener: (d: DropEvent) => void) => unknown) &
    ((event: 'status', listener: (s: StatusEvent) => void) => unknown) &
    ((event: 'connection', listener: (c: { clientId: string, state: 'connected' | 'disconnected' }) => void) => unknown)
}

/** Follows a gateway's events into `logger`; refusals rate-limited per wall-clock second (`now`, ms). */
export function logGateway (gateway: LoggedGateway, logger: Logger, options: { maxRefusalsPerSecond?: number, now?: () => number } = {}): void {
  const max = options.maxRefusalsPerSecond ?? 20
  const now = options.now ?? Date.now
  let second = 0
  let lines = 0
  let skipped = 0
  gateway.on('drop', (drop) => {
    if (drop.reason === 'duplicate') return // de-duplication, not a refusal
    const current = Math.floor(now() / 1000)
    if (current !== second) {
      if (skipped > 0) logger.warn({ skipped }, `… ${skipped} more refusals in that second (counted in /metrics, iotmesh_gateway_dropped_total)`)
      second = current
      lines = 0
      skipped = 0
    }
    if (++lines > max) { skipped++; return }
    const { message, ...fields } = drop
    logger.warn(fields, `refused (${drop.code}, ${drop.reason}): ${message}`)
  })
  gateway.on('status', (event) => {
    const state = event.status?.state ?? 'cleared'
    logger.info({ deviceId: event.deviceId, state, ...(event.from === undefined ? {} : { from: event.from }) }, `device ${event.deviceId} ${state}`)
  })
  gateway.on('connection', (c) => {
    logger.debug({ clientId: c.clientId }, `MQTT client ${c.clientId} ${c.state}`)
  })
}
