import type { DeviceId, PublicKey } from '../../shared/index.js'

/** One INTEREST claim: what a node tells its neighbours of one subscriber (interest.ts). */

/** A distance at or above this is "unreachable" (RFC 1058 §2.2 uses 16; meshes may be deeper); also the hash chains' length N. */
export const UNREACHABLE = 64

/** What a neighbour tells us of one subscriber (an INTEREST entry), before it is checked. */
export interface Claim {
  readonly subscriber: DeviceId
  readonly version: number
  /** The neighbour's own distance to the subscriber (0: it is the subscriber). */
  readonly hops: number
  /** e_hops of the version's hash chain. */
  readonly proof: Uint8Array
  /**
   * The subscriber's signed declaration of this version (declaration.ts) and its key; left out
   * when the sender already sent them on this link for this version.
   */
  readonly declaration?: Uint8Array
  readonly publicKey?: PublicKey
}
