import { isIP } from 'node:net'
import type { Gateway } from '../gateway/index.js'
import type { GatewayOptions } from './gateway-options.js'
import { readerBanner } from './reader-key.js'

/** What `iotmesh gateway` prints once it listens: text for a person, or one JSON object (--json). */

/** The banner: what runs, and the addresses it really listens on (ports as bound: a port 0 shows the one the system chose). */
export function textBanner (running: Gateway, options: GatewayOptions): string {
  const shown = shownHost(options.host)
  const tls = options.init.tls !== undefined
  const ports = running.ports
  const token = running.http?.token
  const lines = [
    `iotmesh gateway: fleet ${running.fleet}`,
    `dashboard  http://${shown}:${ports.http ?? '?'}/${token === undefined ? '' : `?token=${token}`}`,
    `api        http://${shown}:${ports.http ?? '?'}/api/devices   metrics http://${shown}:${ports.http ?? '?'}/metrics`
  ]
  if (token !== undefined) {
    const where = options.init.http?.token === undefined ? `${running.http?.tokenCreated === true ? 'new, kept' : 'kept'} in ${options.init.http?.tokenFile ?? '?'}` : `given by ${options.settings.labels.httpToken}`
    lines.push(`http token ${where}: open the dashboard URL above once, or send "Authorization: Bearer <token>"`)
  } else if (options.init.http?.token === false) {
    lines.push('http token off (--http-token off): anyone who reaches the HTTP port reads the API and the dashboard')
  }
  if (running.mode === 'embedded') {
    const users = Object.keys(options.init.credentials ?? {}).length
    lines.push(`mqtt       ${tls ? 'mqtts' : 'mqtt'}://${shown}:${ports.mqtt ?? '?'}${tls ? ' (MQTT over TLS, --tls-cert)' : ''}`)
    lines.push('protocol   MQTT 3.1.1 only (embedded Aedes): MQTT 5 clients are refused; for MQTT 5, run an MQTT 5 broker and use --broker URL --mqtt-version 5')
    lines.push(options.init.allowAnonymous === true
      ? 'access     OPEN LAN broker (--allow-anonymous): anyone who reaches the port reads all telemetry and the JSON mirror'
      : `access     devices with their key (token)${users > 0 ? `, ${users} users (--users)` : ', no users (--users FILE to let people and programs read)'}; anonymous clients refused`)
    if (ports.ws !== undefined) lines.push(`websocket  ${tls ? 'wss' : 'ws'}://${shown}:${ports.ws}/mqtt`)
    if (options.init.cluster !== undefined) lines.push('cluster    broker state shared through Redis (--redis): subscriptions, retained messages and sessions')
  } else {
    const external = options.init.broker
    const url = typeof external === 'string' ? external : external?.url
    const version = typeof external === 'object' && external.protocolVersion === 5 ? 'MQTT 5' : 'MQTT 3.1.1'
    lines.push(`broker     ${url ?? '?'} (external, ${version}: restrict publishing there with its ACLs, see gateway/README.md)`)
  }
  lines.push(running.mesh === undefined
    ? 'mesh       off (--no-mesh)'
    : `mesh       ${running.mesh.name}, id ${running.mesh.id}, links on port ${ports.mesh ?? '?'}${options.keys === undefined ? ' (a new identity: pass --key for a stable one)' : ''}` +
      (options.settings.config.peers.length === 0 ? '' : `; static peers ${options.settings.config.peers.join(', ')}`))
  if (options.roster !== undefined) lines.push(`roster     closed mode, ${options.roster.length} keys`)
  const commanders = options.init.commanders?.size ?? 0
  lines.push(`commands   signed as ${running.identity.id}${options.keys === undefined ? ' (a new key: pass --key so that devices can allow it)' : ''}; ` +
    `forwarded on the broker from ${commanders > 0 ? `${commanders} commanders (--commanders) and ` : ''}the gateway only`)
  const setUsers = options.init.commands?.set?.users ?? []
  if (setUsers.length > 0) {
    lines.push(`set        ${setUsers.join(', ')} may publish iotmesh/${running.fleet}/<id>/set/<actuator> (plain JSON, signed by the gateway)`)
  }
  if (options.rules !== undefined) {
    lines.push(`rules      ${options.rules.set.rules.length} rules from ${options.rules.file}, run at the gateway, commands through the broker`)
  }
  lines.push(readerBanner(options.init.readerKey))
  lines.push(running.homeassistant === undefined
    ? 'home asst. off (--no-homeassistant)'
    : `home asst. discovery on ${running.homeassistant.prefix}/sensor/<device>/<sensor>/config, values on iotmesh/${running.fleet}/<device>/value/<sensor>`)
  const state = running.state
  lines.push(state === undefined
    ? 'state      memory only (--memory): a restart forgets accepted readings'
    : `state      ${state.store.location} (${state.store.kind === 'sqlite' ? 'SQLite, WAL' : 'PostgreSQL'}; ${state.counters.restoredOrigins} devices' replay windows restored)`)
  lines.push('Press Ctrl-C to stop.')
  return lines.join('\n')
}

function shownHost (host: string): string {
  return host === '0.0.0.0' || host === '::' ? 'localhost' : isIP(host) === 6 ? `[${host}]` : host
}

/**
 * `--json`: the banner as one JSON object on one line (`"event": "start"`): the gateway's id and
 * fleet, and every listener with the address it is bound to (`host`: the address given, 0.0.0.0
 * for every interface; `port`: as bound) and a URL to reach it from this machine.
 */
export function jsonBanner (running: Gateway, options: GatewayOptions): Record<string, unknown> {
  const shown = shownHost(options.host)
  const ports = running.ports
  const tls = options.init.tls !== undefined
  const listen = (port: number | undefined, scheme: string, path = ''): Record<string, unknown> | null =>
    port === undefined ? null : { host: options.host, port, url: `${scheme}://${shown}:${port}${path}` }
  const external = options.init.broker
  const token = running.http?.token
  return {
    event: 'start',
    fleet: running.fleet,
    gatewayId: running.identity.id,
    mode: running.mode,
    mqtt: running.mode === 'embedded' ? { ...listen(ports.mqtt, tls ? 'mqtts' : 'mqtt'), tls, protocol: 'MQTT 3.1.1' } : null,
    ws: running.mode === 'embedded' ? listen(ports.ws, tls ? 'wss' : 'ws', '/mqtt') : null,
    http: { ...listen(ports.http, 'http', '/'), token: token === undefined ? 'off' : options.init.http?.token === undefined ? options.init.http?.tokenFile ?? null : 'given' },
    dashboard: ports.http === undefined ? null : `http://${shown}:${ports.http}/${token === undefined ? '' : `?token=${token}`}`,
    broker: typeof external === 'string' ? { url: external, protocolVersion: 4 } : external === undefined ? null : { url: external.url, protocolVersion: external.protocolVersion ?? 4 },
    mesh: running.mesh === undefined ? null : { id: running.mesh.id, name: running.mesh.name, host: options.host, port: ports.mesh ?? null, peers: options.settings.config.peers },
    cluster: options.init.cluster === undefined ? null : 'redis',
    state: running.state === undefined ? null : { kind: running.state.store.kind, location: running.state.store.location },
    homeassistant: running.homeassistant === undefined ? null : { prefix: running.homeassistant.prefix }
  }
}
