/* global document */
/*
 * iotmesh dashboard: the selected device's actuators, each with its control (a toggle for on/off,
 * a slider for a level or a set point) and the last command's verified result. A control sends
 * POST /api/devices/:id/commands (the gateway signs the command with its own key; the device takes
 * it only when its --commanders file allows the gateway's id), and shows what the device answered:
 * "ok", its refusal code, or ERR_TIMEOUT. The state shown is what the device's readings report
 * (shared/actuators.ts), never what was asked: a refused command changes nothing on the page.
 *
 * Elements are kept per device and actuator and updated in place, so a redraw never takes a
 * slider from under the pointer.
 */
import { el } from './format.js'

export class ActuatorPanel {
  /** `kinds`: the actuator table from the gateway's hello (shared/actuators.ts ACTUATOR_KINDS). */
  constructor (root, { send }) {
    this.root = root
    this.send = send
    this.kinds = []
    this.deviceId = undefined
    this.rows = new Map()
  }

  setKinds (kinds) {
    this.kinds = Array.isArray(kinds) ? kinds : []
  }

  /**
   * Draws the actuators of `device` (undefined: none selected). `access`: { commands: bool, gatewayId }
   * from the gateway's summary.
   */
  render (device, access) {
    const states = device?.actuators ?? {}
    const names = Object.keys(states).filter((n) => this.kinds.some((k) => k.name === n)).sort()
    if (device === undefined || names.length === 0) {
      this.root.replaceChildren()
      this.rows.clear()
      this.deviceId = undefined
      return
    }
    if (device.id !== this.deviceId) {
      this.rows.clear()
      this.deviceId = device.id
      const heading = el('h3', 'actuators-title', 'Actuators')
      this.note = el('p', 'actuators-note muted')
      this.list = el('div', 'actuators')
      this.root.replaceChildren(heading, this.list, this.note)
    }
    const allowed = access.commands === true
    this.note.textContent = allowed
      ? `Commands are signed by this gateway (${access.gatewayId ?? '?'}); the device takes them only when its --commanders file allows that id.`
      : 'This gateway takes no commands over HTTP (it serves without an access token beyond loopback): the controls are off.'
    for (const name of names) {
      let row = this.rows.get(name)
      if (row === undefined) {
        row = this.#createRow(device.id, this.kinds.find((k) => k.name === name))
        this.rows.set(name, row)
        this.list.append(row.root)
      }
      this.#fill(row, states[name], allowed)
    }
    for (const [name, row] of this.rows) {
      if (!names.includes(name)) {
        row.root.remove()
        this.rows.delete(name)
      }
    }
  }

  #createRow (deviceId, kind) {
    const root = el('div', 'actuator')
    root.dataset.actuator = kind.name
    root.append(el('span', 'actuator-name', kind.name))
    const inputs = []
    const row = { root, kind, inputs, pending: false, result: el('span', 'actuator-result muted') }
    for (const control of kind.controls) {
      if (control.type === 'boolean') {
        const button = el('button', 'toggle')
        button.type = 'button'
        button.dataset.record = control.record
        button.addEventListener('click', () => {
          const on = button.getAttribute('aria-pressed') !== 'true'
          void this.#command(deviceId, row, { [control.arg]: on })
        })
        inputs.push({ control, node: button })
        root.append(button)
      } else {
        const label = el('label', 'level')
        const input = el('input')
        input.type = 'range'
        input.min = String(control.min ?? 0)
        input.max = String(control.max ?? 100)
        input.step = control.unit === 'Cel' ? '0.5' : '1'
        input.dataset.record = control.record
        const value = el('output', 'level-value')
        input.addEventListener('input', () => { value.textContent = unitText(Number(input.value), control.unit) })
        input.addEventListener('change', () => { void this.#command(deviceId, row, { [control.arg]: Number(input.value) }) })
        label.append(el('span', 'muted', control.arg), input, value)
        inputs.push({ control, node: input, output: value })
        root.append(label)
      }
    }
    root.append(row.result)
    return row
  }

  #fill (row, state, allowed) {
    for (const { control, node, output } of row.inputs) {
      const value = state[control.record]
      node.disabled = !allowed || row.pending
      if (!allowed) node.title = 'this gateway takes no commands over HTTP'
      if (control.type === 'boolean') {
        node.setAttribute('aria-pressed', String(value === true))
        node.textContent = value === undefined ? '—' : value ? 'on' : 'off'
        node.classList.toggle('on', value === true)
      } else if (value !== undefined && document.activeElement !== node) {
        node.value = String(value)
        output.textContent = unitText(value, control.unit)
      }
    }
  }

  async #command (deviceId, row, args) {
    if (row.pending) return
    row.pending = true
    for (const { node } of row.inputs) node.disabled = true
    row.result.className = 'actuator-result muted'
    row.result.textContent = 'sending…'
    let text
    let ok = false
    try {
      const answer = await this.send(deviceId, row.kind.action, args)
      ok = answer.status === 'ok'
      text = ok ? 'ok' : `${answer.status ?? answer.code ?? 'refused'}${answer.message || answer.error ? `: ${answer.message ?? answer.error}` : ''}`
    } catch (err) {
      text = `not sent: ${err.message}`
    }
    row.pending = false
    for (const { node } of row.inputs) node.disabled = false
    row.result.className = `actuator-result ${ok ? 'ok' : 'refused'}`
    row.result.textContent = text
    row.result.title = new Date().toISOString()
  }
}

function unitText (value, unit) {
  return unit === 'Cel' ? `${value} °C` : unit === '%' ? `${value} %` : String(value)
}

/** Sends one command through the gateway's HTTP API; resolves with its JSON answer (a result or an error). */
export async function sendCommand (deviceId, action, args) {
  const response = await fetch(`/api/devices/${encodeURIComponent(deviceId)}/commands`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ action, args })
  })
  return await response.json()
}
