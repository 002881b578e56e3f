import { hostname } from 'node:os'
import {
  SETTING_NAMES, SETTING_SWITCHES, Device, deviceInit, flagName, loadDeviceConfig, stderrLogger,
  type DeviceCounters, type ReadingEvent, type SensorLogger
} from '../../firmware-sim/index.js'
import { isMeshError, meshError } from '../../shared/index.js'
import { readRosterFlag } from '../roster-flags.js'
import { write, type Command, type Io, type Options } from '../cli.js'

/** Every device setting is a flag of the same name (firmware-sim/config.ts), plus --config and --json. */
const options: Options = {
  ...Object.fromEntries(SETTING_NAMES.map((name) => [flagName(name), { type: SETTING_SWITCHES.has(name) ? 'boolean' as const : 'string' as const }])),
  config: { type: 'string' },
  json: { type: 'boolean' }
}

export const device: Command = {
  name: 'device',
  summary: 'Run a device: sample its sensors and send signed readings over the mesh and/or MQTT',
  usage: 'iotmesh device [--name N] [--fleet F] [--mode mesh|broker|hybrid] [--broker URL] [--interval MS] [--sensors LIST] [--key FILE] [--config FILE] [--data-dir DIR] [--port P] [--peers LIST] [--relay-before-verify] [--broadcast-tree] [--roster FILE] [--commanders FILE] [--actuators LIST] [--rules FILE] [--fleet-file FILE] [--groups LIST] [--encrypt FILE] [--credential FILE] [--json]',
  help: [
    ['--name N', 'the name it announces (default: the host name)'],
    ['--fleet F', 'its fleet (default "default")'],
    ['--mode M', 'mesh (peer to peer), broker (MQTT) or hybrid (both); default mesh'],
    ['--broker URL', 'MQTT broker, e.g. mqtt://gateway.local:1883 (broker and hybrid mode)'],
    ['--username U', 'MQTT user name, when the broker asks for one'],
    ['--password P', 'MQTT password (prefer IOTMESH_PASSWORD: other users can read flags)'],
    ['--broker-auth A', 'token (its key: user = its id, password = a signed token per CONNECT), password, none; default auto (password if set, else token)'],
    ['--interval MS', 'sampling interval in ms (default 10000)'],
    ['--sensors LIST', 'sensors and presets, e.g. temperature,humidity or sim, linux (default sim)'],
    ['--key FILE', 'the device key, created on first start (default DATA_DIR/device.key)'],
    ['--data-dir DIR', 'key, sequence file and outbox (default $IOTMESH_HOME, else ~/.iotmesh)'],
    ['--port P', 'TCP port for mesh links (default 0: any free port, announced by DNS-SD)'],
    ['--peers LIST', 'host:port of peers to keep linked (networks without multicast)'],
    ['--relay-before-verify', 'relay mesh frames before checking their signature: less latency for the devices behind this one; a forgery can go one hop further, never to an application (default off; README "Relaying before verifying")'],
    ['--broadcast-tree', 'send readings that most of the fleet subscribes to down a broadcast tree, each reaching each node once (default off: every reading by interest routing; README "Routing")'],
    ['--seed N', 'seed of the simulated sensors (default drawn at start)'],
    ['--fsync P', 'outbox fsync: always (default), never, or at most every N ms'],
    ['--outbox-frames N', 'most frames kept while a path is down (default 100000)'],
    ['--outbox-bytes N', 'most bytes kept while a path is down (default 16 MiB)'],
    ['--config FILE', 'a file of these settings, JSON or YAML (.yaml/.yml); flags > IOTMESH_* environment > file > defaults'],
    ['--json', 'one JSON object per line (start, tick, path, sensor, stop) instead of text'],
    // Closed mode (WP 11-D)
    ['--roster FILE', 'closed mode: link to, and take frames from, only the keys in this JSON roster (iotmesh keygen --json entries; include this device\'s own)'],
    ['--commanders FILE', 'who may command this device, and what: {"commanders": [{"key": "<public key>", "actions": ["relay/#"]}]} (none by default)'],
    ['--actuators LIST', 'simulated actuators: relay, light, valve, thermostat; their state is published as telemetry'],
    ['--rules FILE', 'automation rules to run on this device, over the mesh (JSON or YAML; iotmesh rules check FILE)'],
    ['--fleet-file FILE', 'the fleet file (iotmesh fleet init): link only with devices its owners enrolled (a valid --credential); take, spread and enforce owner-signed revocations (kept in DATA_DIR/revocations.json) and apply owner-signed configurations (DATA_DIR/signed-config.json)'],
    ['--groups LIST', 'groups this device is in: owner-signed configurations pushed to one of them apply to it (iotmesh fleet config push --to GROUP)'],
    ['--encrypt FILE', 'encrypt readings to the readers of this owner-signed reader grant list (iotmesh fleet grant-reader); needs --fleet-file'],
    ['--credential FILE', 'this device\'s enrollment credential (iotmesh fleet enroll), shown in link handshakes and its status (default DATA_DIR/credential.cbor if present)']
  ],
  options,
  async run ({ values }, io) {
    const json = values.json === true
    const { config } = await loadDeviceConfig({ flags: values, env: io.env, defaults: hostDefaults() })
    const out = (event: Record<string, unknown>, text: string): void => { write(io.stdout, json ? JSON.stringify(event) : text) }
    const logger: SensorLogger = json
      ? { warn: (message, notice) => { write(io.stderr, `iotmesh: ${message}`); out({ event: 'sensor', sensor: notice.sensor, state: notice.event, reason: notice.reason, code: notice.code ?? null }, '') } }
      : stderrLogger
    const init = deviceInit(config)
    const roster = config.roster === undefined ? undefined : await readRosterFlag(config.roster)
    if (roster !== undefined) init.mesh = { ...init.mesh, roster }
    const dev = new Device(init, { logger })
    // Links refused for trust (issue 13), either way, with their stable code; subscribed before start: the first dial comes during it.
    dev.on('link:refused', ({ by, code, peer, address }) => {
      out({ event: 'refused', by, code, peer: peer ?? null, address: address ?? null },
        `${clock(Date.now())}  ${by === 'peer' ? `${peer ?? address ?? '?'} refused our link` : `refused a link from ${peer ?? '?'}`}: ${code}`)
    })
    await dev.start().catch((err: unknown) => { throw portError(err, config.port) })
    // In closed mode the node's key store refuses its own key when the roster lacks it: rostered peers will refuse it too.
    if (roster !== undefined && dev.node !== undefined && dev.node.keyOf(dev.id) === undefined) {
      write(io.stderr, `iotmesh device: warning: this device's key (${dev.id}) is not in the roster ${config.roster ?? ''}: nodes in closed mode will not link to it. Add it (iotmesh keys, or the key file's public key).`)
    }
    // Damage found in the outbox when it was opened (bit rot): each stretch skipped, reported once (ERR_OUTBOX_CORRUPT).
    for (const error of dev.counters.outbox.corrupt ?? []) write(io.stderr, `iotmesh device: warning: ${error.message} (${error.code})`)
    // The device's timers are unref'd (as the mesh's are); this one keeps the process alive until Ctrl-C.
    const keepAlive = setInterval(() => {}, 1 << 30)
    try {
      out({ event: 'start', id: dev.id, name: dev.name, fleet: dev.fleet, mode: dev.mode, paths: dev.paths, dataDir: config.dataDir, key: config.key, keyCreated: dev.keyCreated, broker: config.broker ?? null, port: dev.node?.address?.port ?? null, sensors: config.sensors },
        `device ${dev.name} (${dev.id}) fleet ${dev.fleet}, mode ${dev.mode}${config.broker === undefined ? '' : `, broker ${config.broker}`}${dev.node?.address === undefined ? '' : `, mesh port ${dev.node.address.port}`}\n` +
        `  ${dev.keyCreated ? 'created key' : 'key'} ${config.key}, data in ${config.dataDir}; sensors ${config.sensors.join(',') || '(none)'}; Ctrl-C to stop`)
      dev.on('tick', ({ time, readings }) => { out(tickJson(time, readings, dev.counters), tickLine(time, readings, dev.counters)) })
      dev.on('path:up', ({ path }) => { out({ event: 'path', path, up: true }, `${clock(Date.now())}  ${path} path up`) })
      dev.on('path:down', ({ path, reason }) => { out({ event: 'path', path, up: false, reason: reason ?? null }, `${clock(Date.now())}  ${path} path down${reason === undefined ? '' : ` (${reason})`}; readings wait in the outbox`) })
      if (dev.counters.commands !== undefined) {
        const state = dev.actuatorState
        out({ event: 'commands', actuators: state, rules: init.rules === undefined ? 0 : 1 },
          `  commands: ${Object.keys(state).length === 0 ? 'no actuators' : `actuators ${Object.entries(state).map(([k, v]) => `${k}=${String(v)}`).join(' ')}`}` +
          `${config.commanders === undefined ? ', no commanders (it executes nothing)' : `, commanders from ${config.commanders}`}${config.rules === undefined ? '' : `; rules from ${config.rules}`}`)
      }
      const configText = (s: NonNullable<Device['configState']>): string => `  signed configuration: ${s.version === undefined ? 'none applied' : `version ${s.version} (${s.target ?? ''})`}` +
        `${s.restart === undefined ? '' : `; ${s.restart.join(',')} at the next start`}${s.refused === undefined ? '' : `; refused version ${s.refused.version}: ${s.refused.code}: ${s.refused.message}`}`
      if (dev.configState !== undefined) out({ event: 'config', ...dev.configState, interval: dev.interval }, configText(dev.configState))
      dev.on('config', (state) => { out({ event: 'config', ...state, interval: dev.interval }, configText(state)) })
      dev.on('warning', ({ where, error }) => { write(io.stderr, `iotmesh device: ${where}: ${error.message}${codeOf(error)}`) })
      await aborted(io)
    } finally {
      clearInterval(keepAlive)
      await stop(dev, out)
    }
    return 0
  }
}

async function stop (dev: Device, out: (event: Record<string, unknown>, text: string) => void): Promise<void> {
  await dev.stop()
  const c = dev.counters
  out({ event: 'stop', counters: c }, `stopped after ${c.readings} readings; ${pathsText(c)}; outbox ${c.outbox.frames} frames kept for next start, ${c.outbox.dropped} dropped`)
}

function aborted (io: Io): Promise<void> {
  if (io.signal.aborted) return Promise.resolve()
  return new Promise((resolve) => { io.signal.addEventListener('abort', () => { resolve() }, { once: true }) })
}

/** A default name from the host name, when it makes a valid one. */
function hostDefaults (): { name?: string } {
  const name = hostname().split('.')[0]?.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 63) ?? ''
  return /^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(name) ? { name } : {}
}

function tickJson (time: number, readings: ReadingEvent[], c: DeviceCounters): Record<string, unknown> {
  return {
    event: 'tick',
    time,
    frames: readings.map((r) => ({ seq: r.seq, topic: r.topic, records: r.records.length, bytes: r.bytes })),
    paths: c.paths,
    links: c.links,
    outbox: { frames: c.outbox.frames, dropped: c.outbox.dropped }
  }
}

function tickLine (time: number, readings: ReadingEvent[], c: DeviceCounters): string {
  const seqs = readings.map((r) => r.seq)
  const what = readings.length === 0
    ? 'no readings'
    : `seq ${seqs.length === 1 ? seqs[0] : `${seqs[0]}-${seqs[seqs.length - 1]}`}  ${readings.reduce((n, r) => n + r.records.length, 0)} readings`
  return `${clock(time)}  ${what}  |  ${pathsText(c)}${c.outbox.dropped > 0 ? `  |  ${c.outbox.dropped} dropped` : ''}`
}

function pathsText (c: DeviceCounters): string {
  return Object.entries(c.paths).map(([path, p]) =>
    `${path} ${p.up ? 'up' : 'down'}${path === 'mesh' ? ` (${c.links} links)` : ''}, ${p.delivered} delivered, ${p.pending} waiting` +
    (p.awaitingAck === undefined || p.awaitingAck === 0 ? '' : ` (${p.awaitingAck} sent, awaiting ack)`)).join('  |  ')
}

function clock (ms: number): string {
  return new Date(ms).toISOString().slice(11, 23)
}

function codeOf (error: Error): string {
  const code = (error as { code?: unknown }).code
  return typeof code === 'string' ? ` (${code})` : ''
}

/** A mesh port that cannot be bound (taken, privileged, not an address of this machine) is a usage error naming --port. */
function portError (err: unknown, port: number | undefined): unknown {
  const cause = (err as { cause?: NodeJS.ErrnoException }).cause
  const code = cause?.code
  if (!isMeshError(err, 'ERR_LINK_CLOSED') || (code !== 'EADDRINUSE' && code !== 'EACCES' && code !== 'EADDRNOTAVAIL')) return err
  const why = code === 'EADDRINUSE' ? 'another program (or another device) listens there' : code === 'EACCES' ? 'a port below 1024 needs privileges' : 'that address is not on this machine'
  return meshError('ERR_BAD_ARGUMENT', `cannot listen on mesh port ${port ?? '?'} (${code}): ${why}; choose another --port (IOTMESH_PORT, "port" in the config file)`, { cause: err })
}
