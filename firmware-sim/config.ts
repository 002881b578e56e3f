import { join } from 'node:path'
import { DEFAULT_FLEET, FLEET_NAME_RULE, isFleetName, isMeshError, meshError } from '../shared/index.js'
import {
  InvalidSetting as Invalid, booleanSetting, configFilePath, hostPortSetting, envName as settingEnvName, flagName as settingFlagName, integerSetting as integer, listSetting as list,
  loadSettingsFile, oneOfSetting, parseSettingOf, pathSetting as path, resolveSettings, textSetting as text,
  type ConfigFile, type ConfigSource, type SettingsInput, type SettingsTable
} from '../shared/node.js'
import { checkFsync } from './outbox/disk.js'
import type { DeliveryPath, FsyncPolicy } from './outbox/types.js'
import type { BrokerAuth } from './device/types.js'
import { SENSOR_PRESETS, parseSensorList, type SensorName } from './sensors/registry.js'
import { parseActuatorList, type ActuatorSpec } from './commands/actuators.js'

/**
 * A device's configuration: one schema, the same names in a config file (JSON, or YAML by its
 * extension: `dataDir`), environment variables (`IOTMESH_DATA_DIR`) and flags (`--data-dir`).
 * Precedence: flags > environment > file > defaults. A bad value is ERR_BAD_ARGUMENT whose message
 * names the setting and where it came from: `interval from IOTMESH_INTERVAL must be an integer
 * from 100 to 86400000 (ms), got "fast"`. The machinery is the gateway's too (shared/node/settings.ts).
 */

export type DeviceMode = 'mesh' | 'broker' | 'hybrid'

export interface DeviceConfig {
  /** The device's name, as it announces itself (a DNS label: letters, digits, "-", "_"). */
  name: string
  /** The fleet it belongs to (one MQTT topic level). */
  fleet: string
  /** mesh: peer to peer only; broker: MQTT only; hybrid: both. */
  mode: DeviceMode
  /** MQTT broker URL (mqtt:, mqtts:, ws:, wss:); required in broker and hybrid mode. */
  broker: string | undefined
  /**
   * MQTT user name and password, when the broker asks for them (MQTT 3.1.1 §3.1.3.4). Prefer
   * IOTMESH_PASSWORD or the config file to --password: other users can read a process's flags.
   */
  username: string | undefined
  password: string | undefined
  /** Sampling interval, ms. */
  interval: number
  /** Sensors, presets expanded (see parseSensorList). */
  sensors: SensorName[]
  /** The device's key file. */
  key: string
  /** Where the device keeps its state (sequence file, outbox). */
  dataDir: string
  /** TCP port for mesh links; 0 picks a free one. */
  port: number
  /** Static peers, `host:port` (normalised: lower case, IPv6 in brackets). */
  peers: string[]
  /**
   * Relay mesh frames before verifying them (routing `relayBeforeVerify`, mesh/routing/early.ts;
   * default false): less latency for the devices behind this one, a forgery may go one hop further
   * (never to an application). README "Relaying before verifying".
   */
  relayBeforeVerify: boolean
  /**
   * Send readings that interest most of the fleet down a broadcast tree (routing `broadcastTree`,
   * mesh/routing/tree.ts; default false: by interest routing). README "Routing".
   */
  broadcastTree: boolean
  /** Seed of simulated sensors; undefined: not seeded (drawn at start). */
  seed: number | undefined
  /** Outbox fsync policy: always, never, or at most every N ms. */
  fsync: FsyncPolicy
  /** Outbox bounds. */
  outboxFrames: number
  outboxBytes: number
  // ---- broker access (WP 11-C, gateway/auth.ts) ----
  /**
   * How the device authenticates to the broker: token (its key: user name = its id, password = a
   * device token made for each CONNECT), password (username/password), none, or auto (the
   * default: password when one is set, else token).
   */
  brokerAuth: BrokerAuth
  // Closed mode (WP 11-D)
  /**
   * A fleet roster (JSON, `iotmesh keygen --json` entries): the device links to, and accepts frames
   * from, these keys only (mesh/roster.ts). Undefined: open mode.
   */
  roster: string | undefined
  // Commands and rules (issue 12)
  /** Who may command this device (a commanders file, shared/commanders.ts); none: it executes nothing. */
  commanders: string | undefined
  /** Actuators (relay, light, valve, thermostat), commanded with `<name>/set`; relay, light and valve may drive a GPIO line ("relay=gpiochip0:17"). */
  actuators: ActuatorSpec[]
  /** Automation rules it runs (a JSON or YAML rule file: iotmesh rules check FILE); mesh and hybrid mode. */
  rules: string | undefined
  // Fleet owners (issue 13)
  /** The fleet file (iotmesh fleet init): with it the device takes, spreads and enforces owner-signed revocations. */
  fleetFile: string | undefined
  /** Groups it belongs to (role names): owner-signed configurations for "group:<name>" apply to it (firmware-sim/device/signed-config.ts). */
  groups: string[]
  /** Encrypt readings to the readers of this owner-signed reader grant list (iotmesh fleet grant-reader); needs fleetFile. */
  encrypt: string | undefined
  /** Its enrollment credential (iotmesh fleet enroll), shown in link handshakes and its status; default DATA_DIR/credential.cbor if present. */
  credential: string | undefined
}

export type SettingName = keyof DeviceConfig
export type { ConfigFile, ConfigSource }

export type ConfigInput = SettingsInput<DeviceConfig>

export interface ResolvedConfig {
  config: DeviceConfig
  sources: Record<SettingName, ConfigSource>
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/
const BROKER_PROTOCOLS = ['mqtt:', 'mqtts:', 'ws:', 'wss:', 'tcp:', 'ssl:']

/** `host:port` or `[v6]:port`, normalised (lower case, IPv6 in brackets); ERR_BAD_ARGUMENT otherwise. */
export function parsePeer (entry: string): string {
  try {
    return hostPortSetting(entry)
  } catch (err) {
    if (err instanceof Invalid) throw meshError('ERR_BAD_ARGUMENT', `a peer must be ${err.message}`)
    throw err
  }
}

const SETTINGS: SettingsTable<DeviceConfig> = {
  name: { parse: text('a name of 1 to 63 letters, digits, "-" or "_", starting with a letter or digit', NAME), fallback: () => 'iotmesh-device' },
  fleet: { parse: (raw, base) => { const name = text(`a fleet name of ${FLEET_NAME_RULE}`)(raw, base); if (!isFleetName(name)) throw new Invalid(`a fleet name of ${FLEET_NAME_RULE}`); return name }, fallback: () => DEFAULT_FLEET },
  mode: { parse: oneOfSetting(['mesh', 'broker', 'hybrid']), fallback: () => 'mesh' },
  broker: {
    parse: (raw) => {
      const what = `a broker URL (${BROKER_PROTOCOLS.map((p) => `${p}//`).join(', ')}), e.g. mqtt://gateway.local:1883`
      if (typeof raw !== 'string') throw new Invalid(what)
      let url: URL
      try { url = new URL(raw.trim()) } catch { throw new Invalid(what) }
      if (!BROKER_PROTOCOLS.includes(url.protocol) || url.hostname === '') throw new Invalid(what)
      return raw.trim()
    },
    fallback: () => undefined
  },
  username: { parse: text('a user name'), fallback: () => undefined },
  password: {
    // Not trimmed (spaces are legal in a password); a number in a JSON file is taken as its digits.
    parse: (raw) => {
      const value = typeof raw === 'number' && Number.isFinite(raw) ? String(raw) : raw
      if (typeof value !== 'string' || value === '') throw new Invalid('a non-empty password')
      return value
    },
    fallback: () => undefined,
    secret: true
  },
  interval: { parse: integer(100, 86_400_000, ' (ms)'), fallback: () => 10_000 },
  sensors: {
    parse: (raw) => {
      const items = list(raw, 'a list of sensors, e.g. "temperature,humidity,battery" or "sim"')
      try {
        return parseSensorList(items)
      } catch (err) {
        if (isMeshError(err)) throw new Invalid(`a list of known sensors: ${err.message}`)
        throw err
      }
    },
    fallback: () => [...SENSOR_PRESETS.sim]
  },
  dataDir: { parse: path, fallback: (_, env) => env.IOTMESH_HOME ?? (env.HOME === undefined ? '.iotmesh' : join(env.HOME, '.iotmesh')) },
  key: { parse: path, fallback: (partial) => join(partial.dataDir as string, 'device.key') },
  port: { parse: integer(0, 65535), fallback: () => 0 },
  peers: { parse: (raw) => list(raw, 'a list of host:port').map(hostPortSetting), fallback: () => [] },
  relayBeforeVerify: { parse: booleanSetting, fallback: () => false },
  broadcastTree: { parse: booleanSetting, fallback: () => false },
  seed: { parse: integer(0, 0xffff_ffff), fallback: () => undefined },
  fsync: {
    parse: (raw) => {
      const value = typeof raw === 'string' && /^\d+$/.test(raw.trim()) ? Number(raw) : raw
      try { return checkFsync(value as FsyncPolicy) } catch { throw new Invalid('"always", "never", or a number of ms ≥ 0 between fsyncs') }
    },
    fallback: () => 'always'
  },
  outboxFrames: { parse: integer(1, 10_000_000), fallback: () => 100_000 },
  outboxBytes: { parse: integer(1024, 2 ** 40, ' (bytes)'), fallback: () => 16 * 1024 * 1024 },
  // ---- broker access (WP 11-C) ----
  brokerAuth: { parse: oneOfSetting(['auto', 'token', 'password', 'none']), fallback: () => 'auto' },
  // Closed mode (WP 11-D)
  roster: { parse: path, fallback: () => undefined },
  commanders: { parse: path, fallback: () => undefined },
  actuators: {
    parse: (raw) => {
      const items = list(raw, 'a list of actuators, e.g. "relay,light" or "relay=gpiochip0:17"')
      try {
        return parseActuatorList(items.join(','))
      } catch (err) {
        if (isMeshError(err)) throw new Invalid(`a list of known actuators: ${err.message}`)
        throw err
      }
    },
    fallback: () => []
  },
  rules: { parse: path, fallback: () => undefined },
  fleetFile: { parse: path, fallback: () => undefined },
  groups: {
    parse: (raw) => {
      const what = 'a list of group names: lower-case letters, digits, "_" or "-", at most 32 each'
      const items = list(raw, what)
      if (!items.every((g) => /^[a-z0-9][a-z0-9_-]{0,31}$/.test(g))) throw new Invalid(what)
      return items
    },
    fallback: () => []
  },
  // "encrypt": "readers.cose" or, in a config file, { "readers": "readers.cose" }
  encrypt: {
    parse: (raw, base) => path(raw !== null && typeof raw === 'object' && 'readers' in raw ? (raw as { readers: unknown }).readers : raw, base),
    fallback: () => undefined
  },
  credential: { parse: path, fallback: () => undefined }
}

/** In resolution order: dataDir before key, whose default lies in it. */
export const SETTING_NAMES = Object.keys(SETTINGS) as SettingName[]

/** Settings that are switches: `--relay-before-verify` alone means true (and `=false` turns it off). */
export const SETTING_SWITCHES: ReadonlySet<SettingName> = new Set(['relayBeforeVerify', 'broadcastTree'])

/**
 * Checks one setting's value as a config file's would be checked (same validators, same message:
 * `interval from <source> must be …`), for values that come from elsewhere (a signed configuration,
 * firmware-sim/device/signed-config.ts). ERR_BAD_ARGUMENT naming the setting and `source`.
 */
export function parseSetting<K extends SettingName> (name: K, raw: unknown, source: string): DeviceConfig[K] {
  return parseSettingOf(SETTINGS, name, raw, source)
}

/** `dataDir` → `IOTMESH_DATA_DIR`. */
export const envName: (setting: SettingName) => string = settingEnvName

/** `dataDir` → `data-dir`. */
export const flagName: (setting: SettingName) => string = settingFlagName

/**
 * Resolves a device's configuration from flags, environment and file; pure (it reads no file and
 * no process state). Throws ERR_BAD_ARGUMENT naming the setting and its source.
 */
export function resolveConfig (input: ConfigInput = {}): ResolvedConfig {
  const { config: done, sources, labels } = resolveSettings(SETTINGS, input)
  if (done.brokerAuth === 'password' && done.password === undefined) {
    throw meshError('ERR_BAD_ARGUMENT', `brokerAuth is password (from ${labels.brokerAuth}) but no password is set (--password, IOTMESH_PASSWORD or "password" in the config file)`, { details: { setting: 'password', source: labels.brokerAuth } })
  }
  if (done.mode !== 'mesh' && done.broker === undefined) {
    throw meshError('ERR_BAD_ARGUMENT', `broker must be set (--broker, IOTMESH_BROKER or "broker" in the config file) when mode is ${done.mode} (mode from ${labels.mode})`, { details: { setting: 'broker', source: labels.mode } })
  }
  return { config: done, sources }
}

/** The delivery paths of a mode: what the outbox waits for. */
export function deliveryPaths (mode: DeviceMode): DeliveryPath[] {
  return mode === 'hybrid' ? ['mesh', 'broker'] : [mode]
}

/** Reads a config file (JSON, or YAML for .yaml/.yml): an object of settings. Errors are ERR_BAD_ARGUMENT naming the file. */
export async function loadConfigFile (file: string): Promise<ConfigFile> {
  return await loadSettingsFile(file, '{"name": "kitchen", "mode": "mesh"}')
}

/**
 * Loads the config file named by `--config` or IOTMESH_CONFIG (if any) and resolves the
 * configuration with the flags and environment.
 */
export async function loadDeviceConfig (input: { flags?: Record<string, unknown>, env?: Record<string, string | undefined>, defaults?: Partial<DeviceConfig> } = {}): Promise<ResolvedConfig> {
  const configPath = configFilePath(input.flags, input.env)
  const file = configPath === undefined ? undefined : await loadConfigFile(configPath)
  return resolveConfig({ ...input, ...(file === undefined ? {} : { file }) })
}
