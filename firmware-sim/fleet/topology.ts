/**
 * Fixed mesh topologies for a fleet on in-memory links (FleetInit.topology), so that a message
 * has to cross a known number of relays: in a `line` device i links to i − 1; in a `grid` of
 * `width` columns, device i links to its left (i − 1, same row) and upper (i − width)
 * neighbours. Device 0 links to the gateway. Pure: who dials whom, by fleet index, and the hop
 * distances that follow (breadth-first), for the reports.
 */

export type FleetTopology = 'random' | 'line' | 'grid'
export const FLEET_TOPOLOGIES: readonly FleetTopology[] = ['random', 'line', 'grid']

/** The grid's width for `devices` devices: the smallest w with w × w ≥ devices (a square, or nearly). */
export function gridWidth (devices: number): number {
  return Math.max(1, Math.ceil(Math.sqrt(devices)))
}

/** The earlier devices device `index` dials in a line or a grid (the gateway is the caller's: device 0). */
export function topologyPeers (topology: 'line' | 'grid', index: number, devices: number): number[] {
  if (index <= 0 || index >= devices) return []
  if (topology === 'line') return [index - 1]
  const w = gridWidth(devices)
  const peers: number[] = []
  if (index % w !== 0) peers.push(index - 1)
  if (index >= w) peers.push(index - w)
  return peers
}

/** The `host:port` addresses device `index` dials in a line or a grid: its earlier neighbours, and the gateway for device 0. */
export function fixedPeers (topology: 'line' | 'grid', index: number, devices: number, addressOf: (index: number) => string, gateway?: { host: string, port: number }): string[] {
  const peers = index === 0 && gateway !== undefined ? [`${gateway.host}:${gateway.port}`] : []
  return [...peers, ...topologyPeers(topology, index, devices).map(addressOf)]
}

/**
 * Hops from device `from` (or from the gateway: -1) to every device, by index, in a line or a grid
 * (undirected links; the gateway hangs off device 0). Unreachable: Infinity (none in these topologies).
 */
export function topologyHops (topology: 'line' | 'grid', devices: number, from: number): number[] {
  const neighbours = Array.from({ length: devices + 1 }, () => [] as number[]) // slot `devices` is the gateway
  const gateway = devices
  const link = (a: number, b: number): void => { neighbours[a]?.push(b); neighbours[b]?.push(a) }
  if (devices > 0) link(0, gateway)
  for (let i = 1; i < devices; i++) for (const p of topologyPeers(topology, i, devices)) link(i, p)
  const start = from < 0 ? gateway : from
  const hops = new Array<number>(devices + 1).fill(Infinity)
  hops[start] = 0
  const queue = [start]
  for (let k = 0; k < queue.length; k++) {
    const at = queue[k] as number
    for (const n of neighbours[at] ?? []) {
      if (hops[n] !== Infinity) continue
      hops[n] = (hops[at] as number) + 1
      queue.push(n)
    }
  }
  return hops.slice(0, devices)
}
