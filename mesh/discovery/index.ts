/** Peer discovery: DNS-SD over mDNS on the LAN, static and bootstrap peers elsewhere, one interface. */
export {
  INVALID_REASONS,
  type Discovery, type DiscoveryCounters, type DiscoveryEvents, type DiscoveryEmitter, type InvalidEvent, type InvalidReason,
  type MdnsPeerInfo, type PeerInfo, type PeerSource, type StaticPeerInfo, type Clock
} from './types.js'
export {
  PROTOCOL_VERSION, TXT_VERSION, SERVICE_TYPE, SERVICE_DOMAIN, MAX_TXT_BYTES, HOST_RECORD_TTL, OTHER_RECORD_TTL, recordTtl,
  encodeTxt, txtStrings, parseTxt, parseTxtStrings, instanceName, hostNameFor, type TxtFields, type TxtResult
} from './records.js'
export { createMdnsDiscovery, type MdnsDiscovery, type MdnsDiscoveryInit, type MdnsDiscoveryComponents } from './mdns.js'
export { createStaticDiscovery, parseStaticPeer, type StaticDiscovery, type StaticDiscoveryInit, type StaticPeerInit } from './static.js'
export {
  createMdnsResponder, MdnsResponder, type MdnsResponderInit, type MdnsResponderComponents, type MdnsResponderCounters,
  type MdnsServiceSpec, type PublishedService
} from './responder.js'
export { browsePeers, browseRow, type BrowseRow, type BrowseOptions, type BrowseComponents } from './browse.js'
export { ServiceCache, type InstanceView, type CacheOptions } from './cache.js'
export {
  ServiceBrowser, type BrowseListener, type BrowseTransport, type ServiceBrowserInit, type ServiceBrowserComponents
} from './service-browser.js'
export { splitResponse, recordBytes, MDNS_MAX_PACKET_BYTES, DEFAULT_MAX_PAYLOAD_BYTES, type DnsRecord, type DnsResponse } from './split.js'
