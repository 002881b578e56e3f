import {
  bytesEqual, meshError, readCredential, systemClock, toBase64url, verifyCredential,
  type Clock, type Credential, type DeviceId, type Ed25519, type ErrorCode, type FleetPolicy, type PublicKey
} from '../shared/index.js'

/**
 * Closed fleets by credential (issue 13): a node given the fleet file (shared/fleet.ts) links only
 * with devices its owners enrolled. Each peer shows its credential in the link handshake
 * (links/handshake.ts); this decides, once per link, never per frame, cheapest check first:
 *
 *   1. revoked (a lookup in the node's RevocationSet)              ERR_REVOKED
 *   2. no credential shown (only when credentials are required;    ERR_NO_CREDENTIAL
 *      an owner's own key needs none)
 *   3. layout, fleet, key binding, expiry (no signature)           ERR_BAD_CREDENTIAL, ERR_UNKNOWN_FLEET,
 *                                                                  ERR_CREDENTIAL_MISMATCH, ERR_CREDENTIAL_EXPIRED
 *   4. the same bytes verified before (cache by cti)               accepted, no signature checked
 *   5. owner signatures, at most one per owner                     ERR_NOT_OWNER, ERR_TOO_FEW_OWNERS
 *
 * A credential that verified is cached by its id (cti) with its bytes: another credential claiming
 * that cti is checked in full, never taken on the id alone. Expiry and revocation are checked again
 * on every use, so a cached credential does not outlive either.
 *
 * The same cache holds credentials of devices this node never linked with, gossiped by neighbours
 * (`learn`: CRED, routing/handlers/credential.ts), verified the same way before they are kept, so a
 * node can check a relayed frame's origin (`enrolled`) and a far commander's roles (`credentialOf`).
 * A new fleet file (`setPolicy`, routing/handlers/fleet.ts) keeps only the credentials whose owner
 * signatures still meet it.
 */

export interface PeerPresentation {
  readonly id: DeviceId
  readonly publicKey: PublicKey
  /** The credential the peer showed, if any. */
  readonly credential?: Uint8Array | undefined
}

export interface CredentialCheckInit {
  policy: FleetPolicy
  /** Refuse peers that show no credential (default true: a closed fleet); false still checks those that show one. */
  required?: boolean
  /** Verified credentials kept (default 1,024; least recently used out first). */
  maxCached?: number
}

export interface CredentialCheckComponents {
  /** True when the fleet's owners revoked `id` (the node's RevocationSet). */
  revoked: (id: DeviceId) => boolean
  clock?: Clock
  ed25519?: Ed25519
}

export interface CredentialCheckCounters {
  /** Credentials whose owner signatures were verified. */
  verified: number
  /** Presentations answered from the cache (no signature checked). */
  cached: number
  /** Peers refused, by code. */
  refused: Partial<Record<ErrorCode, number>>
}

export class CredentialCheck {
  #policy: FleetPolicy
  readonly required: boolean
  readonly counters: CredentialCheckCounters = { verified: 0, cached: 0, refused: {} }
  readonly #maxCached: number
  readonly #cache = new Map<string, { bytes: Uint8Array, credential: Credential }>()
  /** The cache key (cti) of each device's latest verified credential. */
  readonly #byDevice = new Map<DeviceId, string>()
  readonly #components: CredentialCheckComponents
  readonly #clock: Clock

  constructor (init: CredentialCheckInit, components: CredentialCheckComponents) {
    this.#policy = init.policy
    this.required = init.required ?? true
    this.#maxCached = Math.max(1, init.maxCached ?? 1024)
    this.#components = components
    this.#clock = components.clock ?? systemClock
  }

  /** The peer's verified credential (undefined: none shown, and none required); throws a MeshError with the refusal's code. */
  check (peer: PeerPresentation): Credential | undefined {
    try {
      return this.#check(peer)
    } catch (err) {
      const code = (err as { code?: ErrorCode }).code ?? 'ERR_BAD_CREDENTIAL'
      this.counters.refused[code] = (this.counters.refused[code] ?? 0) + 1
      throw err
    }
  }

  get policy (): FleetPolicy { return this.#policy }

  /** A verified credential of `id` seen lately (at a handshake or by gossip), if any; expiry and revocation are the caller's to check. */
  credentialOf (id: DeviceId): Credential | undefined {
    return this.#entry(id)?.credential
  }

  /** The signed bytes of `id`'s credential held (what a node passes on: CRED), if any. */
  bytesOf (id: DeviceId): Uint8Array | undefined {
    return this.#entry(id)?.bytes
  }

  /** Whether `id` may publish in this fleet now: an owner, or a device whose credential is held, unexpired and not revoked. */
  enrolled (id: DeviceId): boolean {
    if (this.#components.revoked(id)) return false
    if (this.#policy.owners.some((o) => o.id === id)) return true
    const credential = this.credentialOf(id)
    return credential !== undefined && credential.expiresAt > this.#clock.wall() / 1000
  }

  /**
   * Takes a credential a neighbour passed on (CRED): the same checks as at a handshake, the key
   * binding being the credential's own (cnf derives to sub). 'known' when these bytes are cached
   * (no signature checked); throws a MeshError with the refusal's code.
   */
  learn (bytes: Uint8Array): { verdict: 'added' | 'known', credential: Credential } {
    const read = readCredential(bytes, this.#policy, { now: this.#clock.wall() / 1000 })
    const verified = this.counters.verified
    const credential = this.check({ id: read.device, publicKey: read.publicKey, credential: bytes }) as Credential
    return { verdict: this.counters.verified > verified ? 'added' : 'known', credential }
  }

  /** Keeps a credential this process verified against the same fleet file elsewhere (the gateway's check of a device's retained status). */
  keep (bytes: Uint8Array, credential: Credential): void {
    if (credential.signers.length === 0) return // read, not verified
    this.#remember(toBase64url(credential.cti), bytes, credential)
  }

  /** A new fleet file is in force: credentials whose owner signatures no longer meet it are forgotten (shown again, they are checked again). */
  setPolicy (policy: FleetPolicy): void {
    this.#policy = policy
    const owners = new Set(policy.owners.map((o) => o.id))
    for (const [key, { credential }] of [...this.#cache]) {
      if (credential.signers.filter((s) => owners.has(s)).length >= policy.threshold) continue
      this.#cache.delete(key)
      if (this.#byDevice.get(credential.device) === key) this.#byDevice.delete(credential.device)
    }
  }

  #entry (id: DeviceId): { bytes: Uint8Array, credential: Credential } | undefined {
    const key = this.#byDevice.get(id)
    return key === undefined ? undefined : this.#cache.get(key)
  }

  #check (peer: PeerPresentation): Credential | undefined {
    if (this.#components.revoked(peer.id)) throw meshError('ERR_REVOKED', `${peer.id} was revoked by the owners of fleet ${this.#policy.fleet}`, { details: { id: peer.id } })
    const bytes = peer.credential
    // An owner (the fleet file's trust anchor: `iotmesh fleet publish --owner-key`) needs no credential of its own.
    if (bytes === undefined && this.policy.owners.some((o) => o.id === peer.id)) return undefined
    if (bytes === undefined) {
      if (!this.required) return undefined
      throw meshError('ERR_NO_CREDENTIAL', `${peer.id} showed no credential; fleet ${this.policy.fleet} takes only devices its owners enrolled`, { details: { id: peer.id } })
    }
    const now = this.#clock.wall() / 1000
    const read = readCredential(bytes, this.policy, { now, publicKey: peer.publicKey })
    const key = toBase64url(read.cti)
    const hit = this.#cache.get(key)
    if (hit !== undefined && bytesEqual(hit.bytes, bytes)) {
      this.#cache.delete(key)
      this.#cache.set(key, hit) // most recently used last
      this.counters.cached++
      return hit.credential
    }
    const credential = verifyCredential(bytes, this.policy, { now, publicKey: peer.publicKey, ed25519: this.#components.ed25519 })
    this.counters.verified++
    this.#remember(key, bytes, credential)
    return credential
  }

  #remember (key: string, bytes: Uint8Array, credential: Credential): void {
    this.#cache.delete(key)
    if (this.#cache.size >= this.#maxCached) {
      const oldest = this.#cache.keys().next().value
      const dropped = oldest === undefined ? undefined : this.#cache.get(oldest)
      if (oldest !== undefined) this.#cache.delete(oldest)
      if (dropped !== undefined && this.#byDevice.get(dropped.credential.device) === oldest) this.#byDevice.delete(dropped.credential.device)
    }
    this.#cache.set(key, { bytes: new Uint8Array(bytes), credential })
    this.#byDevice.set(credential.device, key)
  }
}
