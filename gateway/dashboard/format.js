/* global document */
/* iotmesh dashboard: small formatting and DOM helpers. No dependencies. */

/** An element with a class and text (never HTML: names come from devices and are untrusted). */
export function el (tag, className, text) {
  const node = document.createElement(tag)
  if (className) node.className = className
  if (text !== undefined) node.textContent = String(text)
  return node
}

const SVG_NS = 'http://www.w3.org/2000/svg'

export function svg (tag, attributes = {}, text) {
  const node = document.createElementNS(SVG_NS, tag)
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, String(value))
  if (text !== undefined) node.textContent = String(text)
  return node
}

/** The first characters of a device id: enough to tell devices apart in a fleet. */
export function shortId (id) {
  return id.length > 10 ? `${id.slice(0, 8)}…` : id
}

export function deviceLabel (device, id) {
  return device?.name ?? shortId(id ?? device?.id ?? '?')
}

/** "4 s ago", "3 min ago", "2 h ago", or "never". */
export function ago (ms, now = Date.now()) {
  if (ms === undefined || ms === null) return 'never'
  const s = Math.max(0, Math.round((now - ms) / 1000))
  if (s < 60) return `${s} s ago`
  const m = Math.round(s / 60)
  if (m < 60) return `${m} min ago`
  const h = Math.round(m / 60)
  if (h < 48) return `${h} h ago`
  return `${Math.round(h / 24)} d ago`
}

export function clockTime (ms) {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' })
}

/** A number with at most 3 significant decimals, as a person reads it. */
export function number (v) {
  if (typeof v !== 'number' || !Number.isFinite(v)) return String(v)
  const abs = Math.abs(v)
  if (abs !== 0 && (abs >= 1e6 || abs < 1e-3)) return v.toExponential(2)
  return String(Math.round(v * 1000) / 1000)
}

/** SenML units (RFC 8428 §12.1) shown the usual way. */
const UNITS = { Cel: '°C', '%RH': '%', '%EL': '%', Pa: 'Pa', hPa: 'hPa', V: 'V', A: 'A', W: 'W', dBm: 'dBm', lx: 'lx', m: 'm', s: 's', '/': '', '%': '%' }

export function unit (u) {
  if (u === undefined) return ''
  return UNITS[u] ?? u
}

/**
 * A value in the unit a person reads: pressure in hPa rather than Pa (the device signs Pa, RFC 8428
 * §12.1; only the page converts). Everything else as signed.
 */
export function displayed (v, u) {
  if (u === 'Pa' && typeof v === 'number') return { v: v / 100, u: 'hPa' }
  return { v, u }
}

export function valueText (value) {
  if (value.v !== undefined) {
    const { v, u } = displayed(value.v, value.u)
    return `${number(v)}${unit(u) ? ` ${unit(u)}` : ''}`
  }
  if (value.vb !== undefined) return String(value.vb)
  if (value.vs !== undefined) return value.vs.length > 24 ? `${value.vs.slice(0, 24)}…` : value.vs
  return '—'
}

/** The part of a resolved SenML name after the device's base name ("<id>:temp" → "temp"). */
export function sensorName (name, id) {
  return name.startsWith(`${id}:`) ? name.slice(id.length + 1) : name
}

/** A sequence number grouped in threes (1 796 497 155 660 008), so a person can compare two. */
export function seqText (seq) {
  return typeof seq === 'number' ? seq.toLocaleString('en-US').replaceAll(',', '\u2009') : '—'
}
