import {
  DEFAULT_FLEET, keyMatchesId, meshError, systemClock, systemRandom, toHex, type DeviceId, type PublicKey, type Random
} from '../../shared/index.js'
import { DiscoveryBase } from './base.js'
import { PROTOCOL_VERSION, SERVICE_DOMAIN, encodeTxt, fleetName, hostNameFor, instanceName, parseTxt } from './records.js'
import { MdnsResponder, type PublishedService } from './responder.js'
import type { ServiceBrowser } from './service-browser.js'
import type { Clock, Discovery, InvalidReason } from './types.js'

/**
 * DNS-SD over mDNS (RFC 6763, RFC 6762): announces this device as `<name>._iotmesh._tcp.local`
 * and browses for the others. Each announcement's TXT record is checked (records.ts) before a
 * `peer` event; our own announcement and other fleets are ignored.
 */

export interface MdnsDiscoveryInit {
  /** This device: its id and Ed25519 public key (the TXT record's `id` and `pk`). */
  identity: { readonly id: DeviceId, readonly publicKey: PublicKey }
  /** The link port, announced in SRV. */
  port: number
  /** The instance name, the device's name; default `iotmesh-<first 8 characters of the id>`. */
  name?: string
  /** Announced in TXT, and only peers of this fleet are reported; default `default`. */
  fleet?: string
  /** The SRV target; default `iotmesh-<id>.local`, unique per device (NETWORK.md). */
  host?: string
  /** TXT `v`; default PROTOCOL_VERSION. */
  version?: number
  /** The id of this device's enrollment credential, announced in TXT `cti` (records.ts). */
  cti?: Uint8Array
  /** Announce this device; default true (false: only browse). */
  announce?: boolean
  /** Browse for other devices; default true (false: only announce, as a fleet simulator may). */
  browse?: boolean
  /** Probe for the name before announcing (RFC 6762 §8.1); default true. */
  probe?: boolean
  /** Also announce AAAA records; default false. */
  ipv6?: boolean
  /** Interface address for a responder this discovery creates itself. */
  interface?: string
  /**
   * Instances the cache holds at most, for a responder this discovery creates itself; default 1024.
   * Discoveries sharing a responder share its cache, and its own `maxInstances`.
   */
  maxInstances?: number
  /** Cap of the interval between browse queries (RFC 6762 §5.2: at most 60 minutes); default 60 min. */
  maxQueryIntervalMs?: number
}

export interface MdnsDiscoveryComponents {
  /** A shared responder (a simulated fleet, a gateway): its owner starts and stops it. */
  responder?: MdnsResponder
  clock?: Clock
  /** Query, probe and refresh jitter (RFC 6762 §5.2, §8.1); default `systemRandom`. */
  random?: Random
}

export interface MdnsDiscovery extends Discovery {
  readonly kind: 'mdns'
  /** The instance name announced (after any rename on conflict, RFC 6762 §9). */
  readonly name: string
}

const FIRST_QUERY_MS = 1000 // RFC 6762 §5.2: at least one second between the first two queries

class MdnsDiscoveryImpl extends DiscoveryBase implements MdnsDiscovery {
  readonly kind = 'mdns' as const
  readonly #init: MdnsDiscoveryInit
  readonly #fleet: string
  readonly #clock: Clock
  readonly #random: Random
  readonly #shared: MdnsResponder | undefined
  #name: string
  #responder: MdnsResponder | undefined
  #browser: ServiceBrowser | undefined
  #published: PublishedService | undefined
  #unsubscribe: (() => void) | undefined
  #unbrowse: (() => void) | undefined
  #querying: unknown
  readonly #byFqdn = new Map<string, DeviceId>()
  readonly #byId = new Map<DeviceId, string>()
  readonly #rejected = new Map<string, string>()

  constructor (init: MdnsDiscoveryInit, components: MdnsDiscoveryComponents) {
    super()
    const { id, publicKey } = init.identity
    if (!keyMatchesId(publicKey, id)) throw meshError('ERR_WRONG_KEY', `the public key given for device ${id} does not derive to that id; pass the key pair's own id`)
    if (!Number.isInteger(init.port) || init.port < 1 || init.port > 65535) throw meshError('ERR_BAD_ARGUMENT', `link port ${init.port} is not an integer 1..65535`)
    this.#init = init
    this.#name = instanceName(init.name ?? `iotmesh-${id.slice(0, 8)}`)
    this.#fleet = fleetName(init.fleet ?? DEFAULT_FLEET)
    this.#clock = components.clock ?? systemClock
    this.#random = components.random ?? systemRandom
    this.#shared = components.responder
  }

  get name (): string { return this.#published?.name ?? this.#name }

  protected async onStart (signal: AbortSignal): Promise<void> {
    const responder = this.#shared ?? new MdnsResponder({
      ...(this.#init.interface === undefined ? {} : { interface: this.#init.interface }),
      ...(this.#init.maxInstances === undefined ? {} : { maxInstances: this.#init.maxInstances })
    }, { clock: this.#clock, random: this.#random })
    this.#responder = responder
    await responder.start()
    const browse = this.#init.browse !== false
    this.#unsubscribe = responder.subscribe({ error: () => { this.failed() } })
    if (browse) {
      // One cache per responder, shared by the discoveries on it: each response is parsed once (issue 15).
      const browser = this.#browser = responder.browser(SERVICE_DOMAIN)
      this.#unbrowse = browser.subscribe({
        changed: (fqdns) => { if (this.live) this.#evaluate(fqdns) },
        overflow: (fqdn, from) => {
          if (!this.live) return
          // Not remembered per name, or a flood of names would grow the memory the limit protects.
          this.invalid({ reason: 'cache-full', source: 'mdns', subject: fqdn, from, detail: `the cache holds ${browser.size} instances, its limit` })
        }
      })
      // What the shared cache already holds (nothing, unless other discoveries browse on this responder).
      this.#evaluate(browser.views().map((v) => v.fqdn.toLowerCase()))
    }
    // RFC 6762 §5.2: the first query after a random 20-120 ms, then at growing intervals.
    if (browse) this.#scheduleQuery(20 + Math.floor(this.#random.float() * 100), FIRST_QUERY_MS)
    if (this.#init.announce === false) return
    const { id, publicKey } = this.#init.identity
    this.#published = await responder.publish({
      name: this.#name,
      port: this.#init.port,
      host: this.#init.host ?? hostNameFor(id),
      txt: encodeTxt({ id, publicKey, fleet: this.#fleet, version: this.#init.version ?? PROTOCOL_VERSION, cti: this.#init.cti }),
      probe: this.#init.probe,
      ipv6: this.#init.ipv6
    }, { signal })
  }

  protected async onStop ({ goodbye }: { goodbye: boolean }): Promise<void> {
    this.#clock.clearTimeout(this.#querying)
    this.#querying = undefined
    this.#unbrowse?.()
    this.#unsubscribe?.()
    this.#unbrowse = this.#unsubscribe = undefined
    const published = this.#published
    this.#published = undefined
    await published?.unpublish({ goodbye }) // goodbye, RFC 6762 §10.1 (none after a crash)
    const responder = this.#responder
    this.#responder = undefined
    if (responder !== undefined && responder !== this.#shared) await responder.stop()
    this.#browser = undefined
    this.#byFqdn.clear()
    this.#byId.clear()
    this.#rejected.clear()
  }

  #query (): void {
    // Discoveries sharing a responder share the answers too: one query per second is enough.
    this.#responder?.query([{ name: SERVICE_DOMAIN, type: 'PTR' }], { suppressMs: FIRST_QUERY_MS })
  }

  #scheduleQuery (delay: number, next: number): void {
    this.#querying = this.#clock.setTimeout(() => {
      if (!this.live) return
      this.#query()
      this.#scheduleQuery(next, Math.min(next * 2, this.#init.maxQueryIntervalMs ?? 3_600_000))
    }, delay)
  }

  /** Re-derives the peer behind each instance name after its records changed. */
  #evaluate (fqdns: Iterable<string>): void {
    const cache = this.#browser
    if (cache === undefined) return
    let released = false
    for (const fqdn of fqdns) {
      const view = cache.view(fqdn)
      if (view === undefined) {
        this.#rejected.delete(fqdn)
        released = this.#release(fqdn) || released
        continue
      }
      const result = parseTxt(view.txt)
      if (!result.ok) {
        this.#reject(fqdn, result.reason, result.detail, view.from, view.txt)
        released = this.#release(fqdn) || released
        continue
      }
      const { id, publicKey, version, fleet } = result.value
      if (id === this.#init.identity.id || fleet !== this.#fleet) {
        released = this.#release(fqdn) || released // our own announcement, or another fleet's
        continue
      }
      const holder = this.#byId.get(id)
      if (holder !== undefined && holder !== fqdn) {
        this.#reject(fqdn, 'duplicate-id', `instance ${holder} already announces device ${id}`, view.from, view.txt)
        continue
      }
      if (this.#byFqdn.get(fqdn) !== id) released = this.#release(fqdn) || released
      this.#rejected.delete(fqdn)
      this.#byFqdn.set(fqdn, id)
      this.#byId.set(id, fqdn)
      this.upsert({ source: 'mdns', key: id, id, publicKey, name: view.name, fleet, version, addresses: view.addresses, port: view.port, host: view.host })
    }
    // A released id may be claimed by another instance that was refused as a duplicate (looked
    // up among the refused, not the whole cache: every goodbye in a fleet releases one).
    if (released) {
      const claimants = new Set([...this.#rejected].filter(([f, why]) => why.startsWith('duplicate-id') && !this.#byFqdn.has(f) && cache.view(f) !== undefined).map(([f]) => f))
      // Several claim the id: the first in the cache's order gets it, as before.
      if (claimants.size > 1) this.#evaluate(cache.views().map((v) => v.fqdn.toLowerCase()).filter((f) => claimants.has(f)))
      else if (claimants.size === 1) this.#evaluate(claimants)
    }
  }

  #release (fqdn: string): boolean {
    const id = this.#byFqdn.get(fqdn)
    if (id === undefined) return false
    this.#byFqdn.delete(fqdn)
    if (this.#byId.get(id) === fqdn) this.#byId.delete(id)
    this.drop(id)
    return true
  }

  /** Counts a refused announcement once per distinct content, not at every refresh. */
  #reject (fqdn: string, reason: InvalidReason, detail: string, from: string | undefined, txt: readonly Uint8Array[] = []): void {
    const signature = `${reason}|${txt.map((s) => toHex(s)).join('.')}`
    if (this.#rejected.get(fqdn) === signature) return
    this.#rejected.set(fqdn, signature)
    this.invalid({ reason, source: 'mdns', subject: fqdn, detail, ...(from === undefined ? {} : { from }) })
  }
}

/** An mDNS/DNS-SD discovery; `start()` it (it announces once its name is probed and sent). */
export function createMdnsDiscovery (init: MdnsDiscoveryInit, components: MdnsDiscoveryComponents = {}): MdnsDiscovery {
  return new MdnsDiscoveryImpl(init, components)
}
