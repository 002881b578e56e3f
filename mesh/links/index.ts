/** Links between devices: authenticated, encrypted TCP and a connection manager. Test doubles (in-memory links, faults): ../testing.ts. */
export type {
  Link, LinkEvents, LinkCounters, LinkCloseInfo, RemotePeer, Transport, TransportEvents, TransportAddress,
  DialOptions, ListenOptions, LinkOptions, Authorize, Emitter
} from './types.js'
export {
  DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_KEEPALIVE_INTERVAL, DEFAULT_KEEPALIVE_TIMEOUT
} from './types.js'
export { createTcpTransport, type TcpTransportInit, type TcpTransportComponents } from './tcp.js'
export {
  createConnectionManager, ConnectionManager, type ConnectionManagerInit, type ConnectionManagerComponents,
  type ConnectionManagerEvents, type ManagedPeer
} from './manager.js'
export { Backoff, type BackoffInit } from './backoff.js'
export { PROTOCOL_VERSION as LINK_PROTOCOL_VERSION } from './handshake.js'
