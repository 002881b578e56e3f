/** The peer-to-peer node: discovery, authenticated links, routing. */
export {
  MeshNode, createMeshNode, type MeshNodeInit, type MeshNodeComponents, type MeshCounters, type MeshPeer, type MeshNodeEvents, type InterestRoute
} from './node.js'
export { ROUTING_VERSION, type RouterInit, type BanInfo, type CommandHandler } from './routing/router.js'
export { COMMAND_FILTER, COMMAND_ROUTE_DEFAULTS, type CommandRoutesInit } from './routing/commands.js'
export type { CommandOptions } from './command-client.js'
export type { DropInfo, CloneInfo } from './routing/context.js'
export type { ConfigInfo, ConfigVerdict } from './routing/handlers/config.js'
export type { FleetInfo, FleetVerdict } from './routing/handlers/fleet.js'
export { DEFAULT_BUDGETS, type BudgetKind, type Budgets, type Rate } from './routing/budget.js'
export { DEFAULT_SCORE_PARAMS, type ScoreInit, type ScoreParams, type PeerRecord } from './routing/score.js'
export type { InjectResult } from './routing/handlers/index.js'
export { Subscription, type Delivery } from './routing/subscription.js'
export { ACK_CONTENT_FORMAT, DURABLE_FILTER, MAX_HOLES, covers, peekAck, signAck, verifyAck, type Ack } from './routing/ack.js'
export { ACK_DEFAULTS, type AckInit } from './routing/acks.js'
export type { RouterCounters } from './routing/counters.js'
export { encodeData, encodeMessage, decodeMessage, MSG, type RoutingMessage } from './routing/messages.js'
export { loadRoster, parseRoster, type RosterEntry } from './roster.js'
export { CredentialCheck, type CredentialCheckInit, type CredentialCheckComponents, type CredentialCheckCounters, type PeerPresentation } from './credentials.js'
export { TypedEmitter } from './events.js'
export {
  DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_MAX_BUFFERED_BYTES, DEFAULT_KEEPALIVE_INTERVAL, DEFAULT_KEEPALIVE_TIMEOUT, LINK_PROTOCOL_VERSION,
  createTcpTransport, createConnectionManager, ConnectionManager, Backoff,
  type Link, type LinkEvents, type LinkCounters, type LinkCloseInfo, type SendOptions, type RemotePeer, type Transport, type TransportEvents,
  type TransportAddress, type DialOptions, type ListenOptions, type LinkOptions, type Authorize, type Emitter,
  type TcpTransportInit, type TcpTransportComponents, type ConnectionManagerInit, type ConnectionManagerComponents,
  type ConnectionManagerEvents, type ManagedPeer, type BackoffInit
} from './links/index.js'
export {
  INVALID_REASONS, TXT_VERSION, SERVICE_TYPE, SERVICE_DOMAIN, MAX_TXT_BYTES,
  encodeTxt, txtStrings, parseTxt, parseTxtStrings, instanceName, hostNameFor,
  createMdnsDiscovery, createStaticDiscovery, parseStaticPeer, createMdnsResponder, MdnsResponder, browsePeers, browseRow,
  ServiceCache, ServiceBrowser, splitResponse, recordBytes, MDNS_MAX_PACKET_BYTES, DEFAULT_MAX_PAYLOAD_BYTES,
  type Discovery, type DiscoveryCounters, type DiscoveryEvents, type InvalidEvent, type InvalidReason,
  type MdnsPeerInfo, type PeerInfo as DiscoveredPeer, type PeerSource, type StaticPeerInfo,
  type TxtFields, type TxtResult, type MdnsDiscovery, type MdnsDiscoveryInit, type StaticDiscovery, type StaticDiscoveryInit,
  type StaticPeerInit, type MdnsResponderInit, type MdnsServiceSpec, type PublishedService, type BrowseRow, type BrowseOptions,
  type BrowseListener
} from './discovery/index.js'
export { TokenBucket } from './links/token-bucket.js'
