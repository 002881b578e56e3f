/* iotmesh dashboard: the mesh topology as an SVG graph, laid out by a small force simulation. */
import { deviceLabel, el, svg } from './format.js'

const WIDTH = 520
const HEIGHT = 360

/** A stable starting angle for an id, so a graph looks the same on every load. */
function hash (id) {
  let h = 2166136261
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619)
  return (h >>> 0) / 4294967296
}

export class TopologyView {
  constructor (root, { onSelect }) {
    this.root = root
    this.onSelect = onSelect
    /** id → { x, y }: positions survive updates, so the graph moves only as much as it changed. */
    this.positions = new Map()
    this.topology = { nodes: [], edges: [] }
  }

  update (topology) {
    this.topology = topology
    this.#layout()
  }

  /** Redraws with the devices' current state (online, bad signatures) and the selection. */
  render (devices, selected) {
    const { nodes, edges } = this.topology
    if (nodes.length <= 1 && edges.length === 0) {
      this.root.replaceChildren(el('p', 'empty', 'No mesh links known yet. Mesh nodes announce their neighbours every 15 s.'))
      return
    }
    const root = svg('svg', { class: 'topology', viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', 'aria-label': `mesh topology: ${nodes.length} nodes, ${edges.length} links` })
    const edgeLayer = svg('g', { class: 'edges' })
    for (const edge of edges) {
      const a = this.positions.get(edge.source)
      const b = this.positions.get(edge.target)
      if (a === undefined || b === undefined) continue
      edgeLayer.append(svg('line', { class: `edge edge-${edge.kind}`, x1: a.x, y1: a.y, x2: b.x, y2: b.y, 'data-source': edge.source, 'data-target': edge.target }))
    }
    const nodeLayer = svg('g', { class: 'nodes' })
    for (const node of nodes) {
      const p = this.positions.get(node.id)
      if (p === undefined) continue
      const device = devices.get(node.id)
      const classes = ['node', `node-${node.kind}`]
      if (node.kind !== 'gateway') classes.push(device?.online === false ? 'offline' : 'online')
      if ((device?.signatureFailures ?? 0) > 0) classes.push('bad-signature')
      if (device?.clone !== undefined) classes.push('cloned')
      if (node.id === selected) classes.push('selected')
      const g = svg('g', { class: classes.join(' '), transform: `translate(${p.x.toFixed(1)},${p.y.toFixed(1)})`, 'data-id': node.id, tabindex: 0 })
      const r = node.kind === 'gateway' ? 13 : 9
      g.append(svg('circle', { r }))
      if (node.kind === 'gateway') g.append(svg('text', { class: 'glyph', y: 4, 'text-anchor': 'middle' }, 'GW'))
      const name = node.kind === 'gateway' ? 'gateway' : deviceLabel(device, node.id)
      g.append(svg('text', { class: 'label', y: r + 13, 'text-anchor': 'middle' }, name))
      const title = svg('title', {}, `${name}\n${node.id}\n${node.kind}${device === undefined ? '' : device.online ? ', online' : ', offline'}`)
      g.append(title)
      if (node.kind !== 'gateway') g.addEventListener('click', () => this.onSelect(node.id))
      nodeLayer.append(g)
    }
    root.append(edgeLayer, nodeLayer)
    this.root.replaceChildren(root)
  }

  /** Fruchterman–Reingold (1991) with a fixed number of cooling steps; the gateway stays at the centre. */
  #layout () {
    const { nodes, edges } = this.topology
    const ids = nodes.map((n) => n.id)
    const gateway = nodes.find((n) => n.kind === 'gateway')?.id
    for (const id of [...this.positions.keys()]) if (!ids.includes(id)) this.positions.delete(id)
    for (const id of ids) {
      if (this.positions.has(id)) continue
      const angle = hash(id) * 2 * Math.PI
      const radius = id === gateway ? 0 : Math.min(WIDTH, HEIGHT) * 0.35
      this.positions.set(id, { x: WIDTH / 2 + radius * Math.cos(angle), y: HEIGHT / 2 + radius * Math.sin(angle) })
    }
    const k = Math.sqrt((WIDTH * HEIGHT) / Math.max(1, ids.length)) * 0.6
    let temperature = WIDTH / 8
    for (let step = 0; step < 120; step++) {
      const shift = new Map(ids.map((id) => [id, { x: 0, y: 0 }]))
      for (let i = 0; i < ids.length; i++) {
        for (let j = i + 1; j < ids.length; j++) {
          const a = this.positions.get(ids[i])
          const b = this.positions.get(ids[j])
          let dx = a.x - b.x
          let dy = a.y - b.y
          let d = Math.hypot(dx, dy)
          if (d < 0.01) { dx = 0.01 * (i - j); dy = 0.01; d = Math.hypot(dx, dy) }
          const force = (k * k) / d
          const sa = shift.get(ids[i])
          const sb = shift.get(ids[j])
          sa.x += (dx / d) * force; sa.y += (dy / d) * force
          sb.x -= (dx / d) * force; sb.y -= (dy / d) * force
        }
      }
      for (const edge of edges) {
        const a = this.positions.get(edge.source)
        const b = this.positions.get(edge.target)
        if (a === undefined || b === undefined) continue
        const dx = a.x - b.x
        const dy = a.y - b.y
        const d = Math.max(0.01, Math.hypot(dx, dy))
        const force = (d * d) / k
        const sa = shift.get(edge.source)
        const sb = shift.get(edge.target)
        sa.x -= (dx / d) * force; sa.y -= (dy / d) * force
        sb.x += (dx / d) * force; sb.y += (dy / d) * force
      }
      for (const id of ids) {
        const p = this.positions.get(id)
        if (id === gateway) { p.x = WIDTH / 2; p.y = HEIGHT / 2; continue }
        const s = shift.get(id)
        const d = Math.max(0.01, Math.hypot(s.x, s.y))
        p.x = Math.min(WIDTH - 30, Math.max(30, p.x + (s.x / d) * Math.min(d, temperature)))
        p.y = Math.min(HEIGHT - 28, Math.max(18, p.y + (s.y / d) * Math.min(d, temperature)))
      }
      temperature *= 0.96
    }
  }
}
