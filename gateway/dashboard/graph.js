/* iotmesh dashboard: the mesh topology as an SVG graph, in rings by hop count from the gateway (graph-layout.js). */
import { deviceLabel, el, svg } from './format.js'
import { placeLabels, ringLayout } from './graph-layout.js'

/** Above this many nodes the graph is "large": smaller nodes, and labels only where they matter (and on hover or focus). */
export const LABEL_ALL_UP_TO = 24

/**
 * The drawing's size for `n` nodes in a panel `available` px wide: a small graph is drawn at the
 * panel's width (one unit a pixel: labels keep their size on a phone); a large one grows with the
 * fleet, so a ring of many nodes keeps room between them.
 */
function sizeFor (n, available) {
  if (n <= LABEL_ALL_UP_TO) {
    const width = Math.round(Math.min(540, Math.max(300, available || 540)))
    return { width, height: Math.round(Math.max(300, width * 0.74)) }
  }
  // Not much wider than the panel shows it (about 540 px on a desktop): nodes and labels stay big enough to read.
  const width = Math.min(760, Math.round(540 + 30 * Math.sqrt(n - LABEL_ALL_UP_TO)))
  return { width, height: Math.round(width * 0.8) }
}

export class TopologyView {
  constructor (root, { onSelect }) {
    this.root = root
    this.onSelect = onSelect
    this.topology = { nodes: [], edges: [] }
    this.layout = { positions: new Map(), rings: [] }
    this.size = sizeFor(0)
  }

  update (topology) {
    this.topology = topology
    this.#layout()
  }

  #layout () {
    const { nodes, edges } = this.topology
    const gateway = nodes.find((n) => n.kind === 'gateway')?.id ?? this.topology.gateway
    this.size = sizeFor(nodes.length, this.root.clientWidth)
    this.layout = ringLayout(nodes, edges, gateway, this.size)
  }

  /** Redraws with the devices' current state (online, bad signatures) and the selection. */
  render (devices, selected) {
    const { nodes, edges } = this.topology
    if (nodes.length <= 1 && edges.length === 0) {
      this.root.replaceChildren(el('p', 'empty', 'No mesh links known yet. Mesh nodes announce their neighbours every 15 s.'))
      return
    }
    const fits = sizeFor(nodes.length, this.root.clientWidth)
    if (fits.width !== this.size.width || fits.height !== this.size.height) this.#layout() // the panel changed width
    const { width, height } = this.size
    const large = nodes.length > LABEL_ALL_UP_TO
    const positions = this.layout.positions
    const meshLinked = new Set(edges.filter((e) => e.kind === 'mesh').flatMap((e) => [e.source, e.target]))
    const root = svg('svg', { class: `topology${large ? ' large' : ''}`, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `mesh topology: ${nodes.length} nodes, ${edges.length} links, in rings by hops from the gateway`, 'data-nodes': nodes.length })
    const guides = svg('g', { class: 'rings' })
    let labelled = -Infinity
    for (const [i, ring] of this.layout.rings.entries()) {
      guides.append(svg('ellipse', { class: 'ring', cx: width / 2, cy: height / 2, rx: ring.rx.toFixed(1), ry: ring.ry.toFixed(1) }))
      // A ring's name where there is room for it (the last ring always): no label over another.
      const last = i === this.layout.rings.length - 1
      const next = this.layout.rings[i + 1]?.ry ?? Infinity
      if (!last && (ring.ry - labelled < 14 || next - ring.ry < 14)) continue
      labelled = ring.ry
      const text = ring.unlinked ? 'not linked' : `${ring.depth} hop${ring.depth === 1 ? '' : 's'}`
      guides.append(svg('text', { class: 'ring-label', x: width / 2 + 4, y: height / 2 - ring.ry - 3 }, text))
    }
    const edgeLayer = svg('g', { class: 'edges' })
    const hot = svg('g', { class: 'edges hot' })
    for (const edge of edges) {
      const a = positions.get(edge.source)
      const b = positions.get(edge.target)
      if (a === undefined || b === undefined) continue
      const device = edge.source === this.topology.gateway ? edge.target : edge.source
      // Hybrid devices would each draw a line to the gateway across the mesh: their MQTT connection
      // shows as the node's outline instead (class via-mqtt); the line is drawn for broker-only devices and the selected one.
      if (edge.kind === 'mqtt' && meshLinked.has(device) && device !== selected) continue
      const touches = selected !== undefined && (edge.source === selected || edge.target === selected)
      const line = svg('line', { class: `edge edge-${edge.kind}${touches ? ' edge-selected' : ''}`, x1: a.x.toFixed(1), y1: a.y.toFixed(1), x2: b.x.toFixed(1), y2: b.y.toFixed(1), 'data-source': edge.source, 'data-target': edge.target })
      ;(touches ? hot : edgeLayer).append(line)
    }
    const viaMqtt = new Set(edges.filter((e) => e.kind === 'mqtt').flatMap((e) => [e.source, e.target]))
    const radius = (node) => node.kind === 'gateway' ? (large ? 12 : 13) : (large ? 6 : 8)
    const nameOf = (node) => node.kind === 'gateway' ? 'gateway' : deviceLabel(devices.get(node.id), node.id)
    const trouble = (id) => (devices.get(id)?.signatureFailures ?? 0) > 0 || devices.get(id)?.clone !== undefined
    // Labels where they cover nothing: the gateway's, the selected node's and those in trouble first;
    // in a large graph only those (the others show on hover or focus).
    const important = (node) => node.kind === 'gateway' || node.id === selected || trouble(node.id)
    const drawn = nodes.filter((n) => positions.has(n.id)).map((n) => ({ id: n.id, ...positions.get(n.id), r: radius(n), text: nameOf(n), first: important(n) }))
    const labels = placeLabels(drawn.filter((n) => !large || n.first).sort((a, b) => Number(b.first) - Number(a.first)), drawn, large ? { width, height, charWidth: 7.7, lineHeight: 15 } : { width, height })
    const nodeLayer = svg('g', { class: 'nodes' })
    for (const node of nodes) {
      const p = positions.get(node.id)
      if (p === undefined) continue
      const device = devices.get(node.id)
      const classes = ['node', `node-${node.kind}`]
      if (node.kind !== 'gateway') classes.push(device?.online === false ? 'offline' : 'online')
      if ((device?.signatureFailures ?? 0) > 0) classes.push('bad-signature')
      if (device?.clone !== undefined) classes.push('cloned')
      if (node.kind === 'mesh' && viaMqtt.has(node.id)) classes.push('via-mqtt')
      if (node.id === selected) classes.push('selected')
      const g = svg('g', { class: classes.join(' '), transform: `translate(${p.x.toFixed(1)},${p.y.toFixed(1)})`, 'data-id': node.id, tabindex: 0 })
      const r = radius(node)
      g.append(svg('circle', { r }))
      if (node.kind === 'gateway') g.append(svg('text', { class: 'glyph', y: 4, 'text-anchor': 'middle' }, 'GW'))
      const name = nameOf(node)
      const spot = labels.get(node.id)
      // A label with no free place is drawn below the node, shown on hover or focus only (class spare).
      g.append(svg('text', spot === undefined
        ? { class: 'label spare', y: r + 12, 'text-anchor': 'middle' }
        : { class: 'label', x: (spot.x - p.x).toFixed(1), y: (spot.y - p.y).toFixed(1), 'text-anchor': spot.anchor }, name))
      const title = svg('title', {}, `${name}\n${node.id}\n${node.kind}${device === undefined ? '' : device.online ? ', online' : ', offline'}`)
      g.append(title)
      if (node.kind !== 'gateway') {
        g.addEventListener('click', () => this.onSelect(node.id))
        g.addEventListener('keydown', (event) => { if (event.key === 'Enter' || event.key === ' ') this.onSelect(node.id) })
      }
      nodeLayer.append(g)
    }
    // The selected node last, so its label is drawn over its neighbours.
    const chosen = nodeLayer.querySelector('.node.selected')
    if (chosen !== null) nodeLayer.append(chosen)
    root.append(guides, edgeLayer, hot, nodeLayer)
    this.root.replaceChildren(root)
  }
}
