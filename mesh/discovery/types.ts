import type { DeviceId, PublicKey } from '../../shared/index.js'
import type { TypedEmitter } from '../events.js'

/**
 * The one contract every discovery mechanism implements (in the spirit of libp2p's
 * `PeerDiscovery` interface): mDNS/DNS-SD on the LAN, and static/bootstrap addresses for
 * networks without multicast or peers on another subnet.
 */

/** A device announced by DNS-SD (RFC 6763): its TXT record names its id and public key. */
export interface MdnsPeerInfo {
  readonly source: 'mdns'
  /** Stable key of this peer in `peers()` and `peer:lost`: the device id. */
  readonly key: DeviceId
  readonly id: DeviceId
  readonly publicKey: PublicKey
  /** The DNS-SD instance name (RFC 6763 §4.1.1), as announced: the device's name. */
  readonly name: string
  readonly fleet: string
  /** The protocol version from the TXT `v` key; the link handshake decides compatibility. */
  readonly version: number
  /** IPv4/IPv6 addresses of the SRV target host (RFC 6763 §5), else the packet's source address. */
  readonly addresses: readonly string[]
  /** The SRV port: the device's link port. */
  readonly port: number
  /** The SRV target host name (RFC 2782). */
  readonly host: string
}

/**
 * A configured or learned `host:port`. Its id and key are unknown until the link handshake
 * proves them, unless the configuration pinned them.
 */
export interface StaticPeerInfo {
  readonly source: 'static'
  /** Stable key of this peer: the normalised `host:port` (`[v6]:port` for IPv6). */
  readonly key: string
  readonly id?: DeviceId
  readonly publicKey?: PublicKey
  /** One entry: an IP address or a host name for the link layer to resolve. */
  readonly addresses: readonly string[]
  readonly port: number
  /** A bootstrap peer: a first contact whose peer exchange (link/routing layer) finds others. */
  readonly bootstrap: boolean
}

export type PeerInfo = MdnsPeerInfo | StaticPeerInfo
export type PeerSource = PeerInfo['source']

/** Why an announcement or an address was ignored; `counters.invalid` counts each. */
export const INVALID_REASONS = [
  'malformed', // TXT strings that are not UTF-8 / not key=value (RFC 6763 §6.4, §6.5)
  'oversized', // TXT record, name or value over the limits
  'txtvers', // txtvers missing or not 1 (RFC 6763 §6.7)
  'missing-key', // id, pk or v missing or without a value
  'bad-id', // id is not a device id
  'bad-pk', // pk is not base64url of a 32-byte key
  'key-mismatch', // pk does not derive to id (shared/identity.ts keyMatchesId)
  'bad-version', // v is not a non-negative integer
  'bad-fleet', // fleet empty or too long
  'duplicate-id', // a second DNS-SD instance claims an id another instance holds
  'cache-full', // more instances than the cache holds (a flood is dropped, not stored)
  'bad-address', // a static peer that is not host:port
  'bad-port' // port outside 1..65535
] as const

export type InvalidReason = typeof INVALID_REASONS[number]

export interface InvalidEvent {
  readonly reason: InvalidReason
  readonly source: PeerSource
  /** What was rejected: an instance name, or the static address text. */
  readonly subject: string
  /** The packet's source address, for mDNS. */
  readonly from?: string
  readonly detail: string
}

export interface DiscoveryEvents {
  /** A peer was found, or what we know about it changed (address, port, key). */
  peer: [peer: PeerInfo]
  /** A peer is gone (goodbye, expiry, removal); `key` is its id (mDNS) or `host:port` (static). */
  'peer:lost': [key: string, last: PeerInfo]
  invalid: [event: InvalidEvent]
}

export interface DiscoveryCounters {
  /** Distinct peers that appeared (a reappearance after a loss counts again). */
  readonly found: number
  readonly lost: number
  readonly invalid: Readonly<Record<InvalidReason, number>>
  /** Socket and send errors, each survived. */
  readonly errors: number
}

export type DiscoveryEmitter = Pick<TypedEmitter<DiscoveryEvents>, 'on' | 'once' | 'off' | 'next' | 'listenerCount'>

export interface Discovery extends DiscoveryEmitter {
  readonly kind: PeerSource
  /** Starts discovering; a second call, or a call while starting, is a no-op. */
  start (options?: { signal?: AbortSignal }): Promise<void>
  /**
   * Stops, closing sockets and timers and awaiting them; nothing is emitted after it is called.
   * `goodbye: false` (a crash): the announcement is withdrawn without the goodbye RFC 6762 §10.1 sends.
   */
  stop (options?: { goodbye?: boolean }): Promise<void>
  [Symbol.asyncDispose] (): Promise<void>
  readonly started: boolean
  /** A snapshot of the peers known now (empty when stopped). */
  peers (): PeerInfo[]
  /** A snapshot of the counters. */
  readonly counters: DiscoveryCounters
}

/** Every timer of the discovery module passes through the one Clock (shared/clock.ts). */
export type { Clock } from '../../shared/index.js'
