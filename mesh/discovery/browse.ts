import { DEFAULT_FLEET, fromBase64, keyMatchesId, meshError, systemClock } from '../../shared/index.js'
import { ServiceCache, type InstanceView } from './cache.js'
import { SERVICE_DOMAIN, parseTxt, parseTxtStrings } from './records.js'
import { MdnsResponder } from './responder.js'
import type { Clock, InvalidReason } from './types.js'

/**
 * One-shot DNS-SD browse for `iotmesh peers`: every `_iotmesh._tcp` instance seen within the
 * timeout, valid or not, so a person can see what is on the LAN and what is wrong with it.
 */

export interface BrowseRow {
  /** The DNS-SD instance name. */
  readonly name: string
  readonly id?: string
  /** The TXT `pk`, as announced (base64url). */
  readonly publicKey?: string
  readonly fleet?: string
  readonly version?: number
  readonly addresses: readonly string[]
  readonly port: number
  /** The SRV target host. */
  readonly host: string
  /** True when `pk` decodes to a key that derives to `id`. */
  readonly keyMatches: boolean
  /** True when the TXT record is a valid iotmesh announcement (records.ts parseTxt). */
  readonly valid: boolean
  readonly reason?: InvalidReason
}

export interface BrowseOptions {
  /** How long to listen; default 2000 ms. */
  timeoutMs?: number
  /** Only rows announcing this fleet (TXT `fleet`, default `default`). */
  fleet?: string
  signal?: AbortSignal
  /** Interface address to browse on; default all. */
  interface?: string
}

export interface BrowseComponents {
  /** Browse through an already started responder instead of opening a socket. */
  responder?: MdnsResponder
  clock?: Clock
}

/** One row per instance; the TXT record is judged but never trusted for more than display. */
export function browseRow (view: InstanceView): BrowseRow {
  const result = parseTxt(view.txt)
  const parsed = parseTxtStrings(view.txt)
  const map = parsed.ok ? parsed.value : new Map<string, string | true>()
  const str = (key: string): string | undefined => { const v = map.get(key); return typeof v === 'string' ? v : undefined }
  const id = str('id')
  const pk = str('pk')
  const key = pk === undefined ? undefined : fromBase64(pk)
  const v = str('v')
  const fleet = parsed.ok ? (map.has('fleet') ? str('fleet') : DEFAULT_FLEET) : undefined
  return {
    name: view.name,
    ...(id === undefined ? {} : { id }),
    ...(pk === undefined ? {} : { publicKey: pk }),
    ...(fleet === undefined ? {} : { fleet }),
    ...(v !== undefined && /^\d{1,9}$/.test(v) ? { version: Number(v) } : {}),
    addresses: view.addresses,
    port: view.port,
    host: view.host,
    keyMatches: key !== undefined && id !== undefined && keyMatchesId(key, id),
    valid: result.ok,
    ...(result.ok ? {} : { reason: result.reason })
  }
}

/** Lists the `_iotmesh._tcp` instances DNS-SD shows within `timeoutMs`, invalid ones flagged. */
export async function browsePeers (options: BrowseOptions = {}, components: BrowseComponents = {}): Promise<BrowseRow[]> {
  const { signal } = options
  if (signal?.aborted === true) throw meshError('ERR_ABORTED', 'browsing was aborted', { cause: signal.reason })
  const clock = components.clock ?? systemClock
  const responder = components.responder ?? new MdnsResponder(options.interface === undefined ? {} : { interface: options.interface }, { clock })
  const cache = new ServiceCache({ serviceDomain: SERVICE_DOMAIN })
  let timer: unknown
  let deadline: unknown
  let unsubscribe = (): void => {}
  try {
    await responder.start()
    unsubscribe = responder.subscribe({ response: (packet, from) => { cache.ingest(packet, from.address, clock.now()) } })
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => { reject(meshError('ERR_ABORTED', 'browsing was aborted', { cause: signal?.reason })) }
      signal?.addEventListener('abort', onAbort, { once: true })
      // RFC 6762 §5.2: query now, then after 1 s, 2 s, 4 s…
      const query = (interval: number): void => {
        responder.query([{ name: SERVICE_DOMAIN, type: 'PTR' }])
        timer = clock.setTimeout(() => { query(interval * 2) }, interval)
      }
      query(1000)
      deadline = clock.setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve() }, options.timeoutMs ?? 2000)
    })
  } finally {
    clock.clearTimeout(timer)
    clock.clearTimeout(deadline)
    unsubscribe()
    if (components.responder === undefined) await responder.stop()
  }
  cache.expire(clock.now())
  return cache.views()
    .map(browseRow)
    .filter((row) => options.fleet === undefined || row.fleet === options.fleet)
    .sort((a, b) => a.name.localeCompare(b.name))
}
