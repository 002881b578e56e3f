import type { IncomingMessage, ServerResponse } from 'node:http'
import { ACTUATOR_KINDS, resolvePack, type DeviceId, type SenmlPack } from '../shared/index.js'
import type { Clock } from '../shared/index.js'
import type { DeviceInfo, DeviceRegistry } from './devices.js'
import type { DropEvent, Reading, StatusEvent } from './ingest.js'
import type { TopologySnapshot } from './topology.js'

/**
 * Live updates for the dashboard over Server-Sent Events (`GET /api/events`, the browser's
 * EventSource; WHATWG HTML §9.2). One connection gets:
 *
 *   event: hello      { summary, devices, latest, topology, actuators }   once, on connect (latest: each device's last
 *                     values; actuators: the actuator table of shared/actuators.ts, for the controls)
 *   event: readings   { readings: LiveReading[], skipped }        what was accepted since the last batch
 *   event: devices    { devices: DeviceInfo[] }                   devices that changed (presence, counters, path)
 *   event: topology   TopologySnapshot                            when a link or an announcement changed it
 *   event: log        { entries: LogEntry[] }                     drops and status changes, for a person to read
 *   event: summary    GatewaySummary                              every `sweepMs`
 *
 * Changes are batched every `flushMs` (a fleet of hundreds of devices makes one message per kind
 * per batch, not one per reading), and bounded: at most `maxReadingsPerBatch` readings and
 * `maxLogPerBatch` log entries per batch, the rest counted as skipped. A client that does not
 * keep up (over `maxBufferedBytes` unsent) is disconnected; EventSource reconnects by itself and
 * starts again from a fresh `hello`. Presence that changes with time alone (a mesh device that
 * went quiet) is found by a sweep every `sweepMs`.
 *
 * Clients are capped per remote address (`maxClientsPerAddress`) and in all (`maxClients`). A new
 * client is never turned away for good: over a cap, one client makes room for it, the oldest idle
 * one first, from its own address (per-address cap) or from the address holding the most (total
 * cap). Idle: its socket has not taken what was last sent (unsent bytes waiting); among equals the
 * oldest goes. The one closed gets `event: evicted` (code ERR_SSE_EVICTED) before its stream ends,
 * and the dashboard does not reconnect by itself after it (no two tabs evicting each other).
 */

export interface LiveInit {
  /** Batch interval (ms). Default 250. */
  flushMs?: number
  /** Presence sweep, summary and keep-alive interval (ms). Default 5000. */
  sweepMs?: number
  /** Most bytes waiting to be sent to one client before it is dropped. Default 1 MiB. */
  maxBufferedBytes?: number
  /** Most event-stream clients at once; a new one beyond makes room (see above). Default 64. */
  maxClients?: number
  /** Most event-stream clients from one remote address; a new one beyond makes room. Default 8. */
  maxClientsPerAddress?: number
  maxReadingsPerBatch?: number
  maxLogPerBatch?: number
}

/** A reading as the dashboard draws it: resolved SenML (RFC 8428 §4.6), one entry per record. */
export interface LiveReading {
  id: DeviceId
  seq: number
  /** Sampling time, s since the epoch. */
  time: number
  receivedAt: number
  path: Reading['path']
  topic: string
  values: Array<{ n: string, u?: string, v?: number, vs?: string, vb?: boolean, t: number }>
}

export interface LogEntry {
  at: number
  kind: 'drop' | 'status'
  id?: DeviceId
  /** drop: the reason; status: online, offline or cleared. */
  what: string
  code?: string
  message?: string
  path?: string
}

export interface LiveSources {
  devices: DeviceRegistry
  topology: () => TopologySnapshot
  summary: () => unknown
  clock: Clock
  now: () => number
}

interface Client { res: ServerResponse, address: string, order: number }

/** The device topic of topology announcements (mesh/node.ts LINKS_TOPIC): not shown as readings. */
const LINKS_DEVICE_TOPIC = 'mesh/links'

/** The dashboard's live updates over Server-Sent Events (`GET /api/events`), batched, with clients capped. */
export class LiveFeed {
  readonly #init: Required<LiveInit>
  readonly #sources: LiveSources
  readonly #clients = new Set<Client>()
  readonly #dirty = new Set<DeviceId>()
  readonly #lastOnline = new Map<DeviceId, boolean>()
  #readings: LiveReading[] = []
  #log: LogEntry[] = []
  #skipped = 0
  #topologyDirty = false
  #flushTimer: unknown
  #sweepTimer: unknown
  #running = false
  #order = 0
  dropped = 0
  /** Clients closed to make room for a new one (caps per address and in all). */
  evicted = 0

  constructor (init: LiveInit, sources: LiveSources) {
    this.#init = {
      flushMs: init.flushMs ?? 250,
      sweepMs: init.sweepMs ?? 5000,
      maxBufferedBytes: init.maxBufferedBytes ?? 1024 * 1024,
      maxClients: init.maxClients ?? 64,
      maxClientsPerAddress: init.maxClientsPerAddress ?? 8,
      maxReadingsPerBatch: init.maxReadingsPerBatch ?? 500,
      maxLogPerBatch: init.maxLogPerBatch ?? 50
    }
    this.#sources = sources
  }

  get clients (): number { return this.#clients.size }

  start (): void {
    if (this.#running) return
    this.#running = true
    this.#scheduleSweep()
  }

  /** Ends every stream and clears the timers. Idempotent. */
  stop (): void {
    if (!this.#running) return
    this.#running = false
    this.#sources.clock.clearTimeout(this.#flushTimer)
    this.#sources.clock.clearTimeout(this.#sweepTimer)
    this.#flushTimer = undefined
    for (const client of this.#clients) client.res.end()
    this.#clients.clear()
  }

  /** Serves one EventSource connection. */
  attach (req: IncomingMessage, res: ServerResponse): void {
    if (!this.#running) {
      res.writeHead(503, { 'content-type': 'application/json; charset=utf-8', 'retry-after': '5' }).end(JSON.stringify({ error: 'the live stream is stopped', code: 'ERR_ABORTED' }))
      return
    }
    const address = req.socket?.remoteAddress ?? 'unknown'
    this.#makeRoom(address)
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no' // nginx: do not buffer the stream
    })
    const client: Client = { res, address, order: this.#order++ }
    this.#clients.add(client)
    const forget = (): void => { this.#clients.delete(client) }
    req.on('close', forget)
    res.on('error', forget)
    res.write('retry: 2000\n\n')
    const devices = this.#sources.devices.list()
    this.#send(client, 'hello', { summary: this.#sources.summary(), devices, latest: this.#latest(devices), topology: this.#sources.topology(), actuators: ACTUATOR_KINDS })
  }

  /** Count per address; over a cap, the idlest (then oldest) client of the address concerned makes room. */
  #makeRoom (address: string): void {
    const byAddress = new Map<string, Client[]>()
    for (const c of this.#clients) {
      const list = byAddress.get(c.address)
      if (list === undefined) byAddress.set(c.address, [c])
      else list.push(c)
    }
    const own = byAddress.get(address) ?? []
    let from: Client[] | undefined
    if (own.length >= this.#init.maxClientsPerAddress) from = own
    else if (this.#clients.size >= this.#init.maxClients) {
      for (const list of byAddress.values()) if (from === undefined || list.length > from.length) from = list
    }
    if (from === undefined || from.length === 0) return
    const victim = from.reduce((a, b) => {
      const idleA = a.res.writableLength > 0
      const idleB = b.res.writableLength > 0
      if (idleA !== idleB) return idleA ? a : b
      return a.order <= b.order ? a : b
    })
    this.#clients.delete(victim)
    this.evicted++
    victim.res.end(sseMessage('evicted', { code: 'ERR_SSE_EVICTED', message: `too many live views from ${victim.address === address ? 'this address' : 'the network'}: this one, the oldest idle, made room for a new one; reload to reconnect` }))
  }

  /** Each device's latest reading (not a topology announcement), resolved: what the table shows before new readings arrive. */
  #latest (devices: DeviceInfo[]): Record<DeviceId, LiveReading['values']> {
    const out: Record<DeviceId, LiveReading['values']> = {}
    for (const device of devices) {
      const history = this.#sources.devices.readings(device.id) ?? []
      for (let i = history.length - 1; i >= 0; i--) {
        const r = history[i]
        if (r === undefined || r.deviceTopic === LINKS_DEVICE_TOPIC) continue
        out[device.id] = resolvedValues(r.records, r.time)
        break
      }
    }
    return out
  }

  reading (reading: Reading): void {
    if (!this.#running) return
    this.#dirty.add(reading.origin)
    if (this.#clients.size === 0) return this.#schedule()
    if (this.#readings.length >= this.#init.maxReadingsPerBatch) {
      this.#skipped++
    } else {
      this.#readings.push(liveReading(reading))
    }
    this.#schedule()
  }

  deviceChanged (id: DeviceId): void {
    if (!this.#running) return
    this.#dirty.add(id)
    this.#schedule()
  }

  topologyChanged (): void {
    if (!this.#running) return
    this.#topologyDirty = true
    this.#schedule()
  }

  drop (drop: DropEvent): void {
    if (drop.deviceId !== undefined) this.deviceChanged(drop.deviceId)
    // A second copy (a hybrid device's other path, a retransmission) is de-duplication, not news: no log line.
    if (drop.reason === 'duplicate') return
    this.#logEntry({ at: this.#sources.now(), kind: 'drop', what: drop.reason, code: drop.code, message: drop.message, ...(drop.deviceId === undefined ? {} : { id: drop.deviceId }), ...(drop.path === undefined ? {} : { path: drop.path }) })
  }

  status (event: StatusEvent): void {
    this.deviceChanged(event.deviceId)
    this.#logEntry({ at: this.#sources.now(), kind: 'status', id: event.deviceId, what: event.status?.state ?? 'cleared', path: event.path })
  }

  #logEntry (entry: LogEntry): void {
    if (!this.#running || this.#clients.size === 0) return
    if (this.#log.length >= this.#init.maxLogPerBatch) this.#skipped++
    else this.#log.push(entry)
    this.#schedule()
  }

  #schedule (): void {
    if (this.#flushTimer !== undefined || !this.#running) return
    this.#flushTimer = this.#sources.clock.setTimeout(() => {
      this.#flushTimer = undefined
      this.#flush()
    }, this.#init.flushMs)
  }

  #flush (): void {
    if (!this.#running) return
    if (this.#clients.size === 0) {
      // Nobody listens: a client that connects later starts from a full hello.
      this.#dirty.clear()
      this.#readings = []
      this.#log = []
      this.#skipped = 0
      this.#topologyDirty = false
      return
    }
    const changed = [...this.#dirty].map((id) => this.#sources.devices.get(id)).filter((d): d is DeviceInfo => d !== undefined)
    this.#dirty.clear()
    for (const d of changed) this.#lastOnline.set(d.id, d.online)
    const readings = this.#readings
    const log = this.#log
    const skipped = this.#skipped
    this.#readings = []
    this.#log = []
    this.#skipped = 0
    const topology = this.#topologyDirty ? this.#sources.topology() : undefined
    this.#topologyDirty = false
    if (readings.length > 0 || skipped > 0) this.#broadcast('readings', { readings, skipped })
    if (changed.length > 0) this.#broadcast('devices', { devices: changed })
    if (topology !== undefined) this.#broadcast('topology', topology)
    if (log.length > 0) this.#broadcast('log', { entries: log })
  }

  #scheduleSweep (): void {
    this.#sweepTimer = this.#sources.clock.setTimeout(() => {
      if (!this.#running) return
      this.#sweep()
      this.#scheduleSweep()
    }, this.#init.sweepMs)
  }

  /** Presence that changed with time alone, the periodic summary, and a keep-alive for proxies. */
  #sweep (): void {
    for (const d of this.#sources.devices.list()) {
      if (this.#lastOnline.get(d.id) !== d.online) this.#dirty.add(d.id)
    }
    if (this.#dirty.size > 0) this.#schedule()
    if (this.#clients.size > 0) this.#broadcast('summary', this.#sources.summary())
  }

  #broadcast (event: string, data: unknown): void {
    const text = sseMessage(event, data)
    for (const client of this.#clients) this.#write(client, text)
  }

  #send (client: Client, event: string, data: unknown): void {
    this.#write(client, sseMessage(event, data))
  }

  #write (client: Client, text: string): void {
    if (client.res.writableLength > this.#init.maxBufferedBytes) {
      // A client that cannot keep up is dropped; EventSource reconnects and starts from a fresh hello.
      this.#clients.delete(client)
      this.dropped++
      client.res.destroy()
      return
    }
    client.res.write(text)
  }
}

/** One SSE message (WHATWG HTML §9.2.6): JSON has no raw newlines, so one data line suffices. */
export function sseMessage (event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`
}

/** A reading as the live feed sends it. */
export function liveReading (reading: Reading): LiveReading {
  return { id: reading.origin, seq: reading.seq, time: reading.time, receivedAt: reading.receivedAt, path: reading.path, topic: reading.deviceTopic, values: resolvedValues(reading.records, reading.time) }
}

/** A pack's records resolved (RFC 8428 §4.6): names, units, values and absolute times; [] when its names do not resolve. */
export function resolvedValues (records: SenmlPack, time: number): LiveReading['values'] {
  try {
    return resolvePack(records, time).map((r) => ({
      n: r.name,
      t: r.time,
      ...(r.unit === undefined ? {} : { u: r.unit }),
      ...(r.value === undefined ? {} : { v: r.value }),
      ...(r.stringValue === undefined ? {} : { vs: r.stringValue }),
      ...(r.boolValue === undefined ? {} : { vb: r.boolValue })
    }))
  } catch {
    return [] // a pack whose names do not resolve (RFC 8428 §4.5.1) is shown without values
  }
}
