/* iotmesh dashboard: where the topology's nodes go. Pure: no DOM, so tests import it in Node. */

/** A stable number in [0, 1) for an id, so a graph looks the same on every load. */
export function hash (id) {
  let h = 2166136261
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619)
  return (h >>> 0) / 4294967296
}

const TAU = 2 * Math.PI

/**
 * Rings by hop count from the gateway: the gateway in the centre, the nodes it links to on the
 * first ring, their neighbours on the second, and so on (a breadth-first search over mesh links).
 * A device reached only through the broker sits on the first ring (one hop, by MQTT); one linked to
 * nothing the gateway knows goes on an outer ring of its own. On each ring the nodes are spread
 * evenly, in the order of their parents' angles (the circular mean of their neighbours on the ring
 * inside), so links run outwards rather than across. Deterministic: the same topology gives the
 * same picture. Work: O(nodes log nodes + edges).
 *
 * Returns the positions and the rings ({ depth, rx, ry, count, unlinked }: ellipses), for ring guides.
 */
export function ringLayout (nodes, edges, gateway, { width, height, margin = 26 }) {
  const ids = nodes.map((n) => n.id)
  const mesh = new Map(ids.map((id) => [id, []]))
  const viaMqtt = new Set()
  for (const e of edges) {
    if (!mesh.has(e.source) || !mesh.has(e.target)) continue
    if (e.kind === 'mesh') {
      mesh.get(e.source).push(e.target)
      mesh.get(e.target).push(e.source)
    } else {
      viaMqtt.add(e.source === gateway ? e.target : e.source)
    }
  }
  const depth = new Map()
  if (gateway !== undefined && mesh.has(gateway)) {
    depth.set(gateway, 0)
    for (let frontier = [gateway]; frontier.length > 0;) {
      const next = []
      for (const id of frontier) {
        for (const peer of mesh.get(id)) {
          if (depth.has(peer)) continue
          depth.set(peer, depth.get(id) + 1)
          next.push(peer)
        }
      }
      frontier = next
    }
  }
  const meshDepth = Math.max(1, ...depth.values())
  let unlinked = false
  for (const id of ids) {
    if (depth.has(id)) continue
    if (viaMqtt.has(id)) depth.set(id, 1)
    else { depth.set(id, meshDepth + 1); unlinked = true }
  }
  const maxDepth = Math.max(1, ...depth.values())
  const cx = width / 2
  const cy = height / 2
  // Rings are ellipses that fill the drawing (room for labels beside the outermost nodes).
  const outerX = Math.max(10, width / 2 - margin * 2)
  const outerY = Math.max(10, height / 2 - margin)
  const positions = new Map()
  const angles = new Map()
  if (gateway !== undefined && depth.get(gateway) === 0) positions.set(gateway, { x: cx, y: cy })
  const rings = []
  for (let d = 1; d <= maxDepth; d++) {
    const ring = ids.filter((id) => depth.get(id) === d)
    if (ring.length === 0) continue
    const key = new Map(ring.map((id) => {
      const parents = mesh.get(id).filter((p) => depth.get(p) === d - 1 && angles.has(p))
      if (parents.length === 0) return [id, hash(id) * TAU]
      const sin = parents.reduce((a, p) => a + Math.sin(angles.get(p)), 0)
      const cos = parents.reduce((a, p) => a + Math.cos(angles.get(p)), 0)
      return [id, (Math.atan2(sin, cos) + TAU) % TAU]
    }))
    ring.sort((a, b) => key.get(a) - key.get(b) || hash(a) - hash(b))
    const n = ring.length
    // Turn the evenly spaced slots to sit, on average, where the nodes' parents are.
    let sin = 0
    let cos = 0
    ring.forEach((id, i) => { const delta = key.get(id) - (TAU * i) / n; sin += Math.sin(delta); cos += Math.cos(delta) })
    const turn = Math.atan2(sin, cos)
    // The first ring well clear of the gateway and its label; the others evenly out to the edge.
    const share = maxDepth === 1 ? 0.8 : 0.34 + (0.66 * (d - 1)) / (maxDepth - 1)
    const [rx, ry] = [outerX * share, outerY * share]
    ring.forEach((id, i) => {
      const angle = ((TAU * i) / n + turn + TAU) % TAU
      angles.set(id, angle)
      positions.set(id, { x: cx + rx * Math.cos(angle), y: cy + ry * Math.sin(angle) })
    })
    rings.push({ depth: d, rx, ry, count: n, unlinked: unlinked && d === maxDepth })
  }
  return { positions, rings }
}

/** Width of a label in the topology's 10.5 px system font, estimated per character (no DOM to measure in). */
export const CHAR_WIDTH = 6.2
export const LABEL_HEIGHT = 12

/**
 * Where each label goes: below, above, right or left of its node, the first place inside the
 * drawing that covers no other label and no node (greedy, in the order given: the important ones
 * first). A label that fits nowhere gets `undefined` (the page shows it on hover). `labels`:
 * [{ id, x, y, r, text }] (its node's centre and radius); `nodes`: every node [{ x, y, r }].
 * Returns id → { x, y, anchor } (the text's position and its text-anchor) or undefined.
 */
export function placeLabels (labels, nodes, { width, height, charWidth = CHAR_WIDTH, lineHeight = LABEL_HEIGHT }) {
  const LABEL_HEIGHT = lineHeight
  const boxes = nodes.map((n) => ({ left: n.x - n.r - 1, right: n.x + n.r + 1, top: n.y - n.r - 1, bottom: n.y + n.r + 1 }))
  const overlaps = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom
  const placed = new Map()
  for (const n of labels) {
    const w = n.text.length * charWidth
    const candidates = [
      { x: n.x, y: n.y + n.r + LABEL_HEIGHT, anchor: 'middle', box: { left: n.x - w / 2, right: n.x + w / 2, top: n.y + n.r + 1, bottom: n.y + n.r + LABEL_HEIGHT + 2 } },
      { x: n.x, y: n.y - n.r - 4, anchor: 'middle', box: { left: n.x - w / 2, right: n.x + w / 2, top: n.y - n.r - LABEL_HEIGHT - 3, bottom: n.y - n.r - 1 } },
      { x: n.x + n.r + 4, y: n.y + 4, anchor: 'start', box: { left: n.x + n.r + 2, right: n.x + n.r + 5 + w, top: n.y - LABEL_HEIGHT / 2 - 1, bottom: n.y + LABEL_HEIGHT / 2 + 1 } },
      { x: n.x - n.r - 4, y: n.y + 4, anchor: 'end', box: { left: n.x - n.r - 5 - w, right: n.x - n.r - 2, top: n.y - LABEL_HEIGHT / 2 - 1, bottom: n.y + LABEL_HEIGHT / 2 + 1 } }
    ]
    const inside = (b) => b.left >= 0 && b.right <= width && b.top >= 0 && b.bottom <= height
    const spot = candidates.find((c) => inside(c.box) && !boxes.some((b) => overlaps(c.box, b)))
    if (spot === undefined) { placed.set(n.id, undefined); continue }
    boxes.push(spot.box)
    placed.set(n.id, { x: spot.x, y: spot.y, anchor: spot.anchor })
  }
  return placed
}
