import type { MeshNode } from '../../mesh/index.js'
import type { Gateway } from '../../gateway/index.js'
import type { Outbox } from '../outbox/types.js'

/** What flow() reads of a simulated device (fleet.ts SimDevice). */
interface FlowDevice {
  readonly outbox: Outbox
  readonly device: { readonly node?: MeshNode | undefined } | undefined
}

/**
 * Where the fleet's readings are, step by step, when some do not reach the gateway: what each step
 * dropped, by error code, and what is still waiting (not dropped, not delivered). A sum over every
 * device; for a diagnosis, not for each second (it reads every node's and link's counters).
 */
export interface FleetFlow {
  /** Device outboxes: frames waiting for their path (or an end-to-end ack), and frames dropped to make room. */
  outbox: { frames: number, dropped: number }
  /**
   * Every device's mesh node: frames and messages refused by code (ERR_OVER_BUDGET included), the
   * over-budget ones by kind, duplicates; and the repair path: frames sent in answer to WANTs
   * (`repaired`) beside frames relayed on the eager path, WANT entries sent, repairs put off while a node was
   * behind reading its links (`wantsHeld`), and frames offered again passed on towards the durable
   * subscribers whose acks list them as holes (`reoffersPassed`).
   */
  relays: { rejected: Record<string, number>, overBudget: Record<string, number>, duplicates: number, bans: number, relayed: number, repaired: number, wantsSent: number, wantsHeld: number, fullDigests: number, reoffersPassed: number }
  /**
   * The links of every node (the gateway's included): messages and bytes sent and not yet taken by
   * the far end (memory links: the send queue; TCP: the socket's buffer), in all and on the fullest
   * link (1 MiB: full, its sends are refused and repaired by DIGEST/WANT), and how often delivery
   * stopped for the event loop's turn (`yields`) or a peer's receive budget (`throttled`); and the
   * handshakes the listening ends completed since each node started (one per link opened: `handshakes`).
   */
  links: { open: number, queuedBytes: number, maxQueuedBytes: number, framesOut: number, framesIn: number, yields: number, throttled: number, handshakes: number }
  /** The repair histories of every device's node: origins held (summed over nodes), bytes in all and in the fullest, origins forgotten as idle (mesh/routing/history.ts). */
  history: { origins: number, bytes: number, maxBytes: number, forgotten: number }
  /** The gateway's mesh node: what it refused by code, duplicates, what reached it, and its repairs (WANT entries sent, and put off). */
  gatewayNode: { framesIn: number, delivered: number, rejected: Record<string, number>, overBudget: Record<string, number>, duplicates: number, wantsSent: number, wantsHeld: number } | undefined
  /** The mesh ⇄ MQTT bridge: readings lost because the gateway's subscription buffer overflowed, refused by the gateway's ingest. */
  bridge: { overflow: number, refused: number } | undefined
  /** The gateway's ingest (MQTT and the bridge alike): refused readings by reason, zeros left out. */
  gateway: Record<string, number> | undefined
}

/** Drops by step and code, and what still waits (FleetFlow), over the fleet's devices, nodes (the gateway's included) and gateway. */
export function fleetFlow (devices: readonly FlowDevice[], nodes: Iterable<MeshNode>, gateway: Gateway | undefined): FleetFlow {
  const add = (into: Record<string, number>, from: Partial<Record<string, number>>): void => {
    for (const [k, v] of Object.entries(from)) if (v !== undefined && v > 0) into[k] = (into[k] ?? 0) + v
  }
  const outbox = { frames: 0, dropped: 0 }
  const relays = { rejected: {}, overBudget: {}, duplicates: 0, bans: 0, relayed: 0, repaired: 0, wantsSent: 0, wantsHeld: 0, fullDigests: 0, reoffersPassed: 0 }
  const history = { origins: 0, bytes: 0, maxBytes: 0, forgotten: 0 }
  for (const d of devices) {
    const stats = d.outbox.stats()
    outbox.frames += stats.frames
    outbox.dropped += stats.dropped
    const node = d.device?.node
    if (node === undefined) continue
    const c = node.counters
    add(relays.rejected, c.rejected)
    add(relays.overBudget, c.overBudget)
    relays.duplicates += c.duplicates
    relays.bans += c.bans
    relays.relayed += c.relayed
    relays.repaired += c.repaired
    relays.wantsSent += c.wantsSent
    relays.wantsHeld += c.wantsHeld
    relays.fullDigests += c.fullDigests
    relays.reoffersPassed += c.reoffersPassed
    history.origins += c.history.origins
    history.bytes += c.history.bytes
    history.maxBytes = Math.max(history.maxBytes, c.history.bytes)
    history.forgotten += c.historyForgotten
  }
  const links = { open: 0, queuedBytes: 0, maxQueuedBytes: 0, framesOut: 0, framesIn: 0, yields: 0, throttled: 0, handshakes: 0 }
  for (const node of nodes) {
    links.handshakes += node.counters.links.transport.handshakes
    for (const link of node.links.values()) {
      links.open++
      links.queuedBytes += link.bufferedBytes
      links.maxQueuedBytes = Math.max(links.maxQueuedBytes, link.bufferedBytes)
      links.framesOut += link.counters.framesOut
      links.framesIn += link.counters.framesIn
      links.yields += link.flow.yields
      links.throttled += link.flow.throttled
    }
  }
  const gw = gateway?.mesh?.counters
  const gatewayNode = gw === undefined
    ? undefined
    : { framesIn: gw.framesIn, delivered: gw.delivered, rejected: {}, overBudget: {}, duplicates: gw.duplicates, wantsSent: gw.wantsSent, wantsHeld: gw.wantsHeld }
  if (gw !== undefined && gatewayNode !== undefined) { add(gatewayNode.rejected, gw.rejected); add(gatewayNode.overBudget, gw.overBudget) }
  const bridge = gateway?.bridge?.counters
  const ingest = gateway === undefined ? undefined : {}
  if (ingest !== undefined && gateway !== undefined) add(ingest, gateway.counters.dropped as Partial<Record<string, number>>)
  return {
    outbox,
    relays,
    links,
    history,
    gatewayNode,
    bridge: bridge === undefined ? undefined : { overflow: bridge.overflow, refused: bridge.meshRefused },
    gateway: ingest
  }
}
