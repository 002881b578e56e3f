import Bonjour from 'bonjour-service'
import { meshError } from '../../shared/errors.js'
import { systemClock } from './clock.js'
import { probe } from './probe.js'
import { DEFAULT_MAX_PAYLOAD_BYTES, sameRecord, splitResponse, type DnsRecord, type DnsResponse } from './split.js'
import type { Clock } from './types.js'

/**
 * One mDNS socket (bonjour-service over multicast-dns) that publishes any number of DNS-SD
 * instances and hands received responses to browsers. A device owns one by default; a simulated
 * fleet, or a gateway answering for many devices, passes one shared responder to each discovery.
 *
 * bonjour-service 1.4 is used as it is, with its known traps closed here (NETWORK.md):
 * - its default error callback rethrows, and multicast-dns emits unhandled 'error': both counted;
 * - a browse is answered in one datagram of any size: responses are split (split.ts, RFC 6762 §17);
 * - unpublishing one service unregisters every record sharing a name (all instances' PTRs): the
 *   registry is cleaned record by record, and records other services still need get no goodbye;
 * - its probe logs to the console and gives up on a conflict: we probe ourselves (probe.ts).
 */

export interface MdnsPacket {
  type: 'query' | 'response'
  questions?: Array<{ name: string, type: string }>
  answers?: DnsRecord[]
  additionals?: DnsRecord[]
  authorities?: DnsRecord[]
}

export interface RemoteInfo { address: string, port: number }

/** The part of a multicast-dns instance we use (it ships no types). */
interface MulticastDns {
  on (event: string, listener: (...args: never[]) => void): unknown
  off (event: string, listener: (...args: never[]) => void): unknown
  once (event: string, listener: (...args: never[]) => void): unknown
  query (query: { questions: Array<{ name: string, type: string }> }, cb?: (err?: Error | null) => void): void
  respond: RespondFn
  response: RespondFn
}
type RespondFn = (res: DnsResponse | DnsRecord[], rinfo?: unknown, cb?: (err?: Error | null) => void) => void

/** bonjour-service internals this module patches; checked at start so an upgrade fails loudly. */
interface BonjourInternals {
  server: {
    mdns: MulticastDns
    registry: Record<string, DnsRecord[]>
    unregister: (records: DnsRecord[] | DnsRecord) => void
  }
}

type BonjourService = ReturnType<Bonjour['publish']>

export interface MdnsServiceSpec {
  /** The DNS-SD instance name (already checked: records.ts instanceName). */
  name: string
  port: number
  /** The SRV target host (records.ts hostNameFor). */
  host: string
  txt: Record<string, string>
  /** RFC 6762 §8 probing; default true. */
  probe?: boolean
  /** Also advertise AAAA records; default false (multicast-dns speaks IPv4 here). */
  ipv6?: boolean
}

export interface PublishedService {
  /** The name actually announced: `spec.name`, or `name (2)`… after a conflict (RFC 6762 §9). */
  readonly name: string
  /** Sends goodbye records (TTL 0, RFC 6762 §10.1) and stops answering for this instance. */
  unpublish (): Promise<void>
}

export interface MdnsResponderInit {
  /** The IPv4 address of the interface to use (multicast-dns `interface`); default all. */
  interface?: string
  /** Largest UDP payload sent; default 1440 (an Ethernet MTU), at most 8972 (RFC 6762 §17). */
  maxPayloadBytes?: number
  /** Probe attempts with a new name before publish gives up; default 16. */
  maxRenames?: number
}

export interface MdnsResponderComponents {
  clock?: Clock
  random?: () => number
}

export interface MdnsResponderCounters {
  readonly messages: number
  readonly splits: number
  readonly dropped: number
  readonly errors: number
  readonly malformed: number
}

export interface MdnsListener {
  response?: (packet: MdnsPacket, from: RemoteInfo) => void
  error?: (err: Error) => void
}

export class MdnsResponder {
  readonly #init: MdnsResponderInit
  readonly #clock: Clock
  readonly #random: () => number
  readonly #listeners = new Set<MdnsListener>()
  readonly #published = new Set<BonjourService>()
  readonly #recent = new Map<string, number>()
  #bonjour: Bonjour | undefined
  #internals: BonjourInternals | undefined
  #starting: Promise<void> | undefined
  #controller = new AbortController()
  #counters = { messages: 0, splits: 0, dropped: 0, errors: 0, malformed: 0 }

  constructor (init: MdnsResponderInit = {}, components: MdnsResponderComponents = {}) {
    this.#init = init
    this.#clock = components.clock ?? systemClock
    this.#random = components.random ?? Math.random
  }

  get started (): boolean { return this.#bonjour !== undefined }
  get counters (): MdnsResponderCounters { return { ...this.#counters } }

  /** Binds the socket and joins the group; idempotent. Rejects if port 5353 cannot be bound. */
  async start (): Promise<void> {
    this.#starting ??= this.#start().catch((err: unknown) => {
      this.#starting = undefined
      throw err
    })
    await this.#starting
  }

  async #start (): Promise<void> {
    this.#controller = new AbortController()
    // bonjour-service 1.4 hands its options to multicast-dns, which takes `interface` — and also
    // binds the socket to that unicast address, where Linux delivers no multicast: so bind to any.
    const options = (this.#init.interface === undefined ? {} : { interface: this.#init.interface, bind: '0.0.0.0' }) as ConstructorParameters<typeof Bonjour>[0]
    // Send errors arrive through our respond wrapper, which counts them; nothing is rethrown.
    const bonjour = new Bonjour(options, () => {})
    const internals = bonjour as unknown as BonjourInternals
    const mdns = internals.server?.mdns
    if (mdns === undefined || typeof mdns.respond !== 'function' || typeof internals.server.unregister !== 'function') {
      bonjour.destroy()
      throw new Error('bonjour-service internals changed: mesh/discovery/responder.ts needs an update')
    }
    this.#patch(internals, mdns)
    await new Promise<void>((resolve, reject) => {
      const onReady = (): void => { mdns.off('error', onError); resolve() }
      const onError = (err: Error): void => { mdns.off('ready', onReady); bonjour.destroy(); reject(err) }
      mdns.once('ready', onReady)
      mdns.once('error', onError)
    })
    this.#bonjour = bonjour
    this.#internals = internals
  }

  #patch (bonjour: BonjourInternals, mdns: MulticastDns): void {
    const onSocketError = (err: Error & { code?: string }): void => {
      // multicast-dns reports undecodable datagrams as 'warning' too: those carry no errno code.
      if (typeof err.code === 'string') this.#failed(err)
      else this.#counters.malformed++
    }
    mdns.on('error', onSocketError)
    mdns.on('warning', onSocketError)
    mdns.on('response', (packet: MdnsPacket, rinfo: RemoteInfo) => {
      for (const listener of this.#listeners) {
        try {
          listener.response?.(packet, rinfo)
        } catch {
          this.#counters.errors++ // a listener bug must not stop the others
        }
      }
    })

    const send = mdns.respond
    const respond: RespondFn = (res, rinfo, cb) => {
      if (typeof rinfo === 'function') return respond(res, undefined, rinfo as (err?: Error | null) => void)
      const response = Array.isArray(res) ? { answers: res, additionals: [] } : { answers: res.answers ?? [], additionals: res.additionals ?? [] }
      const { messages, dropped } = splitResponse(response, this.#init.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES)
      this.#counters.dropped += dropped.length
      if (messages.length > 1) this.#counters.splits++
      let pending = messages.length
      let first: Error | undefined
      const done = (err?: Error | null): void => {
        if (err != null) {
          first ??= err
          this.#failed(err)
        }
        if (--pending === 0) cb?.(first)
      }
      if (pending === 0) { process.nextTick(() => cb?.()); return }
      for (const message of messages) {
        this.#counters.messages++
        try {
          send(message, rinfo, done)
        } catch (err) {
          done(err as Error) // dns-packet throws on records it cannot encode
        }
      }
    }
    mdns.respond = respond
    mdns.response = respond

    const server = bonjour.server
    server.unregister = (records) => {
      const list = Array.isArray(records) ? records : [records]
      const stillNeeded = [...this.#published].filter((s) => s.activated).flatMap((s) => s.records() as DnsRecord[])
      for (let i = list.length - 1; i >= 0; i--) {
        const record = list[i] as DnsRecord
        if (stillNeeded.some((r) => sameRecord(r, record))) {
          list.splice(i, 1) // shared with a live service (the _services._dns-sd._udp PTR): no goodbye
          continue
        }
        const sub = server.registry[record.type]
        if (sub !== undefined) server.registry[record.type] = sub.filter((r) => !sameRecord(r, record))
      }
    }
  }

  #failed (err: Error): void {
    this.#counters.errors++
    for (const listener of this.#listeners) {
      try { listener.error?.(err) } catch { /* a listener bug must not stop the others */ }
    }
  }

  /** Receives responses and errors until the returned function is called. */
  subscribe (listener: MdnsListener): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  /**
   * Sends one query (RFC 6762 §5); errors are counted, never thrown. With `suppressMs`, a query
   * identical to one this socket sent that recently is not repeated: every subscriber sees the
   * answers to the first (RFC 6762 §7.3, duplicate question suppression, within one responder).
   */
  query (questions: Array<{ name: string, type: string }>, options: { suppressMs?: number } = {}): void {
    const mdns = this.#internals?.server.mdns
    if (mdns === undefined) return
    if (options.suppressMs !== undefined) {
      const key = questions.map((q) => `${q.type} ${q.name.toLowerCase()}`).join(',')
      const now = this.#clock.now()
      const last = this.#recent.get(key)
      if (last !== undefined && now - last < options.suppressMs) return
      this.#recent.set(key, now)
      if (this.#recent.size > 64) this.#recent.delete(this.#recent.keys().next().value as string)
    }
    try {
      mdns.query({ questions }, (err) => { if (err != null) this.#failed(err) })
    } catch (err) {
      this.#failed(err as Error)
    }
  }

  /**
   * Probes for the name (RFC 6762 §8.1), renaming on conflict (§9), then announces (§8.3).
   * Resolves once the first announcement has been sent.
   */
  async publish (spec: MdnsServiceSpec, options: { signal?: AbortSignal } = {}): Promise<PublishedService> {
    const bonjour = this.#bonjour
    const internals = this.#internals
    if (bonjour === undefined || internals === undefined) throw meshError('ERR_BAD_ARGUMENT', 'start the mDNS responder before publishing on it')
    const signal = options.signal === undefined ? this.#controller.signal : AbortSignal.any([options.signal, this.#controller.signal])
    let name = spec.name
    if (spec.probe !== false) {
      name = await probe(this, internals.server.registry, spec.name, {
        signal, clock: this.#clock, random: this.#random, maxRenames: this.#init.maxRenames ?? 16
      })
    }
    if (signal.aborted) throw meshError('ERR_ABORTED', 'publishing was aborted', { cause: signal.reason })
    const service = bonjour.publish({
      name, type: 'iotmesh', protocol: 'tcp', port: spec.port, host: spec.host, txt: spec.txt, probe: false, disableIPv6: spec.ipv6 !== true
    })
    this.#published.add(service)
    if (!service.published) await new Promise<void>((resolve) => service.once('up', resolve))
    let unpublishing: Promise<void> | undefined
    return {
      name,
      unpublish: async () => {
        unpublishing ??= new Promise<void>((resolve) => {
          if (!this.#published.has(service)) { resolve(); return }
          service.stop?.(() => { this.#published.delete(service); resolve() })
        })
        await unpublishing
      }
    }
  }

  /** Sends goodbyes for every instance still published, then closes the socket; idempotent. */
  async stop (): Promise<void> {
    const starting = this.#starting
    if (starting === undefined) return
    this.#starting = undefined
    this.#controller.abort(meshError('ERR_ABORTED', 'the mDNS responder stopped'))
    try { await starting } catch { return }
    const bonjour = this.#bonjour
    this.#bonjour = undefined
    this.#internals = undefined
    if (bonjour === undefined) return
    await new Promise<void>((resolve) => { bonjour.unpublishAll(() => { resolve() }) })
    this.#published.clear()
    await new Promise<void>((resolve) => { bonjour.destroy(() => { resolve() }) })
  }

  async [Symbol.asyncDispose] (): Promise<void> { await this.stop() }
}

export function createMdnsResponder (init: MdnsResponderInit = {}, components: MdnsResponderComponents = {}): MdnsResponder {
  return new MdnsResponder(init, components)
}
