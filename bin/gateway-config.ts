import { isIP } from 'node:net'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { FLEET_NAME_RULE, isFleetName } from '../shared/index.js'
import {
  InvalidSetting, booleanSetting, configFilePath, envName, flagName, hostPortSetting, integerSetting, listSetting, loadSettingsFile, oneOfSetting, pathSetting,
  resolveSettings, textSetting, type ConfigFile, type ResolvedSettings, type SettingsTable
} from '../shared/node.js'
import { LOG_LEVELS, isPostgresUrl, type LogLevel } from '../gateway/index.js'
import type { Options } from './cli.js'

/**
 * The gateway's settings: one table, as the device's (firmware-sim/config.ts, on the machinery of
 * shared/node/settings.ts). Every setting is a flag (`--mqtt-port`), an environment variable
 * (`IOTMESH_MQTT_PORT`) and a key of the config file (`mqttPort`, in JSON or YAML: `--config FILE`
 * or IOTMESH_CONFIG). Precedence: flags > environment > file > defaults. A bad value is
 * ERR_BAD_ARGUMENT naming the setting and where it came from. bin/gateway-options.ts turns the
 * settings into the gateway's init (reading the files they name); gateway/deploy/gateway.example.yaml
 * documents every key.
 */

export interface GatewaySettings {
  /** The fleet served. */
  fleet: string
  /** The address every listener binds. */
  host: string
  /** Join this MQTT broker instead of embedding one. */
  broker: string | undefined
  /** With broker: the MQTT version spoken to it (4: 3.1.1, 5). */
  mqttVersion: 4 | 5 | undefined
  /** The embedded broker's TLS certificate chain and key (PEM files): MQTT over TLS and WSS instead of plain MQTT and WS. */
  tlsCert: string | undefined
  tlsKey: string | undefined
  /** Embedded broker ports: MQTT (1883, or 8883 with TLS), MQTT over WebSocket (8083, or 8084 with TLS; false: none). */
  mqttPort: number
  wsPort: number | false
  /** Several embedded brokers sharing their state (subscriptions, retained, sessions) through Redis (gateway/cluster.ts). */
  redis: string | undefined
  /** HTTP: dashboard, API, /metrics. */
  httpPort: number
  httpToken: string | false | undefined
  allowedHosts: string[] | undefined
  /** Join the mesh (flag --no-mesh: false). */
  mesh: boolean
  /** The mesh link port (0: any free port, announced by DNS-SD); static peers (host:port) kept linked. */
  meshPort: number
  peers: string[]
  /** Files: closed-mode roster, fleet file, enrollment credential, key, MQTT users, commanders, rules, reader key. */
  roster: string | undefined
  fleetFile: string | undefined
  credential: string | undefined
  key: string | undefined
  users: string | undefined
  allowAnonymous: boolean
  tokenSkew: number | undefined
  commanders: string | undefined
  setUsers: string[] | undefined
  rules: string | undefined
  readerKey: string | undefined
  /** State: a SQLite file in dataDir, a PostgreSQL database, or memory only. */
  memory: boolean
  database: string | undefined
  dataDir: string
  retentionDays: number
  maxReadings: number
  /** The dashboard's sequence-gap counter (gateway/seq-gaps.ts): how long a skipped number may take to arrive before it counts (ms), and the devices' sequence-file block. */
  gapSettleMs: number | undefined
  sequenceBlock: number | undefined
  /** Home Assistant discovery (flag --no-homeassistant: false). */
  homeassistant: boolean
  homeassistantPrefix: string | undefined
  /** Logs. */
  logLevel: LogLevel
  logFormat: 'json' | 'text' | undefined
  logFile: string | undefined
}

export type GatewaySettingName = keyof GatewaySettings

const BROKER_PROTOCOLS = ['mqtt:', 'mqtts:', 'ws:', 'wss:', 'tcp:', 'ssl:']
const port = integerSetting(0, 65535)
const none = (): undefined => undefined
const names = (what: string) => (raw: unknown): string[] => {
  const items = listSetting(raw, what)
  if (items.length === 0) throw new InvalidSetting(what)
  return items
}

/** `$IOTMESH_HOME`, else ~/.iotmesh (HOME from the environment given, as the device's dataDir). */
function home (env: Record<string, string | undefined>): string {
  return env.IOTMESH_HOME ?? (env.HOME === undefined ? '.iotmesh' : join(env.HOME, '.iotmesh'))
}

/** In resolution order: TLS before the ports, whose defaults depend on it. */
const SETTINGS: SettingsTable<GatewaySettings> = {
  fleet: {
    parse: (raw, base) => { const name = textSetting(`a fleet name of ${FLEET_NAME_RULE}`)(raw, base); if (!isFleetName(name)) throw new InvalidSetting(`a fleet name of ${FLEET_NAME_RULE}`); return name },
    fallback: () => 'default'
  },
  host: {
    parse: (raw) => {
      const address = typeof raw === 'string' ? raw.trim() : ''
      if (isIP(address) === 0) throw new InvalidSetting('an IPv4 or IPv6 address to listen on (not a host name), e.g. 0.0.0.0, 127.0.0.1 or ::')
      return address
    },
    fallback: () => '0.0.0.0'
  },
  broker: {
    parse: (raw) => {
      const what = 'an mqtt://, mqtts://, ws:// or wss:// URL'
      let url: URL
      try { url = new URL(typeof raw === 'string' ? raw.trim() : '') } catch { throw new InvalidSetting(what) }
      if (!BROKER_PROTOCOLS.includes(url.protocol) || url.hostname === '') throw new InvalidSetting(what)
      return (raw as string).trim()
    },
    fallback: none
  },
  mqttVersion: {
    parse: (raw) => {
      const text = String(raw).trim()
      if (text === '5' || text === '5.0') return 5
      if (text === '3.1.1' || text === '4') return 4
      throw new InvalidSetting('3.1.1 or 5')
    },
    fallback: none
  },
  tlsCert: { parse: pathSetting, fallback: none },
  tlsKey: { parse: pathSetting, fallback: none },
  mqttPort: { parse: port, fallback: (s) => s.tlsCert === undefined ? 1883 : 8883 },
  wsPort: { parse: (raw, base) => raw === 'off' || raw === false ? false : integerSetting(0, 65535, ', or "off"')(raw, base), fallback: (s) => s.tlsCert === undefined ? 8083 : 8084 },
  redis: {
    parse: (raw) => {
      // What gateway/cluster.ts connects to: redis://[user:password@]host[:port][/db] (no TLS: rediss:// is not supported there).
      const what = 'a redis:// URL, e.g. redis://redis.lan:6379/0'
      let url: URL
      try { url = new URL(typeof raw === 'string' ? raw.trim() : '') } catch { throw new InvalidSetting(what) }
      if (url.protocol !== 'redis:' || url.hostname === '' || !/^(\/\d*)?$/.test(url.pathname)) throw new InvalidSetting(what)
      return (raw as string).trim()
    },
    fallback: none,
    secret: true
  },
  httpPort: { parse: port, fallback: () => 8080 },
  httpToken: {
    parse: (raw) => {
      if (raw === 'off' || raw === false) return false
      if (typeof raw !== 'string' || !/^[A-Za-z0-9._~+/=-]{8,256}$/.test(raw)) throw new InvalidSetting('8 to 256 characters of A-Z a-z 0-9 . _ ~ + / = -, or "off"')
      return raw
    },
    fallback: none,
    secret: true
  },
  allowedHosts: { parse: names('a list of host names, e.g. "gw.example.org,proxy.lan"'), fallback: none },
  mesh: { parse: booleanSetting, fallback: () => true, flag: 'no-mesh' },
  meshPort: { parse: port, fallback: () => 0 },
  peers: { parse: (raw) => listSetting(raw, 'a list of host:port').map(hostPortSetting), fallback: () => [] },
  roster: { parse: pathSetting, fallback: none },
  fleetFile: { parse: pathSetting, fallback: none },
  credential: { parse: pathSetting, fallback: none },
  key: { parse: pathSetting, fallback: none },
  users: { parse: pathSetting, fallback: none },
  allowAnonymous: { parse: booleanSetting, fallback: () => false },
  tokenSkew: { parse: integerSetting(1, 86_400, ' (seconds)'), fallback: none },
  commanders: { parse: pathSetting, fallback: none },
  setUsers: { parse: names('a list of MQTT user names (of --users)'), fallback: none },
  rules: { parse: pathSetting, fallback: none },
  readerKey: { parse: pathSetting, fallback: none },
  memory: { parse: booleanSetting, fallback: () => false },
  database: {
    parse: (raw) => { if (typeof raw !== 'string' || !isPostgresUrl(raw.trim())) throw new InvalidSetting('a postgres:// URL'); return raw.trim() },
    fallback: none,
    secret: true
  },
  dataDir: { parse: pathSetting, fallback: (_, env) => join(home(env), 'gateway') },
  retentionDays: { parse: integerSetting(1, 36_500, ' (days)'), fallback: () => 30 },
  maxReadings: { parse: integerSetting(1, Number.MAX_SAFE_INTEGER), fallback: () => 1_000_000 },
  // Defaults are the registry's (gateway/devices.ts: 120 s, 1,000): unset here, so the library keeps one default.
  gapSettleMs: { parse: integerSetting(0, 86_400_000, ' (milliseconds)'), fallback: none },
  sequenceBlock: { parse: integerSetting(1, 1_000_000_000), fallback: none },
  homeassistant: { parse: booleanSetting, fallback: () => true, flag: 'no-homeassistant' },
  homeassistantPrefix: {
    parse: textSetting('MQTT topic levels of letters, digits, ".", "_" or "-" (no wildcards), e.g. homeassistant', /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/),
    fallback: none
  },
  logLevel: { parse: oneOfSetting(LOG_LEVELS), fallback: () => 'info' },
  logFormat: { parse: oneOfSetting(['json', 'text'] as const), fallback: none },
  logFile: { parse: pathSetting, fallback: none }
}

export const GATEWAY_SETTING_NAMES = Object.keys(SETTINGS) as GatewaySettingName[]

/** Flags that take no value: --no-mesh, --no-homeassistant, --allow-anonymous, --memory. */
const SWITCHES = new Set<GatewaySettingName>(['mesh', 'homeassistant', 'allowAnonymous', 'memory'])

/** The command's parseArgs options: a flag per setting, plus --config and --json. */
export const GATEWAY_FLAGS: Options = {
  ...Object.fromEntries(GATEWAY_SETTING_NAMES.map((name) => [SETTINGS[name].flag ?? flagName(name), { type: SWITCHES.has(name) ? 'boolean' as const : 'string' as const }])),
  config: { type: 'string' },
  json: { type: 'boolean' }
}

/** Where a setting is given, for messages: `--mqtt-port, IOTMESH_MQTT_PORT or "mqttPort" in the config file`. */
export function settingPlaces (name: GatewaySettingName): string {
  return `--${SETTINGS[name].flag ?? flagName(name)}, ${envName(name)} or "${name}" in the config file`
}

/**
 * Resolves the settings from parsed flags, the environment and the config file (pure). The
 * negative switches (--no-mesh, --no-homeassistant) set their setting to false.
 */
export function resolveGatewaySettings (input: { flags?: Record<string, unknown>, env?: Record<string, string | undefined>, file?: ConfigFile } = {}): ResolvedSettings<GatewaySettings> {
  const flags = { ...input.flags }
  for (const name of ['mesh', 'homeassistant'] as const) {
    const flag = SETTINGS[name].flag ?? name
    flags[flag] = flags[flag] === true ? false : undefined
  }
  for (const name of ['allowAnonymous', 'memory'] as const) {
    const flag = flagName(name)
    if (flags[flag] !== true) flags[flag] = undefined
  }
  return resolveSettings(SETTINGS, { ...input, flags })
}

/** Loads `--config FILE` (or IOTMESH_CONFIG) if any, and resolves the settings with the flags and environment. */
export async function loadGatewaySettings (flags: Record<string, unknown>, env: Record<string, string | undefined>): Promise<ResolvedSettings<GatewaySettings>> {
  const path = configFilePath(flags, env)
  const file = path === undefined ? undefined : await loadSettingsFile(path, '{"fleet": "home", "httpPort": 8080}')
  return resolveGatewaySettings({ flags, env, ...(file === undefined ? {} : { file }) })
}

/** The HTTP token file: in dataDir, else in $IOTMESH_HOME/gateway (HOME falling back to the user's home). */
export function tokenFileOf (settings: ResolvedSettings<GatewaySettings>, env: Record<string, string | undefined>): string {
  if (settings.sources.dataDir !== 'default') return join(settings.config.dataDir, 'http-token')
  return join(env.IOTMESH_HOME ?? join(env.HOME ?? homedir(), '.iotmesh'), 'gateway', 'http-token')
}
