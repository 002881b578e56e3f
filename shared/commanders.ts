import { fromBase64 } from './bytes.js'
import { meshError } from './errors.js'
import { deviceIdFromPublicKey, type DeviceId } from './identity.js'
import { topicMatches, validateFilter } from './topics.js'
import type { PublicKey } from './crypto/ed25519.js'

/**
 * Who may command a device, and what (`iotmesh device --commanders FILE`; the gateway checks the
 * same file before it forwards a command: `iotmesh gateway --commanders FILE`): public keys, each
 * with action patterns. None by default: a device executes nothing until told whom to obey.
 *
 *   { "commanders": [ { "name": "hall-sensor", "key": "<base64url public key>", "actions": ["light/set", "state/get"] },
 *                     { "name": "owner", "key": "…", "actions": ["#"] } ] }
 *
 * Patterns are matched level by level as MQTT topic filters (3.1.1 §4.7): "+" one level, "#" the
 * rest, so "relay/#" allows every relay action and "+/set" every set.
 */

export interface Commander {
  readonly id: DeviceId
  readonly publicKey: PublicKey
  readonly name: string | undefined
  readonly actions: readonly string[]
}

/** Who may command a device, and which actions: public keys with MQTT-style action patterns (see the file's header). */
export class Commanders {
  readonly #byId = new Map<DeviceId, Commander>()

  constructor (list: Iterable<Commander> = []) {
    for (const c of list) this.#byId.set(c.id, c)
  }

  get size (): number { return this.#byId.size }

  get (id: DeviceId): Commander | undefined {
    return this.#byId.get(id)
  }

  allowed (id: DeviceId, action: string): boolean {
    return this.#byId.get(id)?.actions.some((pattern) => topicMatches(pattern, action)) === true
  }

  list (): Commander[] { return [...this.#byId.values()] }
}

/** Parses a commanders file's JSON; errors name the entry and the field (ERR_BAD_ARGUMENT). */
export function parseCommanders (json: unknown, source = 'commanders'): Commanders {
  const list = (json as { commanders?: unknown } | null)?.commanders
  if (json === null || typeof json !== 'object' || !Array.isArray(list)) throw meshError('ERR_BAD_ARGUMENT', `${source}: expected {"commanders": [ … ]}`)
  return new Commanders(list.map((entry: unknown, i): Commander => {
    const at = `${source}: commanders[${i}]`
    if (entry === null || typeof entry !== 'object') throw meshError('ERR_BAD_ARGUMENT', `${at} is not an object`)
    const { key, actions, name } = entry as Record<string, unknown>
    const publicKey = typeof key === 'string' ? fromBase64(key) : undefined
    if (publicKey?.length !== 32) throw meshError('ERR_BAD_ARGUMENT', `${at}.key is not a 32-byte Ed25519 public key in base64url`)
    if (!Array.isArray(actions) || actions.length === 0) throw meshError('ERR_BAD_ARGUMENT', `${at}.actions is a non-empty list of action patterns, e.g. ["relay/set"] or ["#"]`)
    for (const [j, pattern] of actions.entries()) {
      if (typeof pattern !== 'string') throw meshError('ERR_BAD_ARGUMENT', `${at}.actions[${j}] is not text`)
      try { validateFilter(pattern) } catch (err) { throw meshError('ERR_BAD_ARGUMENT', `${at}.actions[${j}]: ${(err as Error).message}`) }
    }
    if (name !== undefined && typeof name !== 'string') throw meshError('ERR_BAD_ARGUMENT', `${at}.name is not text`)
    return { id: deviceIdFromPublicKey(publicKey), publicKey, name, actions: actions as string[] }
  }))
}
