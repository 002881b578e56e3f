import { readFile } from 'node:fs/promises'
import { isIP } from 'node:net'
import { homedir } from 'node:os'
import { join } from 'node:path'
import {
  FLEET_NAME_RULE, isFleetName, isMeshError, meshError, parseCommanders, type Commanders, type KeyPair, type PublicKey
} from '../../shared/index.js'
import { loadKeyFile } from '../../shared/node.js'
import { loadRoster } from '../../mesh/index.js'
import {
  createGateway, createGatewayLogger, isLogLevel, isPostgresUrl, logGateway, LOG_LEVELS, type Gateway, type GatewayInit, type GatewayLogInit, type HttpInit, type Reading
} from '../../gateway/index.js'
import { RuleEngine, loadFleetPolicy, parseRules, type RuleSet } from '../../firmware-sim/index.js'
import { intFlag, write, type Command } from '../cli.js'
import { readerBanner, readReaderKeyFlag } from '../reader-key.js'

/**
 * `iotmesh gateway`: the embedded MQTT broker (or a client of an external one), the mesh bridge,
 * the HTTP API and the dashboard, until Ctrl-C. Then it stops cleanly: devices' connections close
 * (their last wills fire), the mesh node says goodbye on DNS-SD, the ports close.
 */

const BROKER_PROTOCOLS = new Set(['mqtt:', 'mqtts:', 'ws:', 'wss:', 'tcp:', 'ssl:'])

export const gateway: Command = {
  name: 'gateway',
  summary: 'Run a gateway: MQTT broker, mesh bridge, HTTP API and live dashboard',
  usage: 'iotmesh gateway [--fleet F] [--mqtt-port P] [--ws-port P] [--http-port P] [--host ADDR] [--broker URL [--mqtt-version 5]] [--no-mesh] [--roster FILE] [--fleet-file FILE] [--key FILE] ' +
    '[--users FILE] [--allow-anonymous] [--token-skew S] [--data-dir DIR | --database URL | --memory] [--retention-days N] [--max-readings N] ' +
    '[--commanders FILE] [--set-users LIST] [--rules FILE] [--no-homeassistant | --homeassistant-prefix P] [--fleet-file FILE [--credential FILE]]',
  help: [
    ['--fleet F', 'the fleet served: letters, digits, - and _ (default "default")'],
    ['--mqtt-port P', 'MQTT port of the embedded broker (default 1883; 0: any free port)'],
    ['--ws-port P', 'MQTT over WebSocket port, at /mqtt (default 8083; 0: any free port; "off": none)'],
    ['--http-port P', 'HTTP port of the dashboard, the API and /metrics (default 8080; 0: any free port)'],
    ['--host ADDR', 'the address to listen on (default 0.0.0.0: every interface)'],
    ['--broker URL', 'join this MQTT broker (mqtt://, mqtts://, ws://, wss://) instead of embedding one'],
    ['--mqtt-version V', 'with --broker: the MQTT version the gateway speaks to it, 3.1.1 (default) or 5; the embedded broker speaks MQTT 3.1.1 only'],
    ['--no-mesh', 'do not join the mesh: a plain MQTT gateway'],
    ['--roster FILE', 'closed mode: only the keys in this JSON roster may publish or link (iotmesh keygen --json entries)'],
    ['--fleet-file FILE', 'the fleet file (iotmesh fleet init): the embedded broker then retains owner-signed configurations on iotmesh/<fleet>/$config/<target> (iotmesh fleet config push --broker); without it, it takes none; ' +
      'the mesh node links only with enrolled devices and spreads revocations; the broker refuses revoked devices, closes their sessions and retains revocations on iotmesh/<fleet>/$revocations/<id>'],
    ['--credential FILE', 'the gateway mesh key\'s enrollment credential (iotmesh fleet enroll of --key\'s public key): enrolled devices link only with enrolled peers'],
    ['--key FILE', "the gateway's key file (iotmesh keygen): its mesh identity, and the key it signs commands with (set/ requests, the HTTP API, --rules); default: a new key pair on every start"],
    ['--users FILE', 'MQTT users who may read the fleet: a JSON object {"user": "password", …} (keep it private)'],
    ['--allow-anonymous', 'an open LAN broker: clients without a user name may connect and read everything (default: refused)'],
    ['--token-skew S', 'how far a device clock may be from the gateway clock, seconds (default 300)'],
    ['--data-dir DIR', 'where the gateway keeps its state, DIR/<fleet>.db (SQLite): replay windows, devices, readings history (default $IOTMESH_HOME/gateway, else ~/.iotmesh/gateway)'],
    ['--database URL', 'keep the state in PostgreSQL instead (postgres://user:pass@host/db): several gateways may share it'],
    ['--memory', 'keep no state on disk: a restarted gateway forgets what it accepted'],
    ['--retention-days N', 'readings history kept this many days (default 30)'],
    ['--max-readings N', 'readings history kept, at most this many readings, the oldest pruned first (default 1,000,000)'],
    // HTTP access (WP 11-D): its own block
    ['--http-token T', 'the HTTP access token; "off": none (anyone who reaches the port reads the API). Default: none on a loopback --host, else the one kept in the state directory (--data-dir, default $IOTMESH_HOME/gateway), file http-token, made on first start'],
    ['--allowed-hosts LIST', 'host names (comma-separated) the dashboard may be reached by besides IP addresses, localhost and this machine\'s name (e.g. a reverse proxy\'s)'],
    // Commands (issue 12)
    ['--commanders FILE', 'who may command which actions through the embedded broker: {"commanders": [{"name", "key": "<base64url public key>", "actions": ["relay/#"]}]}; ' +
      'a command of anyone else on iotmesh/<fleet>/<id>/cmd/<action> is refused. Default: only the gateway\'s own key (--key)'],
    ['--set-users LIST', 'MQTT users (comma-separated, from --users) who may publish plain JSON on iotmesh/<fleet>/<id>/set/<actuator>; the gateway signs it as <actuator>/set ' +
      'with its key and mirrors the result on …/result/<gateway id>/json. Default: none'],
    ['--rules FILE', 'run this automation rule file (JSON or YAML, iotmesh rules check FILE) at the gateway on verified readings, commands signed with the gateway key ' +
      'and sent through the broker: the client-server baseline of rules on the devices'],
    // Home Assistant MQTT discovery (WP 16-E): its own block
    ['--no-homeassistant', 'publish no Home Assistant discovery configs (homeassistant/sensor/…/config) and no plain values (iotmesh/<fleet>/<id>/value/<sensor>)'],
    ['--homeassistant-prefix P', 'the discovery prefix Home Assistant listens on (default "homeassistant")'],
    // Logs (WP 16-E): its own block
    ['--log-level L', `${LOG_LEVELS.join(', ')} (default info): refusals are warn, devices online/offline info, MQTT connections debug`],
    ['--log-format F', 'json (one object per line) or text (default: text on stderr, json to --log-file or under systemd, which sets JOURNAL_STREAM)'],
    ['--log-file FILE', 'append the logs to FILE instead of stderr'],
    ['--reader-key FILE', 'a reader key (iotmesh keygen --reader) granted by the fleet\'s owners: encrypted readings are decrypted for the JSON mirror, history and Home Assistant']
  ],
  options: {
    fleet: { type: 'string' },
    'mqtt-port': { type: 'string' },
    'ws-port': { type: 'string' },
    'http-port': { type: 'string' },
    host: { type: 'string' },
    broker: { type: 'string' },
    'mqtt-version': { type: 'string' },
    'no-mesh': { type: 'boolean' },
    roster: { type: 'string' },
    'fleet-file': { type: 'string' },
    credential: { type: 'string' },
    key: { type: 'string' },
    users: { type: 'string' },
    'allow-anonymous': { type: 'boolean' },
    'token-skew': { type: 'string' },
    'data-dir': { type: 'string' },
    database: { type: 'string' },
    memory: { type: 'boolean' },
    'retention-days': { type: 'string' },
    'max-readings': { type: 'string' },
    'http-token': { type: 'string' },
    'allowed-hosts': { type: 'string' },
    commanders: { type: 'string' },
    'set-users': { type: 'string' },
    rules: { type: 'string' },
    'no-homeassistant': { type: 'boolean' },
    'homeassistant-prefix': { type: 'string' },
    'log-level': { type: 'string' },
    'log-format': { type: 'string' },
    'log-file': { type: 'string' }, 'reader-key': { type: 'string' }
  },
  async run ({ values }, io) {
    const options = await readOptions(values, io.env)
    const logInit = readLog(values, io.env)
    let logger: ReturnType<typeof createGatewayLogger>
    try {
      logger = createGatewayLogger(logInit, { stderr: io.stderr })
    } catch (err) {
      throw meshError('ERR_BAD_ARGUMENT', `--log-file: ${(err as Error).message}`, { cause: err })
    }
    let running: Gateway
    try {
      running = await startGateway(options, io.signal)
    } catch (err) {
      // Ctrl-C while it starts (an external broker that does not answer yet): stop at once, say where it was.
      if (io.signal.aborted && isMeshError(err, 'ERR_ABORTED')) {
        const external = options.init.broker
        const url = typeof external === 'string' ? external : external?.url
        write(io.stderr, `iotmesh gateway: stopped while starting${url === undefined ? '' : ` (no answer yet from the broker ${url})`}`)
        return 130
      }
      throw err
    }
    write(io.stdout, banner(running, options))
    logGateway(running, logger)
    running.on('storeError', (err) => { logger.error({ code: (err as { code?: string }).code }, `warning: ${err.message}`) })
    const log = { out: (line: string) => { write(io.stdout, line) }, err: (line: string) => { write(io.stderr, line) } }
    const rules = options.rules === undefined ? undefined : runRules(running, options.rules, log)
    // In closed mode the node's key store refuses its own key when the roster lacks it.
    if (options.roster !== undefined && running.mesh !== undefined && running.mesh.keyOf(running.mesh.id) === undefined) {
      logger.warn({ meshId: running.mesh.id }, `warning: the gateway's mesh key (${running.mesh.id}) is not in the roster: mesh nodes in closed mode will not link to it. Add it, or pass --key with a key that is.`)
    }
    await new Promise<void>((resolve) => {
      if (io.signal.aborted) return resolve()
      io.signal.addEventListener('abort', () => resolve(), { once: true })
    })
    write(io.stdout, 'stopping…')
    rules?.stop()
    await running.stop()
    write(io.stdout, 'stopped')
    return 0
  }
}

interface Options {
  init: GatewayInit
  ports: { mqtt: number, ws: number | false, http: number }
  keys?: KeyPair
  roster?: PublicKey[]
  host: string
  rules?: { set: RuleSet, file: string }
}

async function readOptions (values: Record<string, unknown>, env: NodeJS.ProcessEnv): Promise<Options> {
  const fleet = (values.fleet as string | undefined) ?? 'default'
  if (!isFleetName(fleet)) throw meshError('ERR_BAD_ARGUMENT', `--fleet must be ${FLEET_NAME_RULE}, got ${JSON.stringify(fleet)}`)
  const host = (values.host as string | undefined) ?? '0.0.0.0'
  if (isIP(host) === 0) throw meshError('ERR_BAD_ARGUMENT', `--host must be an IPv4 or IPv6 address to listen on, got ${JSON.stringify(host)}`)
  const mqtt = intFlag(values, 'mqtt-port', 1883, 0, 65535)
  const ws = values['ws-port'] === 'off' ? false : intFlag(values, 'ws-port', 8083, 0, 65535)
  const http = intFlag(values, 'http-port', 8080, 0, 65535)
  const broker = values.broker as string | undefined
  if (broker !== undefined) {
    let url: URL | undefined
    try { url = new URL(broker) } catch { url = undefined }
    if (url === undefined || !BROKER_PROTOCOLS.has(url.protocol)) throw meshError('ERR_BAD_ARGUMENT', `--broker must be an mqtt://, mqtts://, ws:// or wss:// URL, got ${JSON.stringify(broker)}`)
    for (const flag of ['mqtt-port', 'ws-port']) {
      if (values[flag] !== undefined) throw meshError('ERR_BAD_ARGUMENT', `--${flag} is for the embedded broker; with --broker the gateway listens on no MQTT port`)
    }
  }
  const protocolVersion = readMqttVersion(values, broker)
  const mesh = values['no-mesh'] !== true
  const keys = values.key === undefined ? undefined : await readKey(values.key as string)
  const roster = values.roster === undefined ? undefined : await readRoster(values.roster as string)
  const credentials = values.users === undefined ? undefined : await readUsers(values.users as string)
  const maxSkewSeconds = values['token-skew'] === undefined ? undefined : intFlag(values, 'token-skew', 300, 1, 86_400)
  if (broker !== undefined && (credentials !== undefined || values['allow-anonymous'] === true || maxSkewSeconds !== undefined)) {
    throw meshError('ERR_BAD_ARGUMENT', '--users, --allow-anonymous and --token-skew are for the embedded broker; with --broker, access is that broker\'s configuration')
  }
  const commanders = values.commanders === undefined ? undefined : await readCommanders(values.commanders as string)
  const setUsers = typeof values['set-users'] === 'string' ? values['set-users'].split(',').map((u) => u.trim()).filter((u) => u !== '') : undefined
  if (setUsers !== undefined) {
    if (broker !== undefined) {
      throw meshError('ERR_BAD_ARGUMENT', '--set-users is for the embedded broker: with --broker the gateway does not see who publishes')
    }
    const unknown = setUsers.find((u) => credentials?.[u] === undefined)
    if (setUsers.length === 0 || unknown !== undefined) {
      throw meshError('ERR_BAD_ARGUMENT', `--set-users names MQTT users of --users; ${JSON.stringify(unknown ?? '')} is not one`)
    }
  }
  const rules = values.rules === undefined ? undefined : await readRules(values.rules as string)
  const fleetPolicy = values['fleet-file'] === undefined ? undefined : await loadFleetPolicy(values['fleet-file'] as string)
  if (fleetPolicy !== undefined && fleetPolicy.fleet !== fleet) throw meshError('ERR_BAD_ARGUMENT', `--fleet-file is for fleet ${JSON.stringify(fleetPolicy.fleet)}, the gateway serves ${JSON.stringify(fleet)}: give --fleet ${fleetPolicy.fleet}`)
  const credential = values.credential === undefined ? undefined : await readCredentialFile(values.credential as string)
  if (credential !== undefined && fleetPolicy === undefined) throw meshError('ERR_BAD_ARGUMENT', '--credential goes with --fleet-file')
  const store = readStore(values, env, fleet)
  const retentionDays = intFlag(values, 'retention-days', 30, 1, 36_500)
  const maxReadings = intFlag(values, 'max-readings', 1_000_000, 1)
  const homeassistant = readHomeAssistant(values)
  const init: GatewayInit = {
    fleet,
    host,
    port: mqtt,
    wsPort: ws,
    http: { port: http, host, ...httpAccess(values, env) },
    mesh: mesh ? { host, credential } : false,
    ...(broker === undefined ? {} : { broker: protocolVersion === undefined ? broker : { url: broker, protocolVersion } }),
    ...(roster === undefined ? {} : { roster }),
    allowAnonymous: values['allow-anonymous'] === true,
    ...(credentials === undefined ? {} : { credentials }),
    ...(maxSkewSeconds === undefined ? {} : { tokens: { maxSkewSeconds } }),
    ...(store === undefined ? {} : { store, state: { retention: { maxAgeMs: retentionDays * 86_400_000, maxReadings } } }),
    commanders,
    ...(fleetPolicy === undefined ? {} : { fleetPolicy }),
    ...(setUsers === undefined ? {} : { commands: { set: { users: setUsers } } }),
    homeassistant, readerKey: await readReaderKeyFlag(values['reader-key'])
  }
  return {
    init, ports: { mqtt, ws, http }, host, ...(keys === undefined ? {} : { keys }), ...(roster === undefined ? {} : { roster }), ...(rules === undefined ? {} : { rules })
  }
}

/**
 * `--mqtt-version`: the protocol the gateway speaks to an external broker (mqtt.js speaks both).
 * The embedded Aedes broker implements MQTT 3.1.1 only (it answers an MQTT 5 CONNECT with
 * CONNACK 1, unacceptable protocol version), so the flag needs --broker.
 */
function readMqttVersion (values: Record<string, unknown>, broker: string | undefined): 4 | 5 | undefined {
  const version = values['mqtt-version'] as string | undefined
  if (version === undefined) return undefined
  const protocolVersion = version === '5' || version === '5.0' ? 5 : version === '3.1.1' || version === '4' ? 4 : undefined
  if (protocolVersion === undefined) throw meshError('ERR_BAD_ARGUMENT', `--mqtt-version must be 3.1.1 or 5, got ${JSON.stringify(version)}`)
  if (broker === undefined) throw meshError('ERR_BAD_ARGUMENT', '--mqtt-version is for --broker: the embedded broker (Aedes) speaks MQTT 3.1.1 only; for MQTT 5, run an MQTT 5 broker and join it with --broker URL --mqtt-version 5')
  return protocolVersion
}

/** --log-level, --log-format, --log-file; JSON by default to a file or to journald (systemd sets JOURNAL_STREAM for a unit's stderr). */
function readLog (values: Record<string, unknown>, env: NodeJS.ProcessEnv): GatewayLogInit {
  const level = values['log-level'] ?? 'info'
  if (!isLogLevel(level)) throw meshError('ERR_BAD_ARGUMENT', `--log-level must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(level)}`)
  const format = values['log-format']
  if (format !== undefined && format !== 'json' && format !== 'text') throw meshError('ERR_BAD_ARGUMENT', `--log-format must be json or text, got ${JSON.stringify(format)}`)
  const file = values['log-file'] as string | undefined
  if (file === '') throw meshError('ERR_BAD_ARGUMENT', '--log-file is empty')
  const journald = env.JOURNAL_STREAM !== undefined && env.JOURNAL_STREAM !== ''
  return { level, format: format ?? (file !== undefined || journald ? 'json' : 'text'), ...(file === undefined ? {} : { file }) }
}

/** Home Assistant discovery: on with the default prefix, on with --homeassistant-prefix, off with --no-homeassistant. */
function readHomeAssistant (values: Record<string, unknown>): GatewayInit['homeassistant'] {
  const prefix = values['homeassistant-prefix'] as string | undefined
  if (values['no-homeassistant'] === true) {
    if (prefix !== undefined) throw meshError('ERR_BAD_ARGUMENT', '--homeassistant-prefix has no use with --no-homeassistant')
    return false
  }
  if (prefix !== undefined && !/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(prefix)) {
    throw meshError('ERR_BAD_ARGUMENT', `--homeassistant-prefix must be MQTT topic levels of letters, digits, ".", "_" or "-" (no wildcards), got ${JSON.stringify(prefix)}`)
  }
  return prefix === undefined ? {} : { prefix }
}

/** Where the state goes: --database URL, --data-dir DIR (or its default), or nowhere with --memory. */
function readStore (values: Record<string, unknown>, env: NodeJS.ProcessEnv, fleet: string): string | undefined {
  const given = ['data-dir', 'database', 'memory'].filter((flag) => values[flag] !== undefined)
  if (given.length > 1) throw meshError('ERR_BAD_ARGUMENT', `--${given.join(' and --')} exclude each other: the state goes in one place`)
  if (values.memory === true) return undefined
  const database = values.database as string | undefined
  if (database !== undefined) {
    if (!isPostgresUrl(database)) throw meshError('ERR_BAD_ARGUMENT', `--database must be a postgres:// URL, got ${JSON.stringify(database.replace(/:[^:@/]*@/, ':***@'))}`)
    return database
  }
  const home = env.IOTMESH_HOME ?? (env.HOME === undefined ? '.iotmesh' : join(env.HOME, '.iotmesh'))
  const dir = (values['data-dir'] as string | undefined) ?? join(home, 'gateway')
  if (dir === '') throw meshError('ERR_BAD_ARGUMENT', '--data-dir is empty')
  return join(dir, `${fleet}.db`)
}

/** HTTP access (gateway/access.ts): the token (given, "off", or kept in the gateway's state directory) and extra host names. */
function httpAccess (values: Record<string, unknown>, env: NodeJS.ProcessEnv): Pick<HttpInit, 'token' | 'tokenFile' | 'allowedHosts'> {
  const flag = values['http-token'] as string | undefined
  const token = flag === 'off' ? false : flag
  if (typeof token === 'string' && !/^[A-Za-z0-9._~+/=-]{8,256}$/.test(token)) throw meshError('ERR_BAD_ARGUMENT', '--http-token must be 8 to 256 characters of A-Z a-z 0-9 . _ ~ + / = -, or "off"')
  const home = env.IOTMESH_HOME ?? join(env.HOME ?? homedir(), '.iotmesh')
  const dir = typeof values['data-dir'] === 'string' && values['data-dir'] !== '' ? values['data-dir'] : join(home, 'gateway')
  const allowedHosts = typeof values['allowed-hosts'] === 'string' ? values['allowed-hosts'].split(',').map((h) => h.trim()).filter((h) => h !== '') : undefined
  return { tokenFile: join(dir, 'http-token'), ...(token === undefined ? {} : { token }), ...(allowedHosts === undefined ? {} : { allowedHosts }) }
}

async function readKey (path: string): Promise<KeyPair> {
  try {
    return await loadKeyFile(path)
  } catch (err) {
    // A key file that others can read keeps its own code (as ssh refuses an open key); anything else is a bad --key.
    if (isMeshError(err) && err.code === 'ERR_KEY_PERMISSIONS') throw meshError(err.code, `--key: ${err.message}`, { cause: err })
    throw meshError('ERR_BAD_ARGUMENT', `--key: ${isMeshError(err) ? err.message : `${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`}`, { cause: err })
  }
}

async function readRoster (path: string): Promise<PublicKey[]> {
  try {
    return (await loadRoster(path)).map((entry) => entry.publicKey)
  } catch (err) {
    throw meshError('ERR_BAD_ARGUMENT', `--roster: ${(err as Error).message}`, { cause: err })
  }
}

/** `--credential FILE` (iotmesh fleet enroll's output). */
async function readCredentialFile (path: string): Promise<Uint8Array> {
  try { return new Uint8Array(await readFile(path)) } catch (err) { throw meshError('ERR_BAD_ARGUMENT', `--credential: ${(err as Error).message}`, { cause: err }) }
}

/** `--commanders FILE` (shared/commanders.ts). */
async function readCommanders (path: string): Promise<Commanders> {
  try {
    return parseCommanders(JSON.parse(await readFile(path, 'utf8')), path)
  } catch (err) {
    const why = isMeshError(err) ? err.message : `cannot read ${path} as JSON (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`
    throw meshError('ERR_BAD_ARGUMENT', `--commanders: ${why}`, { cause: err })
  }
}

/** `--rules FILE` (firmware-sim/rules/): validated before the gateway starts. */
async function readRules (path: string): Promise<{ set: RuleSet, file: string }> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw meshError('ERR_BAD_ARGUMENT', `--rules: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err })
  }
  try {
    return { set: parseRules(text, path), file: path }
  } catch (err) {
    throw meshError('ERR_BAD_ARGUMENT', `--rules: ${(err as Error).message}`, { cause: err })
  }
}

/**
 * The central rules (the client-server baseline, as a home automation server runs them): the rule
 * engine of the devices (firmware-sim/rules/) fed with every verified reading the gateway accepts,
 * each firing sent as commands signed with the gateway key through the broker. One line per
 * command on stdout (its result), or on stderr (a timeout or an error).
 */
interface RulesLog { out: (line: string) => void, err: (line: string) => void }

function runRules (running: Gateway, rules: { set: RuleSet, file: string }, log: RulesLog): { stop: () => void } {
  const engine = new RuleEngine(rules.set)
  const name = (id: string): string => rules.set.names.get(id) ?? id
  const onReading = (reading: Reading): void => {
    engine.observeReading(reading.origin, reading.records, reading.time)
  }
  engine.on('fire', (firing) => {
    for (const action of firing.actions) {
      const started = Date.now()
      const what = `iotmesh gateway: rule ${JSON.stringify(firing.rule)}: ${action.action} on ${name(action.device)}`
      running.command({ target: action.device, action: action.action, ttl: action.ttl, args: action.args }).then((result) => {
        log.out(`${what} → ${result.status} (${Date.now() - started} ms)`)
      }, (err: unknown) => {
        log.err(`${what} failed (${isMeshError(err) ? err.code : 'error'}): ${(err as Error).message}`)
      })
    }
  })
  running.on('reading', onReading)
  return {
    stop: () => {
      running.off('reading', onReading)
      engine.stop()
    }
  }
}

/** `--users FILE`: a JSON object of user name -> password. */
async function readUsers (path: string): Promise<Record<string, string>> {
  let parsed: unknown
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'))
  } catch (err) {
    throw meshError('ERR_BAD_ARGUMENT', `--users: cannot read ${path} as JSON (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err })
  }
  const entries = parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? Object.entries(parsed) : undefined
  if (entries === undefined || entries.length === 0 || !entries.every(([user, pass]) => user !== '' && typeof pass === 'string' && pass !== '')) {
    throw meshError('ERR_BAD_ARGUMENT', `--users: ${path} must hold a JSON object of user names to non-empty passwords, e.g. {"grafana": "long-random-secret"}`)
  }
  return Object.fromEntries(entries) as Record<string, string>
}

/** Starts the gateway; a port that cannot be bound is a usage error naming its flag. */
async function startGateway (options: Options, signal: AbortSignal): Promise<Gateway> {
  try {
    return await createGateway(options.init, options.keys === undefined ? {} : { keys: options.keys }, { signal })
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { port?: number }
    if (e.code === 'EADDRINUSE' || e.code === 'EACCES' || e.code === 'EADDRNOTAVAIL') {
      const flag = e.port === options.ports.http ? '--http-port' : e.port === options.ports.ws ? '--ws-port' : e.port === options.ports.mqtt ? '--mqtt-port' : '--host'
      throw meshError('ERR_BAD_ARGUMENT', `cannot listen on ${options.host}:${e.port ?? '?'} (${e.code}): choose another ${flag}`, { cause: err })
    }
    throw err
  }
}

function banner (running: Gateway, options: Options): string {
  const shown = options.host === '0.0.0.0' || options.host === '::' ? 'localhost' : isIP(options.host) === 6 ? `[${options.host}]` : options.host
  const ports = running.ports
  const token = running.http?.token
  const lines = [
    `iotmesh gateway: fleet ${running.fleet}`,
    `dashboard  http://${shown}:${ports.http ?? '?'}/${token === undefined ? '' : `?token=${token}`}`,
    `api        http://${shown}:${ports.http ?? '?'}/api/devices   metrics http://${shown}:${ports.http ?? '?'}/metrics`
  ]
  if (token !== undefined) {
    const where = options.init.http?.token === undefined ? `${running.http?.tokenCreated === true ? 'new, kept' : 'kept'} in ${options.init.http?.tokenFile ?? '?'}` : 'given by --http-token'
    lines.push(`http token ${where}: open the dashboard URL above once, or send "Authorization: Bearer <token>"`)
  } else if (options.init.http?.token === false) {
    lines.push('http token off (--http-token off): anyone who reaches the HTTP port reads the API and the dashboard')
  }
  if (running.mode === 'embedded') {
    const users = Object.keys(options.init.credentials ?? {}).length
    lines.push(`mqtt       mqtt://${shown}:${ports.mqtt ?? '?'}`)
    lines.push('protocol   MQTT 3.1.1 only (embedded Aedes): MQTT 5 clients are refused; for MQTT 5, run an MQTT 5 broker and use --broker URL --mqtt-version 5')
    lines.push(options.init.allowAnonymous === true
      ? 'access     OPEN LAN broker (--allow-anonymous): anyone who reaches the port reads all telemetry and the JSON mirror'
      : `access     devices with their key (token)${users > 0 ? `, ${users} users (--users)` : ', no users (--users FILE to let people and programs read)'}; anonymous clients refused`)
    if (ports.ws !== undefined) lines.push(`websocket  ws://${shown}:${ports.ws}/mqtt`)
  } else {
    const external = options.init.broker
    const url = typeof external === 'string' ? external : external?.url
    const version = typeof external === 'object' && external.protocolVersion === 5 ? 'MQTT 5' : 'MQTT 3.1.1'
    lines.push(`broker     ${url ?? '?'} (external, ${version}: restrict publishing there with its ACLs, see gateway/README.md)`)
  }
  lines.push(running.mesh === undefined
    ? 'mesh       off (--no-mesh)'
    : `mesh       ${running.mesh.name}, id ${running.mesh.id}, links on port ${ports.mesh ?? '?'}${options.keys === undefined ? ' (a new identity: pass --key for a stable one)' : ''}`)
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
