import {
  GRANTS_TARGET, checkNewer, granteeText, isMeshError, topicMatches, verifyCommandGrants, verifyCredential,
  type Clock, type CommandGrant, type Credential, type DeviceId, type Ed25519, type ErrorCode, type FleetConfig, type FleetPolicy, type PublicKey, type Revocation
} from '../shared/index.js'
import { TokenBucket } from '../mesh/index.js'

/**
 * What the gateway knows of its fleet's trust (issue 13), in one place: the owners' revocations
 * (gateway/revocations.ts, and its mesh node's), the credentials devices showed (a retained status'
 * `cred`, a link handshake of its mesh node), and the owner-signed grant policy for commands
 * (shared/grants.ts, target `$grants`) as it reached the gateway (retained `$config/$grants` through
 * gateway/config-guard.ts, CONFIG gossip through its mesh node). It answers:
 *
 * - `revoked(id)`: the ingest (gateway/ingest.ts) refuses a revoked device's frames and statuses by
 *   any path, and the command guard (gateway/commands-guard.ts) its commands, before any signature.
 * - `judge(issuer, action, target)`: whether the policy can allow that command. The gateway refuses
 *   early only what no grant can allow, so it never refuses a command the device would take: what it
 *   cannot tell (the target's groups; the roles of an issuer whose credential it never saw) counts
 *   as covered, and the device, which knows, decides (firmware-sim/device/grants.ts). No policy
 *   held: undefined (the commanders file decides, as before).
 * - `credentialOf(id)` for the registry and the dashboard: enrolled (by which owners, until when,
 *   with which roles), expired, revoked (with the reason), invalid (with the code) or none.
 *
 * Bounded: at most `maxCredentials` devices' credentials (oldest first out); each credential's
 * owner signatures are checked once per distinct credential a device shows, and at most
 * `checks.rate` new credentials a second (`checks.burst` at once) are checked at all: beyond that a
 * status' credential is left unchecked (counted in `counters.credentialsSkipped`; the device shows
 * what was known before, or none, until its next status), so statuses full of forged credentials
 * cost a bounded number of signature checks. Pure but for the clock it reads; no sockets, no timers.
 */

export type CredentialState = 'enrolled' | 'expired' | 'revoked' | 'invalid' | 'none'

/** A device's credential as the API and the dashboard show it. */
export interface CredentialInfo {
  state: CredentialState
  /** Owners whose signatures hold (their names from the fleet file, else their ids). */
  owners?: string[]
  roles?: string[]
  /** Seconds since the epoch. */
  issuedAt?: number
  expiresAt?: number
  /** Where the gateway saw it: the device's retained status, or a link handshake of the gateway's mesh node. */
  source?: 'status' | 'link'
  /** Revoked: the owners' reason, and when they signed it (seconds since the epoch). */
  reason?: string
  revokedAt?: number
  /** Invalid: why (ERR_NOT_OWNER, ERR_TOO_FEW_OWNERS, ERR_UNKNOWN_FLEET, ERR_BAD_CREDENTIAL, …). */
  code?: ErrorCode
}

/** The fleet's trust as GET /api/fleet shows it. */
export interface FleetTrustJson {
  fleet: string
  /** False: the gateway runs without a fleet file (nothing below applies). */
  fleetFile: boolean
  threshold?: number
  owners?: Array<{ id: DeviceId, name?: string }>
  revocations: Array<{ device: DeviceId, reason: string, issuedAt: number, owners: string[] }>
  /** The grant policy held (null: none; the commanders file decides). */
  grants: { version: number, issuedAt: number, grants: Array<{ to: string, actions: string[], on: string[], name?: string }> } | null
}

export interface TrustComponents {
  clock: Clock
  ed25519?: Ed25519 | undefined
  /** A revocation this gateway holds, from any source (its broker's set, its mesh node). */
  revocation: (id: DeviceId) => Revocation | undefined
  /** Every revocation held. */
  revocations: () => Revocation[]
  /** A credential the gateway's mesh node verified at a link handshake. */
  linkCredential?: (id: DeviceId) => Credential | undefined
  /** A status' credential that verified (its mesh node keeps it, so the broker device's readings it bridges carry it: CRED). */
  verified?: (bytes: Uint8Array, credential: Credential) => void
}

type Seen = { credential: Credential } | { code: ErrorCode }

export class GatewayTrust {
  /** The fleet file in force: the one given, or a newer signed one the gateway's mesh node took (gateway.ts). */
  policy: FleetPolicy
  /** Grant policies applied, and those refused by code (an older version: ERR_CONFIG_STALE). */
  readonly counters = { grantsApplied: 0, grantsRefused: 0, credentialsChecked: 0, credentialsSkipped: 0 }
  readonly #checks: TokenBucket
  readonly #c: TrustComponents
  readonly #max: number
  /** Per device: the credential bytes it showed last and what they are. */
  readonly #seen = new Map<DeviceId, { bytes: Uint8Array, seen: Seen }>()
  #grants: { config: FleetConfig, grants: CommandGrant[] } | undefined

  constructor (policy: FleetPolicy, components: TrustComponents, init: { maxCredentials?: number, checks?: { rate: number, burst: number } } = {}) {
    this.policy = policy
    this.#c = components
    this.#max = Math.max(1, init.maxCredentials ?? 10_000)
    this.#checks = new TokenBucket(init.checks?.rate ?? 50, init.checks?.burst ?? 200, components.clock.now())
  }

  revoked (id: DeviceId): Revocation | undefined { return this.#c.revocation(id) }

  /** The version of the grant policy held (undefined: none). */
  get grantsVersion (): number | undefined { return this.#grants?.config.version }

  /** A grant policy from the broker or the mesh (`verified` when the caller checked it already): 'applied' when newer than the one held. */
  considerGrants (bytes: Uint8Array, verified?: FleetConfig): 'applied' | 'stale' | 'ignored' {
    let config: FleetConfig
    try {
      config = verified?.grants !== undefined ? verified : verifyCommandGrants(bytes, this.policy, this.#ed())
    } catch {
      return 'ignored'
    }
    if (config.target !== GRANTS_TARGET || config.grants === undefined) return 'ignored'
    if (config.version === this.#grants?.config.version) return 'ignored'
    try {
      checkNewer(config.version, this.#grants?.config.version, GRANTS_TARGET)
    } catch {
      this.counters.grantsRefused++
      return 'stale'
    }
    this.#grants = { config, grants: config.grants }
    this.counters.grantsApplied++
    return 'applied'
  }

  /** A credential a device showed in its retained status: verified once (owner signatures, against the fleet file). */
  noteStatusCredential (id: DeviceId, publicKey: PublicKey, bytes: Uint8Array | undefined): void {
    if (bytes === undefined) return
    const known = this.#seen.get(id)
    if (known !== undefined && equal(known.bytes, bytes)) return
    if (!this.#checks.take(1, this.#c.clock.now())) {
      this.counters.credentialsSkipped++
      return
    }
    this.counters.credentialsChecked++
    let seen: Seen
    try {
      // Expiry is judged when shown (now: 0 checks everything else), so an expired credential is still described.
      const credential = verifyCredential(bytes, this.policy, { now: 0, publicKey, ...this.#ed() })
      seen = credential.device === id ? { credential } : { code: 'ERR_CREDENTIAL_MISMATCH' }
      if ('credential' in seen) this.#c.verified?.(bytes, credential)
    } catch (err) {
      seen = { code: isMeshError(err) ? err.code : 'ERR_BAD_CREDENTIAL' }
    }
    this.#seen.delete(id)
    this.#seen.set(id, { bytes: new Uint8Array(bytes), seen })
    for (const key of this.#seen.keys()) {
      if (this.#seen.size <= this.#max) break
      this.#seen.delete(key)
    }
  }

  /** A verified credential of `id`, whether current or not: from its status, else from a link handshake. */
  #credential (id: DeviceId): Credential | undefined {
    const seen = this.#seen.get(id)?.seen
    return (seen !== undefined && 'credential' in seen ? seen.credential : undefined) ?? this.#c.linkCredential?.(id)
  }

  /** A current credential (unexpired, not revoked) of `id`. */
  current (id: DeviceId): Credential | undefined {
    const c = this.#credential(id)
    return c === undefined || this.revoked(id) !== undefined || c.expiresAt <= this.#c.clock.wall() / 1000 ? undefined : c
  }

  credentialOf (id: DeviceId): CredentialInfo {
    const revocation = this.revoked(id)
    const seen = this.#seen.get(id)?.seen
    const credential = this.#credential(id)
    const base: CredentialInfo = credential === undefined
      ? { state: 'none' }
      : {
          state: credential.expiresAt <= this.#c.clock.wall() / 1000 ? 'expired' : 'enrolled',
          owners: credential.signers.map((s) => this.#ownerName(s)),
          roles: credential.roles,
          issuedAt: credential.issuedAt,
          expiresAt: credential.expiresAt,
          source: seen !== undefined && 'credential' in seen ? 'status' : 'link'
        }
    if (revocation !== undefined) return { ...base, state: 'revoked', reason: revocation.reason, revokedAt: revocation.issuedAt }
    if (credential === undefined && seen !== undefined && 'code' in seen) return { state: 'invalid', code: seen.code }
    return base
  }

  /**
   * The policy's verdict on `issuer` commanding `action` on `target`: undefined when no policy is
   * held, or when some grant may allow it; otherwise why not (the device would answer ERR_NOT_ALLOWED).
   */
  judge (issuer: DeviceId, action: string, target: DeviceId): string | undefined {
    const held = this.#grants
    if (held === undefined) return undefined
    const issuerRoles = this.current(issuer)?.roles
    const targetRoles = this.current(target)?.roles
    const mayAllow = held.grants.some((g) => {
      const to = 'id' in g.to ? g.to.id === issuer : issuerRoles === undefined || issuerRoles.includes(g.to.role)
      const on = g.on.some((s) => s === '*' || s === target || s.startsWith('group:') ||
        (s.startsWith('role:') && (targetRoles === undefined || targetRoles.includes(s.slice(5)))))
      return to && on && g.actions.some((p) => topicMatches(p, action))
    })
    return mayAllow ? undefined : `the fleet's grant policy (version ${held.config.version}) grants ${issuer} no ${action} on ${target}`
  }

  /** The key of an issuer the policy names in a key grant, or whose current credential the gateway knows. */
  issuerKey (id: DeviceId): PublicKey | undefined {
    const grant = this.#grants?.grants.find((g) => 'id' in g.to && g.to.id === id)
    if (grant !== undefined && 'key' in grant.to) return grant.to.key
    return this.#grants === undefined ? undefined : this.current(id)?.publicKey
  }

  toJSON (): FleetTrustJson {
    const held = this.#grants
    return {
      fleet: this.policy.fleet,
      fleetFile: true,
      threshold: this.policy.threshold,
      owners: this.policy.owners.map((o) => (o.name === undefined ? { id: o.id } : { id: o.id, name: o.name })),
      revocations: this.#c.revocations().map((r) => ({ device: r.device, reason: r.reason, issuedAt: r.issuedAt, owners: r.signers.map((s) => this.#ownerName(s)) })),
      grants: held === undefined
        ? null
        : {
            version: held.config.version,
            issuedAt: held.config.issuedAt,
            grants: held.grants.map((g) => ({ to: granteeText(g.to), actions: [...g.actions], on: [...g.on], ...(g.name === undefined ? {} : { name: g.name }) }))
          }
    }
  }

  #ownerName (id: DeviceId): string {
    return this.policy.owners.find((o) => o.id === id)?.name ?? id
  }

  #ed (): { ed25519?: Ed25519 } {
    return this.#c.ed25519 === undefined ? {} : { ed25519: this.#c.ed25519 }
  }
}

/** GET /api/fleet without a fleet file. */
export function noFleetJson (fleet: string): FleetTrustJson {
  return { fleet, fleetFile: false, revocations: [], grants: null }
}

function equal (a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}
