/* global document, window, EventSource, requestAnimationFrame */
/*
 * iotmesh dashboard. Reads the gateway's live stream (GET /api/events, Server-Sent Events) and
 * draws the fleet table, the charts of the selected device and its actuators' controls, the mesh
 * topology and an event log.
 * No build step, no dependencies: the files in this folder are what the browser runs.
 */
import { FleetTable } from './table.js'
import { COMPARE_MAX, MAX_POINTS, SeriesStore, compareOrder, latestCatalog, renderCharts, renderCompare } from './chart.js'
import { DEFAULT_RANGE, RANGES } from './chart-scale.js'
import { TopologyView } from './graph.js'
import { ActuatorPanel, sendCommand } from './controls.js'
import { ago, clockTime, deviceLabel, el, seqText, shortId } from './format.js'
import { TrustPanel, credentialFact } from './trust.js'

const LINKS_TOPIC = 'mesh/links'
const MAX_LOG = 200

const state = {
  devices: new Map(),
  latest: new Map(),
  series: new SeriesStore(),
  summary: undefined,
  selected: undefined,
  /** The charts' time range, seconds (Infinity: all kept). */
  range: DEFAULT_RANGE,
  /** The sensor the comparison chart shows across devices (undefined: the first one known). */
  compareSensor: undefined,
  /** True once the person picked the sensor (else the one most devices report is shown). */
  compareChosen: false,
  /** Device ids whose history for the current range was fetched (device → range). */
  fetched: new Map(),
  /** Receive times of recent readings (ms), for the readings-per-second figure. */
  recent: [],
  connected: false,
  lastEvent: undefined
}

const $ = (id) => document.getElementById(id)
const table = new FleetTable($('fleet'), { onSelect: select })
const topology = new TopologyView($('topology'), { onSelect: select })
const actuators = new ActuatorPanel($('actuators'), { send: sendCommand })
const log = $('log')
const trust = new TrustPanel($('trust'), { nameOf: (id) => state.devices.get(id)?.name })

let frame = 0
/** Coalesces redraws into one per animation frame, however many events arrive. */
function redraw () {
  if (frame !== 0) return
  frame = requestAnimationFrame(() => {
    frame = 0
    const now = Date.now()
    table.render(state.devices, state.latest, now)
    renderCharts($('charts'), state.series, state.selected, { now, range: state.range })
    renderCompareChart(now)
    topology.render(state.devices, state.selected)
    renderHeader(now)
    renderDetail()
    actuators.render(state.devices.get(state.selected), { commands: state.summary?.commands, gatewayId: state.summary?.id })
  })
}

function renderHeader (now) {
  const devices = [...state.devices.values()]
  const online = devices.filter((d) => d.online).length
  const failing = devices.filter((d) => d.signatureFailures > 0).length
  state.recent = state.recent.filter((t) => now - t < 10_000)
  const s = state.summary
  $('stat-devices').textContent = `${online} / ${devices.length}`
  $('stat-rate').textContent = (state.recent.length / 10).toFixed(1)
  $('stat-sig').textContent = String(failing)
  $('stat-sig').parentElement.classList.toggle('alert', failing > 0)
  $('stat-mqtt').textContent = s === undefined ? '—' : String(s.mqttClients)
  $('stat-peers').textContent = s?.mesh === undefined ? 'off' : String(s.mesh.peers)
  // A second copy of a hybrid device's reading is de-duplication, not a refusal: not counted here.
  const dropped = s === undefined ? 0 : Object.entries(s.counters.dropped).filter(([reason]) => reason !== 'duplicate').reduce((a, [, n]) => a + n, 0)
  $('stat-drops').textContent = String(dropped)
  $('fleet-name').textContent = s?.fleet ?? '…'
  $('gateway-id').textContent = s?.mesh === undefined ? `${s?.mode ?? ''} broker, no mesh` : `mesh id ${shortId(s.mesh.id)}`
  $('gateway-id').title = s?.mesh?.id ?? ''
}

function renderDetail () {
  const root = $('detail')
  const device = state.devices.get(state.selected)
  if (device === undefined) {
    root.replaceChildren()
    $('chart-title').textContent = 'Recent readings'
    return
  }
  $('chart-title').textContent = `Recent readings — ${deviceLabel(device)}`
  const drops = Object.entries(device.drops).filter(([reason]) => reason !== 'duplicate').map(([reason, n]) => `${reason} ${n}`).join(', ') || 'none'
  const facts = [
    ['id', device.id],
    ['state', device.online ? 'online' : 'offline'],
    ['path', device.path ?? '—'],
    ['last seq', seqText(device.lastSeq)],
    ['restarts', device.restarts],
    // Owner-signed configuration (firmware-sim/device/signed-config.ts): the version applied and the last refusal with its reason.
    ['credential', credentialFact(device.credential)],
    ['config', device.config === undefined ? '—' : `v${device.config.version}${device.config.refused === undefined ? '' : `; refused v${device.config.refused.version}: ${device.config.refused.reason}`}`],
    ['drops', drops],
    // A rotated key (gateway/devices.ts DeviceInfo.keys): every key the device had, oldest first, the retired ones with their date.
    ...(device.keys === undefined ? [] : [['keys', device.keys.map((k) => k.retiredAt === undefined ? shortId(k.id) : `${shortId(k.id)} (until ${new Date(k.retiredAt * 1000).toISOString().slice(0, 10)})`).join(' → ')]])
  ]
  const dl = el('dl', 'facts')
  for (const [k, v] of facts) dl.append(el('dt', '', k), el('dd', k === 'id' ? 'mono' : '', v))
  root.replaceChildren(dl)
}

async function select (id) {
  state.selected = id
  table.select(id)
  redraw()
  await fetchHistory(id)
}

/** The readings of `id` in the chosen range (the gateway's store when it has one), once per device and range. */
async function fetchHistory (id) {
  if (state.fetched.get(id) === state.range) return
  state.fetched.set(id, state.range)
  const since = Number.isFinite(state.range) ? `&since=${Math.floor(Date.now() / 1000 - state.range)}` : ''
  try {
    const response = await fetch(`/api/devices/${encodeURIComponent(id)}/readings?limit=${MAX_POINTS}${since}`)
    if (!response.ok) return
    const body = await response.json()
    for (const r of body.readings) if (r.topic !== LINKS_TOPIC) state.series.add(id, r.values)
    redraw()
  } catch {
    // The live stream keeps the charts going; history is a nicety.
  }
}

/** The range buttons: 5 min, 1 h, all. */
function renderRanges () {
  const root = $('ranges')
  root.replaceChildren(...RANGES.map(([label, seconds]) => {
    const button = el('button', seconds === state.range ? 'range selected' : 'range', label)
    button.type = 'button'
    button.dataset.range = String(seconds)
    button.setAttribute('aria-pressed', String(seconds === state.range))
    button.addEventListener('click', () => {
      state.range = seconds
      renderRanges()
      if (state.selected !== undefined) fetchHistory(state.selected)
      redraw()
    })
    return button
  }))
}

/** Sensor name → devices reporting it: from the latest readings and the series the page holds. */
function catalog () {
  return state.series.catalog(latestCatalog(state.latest))
}

/** The devices with the comparison's sensor, the selected one first (all, drawn or not). */
function compareIds (known = catalog()) {
  const sensor = state.compareSensor
  return sensor === undefined ? [] : compareOrder(known.get(sensor) ?? [], state.devices, state.selected)
}

function renderCompareChart (now) {
  const known = catalog()
  const names = [...known].map(([n, ids]) => [n, ids.size]).sort(([a], [b]) => a.localeCompare(b))
  const pick = $('compare-sensor')
  if (!state.compareChosen || !names.some(([n]) => n === state.compareSensor)) {
    state.compareSensor = [...names].sort(([a, x], [b, y]) => y - x || a.localeCompare(b))[0]?.[0]
  }
  const options = names.map(([n, count]) => `${n}=${count}`).join('|')
  if (pick.dataset.options !== options) {
    pick.dataset.options = options
    pick.replaceChildren(...names.map(([n, count]) => {
      const option = el('option', '', `${n} (${count} device${count === 1 ? '' : 's'})`)
      option.value = n
      return option
    }))
  }
  pick.value = state.compareSensor ?? ''
  const ids = compareIds(known)
  // The drawn devices' readings in the range (once per device and range; the live stream adds the rest).
  for (const id of ids.slice(0, COMPARE_MAX)) fetchHistory(id)
  renderCompare($('compare'), state.series, { sensor: state.compareSensor, ids, devices: state.devices, now, range: state.range })
}

function addLog (entry) {
  const device = entry.id === undefined ? undefined : state.devices.get(entry.id)
  const li = el('li', `log-${entry.kind} log-${entry.what}`)
  li.append(el('time', '', clockTime(entry.at)))
  li.append(el('span', 'who', entry.id === undefined ? '—' : deviceLabel(device, entry.id)))
  const text = entry.kind === 'status' ? `status ${entry.what}` : `${entry.what.replaceAll('_', ' ')}${entry.path ? ` (${entry.path})` : ''}`
  li.append(el('span', 'what', text))
  if (entry.message) li.title = entry.message
  log.prepend(li)
  while (log.children.length > MAX_LOG) log.lastElementChild.remove()
  $('log-empty').hidden = true
}

$('compare-sensor').addEventListener('change', (event) => {
  state.compareSensor = event.target.value
  state.compareChosen = true
  redraw()
})
renderRanges()

function connect () {
  const source = new EventSource('/api/events')
  /** Every named event also stamps the time of the last update. */
  const events = {
    addEventListener (name, handler) {
      source.addEventListener(name, (event) => {
        if (name !== 'open' && name !== 'error') state.lastEvent = Date.now()
        handler(event)
      })
    }
  }
  const indicator = $('connection')
  events.addEventListener('open', () => {
    state.connected = true
    indicator.className = 'connection live'
    indicator.textContent = 'live'
  })
  events.addEventListener('error', () => {
    state.connected = false
    indicator.className = 'connection lost'
    indicator.textContent = 'reconnecting…'
  })
  events.addEventListener('evicted', (event) => {
    // The gateway closed this view to make room for a newer one (ERR_SSE_EVICTED): do not reconnect
    // by itself, or two tabs past the cap would evict each other forever.
    source.close()
    state.connected = false
    indicator.className = 'connection lost'
    indicator.textContent = 'closed: too many live views (reload)'
    indicator.title = JSON.parse(event.data).message ?? ''
  })
  events.addEventListener('hello', (event) => {
    const hello = JSON.parse(event.data)
    state.fetched.clear() // a reconnect: fetch the history again, it fills what the stream missed
    state.summary = hello.summary
    trust.refresh(hello.summary)
    actuators.setKinds(hello.actuators)
    state.devices = new Map(hello.devices.map((d) => [d.id, d]))
    state.latest = new Map(Object.entries(hello.latest ?? {}))
    topology.update(hello.topology)
    if (state.selected === undefined) {
      const first = [...state.devices.values()].filter((d) => d.readings > 0).sort((a, b) => (a.name ?? a.id).localeCompare(b.name ?? b.id))[0]
      if (first !== undefined) select(first.id)
    } else {
      select(state.selected)
    }
    redraw()
  })
  events.addEventListener('readings', (event) => {
    const { readings } = JSON.parse(event.data)
    const now = Date.now()
    for (const r of readings) {
      if (r.topic === LINKS_TOPIC) continue
      state.series.add(r.id, r.values)
      state.latest.set(r.id, r.values)
      state.recent.push(now)
    }
    if (state.selected === undefined && readings.length > 0) select(readings[0].id)
    redraw()
  })
  events.addEventListener('devices', (event) => {
    for (const d of JSON.parse(event.data).devices) {
      state.devices.set(d.id, d)
      // A device that rotated its key is one row, under its current key: the rows of its old keys go.
      for (const k of d.keys ?? []) {
        if (k.id === d.id || !state.devices.delete(k.id)) continue
        if (state.selected === k.id) select(d.id)
      }
    }
    redraw()
  })
  events.addEventListener('topology', (event) => {
    topology.update(JSON.parse(event.data))
    redraw()
  })
  events.addEventListener('log', (event) => {
    for (const entry of JSON.parse(event.data).entries) addLog(entry)
  })
  events.addEventListener('summary', (event) => {
    state.summary = JSON.parse(event.data)
    trust.refresh(state.summary)
    redraw()
  })
}

// "Last seen" and the rate move with time alone.
window.setInterval(() => {
  const now = Date.now()
  table.tick(state.devices, now)
  renderHeader(now)
  $('updated').textContent = state.lastEvent === undefined ? '' : `last update ${ago(state.lastEvent, now)}`
}, 1000)

connect()
