import { systemRandom, type Random } from '../../shared/index.js'
import type { DnsRecord } from './split.js'

/**
 * The record cache of one DNS-SD service type (RFC 6762 §10), pure: time comes in as `now`.
 * It assembles instances from PTR, SRV, TXT and address records that may arrive in any packet,
 * expires each record at its own TTL, turns goodbyes (TTL 0) into expiry one second later
 * (§10.1), and says when to send cache-maintenance queries: at 80, 85, 90 and 95 % of a record's
 * lifetime, plus up to 2 % random variation (§5.2). bonjour-service's Browser does none of the
 * expiry (its `expire()` is never called, and it keeps an 8-hour PTR TTL), hence this module.
 */

export interface InstanceView {
  /** `<instance>._iotmesh._tcp.local` */
  readonly fqdn: string
  /** The instance name: the fqdn without the service domain. */
  readonly name: string
  readonly host: string
  readonly port: number
  readonly txt: readonly Uint8Array[]
  /** Addresses of `host`; the packet source when no address record is known. */
  readonly addresses: readonly string[]
  readonly from: string | undefined
}

export interface CacheOptions {
  /** E.g. `_iotmesh._tcp.local`. */
  serviceDomain: string
  /** Instances beyond this are not stored (a flood must not exhaust memory); default 1024. */
  maxInstances?: number
  /** RFC 6762 §10.1: a goodbye expires the record after one second; default 1000 ms. */
  goodbyeGraceMs?: number
  /** The refresh variation (§5.2); default `systemRandom`. */
  random?: Random
}

interface Entry {
  expiresAt: number
  receivedAt: number
  ttlMs: number
  refreshAt: number
  step: number
}

interface Instance {
  readonly fqdn: string
  ptr?: Entry
  srv?: Entry & { target: string, port: number }
  txt?: Entry & { strings: Uint8Array[] }
  from?: string
}

const REFRESH_POINTS = [0.80, 0.85, 0.90, 0.95] // RFC 6762 §5.2

export class ServiceCache {
  readonly #domain: string
  readonly #suffix: string
  readonly #max: number
  readonly #grace: number
  readonly #random: Random
  readonly #instances = new Map<string, Instance>()
  readonly #hosts = new Map<string, Map<string, Entry>>()
  /** The instances naming each SRV target (lower case), kept as SRV records come and go. */
  readonly #targets = new Map<string, Set<string>>()
  /** The earliest deadline of any entry, or earlier (entries replaced since); undefined: unknown. */
  #deadline: number | undefined

  constructor (options: CacheOptions) {
    this.#domain = options.serviceDomain.toLowerCase()
    this.#suffix = `.${this.#domain}`
    this.#max = options.maxInstances ?? 1024
    this.#grace = options.goodbyeGraceMs ?? 1000
    this.#random = options.random ?? systemRandom
  }

  get size (): number { return this.#instances.size }

  /**
   * Takes the records of one response; returns the fqdns whose records changed (a record new, gone
   * or different, a goodbye) and those refused. A record that only renews its TTL (a refresh, or
   * the answer to a query repeated for every browser sharing a responder) extends its lifetime and
   * touches nothing: the work per packet follows its records, not the size of the cache (a fleet
   * of hundreds of devices in one process hands each packet to every one of them, issue 15).
   */
  ingest (packet: { answers?: DnsRecord[], additionals?: DnsRecord[] }, from: string, now: number): { touched: Set<string>, overflow: string[] } {
    const records = [...(packet.answers ?? []), ...(packet.additionals ?? [])]
    const touched = new Set<string>()
    const overflow: string[] = []
    for (const record of records) {
      if (typeof record?.name !== 'string') continue
      const name = record.name.toLowerCase()
      const ttl = typeof record.ttl === 'number' && record.ttl >= 0 ? record.ttl : 0
      let fqdn: string
      if (record.type === 'PTR' && name === this.#domain && typeof record.data === 'string') fqdn = record.data
      else if ((record.type === 'SRV' || record.type === 'TXT') && name.endsWith(this.#suffix)) fqdn = record.name
      else continue
      if (!fqdn.toLowerCase().endsWith(this.#suffix) || fqdn.length === this.#suffix.length) continue
      const key = fqdn.toLowerCase()
      let instance = this.#instances.get(key)
      if (instance === undefined) {
        if (ttl === 0) continue
        if (this.#instances.size >= this.#max) { overflow.push(fqdn); continue }
        instance = { fqdn }
        this.#instances.set(key, instance)
      }
      let changed: boolean
      if (record.type === 'PTR') {
        changed = fresh(instance.ptr, ttl)
        instance.ptr = this.#entry(instance.ptr, ttl, now)
      } else if (record.type === 'SRV') {
        const data = record.data as { target?: unknown, port?: unknown } | undefined
        if (typeof data?.target !== 'string' || typeof data.port !== 'number') continue
        const before = instance.srv
        changed = fresh(before, ttl) || before?.target !== data.target || before.port !== data.port || (ttl > 0 && instance.from !== from)
        instance.srv = Object.assign(this.#entry(before, ttl, now), { target: data.target, port: data.port })
        if (before !== undefined && before.target.toLowerCase() !== data.target.toLowerCase()) this.#untarget(before.target, key)
        const target = data.target.toLowerCase()
        const users = this.#targets.get(target)
        if (users === undefined) this.#targets.set(target, new Set([key]))
        else users.add(key)
        if (ttl > 0) instance.from = from
      } else {
        const strings = (Array.isArray(record.data) ? record.data : [record.data]).filter((s): s is Uint8Array => s instanceof Uint8Array)
        changed = fresh(instance.txt, ttl) || !sameStrings(instance.txt?.strings, strings)
        instance.txt = Object.assign(this.#entry(instance.txt, ttl, now), { strings })
      }
      if (changed) touched.add(key)
    }
    const targets = this.#targets
    for (const record of records) {
      if ((record?.type !== 'A' && record?.type !== 'AAAA') || typeof record.data !== 'string') continue
      const host = record.name.toLowerCase()
      const users = targets.get(host)
      if (users === undefined) continue // address records of hosts no instance of ours names
      const ttl = typeof record.ttl === 'number' && record.ttl >= 0 ? record.ttl : 0
      let addresses = this.#hosts.get(host)
      if (addresses === undefined) {
        if (ttl === 0) continue
        addresses = new Map()
        this.#hosts.set(host, addresses)
      }
      if (record.flush === true && ttl > 0) {
        // RFC 6762 §10.2: a cache-flush record supersedes others of the set older than one second.
        for (const [address, entry] of addresses) {
          if (address !== record.data && entry.receivedAt < now - 1000) entry.expiresAt = Math.min(entry.expiresAt, now + this.#grace)
        }
      }
      const entry = addresses.get(record.data)
      if (entry !== undefined || ttl > 0) addresses.set(record.data, this.#entry(entry, ttl, now))
      if (fresh(entry, ttl)) for (const user of users) touched.add(user)
    }
    return { touched, overflow }
  }

  #entry<T extends Entry> (previous: T | undefined, ttl: number, now: number): Entry {
    const entry = this.#makeEntry(previous, ttl, now)
    if (this.#deadline !== undefined) this.#deadline = Math.min(this.#deadline, entry.expiresAt, entry.refreshAt)
    return entry
  }

  #makeEntry<T extends Entry> (previous: T | undefined, ttl: number, now: number): Entry {
    if (ttl === 0) {
      // RFC 6762 §10.1: goodbye; keep it one more second in case it is promptly re-announced.
      const expiresAt = now + this.#grace
      return previous === undefined
        ? { expiresAt, receivedAt: now, ttlMs: 0, refreshAt: Infinity, step: REFRESH_POINTS.length }
        : { ...previous, expiresAt: Math.min(previous.expiresAt, expiresAt), refreshAt: Infinity, step: REFRESH_POINTS.length }
    }
    const ttlMs = ttl * 1000
    return { expiresAt: now + ttlMs, receivedAt: now, ttlMs, refreshAt: this.#refreshAt(now, ttlMs, 0), step: 0 }
  }

  #refreshAt (receivedAt: number, ttlMs: number, step: number): number {
    const point = REFRESH_POINTS[step]
    return point === undefined ? Infinity : receivedAt + ttlMs * (point + 0.02 * this.#random.float())
  }

  #untarget (target: string, key: string): void {
    const users = this.#targets.get(target.toLowerCase())
    users?.delete(key)
    if (users?.size === 0) this.#targets.delete(target.toLowerCase())
  }

  /** The instance if PTR, SRV and TXT are all cached (RFC 6763 §4–§6), else undefined. */
  view (fqdn: string): InstanceView | undefined {
    const instance = this.#instances.get(fqdn.toLowerCase())
    if (instance?.ptr === undefined || instance.srv === undefined || instance.txt === undefined) return undefined
    const known = [...(this.#hosts.get(instance.srv.target.toLowerCase())?.keys() ?? [])]
    known.sort((a, b) => Number(a.includes(':')) - Number(b.includes(':')) || a.localeCompare(b)) // IPv4 first
    return {
      fqdn: instance.fqdn,
      name: instance.fqdn.slice(0, instance.fqdn.length - this.#suffix.length),
      host: instance.srv.target,
      port: instance.srv.port,
      txt: instance.txt.strings,
      addresses: known.length > 0 ? known : instance.from === undefined ? [] : [instance.from],
      from: instance.from
    }
  }

  views (): InstanceView[] {
    const out: InstanceView[] = []
    for (const key of this.#instances.keys()) {
      const view = this.view(key)
      if (view !== undefined) out.push(view)
    }
    return out
  }

  /** Drops what expired by `now`; returns the fqdns that may have changed. */
  expire (now: number): Set<string> {
    const touched = new Set<string>()
    for (const [key, instance] of this.#instances) {
      for (const kind of ['ptr', 'srv', 'txt'] as const) {
        const entry = instance[kind]
        if (entry !== undefined && entry.expiresAt <= now) {
          if (kind === 'srv' && instance.srv !== undefined) this.#untarget(instance.srv.target, key)
          delete instance[kind]
          touched.add(key)
        }
      }
      if (instance.ptr === undefined && instance.srv === undefined && instance.txt === undefined) this.#instances.delete(key)
    }
    this.#deadline = undefined
    const targets = this.#targets
    for (const [host, addresses] of this.#hosts) {
      for (const [address, entry] of addresses) {
        if (entry.expiresAt > now) continue
        addresses.delete(address)
        for (const user of targets.get(host) ?? []) touched.add(user)
      }
      if (addresses.size === 0 || !targets.has(host)) this.#hosts.delete(host)
    }
    return touched
  }

  /** True when a record reached a refresh point (§5.2) since the last call: send a query. */
  refreshDue (now: number): boolean {
    this.#deadline = undefined
    let due = false
    for (const entry of this.#entries()) {
      if (entry.refreshAt > now) continue
      due = true
      while (entry.refreshAt <= now) {
        entry.step++
        entry.refreshAt = this.#refreshAt(entry.receivedAt, entry.ttlMs, entry.step)
      }
    }
    return due
  }

  /**
   * When `expire` or `refreshDue` next has something to do, or earlier: records renewed since the
   * last full look may have moved their deadlines later, and are seen at the next call of either.
   * Kept as records arrive, so asking after every packet costs nothing per record held.
   */
  nextDeadline (): number | undefined {
    if (this.#deadline === undefined) {
      let next = Infinity
      for (const entry of this.#entries()) next = Math.min(next, entry.expiresAt, entry.refreshAt)
      this.#deadline = next
    }
    return this.#deadline === Infinity ? undefined : this.#deadline
  }

  * #entries (): Generator<Entry> {
    for (const instance of this.#instances.values()) {
      if (instance.ptr !== undefined) yield instance.ptr
      if (instance.srv !== undefined) yield instance.srv
      if (instance.txt !== undefined) yield instance.txt
    }
    for (const addresses of this.#hosts.values()) yield * addresses.values()
  }

  clear (): void {
    this.#instances.clear()
    this.#hosts.clear()
    this.#targets.clear()
    this.#deadline = undefined
  }
}

/** A record that was not held, or whose last word was a goodbye, or that says goodbye now: its instance changes. */
function fresh (previous: Entry | undefined, ttl: number): boolean {
  return previous === undefined || ttl === 0 || previous.ttlMs === 0
}

function sameStrings (a: readonly Uint8Array[] | undefined, b: readonly Uint8Array[]): boolean {
  if (a === undefined || a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as Uint8Array
    const y = b[i] as Uint8Array
    if (x.length !== y.length) return false
    for (let j = 0; j < x.length; j++) if (x[j] !== y[j]) return false
  }
  return true
}
