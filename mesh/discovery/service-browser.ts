import type { Random } from '../../shared/index.js'
import { ServiceCache, type InstanceView } from './cache.js'
import type { MdnsPacket, RemoteInfo } from './bonjour.js'
import type { Clock } from './types.js'

/**
 * The browse side of one responder for one service type: one record cache (cache.ts) that every
 * discovery browsing through that responder shares. Each response the socket receives is ingested
 * once, however many discoveries listen (a simulated fleet of hundreds in one process, issue 15);
 * each discovery keeps only its own view (the peers it reported, the announcements it refused) and
 * is told which instances changed. Expiry and cache-maintenance queries (RFC 6762 §5.2) are done
 * here once, as a host's one mDNS cache serves all its clients (RFC 6762 §5, §7.3).
 * A device with a responder of its own is this browser's only listener: it behaves as before.
 */

export interface BrowseListener {
  /** Instances (lower-case fqdns) whose records changed: new, gone, different, or a goodbye. */
  changed: (fqdns: ReadonlySet<string>) => void
  /** An instance refused because the cache holds its limit of instances. */
  overflow?: (fqdn: string, from: string) => void
}

/** What a browser needs of its responder. */
export interface BrowseTransport {
  subscribe: (listener: { response?: (packet: MdnsPacket, from: RemoteInfo) => void }) => () => void
  query: (questions: Array<{ name: string, type: string }>, options?: { suppressMs?: number }) => void
}

/** What a browser browses for, and its bounds. */
export interface ServiceBrowserInit {
  /** E.g. `_iotmesh._tcp.local`. */
  serviceDomain: string
  /** Instances the cache holds at most (a flood must not exhaust memory); default 1024. */
  maxInstances?: number
  /** Identical maintenance queries within this window are sent once (RFC 6762 §7.3); default 1000 ms. */
  suppressMs?: number
}

/** The clock of its timers and the random source of its refresh variation (RFC 6762 §5.2). */
export interface ServiceBrowserComponents {
  clock: Clock
  random: Random
}

/**
 * One record cache for one service type on one responder, shared by every discovery browsing
 * through it (`MdnsResponder.browser`): each response is ingested once, listeners hear what changed.
 */
export class ServiceBrowser {
  readonly #transport: BrowseTransport
  readonly #init: ServiceBrowserInit
  readonly #clock: Clock
  readonly #cache: ServiceCache
  readonly #listeners = new Set<BrowseListener>()
  #unsubscribe: (() => void) | undefined
  #maintenance: unknown
  #maintenanceAt: number | undefined
  #ingested = 0
  #errors = 0

  constructor (transport: BrowseTransport, init: ServiceBrowserInit, components: ServiceBrowserComponents) {
    this.#transport = transport
    this.#init = init
    this.#clock = components.clock
    this.#cache = new ServiceCache({ serviceDomain: init.serviceDomain, maxInstances: init.maxInstances, random: components.random })
  }

  /** Responses ingested: one per response received while anyone browses, not one per listener. */
  get ingested (): number { return this.#ingested }
  /** Instances held. */
  get size (): number { return this.#cache.size }
  /** Listener calls that threw (a listener bug; the other listeners were still called). */
  get errors (): number { return this.#errors }

  /** The instance if its PTR, SRV and TXT are cached (cache.ts `view`). */
  view (fqdn: string): InstanceView | undefined { return this.#cache.view(fqdn) }

  /** Every complete instance held: what a listener that joins late catches up with. */
  views (): InstanceView[] { return this.#cache.views() }

  /**
   * Tells `listener` of changes until the returned function is called. The first listener starts
   * the browse; when the last leaves, the cache is emptied and its timer cleared.
   */
  subscribe (listener: BrowseListener): () => void {
    this.#listeners.add(listener)
    this.#unsubscribe ??= this.#transport.subscribe({ response: (packet, from) => { this.#onResponse(packet, from) } })
    return () => {
      if (!this.#listeners.delete(listener) || this.#listeners.size > 0) return
      this.#unsubscribe?.()
      this.#unsubscribe = undefined
      this.#clock.clearTimeout(this.#maintenance)
      this.#maintenance = this.#maintenanceAt = undefined
      this.#cache.clear()
    }
  }

  #onResponse (packet: MdnsPacket, from: RemoteInfo): void {
    this.#ingested++
    const { touched, overflow } = this.#cache.ingest(packet, from.address, this.#clock.now())
    for (const fqdn of overflow) this.#each((l) => { l.overflow?.(fqdn, from.address) })
    if (touched.size > 0) this.#each((l) => { l.changed(touched) })
    this.#scheduleMaintenance()
  }

  /** Calls every listener; one that throws is counted and does not stop the others. */
  #each (call: (listener: BrowseListener) => void): void {
    for (const listener of [...this.#listeners]) {
      try { call(listener) } catch { this.#errors++ }
    }
  }

  #scheduleMaintenance (): void {
    const deadline = this.#cache.nextDeadline()
    if (deadline === this.#maintenanceAt && (deadline === undefined || this.#maintenance !== undefined)) return
    this.#clock.clearTimeout(this.#maintenance)
    this.#maintenance = this.#maintenanceAt = undefined
    if (deadline === undefined || this.#listeners.size === 0) return
    this.#maintenanceAt = deadline
    this.#maintenance = this.#clock.setTimeout(() => {
      this.#maintenance = this.#maintenanceAt = undefined
      if (this.#listeners.size === 0) return
      const now = this.#clock.now()
      const touched = this.#cache.expire(now)
      // RFC 6762 §5.2 cache maintenance, one query for every listener (§7.3).
      if (this.#cache.refreshDue(now)) this.#transport.query([{ name: this.#init.serviceDomain, type: 'PTR' }], { suppressMs: this.#init.suppressMs ?? 1000 })
      if (touched.size > 0) this.#each((l) => { l.changed(touched) })
      this.#scheduleMaintenance()
    }, Math.max(0, deadline - this.#clock.now()))
  }
}
