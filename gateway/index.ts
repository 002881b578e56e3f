/**
 * The iotmesh gateway: an MQTT broker (embedded Aedes, or an external broker it joins) that
 * verifies every signed frame before anyone sees it, mirrors readings as SenML JSON, tracks
 * devices, bridges the mesh (as a mesh member), and serves the HTTP API, metrics and the
 * dashboard. Devices (firmware-sim) import only the topic layout and status helpers from here.
 */
export { createGateway, Gateway, type GatewayInit, type GatewayComponents, type GatewayEvents, type GatewayPorts } from './gateway.js'
export {
  TOPIC_ROOT, TELEMETRY_LEVEL, JSON_LEVEL, STATUS_LEVEL, isFleetName, frameTopic, telemetryTopic, jsonTopic, statusTopic,
  topicFilters, parseTopic, isFrameDeviceTopic, type ParsedTopic, type TopicKind
} from './topics.js'
export {
  MAX_STATUS_BYTES, MAX_NAME_LENGTH, onlineStatus, offlineStatus, deviceLastWill, parseStatus, type DeviceStatus, type StatusResult
} from './status.js'
export { frameToSenmlJson, frameToSenmlJsonText } from './json.js'
export {
  Ingest, createIngest, type IngestInit, type IngestComponents, type IngestEvents, type MessageSource, type Reading,
  type DropEvent, type StatusEvent, type Outcome
} from './ingest.js'
export { KeyStore, type LearnResult } from './keys.js'
export { DeviceRegistry, type DeviceInfo, type DevicePath, type DeviceRegistryInit, type StoredReading } from './devices.js'
export { DROP_REASONS, DROP_REASON_NAMES, newCounters, type DropReason, type GatewayCounters, type Path } from './reasons.js'
export { AUTHORIZATION_REASONS, type RefusalPolicy } from './authorize.js'
export type { BrokerInit, BrokerPorts, TlsFiles } from './broker.js'
export type { ExternalInit } from './external.js'
export type { ClusterInit } from './cluster.js'
export { systemClock, type Clock } from './clock.js'
export { GatewayHttp, type HttpInit, type HttpHandler } from './http.js'
export { createMetrics, LATENCY_BUCKETS } from './metrics.js'
export { MeshBridge, createGatewayNode, type BridgeInit, type BridgeHost, type BridgeCounters, type GatewayNodeComponents } from './bridge.js'
export { Topology, GATEWAY_PSEUDO_ID, type TopologyInit, type TopologyNode, type TopologyEdge, type TopologySnapshot, type TopologyView } from './topology.js'
export { LiveFeed, sseMessage, liveReading, resolvedValues, type LiveInit, type LiveReading, type LogEntry } from './live.js'
export { dashboardHandler, findDashboardDir } from './dashboard.js'
