// Probe (helper lab): a hybrid fleet through a broker outage; which devices' readings were more than 3 s late, and what their paths and links did.
// From the repository root, after npm run build: nice -n 10 unshare -rn sh -c "ip link set lo up; node docs/experiments/failover-hybrid-default/probe.mjs"
// Environment: N (devices, 20), DOWN (outage s, 30), MODE (hybrid), SEED (1), T (tcp|memory), ROT (device rotation ms; 0: none).
import { Fleet } from '../../../dist/firmware-sim/index.js'
const N = Number(process.env.N ?? 20), DOWN = Number(process.env.DOWN ?? 30), MODE = process.env.MODE ?? 'hybrid'
const now = () => performance.timeOrigin + performance.now()
const fleet = new Fleet({ devices: N, mode: MODE, seed: Number(process.env.SEED ?? 1), interval: 1000, transport: process.env.T ?? 'tcp', ...(process.env.ROT ? { rotateInterval: Number(process.env.ROT) } : {}) }, {})
const pub = new Map(), arr = new Map(), ev = []
let t0 = 0
const rel = (t) => ((t - t0) / 1000).toFixed(2)
fleet.on('reading', (r) => pub.set(`${r.origin}/${r.seq}`, { dev: r.device, at: r.time }))
fleet.on('delivered', (d) => { const k = `${d.origin}/${d.seq}`; if (!arr.has(k)) arr.set(k, { at: d.receivedAt, path: d.path }) })
fleet.on('fault', (f) => ev.push([now(), 'fleet', f.kind]))
await fleet.start()
t0 = now()
fleet.devices.forEach((sim, i) => {
  const d = sim.device
  d.on('path:up', (e) => ev.push([now(), i, `${e.path} up`]))
  d.on('path:down', (e) => ev.push([now(), i, `${e.path} down ${e.reason ?? ''}`]))
  d.node?.on('link:open', () => ev.push([now(), i, 'link open']))
  d.node?.on('link:close', (p) => ev.push([now(), i, `link close ${p === fleet.gateway?.mesh?.id ? 'to the GATEWAY' : 'to a device'}`]))
  const watch = (p) => { const l = d.node.links.get(p); l?.once?.('close', (info) => ev.push([now(), i, `  closed ${p === fleet.gateway?.mesh?.id ? 'GW' : 'dev'} initiator=${l.initiator} ${JSON.stringify(info)}`])) }
  for (const p of d.node?.links.keys() ?? []) watch(p)
  d.node?.on('link:open', (p) => { const l = d.node.links.get(p); l?.once?.('close', (info) => ev.push([now(), i, `  closed ${p === fleet.gateway?.mesh?.id ? 'GW' : 'dev'} initiator=${l.initiator} ${JSON.stringify(info)}`])) })
})
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
await sleep(10_000)
const downAt = now(); await fleet.stopBroker()
await sleep(DOWN * 1000)
const upAt = now(); await fleet.startBroker()
await sleep(8000)
const late = new Map()
let inOutage = 0
for (const [k, p] of pub) {
  if (p.at < downAt || p.at > upAt) continue
  inOutage++
  const a = arr.get(k)
  const lat = a === undefined ? Infinity : a.at - p.at
  if (lat > 3000) { const l = late.get(p.dev) ?? []; l.push(`${rel(p.at)}→${a === undefined ? 'never' : rel(a.at) + ' ' + a.path}`); late.set(p.dev, l) }
}
console.log(`mode ${MODE} N ${N}: outage ${rel(downAt)}–${rel(upAt)} s; ${inOutage} readings published in it; late (>3 s) by device:`)
for (const [dev, l] of late) console.log(`  device ${dev}: ${l.length} late: ${l.join(', ')}`)
for (const dev of late.keys()) for (const e of ev) if (e[1] === dev) console.log(`   ${rel(e[0])} dev ${dev} ${e[2]}`)
for (const e of ev) if (e[1] === 'fleet') console.log(`   ${rel(e[0])} ${e[2]}`)
await fleet.stop()
process.exit(0)
