/**
 * Test doubles for iotmesh (`iotmesh/mesh/testing`), apart from what runs on a device: the
 * in-memory network (the Link/Transport contract without sockets) and the fault model (seeded
 * loss, delay, duplication and partitions) that applies to any transport, memory or TCP. The
 * fleet simulator builds on them; a node in the field never does.
 */
export {
  createMemoryNetwork, type MemoryNetwork, type MemoryNetworkInit, type MemoryNetworkComponents
} from './links/memory.js'
export { FaultModel, createFaultModel, type FaultModelInit, type PartitionOptions } from './links/faults.js'
export { applyFaults } from './links/faulty-transport.js'
export {
  withFaults, type LinkFaults, type FaultInit, type FaultStats, type FaultyLink
} from './links/faulty-link.js'
/** The event loop's delivery slices: a fleet in one process gives its memory network a Turn with a share (turn.ts). */
export { Turn, SLICE_MS, SLICE_SHARE, MAX_SLICE_MS } from './links/turn.js'
/** Memory networks in several threads of one process, joined by MessagePorts (a fleet split over worker threads). */
export { PortLink, ITEM_COST } from './links/port-link.js'
export { MAX_PENDING_ACROSS, DIAL_ACROSS_TIMEOUT_MS, type ThreadBridge } from './links/thread-bridge.js'
export { Trunk, TrunkChannel, MAX_CHANNELS, type LinkPort } from './links/trunk.js'
