import {
  actuatorKind, Commanders, checkAction, cmdTopic, encodeCommand, isMeshError, meshError, resultJsonTopic,
  type Clock, type CommandResult, type DeviceId, type Ed25519, type KeyPair
} from '../shared/index.js'
import { TokenBucket } from '../mesh/index.js'
import { CommandGuard } from './commands-guard.js'
import type { CommandTopicKind, CommandTopics, DropInfo, MessageSource, Outcome } from './ingest.js'
import { DROP_REASONS, type DropReason } from './reasons.js'
import type { ErrorCode } from '../shared/index.js'
import type { GatewayTrust } from './trust.js'

/**
 * The gateway as a commander (issue 12):
 *
 * - `command({ target, action, args })` signs a command with the gateway's own key, publishes it on
 *   iotmesh/<fleet>/<target>/cmd/<action> (QoS 1) and resolves with the device's verified result,
 *   or rejects with ERR_TIMEOUT. `via: 'mesh'` hands the signed bytes to the `meshCommand` hook
 *   (by default the gateway's mesh node, MeshNode.command: ERR_NO_ROUTE, ERR_TIMEOUT) and verifies
 *   what it answers the same way.
 * - The publish guard of the command topics (gateway/commands-guard.ts) runs for every client
 *   publish on the embedded broker; a verified result is mirrored as JSON on
 *   …/<target>/result/<issuer>/json, and answers the gateway's own command when it is one.
 * - `…/set/<actuator>` for the MQTT ecosystem (Home Assistant, Node-RED): an MQTT user listed in
 *   `set.users` publishes plain JSON; the gateway turns it into `<actuator>/set`, signs it with its
 *   own key (which the device must allow in its --commanders file), sends it, and mirrors the
 *   result as JSON on resultJsonTopic(fleet, id, gatewayId). Bounded: payload size, rate per user.
 *
 *   set JSON                  → arguments of <actuator>/set
 *   {"on": true, "level": 40} → the object as it is (any actuator)
 *   true / false / ON / OFF (bare or quoted) → {"on": b} ({"open": b} for a valve)
 *   a number                  → {"level": n} for a light, {"setpoint": n} for a thermostat
 */

export interface CommandsInit {
  /** Who may command what through this broker (shared/commanders.ts). Default: only the gateway's own key. */
  commanders?: Commanders | undefined
  /** Clock tolerance for expiry at the guard, seconds. Default 2. */
  skew?: number | undefined
  /** Default wait for a result, ms. Default 5000. */
  timeoutMs?: number
  /** The same command is published again this often while no result came, ms. Default 1000. */
  retryMs?: number
  /** `…/set/<actuator>` requests. */
  set?: SetInit
}

export interface SetInit {
  /** MQTT users (from `credentials`) who may publish set requests. Default none: set/ is refused. */
  users?: readonly string[]
  /** Set requests per second one user may make, and at once. Default 2/s, 10 at once. */
  rate?: { rate: number, burst: number }
  /** Largest set payload, bytes. Default 512. */
  maxBytes?: number
}

/** How the gateway's command reaches the target over the mesh: the signed bytes out, the target's signed result back. */
export type MeshCommandHook = (
  command: { bytes: Uint8Array, target: DeviceId, action: string, id: number },
  options: { signal: AbortSignal, timeoutMs: number }
) => Promise<Uint8Array>

export interface CommandRequest {
  target: DeviceId
  action: string
  /** Any CBOR-encodable value (plain objects become maps). */
  args?: unknown
  /** Lifetime of the command, seconds (default 5, at most 60). */
  ttl?: number
  /** Wait for the result at most this long, ms (default `CommandsInit.timeoutMs`). */
  timeoutMs?: number
  /** Default 'broker'; 'mesh' needs the `meshCommand` hook. */
  via?: 'broker' | 'mesh'
  signal?: AbortSignal
}

export interface CommandsHost {
  fleet: string
  keys: KeyPair
  clock: Clock
  ed25519?: Ed25519 | undefined
  keyOf: (id: DeviceId) => Uint8Array | undefined
  reject: (reason: DropReason, message: string, info: DropInfo, code?: ErrorCode) => Outcome
  publish: (topic: string, payload: string | Uint8Array, options: { qos?: 0 | 1 }) => void
  /** A verified result (any issuer), after it was mirrored. */
  onResult?: (result: CommandResult) => void
  meshCommand?: MeshCommandHook | undefined
  /** The fleet's trust, with a fleet file: revoked issuers and the grant policy (gateway/trust.ts). */
  trust?: (() => GatewayTrust | undefined) | undefined
}

/** A result as JSON (what …/result/<issuer>/json carries and the HTTP API answers). */
export interface ResultJson {
  target: DeviceId
  issuer: DeviceId
  id: number
  status: string
  state?: Record<string, unknown>
  /** When the device answered, seconds since the epoch; absent on a gateway-made ERR_TIMEOUT. */
  time?: number
  action?: string
}

/** A command's signed result as the JSON the HTTP API answers with. */
export function resultToJson (result: CommandResult, action?: string): ResultJson {
  return {
    target: result.target,
    issuer: result.issuer,
    id: result.id,
    status: result.status,
    ...(result.state === undefined ? {} : { state: Object.fromEntries(result.state) }),
    time: result.time,
    ...(action === undefined ? {} : { action })
  }
}

/** What went through: client commands forwarded, results verified, set requests taken, commands the gateway signed and sent, and of those, timed out. */
export interface CommandCounters {
  forwarded: number
  results: number
  sets: number
  sent: number
  timeouts: number
}

interface Pending {
  resolve: (result: CommandResult) => void
}

/** The argument a bare true/false or a bare number sets, per actuator (shared/actuators.ts). */
function argOf (actuator: string, type: 'boolean' | 'number'): string | undefined {
  return actuatorKind(actuator)?.controls.find((c) => c.type === type)?.arg
}

export class GatewayCommands implements CommandTopics {
  readonly guard: CommandGuard
  readonly counters: CommandCounters = { forwarded: 0, results: 0, sets: 0, sent: 0, timeouts: 0 }
  readonly #init: CommandsInit
  readonly #host: CommandsHost
  readonly #pending = new Map<string, Pending>()
  readonly #setUsers: ReadonlySet<string>
  readonly #buckets = new Map<string, TokenBucket>()
  #controller = new AbortController()
  #lastId = 0

  constructor (init: CommandsInit, host: CommandsHost) {
    this.#init = init
    this.#host = host
    this.#setUsers = new Set(init.set?.users ?? [])
    this.guard = new CommandGuard({ commanders: init.commanders, skew: init.skew }, {
      self: { id: host.keys.id, publicKey: host.keys.publicKey }, keyOf: host.keyOf, clock: host.clock, ed25519: host.ed25519, trust: host.trust
    })
  }

  /** Commands waiting for their result. */
  get pending (): number { return this.#pending.size }

  isCommander (id: DeviceId): boolean {
    return this.guard.commanders.get(id) !== undefined
  }

  /** The ingest's hook for cmd/, result/, result/…/json and set/ (gateway/ingest.ts). */
  handle (kind: CommandTopicKind, deviceId: DeviceId, deviceTopic: string, payload: Uint8Array, info: DropInfo, source: MessageSource): Outcome {
    if (kind === 'result-json') return this.#host.reject('json_forbidden', `only the gateway publishes ${info.topic ?? 'result JSON'}`, info)
    if (kind === 'set') return this.#set(deviceId, deviceTopic, payload, info, source)
    const verdict = kind === 'cmd' ? this.guard.command(deviceId, deviceTopic, payload) : this.guard.result(deviceId, deviceTopic as DeviceId, payload)
    if (!verdict.ok) return this.#host.reject(verdict.reason, verdict.message, info, verdict.code)
    if ('command' in verdict) {
      this.counters.forwarded++
      return { verdict: 'command', command: verdict.command }
    }
    this.#verified(verdict.result)
    return { verdict: 'result', result: verdict.result }
  }

  /** Signs, sends and waits for the verified result (see the file comment). */
  async command (request: CommandRequest): Promise<CommandResult> {
    try {
      return await this.#send(request)
    } catch (err) {
      if (isMeshError(err, 'ERR_TIMEOUT')) this.counters.timeouts++
      throw err
    }
  }

  async #send (request: CommandRequest): Promise<CommandResult> {
    const { target, action } = request
    // An enrolled device obeys the fleet's grant policy alone: a command of the gateway's that no grant allows is refused here, counted, never sent.
    const notGranted = this.guard.notGranted(this.#host.keys.id, action, target)
    if (notGranted !== undefined) {
      this.#host.reject('command_not_granted', `the gateway's own command: ${notGranted}`, { deviceId: target })
      throw meshError('ERR_NOT_ALLOWED', `${notGranted}: an owner grants it with \`iotmesh fleet grants\` (the gateway's id is ${this.#host.keys.id})`)
    }
    const id = this.#nextId()
    const bytes = encodeCommand({
      keys: this.#host.keys, target, action, id, issuedAt: this.#host.clock.wall() / 1000,
      ...(request.args === undefined ? {} : { args: request.args }), ...(request.ttl === undefined ? {} : { ttl: request.ttl }),
      ...(this.#host.ed25519 === undefined ? {} : { ed25519: this.#host.ed25519 })
    })
    const timeoutMs = request.timeoutMs ?? this.#init.timeoutMs ?? 5000
    this.counters.sent++
    const signal = AbortSignal.any([this.#controller.signal, ...(request.signal === undefined ? [] : [request.signal])])
    if (request.via === 'mesh') {
      const hook = this.#host.meshCommand
      if (hook === undefined) throw meshError('ERR_BAD_ARGUMENT', 'this gateway has no mesh path for commands (no meshCommand hook): send via the broker')
      const done = new AbortController() // the hook stops trying once this wait is over, whatever ended it
      let answer: Uint8Array
      try {
        const asked = hook({ bytes, target, action, id }, { signal: AbortSignal.any([signal, done.signal]), timeoutMs })
        answer = await withTimeout(asked, timeoutMs, this.#host.clock, signal, `${action} to ${target} over the mesh`)
      } finally {
        done.abort()
      }
      const verdict = this.guard.result(target, this.#host.keys.id, answer)
      if (!verdict.ok || !('result' in verdict) || verdict.result.id !== id) {
        throw verdict.ok
          ? meshError('ERR_BAD_COMMAND', `the mesh answered another command than #${id}`)
          : meshError(verdict.code ?? DROP_REASONS[verdict.reason].code, verdict.message)
      }
      this.#verified(verdict.result)
      return verdict.result
    }
    const key = `${target}#${id}`
    const answered = new Promise<CommandResult>((resolve) => { this.#pending.set(key, { resolve }) })
    // The same signed bytes again every retryMs while no result came: a device that was between
    // connections, or had not subscribed yet, gets it; its journal runs a command id once and
    // answers a repeat with the first result (as MeshNode.command does over the mesh).
    const clock = this.#host.clock
    const retryMs = this.#init.retryMs ?? 1000
    let timer: unknown
    const send = (): void => {
      this.#host.publish(cmdTopic(this.#host.fleet, target, action), bytes, { qos: 1 })
      timer = clock.setTimeout(send, retryMs)
    }
    try {
      send()
      return await withTimeout(answered, timeoutMs, clock, signal, `${action} to ${target}`)
    } finally {
      clock.clearTimeout(timer)
      this.#pending.delete(key)
    }
  }

  /** Fails every command still waiting (ERR_ABORTED). */
  stop (): void {
    this.#controller.abort()
    this.#controller = new AbortController() // a gateway whose start failed may start again
  }

  #verified (result: CommandResult): void {
    this.counters.results++
    this.#host.publish(resultJsonTopic(this.#host.fleet, result.target, result.issuer), JSON.stringify(resultToJson(result)), { qos: 0 })
    if (result.issuer === this.#host.keys.id) this.#pending.get(`${result.target}#${result.id}`)?.resolve(result)
    this.#host.onResult?.(result)
  }

  /** Microseconds of the wall clock, strictly increasing: unique per issuer (shared/command.ts). */
  #nextId (): number {
    this.#lastId = Math.max(this.#lastId + 1, Math.floor(this.#host.clock.wall() * 1000))
    return this.#lastId
  }

  #set (target: DeviceId, actuator: string, payload: Uint8Array, info: DropInfo, source: MessageSource): Outcome {
    const user = source.user
    if (user === undefined || !this.#setUsers.has(user)) {
      const who = user === undefined
        ? `client ${JSON.stringify(String(source.from ?? '?').slice(0, 64))} (not an MQTT user)`
        : `the MQTT user ${JSON.stringify(user)}`
      return this.#host.reject('set_forbidden', `${who} may not publish ${info.topic ?? 'set/'}: only users listed in --set-users may`, info)
    }
    const maxBytes = this.#init.set?.maxBytes ?? 512
    if (payload.length > maxBytes) return this.#host.reject('bad_set', `a set request of ${payload.length} bytes, over the ${maxBytes}-byte limit`, info)
    const now = this.#host.clock.now()
    let bucket = this.#buckets.get(user)
    if (bucket === undefined) {
      const rate = this.#init.set?.rate ?? { rate: 2, burst: 10 }
      this.#buckets.set(user, bucket = new TokenBucket(rate.rate, rate.burst, now))
    }
    // Every request takes a token, a bad one too: what one user can make the gateway do is bounded.
    if (!bucket.take(1, now)) return this.#host.reject('set_rate', `the MQTT user ${JSON.stringify(user)} sent set requests faster than ${bucket.rate}/s`, info)
    let action: string
    let args: unknown
    try {
      action = checkAction(`${actuator}/set`)
      args = setArgs(actuator, payload)
    } catch (err) {
      return this.#host.reject('bad_set', `${info.topic ?? 'set'}: ${(err as Error).message}`, info)
    }
    const mirror = resultJsonTopic(this.#host.fleet, target, this.#host.keys.id)
    this.counters.sets++
    this.command({ target, action, args }).catch((err: unknown) => {
      const code = (err as { code?: string }).code ?? 'ERR_BAD_COMMAND'
      this.#host.publish(mirror, JSON.stringify({ target, issuer: this.#host.keys.id, status: code, action, message: (err as Error).message }), { qos: 0 })
    })
    return { verdict: 'set', target, action }
  }
}

/** The arguments of `<actuator>/set` from a set request's JSON (see the file comment). Throws ERR_BAD_ARGS. */
export function setArgs (actuator: string, payload: Uint8Array): unknown {
  const text = Buffer.from(payload).toString('utf8').trim()
  let value: unknown
  if (/^(on|off)$/i.test(text)) {
    value = text.toLowerCase() === 'on' // Home Assistant's default payloads, ON and OFF, unquoted
  } else {
    try {
      value = JSON.parse(text)
    } catch {
      throw meshError('ERR_BAD_ARGS', 'a set request is JSON: an object of arguments, true/false, "ON"/"OFF" or a number')
    }
  }
  if (typeof value === 'string' && /^(on|off|true|false)$/i.test(value)) value = /^(on|true)$/i.test(value)
  if (typeof value === 'boolean') return { [argOf(actuator, 'boolean') ?? 'on']: value }
  if (typeof value === 'number' && Number.isFinite(value)) {
    const name = argOf(actuator, 'number')
    if (name === undefined) throw meshError('ERR_BAD_ARGS', `${actuator} takes no plain number: send an object of its arguments`)
    return { [name]: value }
  }
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) return value
  throw meshError('ERR_BAD_ARGS', `a set request is an object of arguments, true/false, "ON"/"OFF" or a number, not ${JSON.stringify(value).slice(0, 40)}`)
}

/** `promise`, or ERR_TIMEOUT after `ms` on `clock`, or ERR_ABORTED when `signal` aborts. */
async function withTimeout<T> (promise: Promise<T>, ms: number, clock: Clock, signal: AbortSignal, what: string): Promise<T> {
  if (signal.aborted) throw meshError('ERR_ABORTED', `${what}: aborted`, { cause: signal.reason })
  let timer: unknown
  let onAbort: (() => void) | undefined
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_resolve, reject) => {
        const late = `${what}: no signed result within ${ms} ms (it may still have executed; the device executes a command id at most once)`
        timer = clock.setTimeout(() => { reject(meshError('ERR_TIMEOUT', late)) }, ms)
        onAbort = () => { reject(meshError('ERR_ABORTED', `${what}: aborted`, { cause: signal.reason })) }
        signal.addEventListener('abort', onAbort, { once: true })
      })
    ])
  } finally {
    clock.clearTimeout(timer)
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort)
  }
}
