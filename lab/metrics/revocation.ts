import { percentiles, round, type Percentiles } from './stats.js'

/**
 * The figures of the revocation experiment, from raw observations of one run of one path. Pure.
 *
 * A node "refuses" the revoked device from the moment it holds the revocation: from then on its
 * links, frames and commands are refused with ERR_REVOKED (mesh/routing/handlers/revoke.ts, data.ts,
 * router.ts addLink). In the mesh every node is observed (each subscribes to the device's
 * readings, so each is a place where a frame can be accepted); on the broker path the one node is
 * the broker, which refuses the device when it closes its session (gateway/revocations.ts), and
 * the place frames are accepted is the gateway's ingest (the broker's subscriber).
 */

export type RevocationPath = 'mesh' | 'broker'
export const REVOCATION_PATHS: readonly RevocationPath[] = ['mesh', 'broker']

export interface NodeObservation {
  /** Fleet index; -1 the gateway (or its broker). */
  index: number
  /** Links between the node where the revocation was issued and this one; null when not meaningful (broker). */
  hops: number | null
  /** When it began to refuse the device (wall ms): it took the revocation (mesh), it closed the session (broker); undefined: not within the window. */
  refusedFrom?: number
  /** Every frame of the device it accepted (wall ms, as it accepted them). */
  accepted: readonly number[]
}

export interface PathObservation {
  path: RevocationPath
  /** When the owners' revocation was handed to the gateway (wall ms). */
  issuedAt: number
  /** End of observation (wall ms). */
  endedAt: number
  nodes: readonly NodeObservation[]
  /** When the device was cut off: its last mesh link closed, or its broker session closed; undefined: not within the window. */
  cutAt?: number
  /** The device's attempts refused with ERR_REVOKED: link handshakes (mesh), CONNECTs (broker). */
  refusedConnects: number
  /** Its frames refused with ERR_REVOKED (mesh relays). */
  refusedFrames: number
  /** Readings the device published after the revocation was issued (it goes on as a thief's device would). */
  publishedAfter: number
}

export interface NodeFigures { index: number, hops: number | null, refusalMs: number | null, acceptedAfter: number }

export interface PathSummary {
  path: RevocationPath
  /** Nodes observed, and of them those that refused the device within the window. */
  nodes: number
  refusing: number
  /** Time from the issue to each node's refusal, over the nodes that refused. */
  refusalMs: Percentiles | null
  /** Frames of the device accepted after the revocation was issued, over every node, and the nodes that accepted one. */
  acceptedAfter: number
  nodesAccepting: number
  /** Frames a node accepted after it had begun to refuse the device: 0 unless refusal leaks. */
  acceptedAfterRefusal: number
  /** Issue to the last frame accepted anywhere after it; null when none was. */
  lastAcceptedMs: number | null
  /** Issue to the device's cut-off; null when not within the window. */
  cutMs: number | null
  refusedConnects: number
  refusedFrames: number
  publishedAfter: number
  perNode: NodeFigures[]
}

export function summarizePath (o: PathObservation): PathSummary {
  const since = (t: number): number => round(t - o.issuedAt, 2)
  const perNode = o.nodes.map((n): NodeFigures => ({
    index: n.index,
    hops: n.hops,
    refusalMs: n.refusedFrom === undefined ? null : Math.max(0, since(n.refusedFrom)),
    acceptedAfter: n.accepted.filter((t) => t > o.issuedAt).length
  })).sort((a, b) => a.index - b.index)
  const refusals = perNode.flatMap((n) => n.refusalMs === null ? [] : [n.refusalMs])
  const after = o.nodes.flatMap((n) => n.accepted.filter((t) => t > o.issuedAt))
  const last = after.length === 0 ? null : Math.max(...after)
  return {
    path: o.path,
    nodes: o.nodes.length,
    refusing: refusals.length,
    refusalMs: percentiles(refusals, 2),
    acceptedAfter: after.length,
    nodesAccepting: perNode.filter((n) => n.acceptedAfter > 0).length,
    acceptedAfterRefusal: o.nodes.reduce((a, n) => a + (n.refusedFrom === undefined ? 0 : n.accepted.filter((t) => t > (n.refusedFrom as number)).length), 0),
    lastAcceptedMs: last === null ? null : since(last),
    cutMs: o.cutAt === undefined ? null : Math.max(0, since(o.cutAt)),
    refusedConnects: o.refusedConnects,
    refusedFrames: o.refusedFrames,
    publishedAfter: o.publishedAfter,
    perNode
  }
}
