import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { isMeshError, meshError, parseCommanders, type Commanders, type KeyPair, type PublicKey } from '../shared/index.js'
import { loadKeyFile, type ResolvedSettings } from '../shared/node.js'
import { loadRoster } from '../mesh/index.js'
import type { GatewayInit, GatewayLogInit } from '../gateway/index.js'
import { loadFleetPolicy, parseRules, type RuleSet } from '../firmware-sim/index.js'
import { loadReaderKeyFile } from './reader-key.js'
import { settingPlaces, tokenFileOf, type GatewaySettingName, type GatewaySettings } from './gateway-config.js'

/**
 * From the gateway's settings (bin/gateway-config.ts) to what `iotmesh gateway` starts: the
 * settings that go together are checked together (a message names each one's source), and the
 * files they name are read, so that a bad file is a usage error before any port is opened.
 */

export interface GatewayOptions {
  init: GatewayInit
  ports: { mqtt: number, ws: number | false, http: number, mesh: number }
  keys?: KeyPair
  roster?: PublicKey[]
  host: string
  rules?: { set: RuleSet, file: string }
  log: GatewayLogInit
  settings: ResolvedSettings<GatewaySettings>
}

function bad (message: string): Error {
  return meshError('ERR_BAD_ARGUMENT', message)
}

export async function gatewayOptions (settings: ResolvedSettings<GatewaySettings>, env: Record<string, string | undefined>): Promise<GatewayOptions> {
  const { config: c, sources, labels } = settings
  const given = (name: GatewaySettingName): boolean => sources[name] !== 'default'
  // As a person gave it: `--data-dir`, `IOTMESH_DATA_DIR`, `dataDir in /etc/iotmesh/gateway.yaml`.
  const named = (name: GatewaySettingName): string => sources[name] === 'file' ? `${name} in ${labels[name]}` : sources[name] === 'default' ? name : labels[name]
  const embedded = c.broker === undefined
  if (!embedded) {
    const forEmbedded = (['mqttPort', 'wsPort', 'tlsCert', 'tlsKey', 'redis', 'users', 'tokenSkew', 'setUsers'] as const).filter(given)
    if (c.allowAnonymous) forEmbedded.push('allowAnonymous' as never)
    if (forEmbedded.length > 0) {
      throw bad(`${forEmbedded.map(named).join(', ')}: for the embedded broker; with ${named('broker')} the gateway listens on no MQTT port, and access is that broker's configuration`)
    }
  } else if (c.mqttVersion !== undefined) {
    throw bad(`${named('mqttVersion')} is for --broker: the embedded broker (Aedes) speaks MQTT 3.1.1 only; for MQTT 5, run an MQTT 5 broker and join it with --broker URL --mqtt-version 5`)
  }
  if ((c.tlsCert === undefined) !== (c.tlsKey === undefined)) {
    throw bad(`${named(c.tlsCert === undefined ? 'tlsKey' : 'tlsCert')} needs ${c.tlsCert === undefined ? 'tlsCert' : 'tlsKey'} too (${settingPlaces(c.tlsCert === undefined ? 'tlsCert' : 'tlsKey')})`)
  }
  if (!c.mesh) {
    const forMesh = (['meshPort', 'peers'] as const).filter(given)
    if (forMesh.length > 0) throw bad(`${forMesh.map(named).join(', ')}: for the mesh, which is off (${named('mesh')})`)
  }
  const stores = (['dataDir', 'database'] as const).filter(given)
  if (c.memory) stores.push('memory' as never)
  if (stores.length > 1) throw bad(`${stores.map(named).join(' and ')} exclude each other: the state goes in one place`)
  if (!c.homeassistant && given('homeassistantPrefix')) throw bad(`${named('homeassistantPrefix')} has no use with Home Assistant off (${named('homeassistant')})`)

  const keys = c.key === undefined ? undefined : await readKey(c.key, labels.key)
  const roster = c.roster === undefined ? undefined : await onFile(labels.roster, async () => (await loadRoster(c.roster as string)).map((entry) => entry.publicKey))
  const credentials = c.users === undefined ? undefined : await readUsers(c.users, labels.users)
  if (c.setUsers !== undefined) {
    const unknown = c.setUsers.find((u) => credentials?.[u] === undefined)
    if (unknown !== undefined) throw bad(`${named('setUsers')} names MQTT users of users (${settingPlaces('users')}); ${JSON.stringify(unknown)} is not one`)
  }
  const commanders = c.commanders === undefined ? undefined : await readCommanders(c.commanders, labels.commanders)
  const rules = c.rules === undefined ? undefined : await readRules(c.rules, labels.rules)
  const fleetPolicy = c.fleetFile === undefined ? undefined : await loadFleetPolicy(c.fleetFile)
  if (fleetPolicy !== undefined && fleetPolicy.fleet !== c.fleet) {
    throw bad(`${named('fleetFile')} is for fleet ${JSON.stringify(fleetPolicy.fleet)}, the gateway serves ${JSON.stringify(c.fleet)} (${named('fleet')}): give --fleet ${fleetPolicy.fleet}`)
  }
  const credential = c.credential === undefined ? undefined : await onFile(labels.credential, async () => new Uint8Array(await readFile(c.credential as string)))
  if (credential !== undefined && fleetPolicy === undefined) throw bad(`${named('credential')} goes with fleetFile (${settingPlaces('fleetFile')})`)
  const readerKey = c.readerKey === undefined ? undefined : await onFile(labels.readerKey, async () => await loadReaderKeyFile(c.readerKey as string))
  const store = c.memory ? undefined : c.database ?? join(c.dataDir, `${c.fleet}.db`)
  const journald = env.JOURNAL_STREAM !== undefined && env.JOURNAL_STREAM !== ''
  const init: GatewayInit = {
    fleet: c.fleet,
    host: c.host,
    port: c.mqttPort,
    wsPort: c.wsPort,
    http: { port: c.httpPort, host: c.host, tokenFile: tokenFileOf(settings, env), ...(c.httpToken === undefined ? {} : { token: c.httpToken }), ...(c.allowedHosts === undefined ? {} : { allowedHosts: c.allowedHosts }) },
    mesh: c.mesh ? { host: c.host, port: c.meshPort, peers: c.peers, credential } : false,
    ...(c.broker === undefined ? {} : { broker: c.mqttVersion === undefined ? c.broker : { url: c.broker, protocolVersion: c.mqttVersion } }),
    ...(roster === undefined ? {} : { roster }),
    allowAnonymous: c.allowAnonymous,
    ...(credentials === undefined ? {} : { credentials }),
    ...(c.tokenSkew === undefined ? {} : { tokens: { maxSkewSeconds: c.tokenSkew } }),
    ...(c.tlsCert === undefined || c.tlsKey === undefined ? {} : { tls: { cert: c.tlsCert, key: c.tlsKey } }),
    ...(c.redis === undefined ? {} : { cluster: { redis: c.redis } }),
    ...(c.gapSettleMs === undefined && c.sequenceBlock === undefined
      ? {}
      : { registry: { ...(c.gapSettleMs === undefined ? {} : { gapSettleMs: c.gapSettleMs }), ...(c.sequenceBlock === undefined ? {} : { sequenceBlock: c.sequenceBlock }) } }),
    ...(store === undefined ? {} : { store, state: { retention: { maxAgeMs: c.retentionDays * 86_400_000, maxReadings: c.maxReadings } } }),
    commanders,
    ...(fleetPolicy === undefined ? {} : { fleetPolicy }),
    ...(c.setUsers === undefined ? {} : { commands: { set: { users: c.setUsers } } }),
    homeassistant: c.homeassistant ? (c.homeassistantPrefix === undefined ? {} : { prefix: c.homeassistantPrefix }) : false,
    readerKey
  }
  return {
    init,
    ports: { mqtt: c.mqttPort, ws: c.wsPort, http: c.httpPort, mesh: c.meshPort },
    host: c.host,
    ...(keys === undefined ? {} : { keys }),
    ...(roster === undefined ? {} : { roster }),
    ...(rules === undefined ? {} : { rules }),
    log: { level: c.logLevel, format: c.logFormat ?? (c.logFile !== undefined || journald ? 'json' : 'text'), ...(c.logFile === undefined ? {} : { file: c.logFile }) },
    settings
  }
}

/** A file named by a setting that cannot be read or parsed: a usage error naming the setting's source. */
async function onFile<T> (label: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read()
  } catch (err) {
    if (isMeshError(err) && err.code !== 'ERR_BAD_ARGUMENT') throw meshError(err.code, `${label}: ${err.message}`, { cause: err })
    throw meshError('ERR_BAD_ARGUMENT', `${label}: ${isMeshError(err) ? err.message : (err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err })
  }
}

async function readKey (path: string, label: string): Promise<KeyPair> {
  try {
    return await loadKeyFile(path)
  } catch (err) {
    // A key file that others can read keeps its own code (as ssh refuses an open key); anything else is a bad key setting.
    if (isMeshError(err) && err.code === 'ERR_KEY_PERMISSIONS') throw meshError(err.code, `${label}: ${err.message}`, { cause: err })
    throw meshError('ERR_BAD_ARGUMENT', `${label}: ${isMeshError(err) ? err.message : `${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`}`, { cause: err })
  }
}

/** The commanders file (shared/commanders.ts). */
async function readCommanders (path: string, label: string): Promise<Commanders> {
  try {
    return parseCommanders(JSON.parse(await readFile(path, 'utf8')), path)
  } catch (err) {
    const why = isMeshError(err) ? err.message : `cannot read ${path} as JSON (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`
    throw meshError('ERR_BAD_ARGUMENT', `${label}: ${why}`, { cause: err })
  }
}

/** The rule file (firmware-sim/rules/): validated before the gateway starts. */
async function readRules (path: string, label: string): Promise<{ set: RuleSet, file: string }> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw meshError('ERR_BAD_ARGUMENT', `${label}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err })
  }
  try {
    return { set: parseRules(text, path), file: path }
  } catch (err) {
    throw meshError('ERR_BAD_ARGUMENT', `${label}: ${(err as Error).message}`, { cause: err })
  }
}

/** The MQTT users file: a JSON object of user name -> password (kept private: it is the secret). */
async function readUsers (path: string, label: string): Promise<Record<string, string>> {
  let parsed: unknown
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'))
  } catch (err) {
    throw meshError('ERR_BAD_ARGUMENT', `${label}: cannot read ${path} as JSON (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err })
  }
  const entries = parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? Object.entries(parsed) : undefined
  if (entries === undefined || entries.length === 0 || !entries.every(([user, pass]) => user !== '' && typeof pass === 'string' && pass !== '')) {
    throw meshError('ERR_BAD_ARGUMENT', `${label}: ${path} must hold a JSON object of user names to non-empty passwords, e.g. {"grafana": "long-random-secret"}`)
  }
  return Object.fromEntries(entries) as Record<string, string>
}
