import { readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import {
  checkNewer, fromBase64, isMeshError, meshError, peekFleetConfig, toBase64url, verifyFleetConfig,
  type Ed25519, type ErrorCode, type FleetConfig, type FleetPolicy, type RemoteSetting, type RemoteSettings, type SenmlRecord
} from '../../shared/index.js'
import { parseSetting } from '../config.js'
import type { ActuatorSpec } from '../commands/actuators.js'
import { checkRules, type RuleSet } from '../rules/rules.js'
import type { SensorName } from '../sensors/registry.js'

/**
 * What a device does with owner-signed configurations (shared/fleet-config.ts) that reach it
 * (through the mesh: mesh/routing/handlers/config.ts): it applies the highest valid version it sees
 * for itself (its id) or one of its groups, keeps it in `<dataDir>/signed-config.json` and applies
 * it again at every start, before it samples.
 *
 * - One version sequence per device, whatever the target: a configuration whose version is not
 *   above the applied one is refused with ERR_CONFIG_STALE (no rollback by replaying an older one,
 *   even one signed for a group the device is in). The same version seen again is ignored.
 * - Its settings go through the same validators as the device's configuration file
 *   (firmware-sim/config.ts parseSetting; rules through the rule schema): one that fails is refused
 *   with ERR_BAD_CONFIG naming the setting, and the device runs on with what it had.
 * - A refusal is reported only for configurations the owners did sign (a forgery is the mesh's to
 *   refuse and score: it never reaches the device's status, which anyone could otherwise fill).
 * - The settings a configuration names are laid over the device's own configuration (flags,
 *   environment, file); settings it does not name keep the device's own values.
 * - `interval` takes effect at once; `sensors`, `actuators` and `rules` at the next start (the
 *   state lists them under `restart` until then).
 *
 * The device reports its state (version applied, last refusal with its code and reason) as a
 * signed frame on its device topic `config` (CONFIG_TOPIC): the gateway shows it per device.
 */

export const CONFIG_TOPIC = 'config'
const FILE = 'signed-config.json'
/** Settings that apply while the device runs; the rest at its next start. */
const LIVE: ReadonlySet<RemoteSetting> = new Set(['interval'])

export interface Refusal { version: number, target: string, code: ErrorCode, message: string }

export interface ConfigState {
  /** The version applied, and its target; undefined: none yet. */
  version?: number
  target?: string
  /** Settings applied that take effect at the next start. */
  restart?: RemoteSetting[]
  /** The last configuration refused. */
  refused?: Refusal
}

/** The settings of a configuration, checked as the device's own configuration is. */
export interface CheckedSettings {
  interval?: number
  sensors?: SensorName[]
  actuators?: ActuatorSpec[]
  rules?: RuleSet
}

/** Checks remote settings with the device configuration's validators; ERR_BAD_CONFIG naming the setting. */
export function checkRemoteSettings (settings: RemoteSettings, source: string, options: { rules?: boolean } = {}): CheckedSettings {
  const out: CheckedSettings = {}
  try {
    if (settings.rules !== undefined && options.rules === false) {
      throw meshError('ERR_BAD_CONFIG', `rules from ${source}: rules run on devices over the mesh, and this device has no mesh path (mode broker)`, { details: { setting: 'rules', source } })
    }
    if (settings.interval !== undefined) out.interval = parseSetting('interval', settings.interval, source)
    if (settings.sensors !== undefined) out.sensors = parseSetting('sensors', settings.sensors, source)
    if (settings.actuators !== undefined) out.actuators = parseSetting('actuators', settings.actuators, source)
    if (settings.rules !== undefined) out.rules = checkRules(settings.rules, `rules from ${source}`)
  } catch (err) {
    if (!isMeshError(err)) throw err
    throw meshError('ERR_BAD_CONFIG', err.message, { cause: err, ...(err.details === undefined ? {} : { details: err.details }) })
  }
  return out
}

export type Outcome =
  | { outcome: 'applied', config: FleetConfig, settings: CheckedSettings, live: boolean }
  | { outcome: 'ignored' }
  | { outcome: 'refused', refusal: Refusal }

export interface SignedConfigInit {
  policy: FleetPolicy
  dataDir?: string | undefined
  /** The targets this device answers to (shared/fleet-config.ts configTargetsOf). */
  targets: readonly string[]
  /** False on a device without a mesh path: rules are refused (they would keep it from starting). */
  rules?: boolean
}

/** A device's signed configuration: verified against the fleet's owners, the newest version kept on disk. */
export class SignedConfig {
  readonly #init: SignedConfigInit
  readonly #ed25519: Ed25519 | undefined
  #applied: { config: FleetConfig, bytes: Uint8Array, settings: CheckedSettings } | undefined
  #refused: Refusal | undefined
  readonly #restart = new Set<RemoteSetting>()
  #writing = Promise.resolve()

  private constructor (init: SignedConfigInit, ed25519: Ed25519 | undefined) {
    this.#init = { ...init }
    this.#ed25519 = ed25519
  }

  /**
   * Opens the state kept under `dataDir` (none yet: a fresh one). A kept configuration that no
   * longer holds (another fleet file, settings the device no longer takes) is set aside as refused.
   */
  static async open (init: SignedConfigInit, components: { ed25519?: Ed25519 } = {}): Promise<SignedConfig> {
    const state = new SignedConfig(init, components.ed25519)
    if (init.dataDir === undefined) return state
    let kept: { applied?: unknown, refused?: unknown }
    try {
      kept = JSON.parse(await readFile(join(init.dataDir, FILE), 'utf8')) as typeof kept
    } catch {
      return state
    }
    const refused = kept.refused as Refusal | undefined
    if (refused !== undefined && typeof refused === 'object' && Number.isSafeInteger(refused.version)) state.#refused = refused
    const bytes = typeof kept.applied === 'string' ? fromBase64(kept.applied) : undefined
    if (bytes === undefined) return state
    try {
      const config = verifyFleetConfig(bytes, init.policy, state.#options())
      state.#applied = { config, bytes, settings: checkRemoteSettings(config.settings, `signed configuration v${config.version}`, { rules: init.rules !== false }) }
    } catch (err) {
      state.#refused = { version: 0, target: '', code: isMeshError(err) ? err.code : 'ERR_BAD_CONFIG', message: `the kept configuration no longer holds: ${(err as Error).message}` }
    }
    return state
  }

  /** A newer fleet file is in force (a broker device follows the one retained at the broker): configurations are verified against its owners. */
  set policy (policy: FleetPolicy) { this.#init.policy = policy }

  /** The settings of the applied configuration, checked (empty: none). */
  get settings (): CheckedSettings { return this.#applied?.settings ?? {} }

  /** The applied configuration's signed bytes (the node hands it on), if any. */
  get bytes (): Uint8Array | undefined { return this.#applied?.bytes }

  get state (): ConfigState {
    const applied = this.#applied?.config
    return {
      ...(applied === undefined ? {} : { version: applied.version, target: applied.target }),
      ...(this.#restart.size === 0 ? {} : { restart: [...this.#restart] }),
      ...(this.#refused === undefined ? {} : { refused: { ...this.#refused } })
    }
  }

  /** The state as SenML records (the device publishes them on CONFIG_TOPIC). */
  records (): SenmlRecord[] {
    const state = this.state
    const out: SenmlRecord[] = [{ n: 'config_version', v: state.version ?? 0 }]
    if (state.restart !== undefined) out.push({ n: 'config_restart', vs: state.restart.join(',') })
    if (state.refused !== undefined) {
      out.push({ n: 'config_refused_version', v: state.refused.version }, { n: 'config_refused', vs: `${state.refused.code}: ${state.refused.message}`.slice(0, 240) })
    }
    return out
  }

  /**
   * Considers a configuration (verified already when `verified` is given). Applies it when it is
   * for this device, newer than the applied one and its settings hold; refuses it (kept, reported)
   * when the owners signed it but it is stale or its settings do not hold; ignores the rest.
   */
  async consider (bytes: Uint8Array, verified?: FleetConfig): Promise<Outcome> {
    let target: string
    let version: number
    try {
      ({ target, version } = verified ?? peekFleetConfig(bytes))
    } catch {
      return { outcome: 'ignored' }
    }
    if (!this.#init.targets.includes(target)) return { outcome: 'ignored' }
    const applied = this.#applied
    if (applied !== undefined && version === applied.config.version && target === applied.config.target) return { outcome: 'ignored' }
    if (this.#refused?.version === version && this.#refused.target === target) return { outcome: 'ignored' }
    let config: FleetConfig
    try {
      config = verified ?? verifyFleetConfig(bytes, this.#init.policy, this.#options())
    } catch {
      return { outcome: 'ignored' } // not the owners': nothing to report
    }
    let settings: CheckedSettings
    try {
      checkNewer(version, applied?.config.version, target)
      settings = checkRemoteSettings(config.settings, `signed configuration v${version}`, { rules: this.#init.rules !== false })
    } catch (err) {
      if (!isMeshError(err)) throw err
      this.#refused = { version, target, code: err.code, message: err.message }
      await this.#save()
      return { outcome: 'refused', refusal: { ...this.#refused } }
    }
    this.#applied = { config, bytes, settings }
    this.#restart.clear()
    for (const key of Object.keys(config.settings) as RemoteSetting[]) if (!LIVE.has(key)) this.#restart.add(key)
    await this.#save()
    return { outcome: 'applied', config, settings, live: this.#restart.size === 0 }
  }

  async #save (): Promise<void> {
    const dataDir = this.#init.dataDir
    if (dataDir === undefined) return
    const text = JSON.stringify({ applied: this.#applied === undefined ? null : toBase64url(this.#applied.bytes), ...(this.#refused === undefined ? {} : { refused: this.#refused }) })
    const path = join(dataDir, FILE)
    const write = this.#writing.then(async () => {
      await writeFile(`${path}.tmp`, text, { mode: 0o600 })
      await rename(`${path}.tmp`, path)
    })
    this.#writing = write.catch(() => {})
    await write
  }

  #options (): { ed25519?: Ed25519 } {
    return this.#ed25519 === undefined ? {} : { ed25519: this.#ed25519 }
  }
}
