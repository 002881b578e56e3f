/* iotmesh dashboard: the fleet table. One row per device, keyed by id, updated in place. */
import { ago, el, shortId, valueText } from './format.js'
import { credentialCell } from './trust.js'

/** Soft hyphens (U+00AD): on a phone the long headers wrap there ("Read-" / "ings"), leaving the device names room. */
const COLUMNS = [
  ['state', ''],
  ['name', 'Device'],
  ['path', 'Path'],
  ['cred', 'Creden\u00adtial'],
  ['lastSeen', 'Last seen'],
  ['readings', 'Read\u00adings'],
  ['gaps', 'Gaps'],
  ['sig', 'Bad sig.'],
  ['latest', 'Latest']
]

/** Recent enough to flag loudly (ms). */
const RECENT_FAILURE_MS = 10 * 60 * 1000

export class FleetTable {
  constructor (root, { onSelect }) {
    this.root = root
    this.onSelect = onSelect
    this.rows = new Map()
    this.selected = undefined
    const table = el('table', 'fleet')
    const head = el('thead')
    const tr = el('tr')
    for (const [key, title] of COLUMNS) tr.append(el('th', `col-${key}`, title))
    head.append(tr)
    this.body = el('tbody')
    table.append(head, this.body)
    this.empty = el('p', 'empty', 'No devices yet. Devices appear here as soon as they publish a status or a reading.')
    root.replaceChildren(table, this.empty)
  }

  /** Renders every device (cloned identities and recent bad signatures first, then by name). `latest` maps id → values of its last reading. */
  render (devices, latest, now = Date.now()) {
    const list = [...devices.values()].sort((a, b) => rank(a, now) - rank(b, now) || label(a).localeCompare(label(b)) || a.id.localeCompare(b.id))
    this.empty.hidden = list.length > 0
    const seen = new Set()
    let previous
    for (const device of list) {
      seen.add(device.id)
      let row = this.rows.get(device.id)
      if (row === undefined) {
        row = this.#createRow(device.id)
        this.rows.set(device.id, row)
      }
      this.#fill(row, device, latest.get(device.id), now)
      const position = previous === undefined ? this.body.firstChild : previous.tr.nextSibling
      if (position !== row.tr) this.body.insertBefore(row.tr, position)
      previous = row
    }
    for (const [id, row] of this.rows) {
      if (!seen.has(id)) {
        row.tr.remove()
        this.rows.delete(id)
      }
    }
  }

  /** Only the "last seen" column moves with time alone. */
  tick (devices, now = Date.now()) {
    for (const [id, row] of this.rows) row.cells.lastSeen.textContent = ago(devices.get(id)?.lastSeen, now)
  }

  select (id) {
    this.selected = id
    for (const [rowId, row] of this.rows) row.tr.classList.toggle('selected', rowId === id)
  }

  #createRow (id) {
    const tr = el('tr')
    tr.dataset.id = id
    tr.tabIndex = 0
    const cells = {}
    for (const [key] of COLUMNS) {
      const td = el('td', `col-${key}`)
      td.dataset.col = key
      cells[key] = td
      tr.append(td)
    }
    cells.name.append(el('span', 'name'), el('span', 'id mono'))
    cells.state.append(el('span', 'dot'))
    tr.addEventListener('click', () => this.onSelect(id))
    tr.addEventListener('keydown', (event) => { if (event.key === 'Enter' || event.key === ' ') this.onSelect(id) })
    return { tr, cells }
  }

  #fill (row, device, values, now) {
    const { tr, cells } = row
    const badSignature = device.signatureFailures > 0
    const recentFailure = badSignature && device.lastSignatureFailure !== undefined && now - device.lastSignatureFailure < RECENT_FAILURE_MS
    const clone = device.clone
    tr.classList.toggle('offline', !device.online)
    tr.classList.toggle('cloned', clone !== undefined)
    tr.classList.toggle('online', device.online)
    tr.classList.toggle('bad-signature', badSignature)
    tr.classList.toggle('recent-failure', recentFailure)
    tr.classList.toggle('selected', this.selected === device.id)
    cells.state.title = device.online ? 'online' : 'offline'
    cells.state.dataset.online = String(device.online)
    const [nameSpan, idSpan] = cells.name.children
    // A device without a name (mesh devices found without DNS-SD) goes by its id.
    nameSpan.textContent = device.name ?? shortId(device.id)
    nameSpan.classList.toggle('unnamed', device.name === undefined)
    nameSpan.title = device.id
    idSpan.textContent = device.name === undefined ? '' : shortId(device.id)
    idSpan.title = device.id
    const badges = [
      device.online ? null : ['badge offline-badge', 'offline'],
      badSignature ? ['badge sig-badge', '⚠ bad signature'] : null,
      // Two boards sign with this device's key (ERR_CLONED_IDENTITY): the first copy of each reading is kept.
      clone === undefined ? null : ['badge clone-badge', '⚠ cloned identity', `${clone.code}: ${clone.copies} second cop${clone.copies === 1 ? 'y' : 'ies'} refused since ${new Date(clone.since).toISOString()}`]
    ].filter(Boolean)
    cells.name.querySelectorAll('.badge').forEach((b) => b.remove())
    for (const [cls, text, title] of badges) {
      const badge = el('span', cls, text)
      if (title !== undefined) badge.title = title
      cells.name.append(badge)
    }
    cells.path.replaceChildren(device.path === undefined ? el('span', 'muted', '—') : el('span', `path path-${device.path}`, device.path))
    // The fleet's trust (gateway/trust.ts): enrolled, expired, revoked, invalid or none; the title says by whom and until when.
    const [credText, credClass, credTitle] = credentialCell(device.credential, now)
    cells.cred.replaceChildren(el('span', credClass, credText))
    cells.cred.title = credTitle
    tr.classList.toggle('revoked', device.credential?.state === 'revoked')
    cells.lastSeen.textContent = ago(device.lastSeen, now)
    cells.lastSeen.title = device.lastSeen === undefined ? '' : new Date(device.lastSeen).toISOString()
    cells.readings.textContent = String(device.readings)
    // Readings that never arrived (gateway/seq-gaps.ts); numbers skipped recently may still come (outbox, catch-up).
    cells.gaps.textContent = String(device.seqGaps)
    cells.gaps.classList.toggle('warn', device.seqGaps > 0)
    cells.gaps.title = `${device.seqGaps} readings never arrived${device.seqPending > 0 ? `; ${device.seqPending} skipped recently may still arrive` : ''} (a restart's skipped numbers are not counted)`
    cells.sig.textContent = String(device.signatureFailures)
    cells.sig.classList.toggle('alert', badSignature)
    cells.latest.textContent = values === undefined ? '' : values.filter((v) => v.v !== undefined || v.vb !== undefined).slice(0, 2).map((v) => `${v.n} ${valueText(v)}`).join(' · ')
  }
}

function label (device) {
  return device.name ?? device.id
}

/** Cloned identities and devices with a recent bad signature first; the rest stay in place (by name) as they come and go. */
function rank (device, now) {
  if (device.clone !== undefined && now - device.clone.last < RECENT_FAILURE_MS) return 0
  return device.signatureFailures > 0 && device.lastSignatureFailure !== undefined && now - device.lastSignatureFailure < RECENT_FAILURE_MS ? 0 : 1
}
