import { createHash, timingSafeEqual } from 'node:crypto'
import type { AedesOptions, AuthenticateError, Client, Subscription } from 'aedes'
import {
  TOKEN_DEFAULTS, checkDeviceToken, fleetFilesTopic, isDeviceId, meshError, readDeviceToken, systemClock, toHex, verifyDeviceToken,
  type Clock, type DeviceId, type Ed25519, type ErrorCode, type FleetPolicy
} from '../shared/index.js'
import type { DropReason } from './reasons.js'
import { isConfigFilter } from './config-guard.js'

/**
 * Who a broker client is, decided once per CONNECT (MQTT 3.1.1 §3.1.3.4–5), and what it may read.
 * Secure by default, as Mosquitto 2 is: a client that presents no user name is refused (CONNACK
 * 5, not authorized) unless the operator opts into an open LAN broker (`allowAnonymous`).
 *
 * - A device: user name = its device id, password = a device token (shared/token.ts: a CWT
 *   signed by the device key over its id, fleet, client id and time). The gateway's clock is the
 *   reference: iat within ±maxSkewSeconds, exp not passed, exp − iat ≤ maxLifetimeSeconds. Each
 *   token is accepted once (its cti is remembered until it expires). In closed mode only roster
 *   devices get in. A bad token, and a token outside the clock window, get CONNACK 4 (bad user name
 *   or password: an honest device then knows its clock is the likely cause, firmware-sim's broker
 *   path says so with ERR_CLOCK_SKEW); a device outside the roster or a token for another fleet,
 *   CONNACK 5 (not authorized).
 * - A user: user name and password from `credentials` (compared in constant time; CONNACK 4 when wrong).
 * - Anonymous: only with `allowAnonymous`.
 *
 * Reading (SUBSCRIBE, MQTT 3.1.1 §3.8.4: a refused filter gets return code 0x80 in the SUBACK):
 * users and (opted-in) anonymous clients read everything; a device reads its own subtree
 * iotmesh/<fleet>/<id>/#, the results of its own commands (iotmesh/<fleet>/+/result/<id>, or one
 * target's, and their /json), the statuses (iotmesh/<fleet>/+/status: its targets' keys) when it is
 * in the gateway's commanders file, and the whole fleet only in closed mode (the roster is the list of
 * devices the operator authorized). In open mode anyone can make a key, so a key alone earns no
 * right to read others' telemetry.
 *
 * Checking a token costs one Ed25519 verification, so CONNECT attempts are bounded before any is
 * made (issue 10's rule: no signature before the peer proved anything, at a rate it chooses): per
 * source address (a token bucket; the oldest address is forgotten when the table is full), and for
 * all token checks together. Over budget: the connection is closed without a CONNACK (ERR_BUSY).
 */

export type Principal =
  | { kind: 'anonymous' }
  | { kind: 'user', name: string }
  | { kind: 'device', id: DeviceId }

export interface ConnectRateInit {
  /** CONNECT attempts one address may make at once (bucket size). Default 200. */
  burst?: number
  /** Attempts per second an address earns back. Default 50. */
  perSecond?: number
  /** Addresses remembered (the oldest is forgotten first). Default 4096. */
  maxAddresses?: number
  /** Token verifications, all addresses together: bucket size and per second. Default 500 and 500 (≈ 3 % of a core). */
  verifyBurst?: number
  verifyPerSecond?: number
}

export interface AccessInit {
  /** Let clients without a user name connect and read everything (an open LAN broker). Default false. */
  allowAnonymous?: boolean
  /** username -> password: people and programs that read the fleet (MQTT 3.1.1 §3.1.3.4). */
  credentials?: Record<string, string>
  /** Device token checks (shared/token.ts). */
  tokens?: { maxSkewSeconds?: number, maxLifetimeSeconds?: number }
  /** Bounds on CONNECT attempts. */
  connectRate?: ConnectRateInit
  /** The fleet file (shared/fleet.ts): revoked devices are refused at CONNECT, their sessions closed (gateway/revocations.ts). */
  fleetPolicy?: FleetPolicy
}

export interface AccessHost {
  fleet: string
  /** Closed mode: is this device in the roster? undefined in open mode. */
  inRoster?: (id: DeviceId) => boolean
  /** Did the fleet's owners revoke this device? (refused at CONNECT, before any signature check) */
  revoked?: (id: DeviceId) => boolean
  /** The filter under which the fleet's revocations are retained: every device may read it. */
  revocationsFilter?: string
  /** Is this device in the gateway's commanders file? (it may read statuses: its targets' keys) */
  isCommander?: (id: DeviceId) => boolean
  /** Counts and reports a refusal (the gateway's counters, drop events and logs). */
  refuse: (reason: DropReason, message: string, info: { deviceId?: DeviceId, from?: string, topic?: string }, code?: ErrorCode) => void
  /**
   * The durable store's memory of used tokens (gateway/store/state.ts `claimToken`): false when
   * this token id was used before, on this gateway before a restart or on another sharing the
   * store. Without it, only this process's memory says.
   */
  claimToken?: (id: DeviceId, cti: string, untilS: number) => boolean | Promise<boolean>
}

export interface AccessComponents {
  clock?: Clock
  ed25519?: Ed25519
}

export const ACCESS_DEFAULTS = {
  burst: 200,
  perSecond: 50,
  maxAddresses: 4096,
  verifyBurst: 500,
  verifyPerSecond: 500,
  /** Devices whose used token ids are remembered (the least recently seen is forgotten first). */
  maxTokenDevices: 65_536,
  /** Used token ids remembered per device (its oldest is forgotten first), and in all. */
  maxTokensPerDevice: 256,
  maxTokens: 262_144
} as const

/** A token bucket (RFC 2697's single-rate idea, without colours): `burst` at once, refilled at `perSecond`. */
class Bucket {
  tokens: number
  at: number
  constructor (readonly burst: number, readonly perSecond: number, now: number) {
    this.tokens = burst
    this.at = now
  }

  take (now: number): boolean {
    this.tokens = Math.min(this.burst, this.tokens + (now - this.at) / 1000 * this.perSecond)
    this.at = now
    if (this.tokens < 1) return false
    this.tokens--
    return true
  }
}

export class BrokerAccess {
  readonly #init: AccessInit
  readonly #host: AccessHost
  readonly #clock: Clock
  readonly #ed: Ed25519 | undefined
  readonly #principals = new WeakMap<Client, Principal>()
  readonly #users: Map<string, Buffer>
  readonly #addresses = new Map<string, Bucket>()
  readonly #verifies: Bucket
  /** Token ids accepted and not yet expired, by device: a token is good for one CONNECT. */
  readonly #ctis = new Map<DeviceId, Map<string, number>>()
  #ctiCount = 0
  /** Devices that authenticated with a token: their status is theirs alone, whoever else connects. */
  readonly #tokenDevices = new Set<DeviceId>()

  constructor (init: AccessInit, host: AccessHost, components: AccessComponents = {}) {
    this.#init = init
    this.#host = host
    this.#clock = components.clock ?? systemClock
    this.#ed = components.ed25519
    this.#users = new Map(Object.entries(init.credentials ?? {}).map(([user, pass]) => [user, digest(pass)]))
    const rate = init.connectRate ?? {}
    this.#verifies = new Bucket(rate.verifyBurst ?? ACCESS_DEFAULTS.verifyBurst, rate.verifyPerSecond ?? ACCESS_DEFAULTS.verifyPerSecond, this.#clock.now())
  }

  get allowAnonymous (): boolean { return this.#init.allowAnonymous === true }

  /** Who the client authenticated as; undefined before CONNECT succeeded. */
  principalOf (client: Client | null): Principal | undefined {
    return client === null ? undefined : this.#principals.get(client)
  }

  /** True when `id` has authenticated with a token: only its own connection speaks for it. */
  usesToken (id: DeviceId): boolean {
    return this.#tokenDevices.has(id)
  }

  /** Aedes hooks: preConnect (rate), authenticate (who), authorizeSubscribe (what it may read). */
  get hooks (): Pick<AedesOptions, 'preConnect' | 'authenticate' | 'authorizeSubscribe'> {
    return {
      // Refused with an error, so aedes closes the connection at once (with no error it would wait for its connectTimeout).
      preConnect: (client, packet, callback) => {
        if (this.#admitConnect(client, packet.username, packet.password !== undefined)) return callback(null, true)
        callback(meshError('ERR_BUSY', 'over the CONNECT budget: closed without a CONNACK'), false)
      },
      authenticate: (client, username, password, done) => {
        const fail = (verdict: { returnCode: 4 | 5, message: string }): void => {
          const error = new Error(verdict.message) as AuthenticateError
          error.returnCode = verdict.returnCode
          done(error, false)
        }
        const verdict = this.#authenticate(client, username, password)
        if (!verdict.ok) return fail(verdict)
        const admit = (claimed: boolean): void => {
          if (!claimed && verdict.principal.kind === 'device') return fail(this.#replayed(client, verdict.principal.id, 'another gateway sharing the store, or this one before a restart'))
          this.#principals.set(client, verdict.principal)
          done(null, true)
        }
        const claim = verdict.token === undefined || verdict.principal.kind !== 'device' ? true : this.#host.claimToken?.(verdict.principal.id, verdict.token.cti, verdict.token.untilS) ?? true
        if (typeof claim === 'boolean') return admit(claim)
        claim.then(admit, () => { admit(true) }) // the store failed (reported by it): this process's memory has judged already
      },
      authorizeSubscribe: (client, sub, done) => { done(null, this.#subscribe(client, sub)) }
    }
  }

  #admitConnect (client: Client, username: string | undefined, hasPassword: boolean): boolean {
    const now = this.#clock.now()
    const address = addressOf(client)
    let bucket = this.#addresses.get(address)
    if (bucket === undefined) {
      const rate = this.#init.connectRate ?? {}
      if (this.#addresses.size >= (rate.maxAddresses ?? ACCESS_DEFAULTS.maxAddresses)) this.#addresses.delete(this.#addresses.keys().next().value as string)
      bucket = new Bucket(rate.burst ?? ACCESS_DEFAULTS.burst, rate.perSecond ?? ACCESS_DEFAULTS.perSecond, now)
      this.#addresses.set(address, bucket)
    }
    const info = { from: client.id, ...(isDeviceId(username) ? { deviceId: username } : {}) }
    if (!bucket.take(now)) {
      this.#host.refuse('connect_rate', `${address} made more CONNECT attempts than its budget (${bucket.burst} at once, ${bucket.perSecond}/s): closed without a CONNACK`, info)
      return false
    }
    // A token check costs a signature verification: those are bounded for all addresses together too.
    if (hasPassword && isDeviceId(username) && !this.#users.has(username) && !this.#verifies.take(now)) {
      this.#host.refuse('connect_rate', `over the budget of device token checks (${this.#verifies.perSecond}/s for all clients): ${address} closed without a CONNACK`, info)
      return false
    }
    return true
  }

  #replayed (client: Client, id: DeviceId, where: string): { ok: false, returnCode: 4, message: string } {
    const from = client.id
    this.#host.refuse('bad_token', `device ${id} (client ${show(from)}): this token was already used (a replayed password, seen by ${where}); a device makes a new token for every CONNECT`, { from, deviceId: id }, 'ERR_REPLAY')
    return { ok: false, returnCode: 4, message: 'bad user name or password' }
  }

  #authenticate (client: Client, username: string | undefined, password: Buffer | undefined): { ok: true, principal: Principal, token?: { cti: string, untilS: number } } | { ok: false, returnCode: 4 | 5, message: string } {
    const from = client.id
    const refuse = (reason: DropReason, returnCode: 4 | 5, message: string, code?: ErrorCode, deviceId?: DeviceId): { ok: false, returnCode: 4 | 5, message: string } => {
      this.#host.refuse(reason, message, { from, ...(deviceId === undefined ? {} : { deviceId }) }, code)
      return { ok: false, returnCode, message: returnCode === 4 ? 'bad user name or password' : 'not authorized' }
    }
    if (username === undefined || username === '') {
      if (this.allowAnonymous) return { ok: true, principal: { kind: 'anonymous' } }
      return refuse('anonymous', 5, `client ${show(from)} from ${addressOf(client)} connected without a user name: anonymous clients are refused (start the gateway with --allow-anonymous for an open LAN broker)`)
    }
    const user = this.#users.get(username)
    if (user !== undefined) {
      const ok = password !== undefined && timingSafeEqual(user, digest(password))
      if (ok) return { ok: true, principal: { kind: 'user', name: username } }
      return refuse('bad_credentials', 4, `client ${show(from)}: wrong password for the user ${JSON.stringify(username)}`)
    }
    if (!isDeviceId(username)) return refuse('bad_credentials', 4, `client ${show(from)}: no user ${JSON.stringify(String(username).slice(0, 64))} (and it is not a device id, which would present a token)`)
    const id = username
    if (password === undefined) return refuse('bad_token', 4, `device ${id} (client ${show(from)}) presented no token as its password`, 'ERR_BAD_TOKEN', id)
    const read = readDeviceToken(password.toString('latin1'))
    if (!read.ok) return refuse('bad_token', 4, `device ${id} (client ${show(from)}): ${read.message}`, read.code, id)
    const tokens = this.#init.tokens ?? {}
    const wrong = checkDeviceToken(read.token, { username: id, clientId: from, fleet: this.#host.fleet, now: this.#clock.wall(), ...tokens })
    if (wrong !== undefined) {
      const timing = wrong.code === 'ERR_CLOCK_SKEW' || wrong.code === 'ERR_TOKEN_EXPIRED'
      return refuse(timing ? 'token_time' : 'bad_token', wrong.code === 'ERR_UNKNOWN_FLEET' ? 5 : 4, `device ${id} (client ${show(from)}): ${wrong.message}`, wrong.code, id)
    }
    if (this.#host.inRoster !== undefined && !this.#host.inRoster(id)) return refuse('not_in_roster', 5, `device ${id} (client ${show(from)}) is not in the roster`, 'ERR_NOT_IN_ROSTER', id)
    if (this.#host.revoked?.(id) === true) return refuse('revoked', 5, `device ${id} (client ${show(from)}) was revoked by the fleet's owners`, 'ERR_REVOKED', id)
    const cti = toHex(read.token.cti)
    const nowSeconds = Math.floor(this.#clock.wall() / 1000)
    const seen = this.#ctis.get(id)
    if (seen?.has(cti) === true) return this.#replayed(client, id, 'this gateway')
    if (!verifyDeviceToken(read, this.#ed)) return refuse('bad_token', 4, `device ${id} (client ${show(from)}): the token's signature does not verify with its key`, 'ERR_BAD_SIGNATURE', id)
    const untilS = read.token.expiresAt + (tokens.maxSkewSeconds ?? TOKEN_DEFAULTS.maxSkewSeconds)
    this.#rememberCti(id, cti, untilS, nowSeconds)
    return { ok: true, principal: { kind: 'device', id }, token: { cti, untilS } }
  }

  /**
   * Bounded: a device's expired ids go first, then its oldest past `maxTokensPerDevice`; past
   * `maxTokenDevices` devices or `maxTokens` ids in all, the least recently seen devices are
   * forgotten. A forgotten id could be replayed until it expires: it takes a captured token and
   * hundreds of thousands of newer ones (each a verified signature, at most 500/s) to get there.
   */
  #rememberCti (id: DeviceId, cti: string, until: number, now: number): void {
    let seen = this.#ctis.get(id)
    if (seen === undefined) {
      seen = new Map()
    } else {
      this.#ctis.delete(id) // re-inserted below: the map is kept in order of last use
      this.#ctiCount -= seen.size
      for (const [key, expiry] of seen) if (expiry < now) seen.delete(key)
      while (seen.size >= ACCESS_DEFAULTS.maxTokensPerDevice) seen.delete(seen.keys().next().value as string)
    }
    seen.set(cti, until)
    this.#ctiCount += seen.size
    while (this.#ctis.size >= ACCESS_DEFAULTS.maxTokenDevices || (this.#ctiCount > ACCESS_DEFAULTS.maxTokens && this.#ctis.size > 0)) {
      const [oldest, ids] = this.#ctis.entries().next().value as [DeviceId, Map<string, number>]
      this.#ctis.delete(oldest)
      this.#ctiCount -= ids.size
    }
    this.#ctis.set(id, seen)
    if (!this.#tokenDevices.has(id)) {
      if (this.#tokenDevices.size >= ACCESS_DEFAULTS.maxTokenDevices) this.#tokenDevices.delete(this.#tokenDevices.values().next().value as DeviceId)
      this.#tokenDevices.add(id)
    }
  }

  #subscribe (client: Client, sub: Subscription): Subscription | null {
    const principal = this.#principals.get(client)
    if (principal === undefined) return null
    if (principal.kind !== 'device') return sub
    const fleet = this.#host.fleet
    const own = `iotmesh/${fleet}/${principal.id}/`
    const closed = this.#host.inRoster !== undefined
    if (sub.topic.startsWith(own) || (closed && sub.topic.startsWith(`iotmesh/${fleet}/`)) || isOwnResults(sub.topic, fleet, principal.id)) return sub
    if (isStatusFilter(sub.topic, fleet) && this.#host.isCommander?.(principal.id) === true) return sub
    if (isConfigFilter(sub.topic, fleet)) return sub // owner-signed configurations (gateway/config-guard.ts): any device may read them
    if (this.#host.revocationsFilter !== undefined && sub.topic === this.#host.revocationsFilter) return sub
    if (sub.topic === fleetFilesTopic(fleet)) return sub // the fleet files the gateway retains (gateway.ts): any device may read them
    this.#host.refuse('subscribe_forbidden', `device ${principal.id} (client ${show(client.id)}) may not read ${sub.topic}: a device reads ${own}#${closed ? ` and iotmesh/${fleet}/#` : ' (the fleet only in closed mode, with a roster)'}`, { deviceId: principal.id, from: client.id, topic: sub.topic }, 'ERR_NOT_AUTHORIZED')
    return null
  }
}

/** iotmesh/<fleet>/<target or +>/result/<id>[/json]: the answers to the commands `id` issued, which only it may read. */
function isOwnResults (filter: string, fleet: string, id: DeviceId): boolean {
  const levels = filter.split('/')
  const [root, f, target, kind, issuer, json] = levels
  return root === 'iotmesh' && f === fleet && (target === '+' || isDeviceId(target)) && kind === 'result' && issuer === id &&
    (levels.length === 5 || (levels.length === 6 && json === 'json'))
}

/** iotmesh/<fleet>/<id or +>/status: where a commander finds its targets' keys (and names). */
function isStatusFilter (filter: string, fleet: string): boolean {
  const [root, f, id, status, ...rest] = filter.split('/')
  return root === 'iotmesh' && f === fleet && (id === '+' || isDeviceId(id)) && status === 'status' && rest.length === 0
}

/** A client-chosen string as a log line may hold it: quoted (no line breaks) and at most 64 characters. */
function show (text: unknown): string {
  return JSON.stringify(String(text).slice(0, 64))
}

function digest (text: string | Buffer): Buffer {
  return createHash('sha256').update(text).digest()
}

/** The client's source address: the TCP/TLS socket's, or the WebSocket request's. */
export function addressOf (client: Client): string {
  const conn = client.conn as { remoteAddress?: string } | undefined
  const req = (client as { req?: { socket?: { remoteAddress?: string } } }).req
  return conn?.remoteAddress ?? req?.socket?.remoteAddress ?? 'unknown'
}
