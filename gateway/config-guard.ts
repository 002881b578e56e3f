import {
  CONFIG_LEVEL, GRANTS_TARGET, TOPIC_ROOT, checkNewer, configTopic, isConfigTarget, isMeshError, meshError, verifyFleetConfig,
  type ErrorCode, type FleetConfig, type FleetPolicy
} from '../shared/index.js'

/**
 * What the embedded broker accepts on `iotmesh/<fleet>/$config/<target>`, where owner-signed device
 * configurations (shared/fleet-config.ts) are retained for devices on the broker path: only a
 * configuration the fleet's owners signed (the fleet file's threshold), for the target its topic
 * names, of a higher version than the one this broker already took for that topic. Without a
 * fleet file (`iotmesh gateway --fleet-file`) nothing is accepted there; a clear (an empty retained
 * payload) is refused too, or anyone could take a fleet's configuration off the broker. Refusals
 * are counted as `bad_config` with the verification's code in the message. Pure but for the
 * versions it remembers (at most `max` topics).
 */

export type ConfigVerdict = { ok: true, config: FleetConfig } | { ok: false, code: ErrorCode, message: string }

/** The target named by a $config topic of `fleet`, or undefined for any other topic. */
export function configTopicTarget (topic: string, fleet: string): string | undefined {
  const prefix = `${TOPIC_ROOT}/${fleet}/${CONFIG_LEVEL}/`
  return topic.startsWith(prefix) ? topic.slice(prefix.length) : undefined
}

/** True for a filter that reads only $config topics of `fleet` (what a device subscribes to). */
export function isConfigFilter (filter: string, fleet: string): boolean {
  const target = configTopicTarget(filter, fleet)
  return target !== undefined && (target === '+' || target === '#' || target === GRANTS_TARGET || isConfigTarget(target))
}

export class ConfigGuard {
  readonly #versions = new Map<string, number>()
  /** Called with each configuration taken from a client (the gateway hands it to the mesh). */
  onTaken: ((config: FleetConfig, bytes: Uint8Array) => void) | undefined
  /** `policy` follows a newer signed fleet file the gateway's mesh node takes (gateway.ts). */
  constructor (readonly fleet: string, public policy: FleetPolicy | undefined, readonly max = 10_000) {}

  /** A configuration taken elsewhere (the mesh) and retained by the gateway itself: a client may then only publish a higher version. */
  note (target: string, version: number): void {
    const topic = configTopic(this.fleet, target)
    if ((this.#versions.get(topic) ?? 0) < version && (this.#versions.has(topic) || this.#versions.size < this.max)) this.#versions.set(topic, version)
  }

  /** The verdict on a publish to `topic`; undefined when it is not a $config topic of this fleet. */
  check (topic: string, payload: Uint8Array): ConfigVerdict | undefined {
    const target = configTopicTarget(topic, this.fleet)
    if (target === undefined) return undefined
    try {
      if (this.policy === undefined) throw meshError('ERR_BAD_CONFIG', `${topic}: this gateway has no fleet file (iotmesh gateway --fleet-file), so it takes no configuration`)
      if (payload.length === 0) throw meshError('ERR_BAD_CONFIG', `${topic}: a signed configuration cannot be cleared (publish a higher version instead)`)
      const config = verifyFleetConfig(payload, this.policy)
      if (config.target !== target) throw meshError('ERR_BAD_CONFIG', `${topic}: the configuration is signed for ${config.target}, not ${target}`)
      checkNewer(config.version, this.#versions.get(topic), target)
      if (!this.#versions.has(topic) && this.#versions.size >= this.max) throw meshError('ERR_TABLE_FULL', `configurations of ${this.max} targets taken already`)
      this.#versions.set(topic, config.version)
      this.onTaken?.(config, payload)
      return { ok: true, config }
    } catch (err) {
      if (!isMeshError(err)) throw err
      return { ok: false, code: err.code, message: `${topic}: ${err.code}: ${err.message}` }
    }
  }
}
