/**
 * The iotmesh gateway: an MQTT broker (embedded Aedes, or an external broker it joins) that
 * verifies every signed frame before anyone sees it, mirrors readings as SenML JSON, tracks
 * devices, bridges the mesh (as a mesh member), and serves the HTTP API, metrics and the
 * dashboard. The topic layout and the device status live in shared/ (the wire contract).
 */
export { createGateway, Gateway, type GatewayInit, type GatewayComponents, type GatewayEvents, type GatewayPorts, type GatewaySummary } from './gateway.js'
export { frameToSenmlJson, frameToSenmlJsonText } from './json.js'
export {
  Ingest, createIngest, type IngestInit, type IngestComponents, type IngestEvents, type MessageSource, type Reading, type CommandTopics,
  type DropEvent, type StatusEvent, type Outcome
} from './ingest.js'
export { DeviceRegistry, type DeviceInfo, type DevicePath, type DeviceRegistryInit, type StoredReading } from './devices.js'
export { DROP_REASONS, DROP_REASON_NAMES, newCounters as newGatewayCounters, type DropReason, type GatewayCounters, type Path } from './reasons.js'
export { AUTHORIZATION_REASONS, type RefusalPolicy } from './authorize.js'
export { BROKER_QUOTAS, type BrokerInit, type BrokerPorts, type BrokerQuotas, type TlsFiles } from './broker.js'
export { ACCESS_DEFAULTS, type AccessInit, type ConnectRateInit, type Principal } from './auth.js'
export type { ExternalInit } from './external.js'
export type { ClusterInit } from './cluster.js'
export { GatewayHttp, type HttpInit, type HttpHandler } from './http.js'
export { createMetrics, LATENCY_BUCKETS } from './metrics.js'
export { MeshBridge, createGatewayNode, type BridgeInit, type BridgeHost, type BridgeCounters, type GatewayNodeComponents } from './bridge.js'
export { Topology, GATEWAY_PSEUDO_ID, type TopologyInit, type TopologyNode, type TopologyEdge, type TopologySnapshot, type TopologyView } from './topology.js'
export { LiveFeed, sseMessage, liveReading, resolvedValues, type LiveInit, type LiveReading, type LogEntry } from './live.js'
export { dashboardHandler, findDashboardDir } from './dashboard.js'
export {
  GatewayState, SqliteStore, PostgresStore, createStore, openStore, isPostgresUrl, RETENTION_DEFAULTS,
  type GatewayStore, type StoredReading as StoredFrame, type SavedOrigin, type HistoryQuery, type RetentionInit, type StateInit, type StateCounters,
  type SqliteStoreInit, type PostgresStoreInit
} from './store/index.js'
export { historyHandler } from './http-history.js'
export {
  GatewayCommands, resultToJson, setArgs,
  type CommandCounters, type CommandRequest, type CommandsInit, type SetInit, type MeshCommandHook, type ResultJson
} from './commands.js'
export { CommandGuard, type CommandGuardInit, type GuardVerdict } from './commands-guard.js'
export { HomeAssistantDiscovery, HA_UNITS, objectIdOf, type HomeAssistantInit, type HomeAssistantHost, type SensorConfig } from './homeassistant.js'
export { createGatewayLogger, logGateway, isLogLevel, LOG_LEVELS, type GatewayLogInit, type LogLevel, type LogFormat, type LoggedGateway } from './log.js'
