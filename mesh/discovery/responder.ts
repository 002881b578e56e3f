import type Bonjour from 'bonjour-service'
import { meshError, systemClock, systemRandom, type Random } from '../../shared/index.js'
import { openBonjour, withdraw, type MdnsPacket, type MulticastDns, type RemoteInfo } from './bonjour.js'
import { probe } from './probe.js'
import { ServiceBrowser } from './service-browser.js'
import type { DnsRecord } from './split.js'
import type { Clock } from './types.js'

export type { MdnsPacket, RemoteInfo } from './bonjour.js'

/**
 * One mDNS socket (bonjour-service over multicast-dns, its traps closed in bonjour.ts) that
 * publishes any number of DNS-SD instances and hands received responses to browsers. A device
 * owns one by default; a simulated fleet, or a gateway answering for many devices, passes one
 * shared responder to each discovery.
 */

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
  /**
   * Sends goodbye records (TTL 0, RFC 6762 §10.1) and stops answering for this instance; with
   * `goodbye: false`, stops answering without a word, as a device that lost power (a crash).
   */
  unpublish (options?: { goodbye?: boolean }): Promise<void>
}

export interface MdnsResponderInit {
  /** The IPv4 address of the interface to use (multicast-dns `interface`); default all. */
  interface?: string
  /** Largest UDP payload sent; default 1440 (an Ethernet MTU), at most 8972 (RFC 6762 §17). */
  maxPayloadBytes?: number
  /** Probe attempts with a new name before publish gives up; default 16. */
  maxRenames?: number
  /** Instances the browse cache of each service type holds at most (`browser`); default 1024. */
  maxInstances?: number
}

export interface MdnsResponderComponents {
  clock?: Clock
  /** Probe delays (RFC 6762 §8.1); default `systemRandom`. */
  random?: Random
}

export interface MdnsResponderCounters {
  readonly messages: number
  readonly splits: number
  readonly dropped: number
  readonly errors: number
  readonly malformed: number
  /**
   * Responses taken into the browse caches: one per response received while any discovery
   * browses, however many share this responder (`browser`).
   */
  readonly ingested: number
}

export interface MdnsListener {
  response?: (packet: MdnsPacket, from: RemoteInfo) => void
  error?: (err: Error) => void
}

export class MdnsResponder {
  readonly #init: MdnsResponderInit
  readonly #clock: Clock
  readonly #random: Random
  readonly #listeners = new Set<MdnsListener>()
  /** Each published service with its records as registered (service.records() costs a look at every interface). */
  readonly #published = new Map<BonjourService, DnsRecord[]>()
  readonly #browsers = new Map<string, ServiceBrowser>()
  readonly #recent = new Map<string, number>()
  #bonjour: Bonjour | undefined
  #mdns: MulticastDns | undefined
  #registry: Record<string, DnsRecord[]> = {}
  #starting: Promise<void> | undefined
  #controller = new AbortController()
  #counters = { messages: 0, splits: 0, dropped: 0, errors: 0, malformed: 0 }

  constructor (init: MdnsResponderInit = {}, components: MdnsResponderComponents = {}) {
    this.#init = init
    this.#clock = components.clock ?? systemClock
    this.#random = components.random ?? systemRandom
  }

  get started (): boolean { return this.#bonjour !== undefined }
  get counters (): MdnsResponderCounters {
    let ingested = 0
    let errors = this.#counters.errors
    for (const browser of this.#browsers.values()) {
      ingested += browser.ingested
      errors += browser.errors
    }
    return { ...this.#counters, errors, ingested }
  }

  /**
   * The browse side for one service type (`_iotmesh._tcp.local`): one record cache shared by
   * every discovery that browses through this responder, so that each response is parsed into it
   * once (service-browser.ts). Created on first use; it browses while it has listeners.
   */
  browser (serviceDomain: string): ServiceBrowser {
    const key = serviceDomain.toLowerCase()
    let browser = this.#browsers.get(key)
    if (browser === undefined) {
      browser = new ServiceBrowser(this, { serviceDomain, maxInstances: this.#init.maxInstances }, { clock: this.#clock, random: this.#random })
      this.#browsers.set(key, browser)
    }
    return browser
  }

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
    const { bonjour, mdns, registry } = await openBonjour(this.#init, {
      response: (packet, from) => {
        for (const listener of this.#listeners) {
          try {
            listener.response?.(packet, from)
          } catch {
            this.#counters.errors++ // a listener bug must not stop the others
          }
        }
      },
      failed: (err) => { this.#failed(err) },
      malformed: () => { this.#counters.malformed++ },
      sent: (messages, dropped) => {
        this.#counters.messages += messages
        this.#counters.dropped += dropped
        if (messages > 1) this.#counters.splits++
      },
      liveRecords: () => [...this.#published].filter(([s]) => s.activated).flatMap(([, records]) => records)
    })
    this.#bonjour = bonjour
    this.#mdns = mdns
    this.#registry = registry
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
    const mdns = this.#mdns
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
    if (bonjour === undefined) throw meshError('ERR_BAD_ARGUMENT', 'start the mDNS responder before publishing on it')
    const signal = options.signal === undefined ? this.#controller.signal : AbortSignal.any([options.signal, this.#controller.signal])
    let name = spec.name
    if (spec.probe !== false) {
      name = await probe(this, this.#registry, spec.name, {
        signal, clock: this.#clock, random: this.#random, maxRenames: this.#init.maxRenames ?? 16
      })
    }
    if (signal.aborted) throw meshError('ERR_ABORTED', 'publishing was aborted', { cause: signal.reason })
    const service = bonjour.publish({
      name, type: 'iotmesh', protocol: 'tcp', port: spec.port, host: spec.host, txt: spec.txt, probe: false, disableIPv6: spec.ipv6 !== true
    })
    this.#published.set(service, service.records() as DnsRecord[])
    if (!service.published) await new Promise<void>((resolve) => service.once('up', resolve))
    let unpublishing: Promise<void> | undefined
    return {
      name,
      unpublish: async (options = {}) => {
        unpublishing ??= new Promise<void>((resolve) => {
          if (!this.#published.has(service)) { resolve(); return }
          if (options.goodbye === false) {
            withdraw(bonjour, service)
            this.#published.delete(service)
            resolve()
            return
          }
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
    this.#mdns = undefined
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
