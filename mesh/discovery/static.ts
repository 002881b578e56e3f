import { isIP } from 'node:net'
import { PUBLIC_KEY_LENGTH, fromBase64, isDeviceId, keyMatchesId, meshError, type DeviceId, type PublicKey } from '../../shared/index.js'
import { DiscoveryBase } from './base.js'
import type { Discovery, InvalidReason, StaticPeerInfo } from './types.js'

/**
 * Static and bootstrap peers: `host:port` addresses for networks without multicast, or devices
 * on another subnet. Their id and key are unknown until the link handshake proves them, unless
 * pinned here. The node feeds addresses that bootstrap peers tell it about (peer exchange is the
 * link/routing layer's business) through `add()`, and forgets them with `remove()`.
 */

/** `host:port`, `[v6]:port`, or an object that may pin the expected id and key. */
export type StaticPeerInit = string | {
  readonly host: string
  readonly port: number
  readonly id?: DeviceId
  /** The Ed25519 public key, raw or base64url; must derive to `id`. */
  readonly publicKey?: PublicKey | string
}

export interface StaticDiscoveryInit {
  /** Peers kept for as long as the discovery runs. */
  peers?: readonly StaticPeerInit[]
  /** First contacts, flagged `bootstrap: true`, whose peer exchange finds others. */
  bootstrap?: readonly StaticPeerInit[]
}

export interface StaticDiscovery extends Discovery {
  readonly kind: 'static'
  /**
   * Adds (or updates) a peer; emits `peer` if started. Input may come from the network, so a bad
   * entry is counted and reported as `invalid` and undefined is returned, never thrown.
   */
  add (peer: StaticPeerInit, options?: { bootstrap?: boolean }): StaticPeerInfo | undefined
  /** Forgets a peer by key (`host:port`) or entry; emits `peer:lost` if it was known and started. */
  remove (peer: StaticPeerInit): boolean
}

type Parsed = { ok: true, peer: Omit<StaticPeerInfo, 'bootstrap'> } | { ok: false, reason: InvalidReason, subject: string, detail: string }

const HOST_NAME = /^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$/i

/** Parses and normalises one entry; the key is `host:port`, lower case, IPv6 in brackets. */
export function parseStaticPeer (entry: StaticPeerInit): Parsed {
  let host: string
  let portText: string | number
  const subject = typeof entry === 'string' ? entry : `${String(entry?.host)}:${String(entry?.port)}`
  if (typeof entry === 'string') {
    const m = /^\[([^\]]+)\]:(\d+)$/.exec(entry.trim()) ?? /^([^:[\]]+):(\d+)$/.exec(entry.trim())
    if (m === null) return { ok: false, reason: 'bad-address', subject, detail: `${JSON.stringify(entry)} is not host:port (use [addr]:port for IPv6)` }
    host = m[1] as string
    portText = m[2] as string
  } else if (entry !== null && typeof entry === 'object' && typeof entry.host === 'string') {
    host = entry.host.replace(/^\[(.*)\]$/, '$1')
    portText = entry.port
  } else {
    return { ok: false, reason: 'bad-address', subject, detail: 'a static peer is "host:port" or { host, port }' }
  }
  host = host.toLowerCase()
  const family = isIP(host)
  if (family === 0 && !HOST_NAME.test(host)) return { ok: false, reason: 'bad-address', subject, detail: `${JSON.stringify(host)} is neither an IP address nor a host name` }
  const port = typeof portText === 'number' ? portText : Number(portText)
  if (!Number.isInteger(port) || port < 1 || port > 65535) return { ok: false, reason: 'bad-port', subject, detail: `port ${String(portText)} is not an integer 1..65535` }
  const key = family === 6 ? `[${host}]:${port}` : `${host}:${port}`
  if (typeof entry === 'string' || (entry.id === undefined && entry.publicKey === undefined)) {
    return { ok: true, peer: { source: 'static', key, addresses: [host], port } }
  }
  const id = entry.id
  if (!isDeviceId(id)) return { ok: false, reason: 'bad-id', subject, detail: `id ${JSON.stringify(id ?? null)} is not a device id; pin both id and publicKey, or neither` }
  const publicKey = typeof entry.publicKey === 'string' ? fromBase64(entry.publicKey) : entry.publicKey
  if (publicKey?.length !== PUBLIC_KEY_LENGTH) return { ok: false, reason: 'bad-pk', subject, detail: `publicKey is not a ${PUBLIC_KEY_LENGTH}-byte Ed25519 key` }
  if (!keyMatchesId(publicKey, id)) return { ok: false, reason: 'key-mismatch', subject, detail: `publicKey does not derive to id ${id}` }
  return { ok: true, peer: { source: 'static', key, addresses: [host], port, id, publicKey: new Uint8Array(publicKey) } }
}

class StaticDiscoveryImpl extends DiscoveryBase implements StaticDiscovery {
  readonly kind = 'static' as const
  readonly #configured = new Map<string, StaticPeerInfo>()

  constructor (init: StaticDiscoveryInit) {
    super()
    for (const [list, bootstrap] of [[init.peers ?? [], false], [init.bootstrap ?? [], true]] as const) {
      for (const entry of list) {
        const parsed = parseStaticPeer(entry)
        if (!parsed.ok) throw meshError('ERR_BAD_ARGUMENT', `static peer ${parsed.subject}: ${parsed.detail}`, { details: { reason: parsed.reason } })
        this.#configured.set(parsed.peer.key, { ...parsed.peer, bootstrap })
      }
    }
  }

  protected async onStart (): Promise<void> {
    for (const peer of this.#configured.values()) this.upsert(peer)
  }

  protected async onStop (): Promise<void> {}

  add (entry: StaticPeerInit, options: { bootstrap?: boolean } = {}): StaticPeerInfo | undefined {
    const parsed = parseStaticPeer(entry)
    if (!parsed.ok) {
      this.invalid({ reason: parsed.reason, source: 'static', subject: parsed.subject, detail: parsed.detail })
      return undefined
    }
    const known = this.#configured.get(parsed.peer.key)
    const peer: StaticPeerInfo = {
      ...parsed.peer,
      // An entry without a pinned key keeps the one already pinned for that address.
      ...(parsed.peer.id === undefined && known?.id !== undefined ? { id: known.id, publicKey: known.publicKey } : {}),
      bootstrap: options.bootstrap ?? known?.bootstrap ?? false
    }
    this.#configured.set(peer.key, peer)
    this.upsert(peer)
    return peer
  }

  remove (entry: StaticPeerInit): boolean {
    const parsed = parseStaticPeer(entry)
    if (!parsed.ok || !this.#configured.delete(parsed.peer.key)) return false
    this.drop(parsed.peer.key)
    return true
  }
}

/** Static and bootstrap peers behind the Discovery interface; throws ERR_BAD_ARGUMENT for a bad entry. */
export function createStaticDiscovery (init: StaticDiscoveryInit = {}): StaticDiscovery {
  return new StaticDiscoveryImpl(init)
}
