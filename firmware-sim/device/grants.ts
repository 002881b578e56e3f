import { readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import {
  Commanders, GRANTS_TARGET, checkNewer, readCredential, grantAllows, grantCovers, grantIsTo, granteeText, isMeshError, peekFleetConfig, verifyCommandGrants,
  type Clock, type Commander, type CommandGrant, type Credential, type DeviceId, type Ed25519, type ErrorCode, type FleetConfig, type FleetPolicy, type GrantSubject
} from '../../shared/index.js'
import type { MeshNode } from '../../mesh/index.js'

/**
 * Who may command an enrolled device (issue 13, "Grants"): the fleet's owner-signed grant policy
 * (shared/grants.ts), which reaches the device as configurations do (CONFIG gossip through the mesh,
 * retained `iotmesh/<fleet>/$config/$grants` on MQTT) and is kept in `<dataDir>/grants.cose`.
 *
 * - Once the device holds a policy, the policy alone decides (the `--commanders` file, if any, no
 *   longer counts); until then the file decides, as on a device that is not enrolled.
 * - A newer version replaces the older one; an older one the owners signed is refused with
 *   ERR_CONFIG_STALE (counted; no rollback by replaying an older policy); a forgery is ignored here
 *   (the mesh refuses and scores it before it gets here).
 * - A grant to a key names the key, so the command's signature is checked against it. A grant to a
 *   credential role admits an issuer whose credential (verified, unexpired, not revoked) this device
 *   knows: one shown in a link handshake (`credentialOf`). A role grant does not reach a commander
 *   that never linked with this device; give such a commander a key grant.
 */

export const GRANTS_FILE = 'grants.cose'

export interface GrantCounters {
  /** Policies applied, and those refused by code. */
  applied: number
  refused: Partial<Record<ErrorCode, number>>
}

/** A Commanders whose answers come from the grant policy held (or, with none yet, from `fallback`). */
export class GrantedCommanders extends Commanders {
  grants: readonly CommandGrant[] | undefined
  /** The static commanders file: it decides while no policy is held. */
  fallback: Commanders | undefined
  readonly #subject: () => GrantSubject
  readonly #credentialOf: (id: DeviceId) => Credential | undefined

  constructor (fallback: Commanders | undefined, subject: () => GrantSubject, credentialOf: (id: DeviceId) => Credential | undefined) {
    super()
    this.fallback = fallback
    this.#subject = subject
    this.#credentialOf = credentialOf
  }

  override get size (): number { return this.grants?.length ?? this.fallback?.size ?? 0 }

  /** The commander `id` is under the policy: its key (from a key grant, or its credential for a role grant) and the patterns granted to it here. */
  override get (id: DeviceId): Commander | undefined {
    const grants = this.grants
    if (grants === undefined) return this.fallback?.get(id)
    const self = this.#subject()
    const mine = grants.filter((g) => grantCovers(g, self))
    const byKey = mine.find((g) => 'id' in g.to && g.to.id === id)
    const credential = byKey === undefined && mine.some((g) => 'role' in g.to) ? this.#credentialOf(id) : undefined
    const roles = credential?.roles ?? []
    const granted = mine.filter((g) => grantIsTo(g, id, roles))
    const publicKey = byKey !== undefined && 'key' in byKey.to ? byKey.to.key : credential?.publicKey
    if (granted.length === 0 || publicKey === undefined) return undefined
    return { id, publicKey, name: byKey?.name ?? granted[0]?.name, actions: granted.flatMap((g) => g.actions) }
  }

  override allowed (id: DeviceId, action: string): boolean {
    const grants = this.grants
    if (grants === undefined) return this.fallback?.allowed(id, action) === true
    return grantAllows(grants, this.#subject(), id, this.#credentialOf(id)?.roles ?? [], action)
  }

  override list (): Commander[] {
    if (this.grants === undefined) return this.fallback?.list() ?? []
    return this.grants.filter((g) => 'key' in g.to).flatMap((g) => {
      const c = 'id' in g.to ? this.get(g.to.id) : undefined
      return c === undefined ? [] : [c]
    })
  }
}

/**
 * The grants of an enrolled device (a fleet file and a credential): its subject is its id, its
 * configured groups and the roles its own credential carries; the credentials it knows are those
 * its mesh node verified at link handshakes, unexpired and not revoked.
 */
export async function openDeviceGrants (
  init: { policy: FleetPolicy, credential: Uint8Array, id: DeviceId, groups?: readonly string[] | undefined, dataDir?: string | undefined },
  components: { node: () => MeshNode | undefined, clock: Clock, ed25519?: Ed25519 | undefined }
): Promise<DeviceGrants> {
  let roles: string[] = []
  try { roles = readCredential(init.credential, init.policy, { now: 0 }).roles } catch { /* the node refuses a bad credential at start */ }
  const credentialOf = (id: DeviceId): Credential | undefined => {
    const node = components.node()
    const credential = node?.credentials?.credentialOf(id)
    if (credential === undefined || node?.revoked(id) === true || credential.expiresAt <= components.clock.wall() / 1000) return undefined
    return credential
  }
  return await DeviceGrants.open(
    { policy: init.policy, dataDir: init.dataDir, subject: { id: init.id, groups: init.groups ?? [], roles } },
    { credentialOf, ...(components.ed25519 === undefined ? {} : { ed25519: components.ed25519 }) }
  )
}

export type GrantOutcome = 'applied' | 'ignored' | 'refused'
export interface GrantEvent { outcome: 'applied' | 'refused', version: number | undefined, grants: string[] }

export interface DeviceGrantsInit {
  policy: FleetPolicy
  dataDir?: string | undefined
  /** The static commanders file, deciding until a policy is held. */
  fallback?: Commanders | undefined
  /** This device: its id, configured groups and credential roles (what a grant's `on` names). */
  subject: GrantSubject
}

export interface DeviceGrantsComponents {
  /** A verified, current credential of `id` this device knows (its link handshakes); undefined: none. */
  credentialOf?: (id: DeviceId) => Credential | undefined
  ed25519?: Ed25519
}

/** Who may command an enrolled device: its fleet's owner-signed grant policy, received, checked and kept (`grants.cose`). */
export class DeviceGrants {
  readonly commanders: GrantedCommanders
  readonly counters: GrantCounters = { applied: 0, refused: {} }
  readonly #init: DeviceGrantsInit
  readonly #ed25519: Ed25519 | undefined
  #held: { version: number, bytes: Uint8Array } | undefined
  #writing = Promise.resolve()

  private constructor (init: DeviceGrantsInit, components: DeviceGrantsComponents) {
    this.#init = init
    this.#ed25519 = components.ed25519
    const credentialOf = components.credentialOf ?? (() => undefined)
    this.commanders = new GrantedCommanders(init.fallback, () => init.subject, credentialOf)
  }

  /** Opens the policy kept under `dataDir` (none, or one that no longer holds against the fleet file: none held). */
  static async open (init: DeviceGrantsInit, components: DeviceGrantsComponents = {}): Promise<DeviceGrants> {
    const grants = new DeviceGrants(init, components)
    if (init.dataDir === undefined) return grants
    let bytes: Uint8Array
    try {
      bytes = new Uint8Array(await readFile(join(init.dataDir, GRANTS_FILE)))
    } catch {
      return grants
    }
    try {
      grants.#hold(verifyCommandGrants(bytes, init.policy, grants.#options()), bytes)
    } catch { /* another fleet file, or a damaged file: as if none were kept */ }
    return grants
  }

  /** The version held (undefined: none; the fallback file decides). */
  get version (): number | undefined { return this.#held?.version }

  /** The held policy's signed bytes (the node hands it on), if any. */
  get bytes (): Uint8Array | undefined { return this.#held?.bytes }

  /** The version held and the counters (a copy). */
  get state (): { version: number | undefined, counters: GrantCounters } {
    return { version: this.version, counters: { applied: this.counters.applied, refused: { ...this.counters.refused } } }
  }

  /**
   * Considers a grant policy (verified already when `verified` is given): applies a newer one,
   * refuses (counts) an older one the owners signed, ignores the rest; `onChange` hears of the first two.
   */
  async consider (bytes: Uint8Array, verified?: FleetConfig, onChange?: (event: GrantEvent) => void): Promise<GrantOutcome> {
    const outcome = await this.#consider(bytes, verified)
    if (outcome !== 'ignored') onChange?.({ outcome, version: this.version, grants: this.describe() })
    return outcome
  }

  async #consider (bytes: Uint8Array, verified: FleetConfig | undefined): Promise<GrantOutcome> {
    let version: number
    try {
      const peek = verified ?? peekFleetConfig(bytes)
      if (peek.target !== GRANTS_TARGET) return 'ignored'
      version = peek.version
    } catch {
      return 'ignored'
    }
    if (version === this.#held?.version) return 'ignored'
    let config: FleetConfig & { grants: CommandGrant[] }
    try {
      config = verified?.grants === undefined ? verifyCommandGrants(bytes, this.#init.policy, this.#options()) : { ...verified, grants: verified.grants }
    } catch {
      return 'ignored' // not the owners': the mesh's to refuse and score
    }
    try {
      checkNewer(version, this.#held?.version, GRANTS_TARGET)
    } catch (err) {
      const code: ErrorCode = isMeshError(err) ? err.code : 'ERR_CONFIG_STALE'
      this.counters.refused[code] = (this.counters.refused[code] ?? 0) + 1
      return 'refused'
    }
    this.#hold(config, bytes)
    this.counters.applied++
    await this.#save(bytes)
    return 'applied'
  }

  /** The grants held, as text (for logs and the CLI). */
  describe (): string[] {
    return (this.commanders.grants ?? []).map((g) => `${granteeText(g.to)} may ${g.actions.join(',')} on ${g.on.join(',')}`)
  }

  #hold (config: FleetConfig & { grants: CommandGrant[] }, bytes: Uint8Array): void {
    this.#held = { version: config.version, bytes }
    this.commanders.grants = config.grants
  }

  async #save (bytes: Uint8Array): Promise<void> {
    const dataDir = this.#init.dataDir
    if (dataDir === undefined) return
    const path = join(dataDir, GRANTS_FILE)
    const write = this.#writing.then(async () => {
      await writeFile(`${path}.tmp`, bytes, { mode: 0o600 })
      await rename(`${path}.tmp`, path)
    })
    this.#writing = write.catch(() => {})
    await write
  }

  #options (): { ed25519?: Ed25519 } {
    return this.#ed25519 === undefined ? {} : { ed25519: this.#ed25519 }
  }
}
