/** Links between devices: authenticated, encrypted TCP and a connection manager. Test doubles (in-memory links, faults): ../testing.ts. */
export type {
  Link, LinkEvents, LinkCounters, LinkFlowCounters, LinkCloseInfo, RemotePeer, Transport, TransportEvents, TransportAddress,
  TransportCounters, HandshakeRefusal, SendOptions, BanCheck, DialOptions, ListenOptions, LinkOptions, ReceiveBudget, Authorize, Admit, Vouch, Emitter
} from './types.js'
export {
  DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_KEEPALIVE_INTERVAL, DEFAULT_KEEPALIVE_TIMEOUT, DEFAULT_RECEIVE_BUDGET
} from './types.js'
export { createTcpTransport, type TcpTransportInit, type TcpTransportComponents } from './tcp.js'
export { DEFAULT_HANDSHAKE_LIMITS, type HandshakeLimits } from './admission.js'
export { BanList, DEFAULT_BAN_MS, type BanEntry, type BanOptions, type BanListInit } from './bans.js'
export { DEFAULT_EVICTION, type EvictionPolicy } from './eviction.js'
export {
  createConnectionManager, ConnectionManager, type ConnectionManagerInit, type ConnectionManagerComponents,
  type ConnectionManagerEvents, type ConnectionManagerCounters, type LinkSlots, type ManagedPeer
} from './manager.js'
export { Backoff, type BackoffInit } from './backoff.js'
export { PROTOCOL_VERSION as LINK_PROTOCOL_VERSION } from './handshake.js'
