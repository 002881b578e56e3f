import Bonjour from 'bonjour-service'
import { recordTtl } from './records.js'
import { DEFAULT_MAX_PAYLOAD_BYTES, sameRecord, splitResponse, type DnsRecord, type DnsResponse } from './split.js'

/**
 * bonjour-service 1.4, used as it is, with its known traps closed (NETWORK.md). It reaches into
 * the library's internals, which are checked on open so that an upgrade fails loudly:
 * - its default error callback rethrows, and multicast-dns emits 'error' with no listener: both
 *   are counted here instead;
 * - it answers a browse with every instance in one datagram of any size (EMSGSIZE past ~230):
 *   responses are split (split.ts, RFC 6762 §17);
 * - unpublishing one service unregisters every record sharing a name (every instance's PTR):
 *   the registry is cleaned record by record, and records live services still need get no goodbye;
 * - with `interface`, multicast-dns binds to that unicast address, where Linux delivers no
 *   multicast: the socket binds to any address and joins the group on that interface only;
 * - it announces its PTR with a TTL of 28,800 s (8 h): every record sent gets the TTL of
 *   records.ts `recordTtl` instead (RFC 6762 §10);
 * - its answer looks up each record set by scanning the whole registry (`recordsFor`), four times
 *   per instance in the answer to a browse: quadratic in the instances a responder publishes (a
 *   simulated fleet publishes hundreds, issue 15). The lookup goes through an index instead.
 * Its probe logs to the console and gives up on a conflict, so it is not used (probe.ts is).
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
export interface MulticastDns {
  on (event: string, listener: (...args: never[]) => void): unknown
  off (event: string, listener: (...args: never[]) => void): unknown
  once (event: string, listener: (...args: never[]) => void): unknown
  query (query: { questions: Array<{ name: string, type: string }> }, cb?: (err?: Error | null) => void): void
  respond: RespondFn
  response: RespondFn
}
type RespondFn = (res: DnsResponse | DnsRecord[], rinfo?: unknown, cb?: (err?: Error | null) => void) => void

interface BonjourInternals {
  server: {
    mdns: MulticastDns
    registry: Record<string, DnsRecord[]>
    unregister: (records: DnsRecord[] | DnsRecord) => void
    recordsFor: (name: string, type: string) => DnsRecord[]
  }
}

export interface BonjourHooks {
  response: (packet: MdnsPacket, from: RemoteInfo) => void
  /** A socket or send error, survived. */
  failed: (err: Error) => void
  /** A datagram that is not DNS. */
  malformed: () => void
  /** A response went out as `messages` datagrams; `dropped` records exceeded 9000 bytes alone. */
  sent: (messages: number, dropped: number) => void
  /** Records of the services still published (so that shared ones survive an unpublish). */
  liveRecords: () => DnsRecord[]
}

export interface OpenBonjour {
  readonly bonjour: Bonjour
  readonly mdns: MulticastDns
  readonly registry: Record<string, DnsRecord[]>
}

/** The part of a published bonjour-service Service that `withdraw` uses. */
interface ServiceInternals { activated: boolean, published: boolean, records: () => DnsRecord[] }

/**
 * Stops answering for `service` without a goodbye: what a device that lost power does (it sends
 * nothing; peers drop it when its records expire, RFC 6762 §10). bonjour-service's own stop always
 * sends the goodbye (its Registry.teardown); this does the same teardown without the response.
 */
export function withdraw (bonjour: Bonjour, service: unknown): void {
  const s = service as ServiceInternals
  const internals = bonjour as unknown as BonjourInternals & { registry?: { services?: unknown[] } }
  if (s.activated !== true || typeof s.records !== 'function') return
  s.activated = false
  internals.server.unregister(s.records())
  s.published = false
  const services = internals.registry?.services
  const at = services?.indexOf(service) ?? -1
  if (at >= 0) services?.splice(at, 1)
}

/** A Bonjour instance with its socket bound and the group joined; rejects if 5353 cannot be bound. */
export async function openBonjour (options: { interface?: string, maxPayloadBytes?: number }, hooks: BonjourHooks): Promise<OpenBonjour> {
  const config = (options.interface === undefined ? {} : { interface: options.interface, bind: '0.0.0.0' }) as ConstructorParameters<typeof Bonjour>[0]
  // Send errors reach us through the respond wrapper below; the error callback has nothing left to do.
  const bonjour = new Bonjour(config, () => {})
  const internals = bonjour as unknown as BonjourInternals
  const mdns = internals.server?.mdns
  if (mdns === undefined || typeof mdns.respond !== 'function' || typeof internals.server.unregister !== 'function' ||
    typeof internals.server.recordsFor !== 'function' || typeof internals.server.registry !== 'object') {
    bonjour.destroy()
    throw new Error('bonjour-service internals changed: mesh/discovery/bonjour.ts needs an update')
  }
  patch(internals, mdns, options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES, hooks)
  await new Promise<void>((resolve, reject) => {
    const onReady = (): void => { mdns.off('error', onError); resolve() }
    const onError = (err: Error): void => { mdns.off('ready', onReady); bonjour.destroy(); reject(err) }
    mdns.once('ready', onReady)
    mdns.once('error', onError)
  })
  return { bonjour, mdns, registry: internals.server.registry }
}

function patch (internals: BonjourInternals, mdns: MulticastDns, maxPayloadBytes: number, hooks: BonjourHooks): void {
  const onSocketError = (err: Error & { code?: string }): void => {
    // multicast-dns reports undecodable datagrams as 'warning' too: those carry no errno code.
    if (typeof err.code === 'string') hooks.failed(err)
    else hooks.malformed()
  }
  mdns.on('error', onSocketError)
  mdns.on('warning', onSocketError)
  mdns.on('response', hooks.response)

  const send = mdns.respond
  const respond: RespondFn = (res, rinfo, cb) => {
    if (typeof rinfo === 'function') return respond(res, undefined, rinfo as (err?: Error | null) => void)
    const ttls = (records: DnsRecord[]): DnsRecord[] => records.map((r) => r.ttl === undefined ? r : { ...r, ttl: recordTtl(r.type, r.ttl) })
    const response = Array.isArray(res) ? { answers: ttls(res), additionals: [] } : { answers: ttls(res.answers ?? []), additionals: ttls(res.additionals ?? []) }
    const { messages, dropped } = splitResponse(response, maxPayloadBytes) // RFC 6762 §17
    hooks.sent(messages.length, dropped.length)
    let pending = messages.length
    let first: Error | undefined
    const done = (err?: Error | null): void => {
      if (err != null) {
        first ??= err
        hooks.failed(err)
      }
      if (--pending === 0) cb?.(first)
    }
    if (pending === 0) { process.nextTick(() => cb?.()); return }
    for (const message of messages) {
      try {
        send(message, rinfo, done)
      } catch (err) {
        done(err as Error) // dns-packet throws on records it cannot encode
      }
    }
  }
  mdns.respond = respond
  mdns.response = respond

  const server = internals.server
  server.recordsFor = indexedLookup(server)
  server.unregister = (records) => {
    const list = Array.isArray(records) ? records : [records]
    const live = hooks.liveRecords()
    for (let i = list.length - 1; i >= 0; i--) {
      const record = list[i] as DnsRecord
      if (live.some((r) => sameRecord(r, record))) {
        // Shared with a live service (the _services._dns-sd._udp PTR): kept, and no goodbye for it
        // (bonjour-service sends this very array as the goodbye).
        list.splice(i, 1)
        continue
      }
      const sub = server.registry[record.type]
      if (sub !== undefined) server.registry[record.type] = sub.filter((r) => !sameRecord(r, record))
    }
  }
}

/** bonjour-service's name comparison (its utils/dns-equal.js): ASCII letters only, case-insensitively. */
function dnsLower (name: string): string {
  return name.replace(/[A-Z]/g, (c) => c.toLowerCase())
}

interface TypeIndex {
  /** The registry's array this was built from, and its length then: registering pushes, unregistering replaces. */
  readonly list: readonly DnsRecord[]
  readonly length: number
  readonly byName: Map<string, DnsRecord[]>
  readonly byLabel: Map<string, DnsRecord[]>
}

/**
 * bonjour-service's `recordsFor(name, type)`, the same records in the same order, from an index
 * per type rebuilt when that type's record list changed: the registry's records matching `name`
 * (a name without a dot is compared with each record name's first label).
 */
export function indexedLookup (server: { registry: Record<string, DnsRecord[]> }): (name: string, type: string) => DnsRecord[] {
  const indexes = new Map<string, TypeIndex>()
  return (name, type) => {
    const list = Object.hasOwn(server.registry, type) ? server.registry[type] : undefined
    if (!Array.isArray(list)) return []
    let index = indexes.get(type)
    if (index === undefined || index.list !== list || index.length !== list.length) {
      const byName = new Map<string, DnsRecord[]>()
      const byLabel = new Map<string, DnsRecord[]>()
      const add = (map: Map<string, DnsRecord[]>, key: string, record: DnsRecord): void => {
        const same = map.get(key)
        if (same === undefined) map.set(key, [record])
        else same.push(record)
      }
      for (const record of list) {
        add(byName, dnsLower(record.name), record)
        add(byLabel, dnsLower(record.name.split('.')[0] as string), record)
      }
      index = { list, length: list.length, byName, byLabel }
      indexes.set(type, index)
    }
    const found = (name.includes('.') ? index.byName : index.byLabel).get(dnsLower(name))
    return found === undefined ? [] : [...found]
  }
}
