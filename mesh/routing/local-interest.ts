import type { Clock, Ed25519, KeyPair } from '../../shared/index.js'
import { HashChain, chainSeed } from './chain.js'
import { UNREACHABLE, type Claim } from './claim.js'
import { checkDeclarable, signDeclaration } from './declaration.js'

interface Own { version: number, filters: readonly string[], declaration: Uint8Array, chain: HashChain }

/**
 * This node's own interest: its subscriptions (counted per filter), the version of its
 * declaration, and the declaration itself with its hash chain, signed once per version.
 *
 * Versions start from the wall clock in ms and only grow (`bump`): a restarted subscriber
 * declares above every version it used before (unless it bumped faster than once a millisecond
 * on average), with nothing stored.
 */
export class LocalInterest {
  readonly #keys: KeyPair
  readonly #ed: Ed25519 | undefined
  readonly #clock: Clock
  readonly #filters = new Map<string, number>() // filter -> subscription count
  #list: readonly string[] = [] // the filters, kept as they change: read for every frame and every `wants`
  #version: number
  #declared = false
  #own: Own | undefined

  constructor (components: { keys: KeyPair, clock: Clock, ed25519?: Ed25519 }) {
    this.#keys = components.keys
    this.#ed = components.ed25519
    this.#clock = components.clock
    this.#version = Math.floor(this.#clock.wall())
  }

  get filters (): readonly string[] { return this.#list }
  get version (): number { return this.#version }

  /**
   * Adds or removes one local subscription; returns true when the declared set changed (a new
   * version). Throws ERR_BAD_ARGUMENT for a filter this node could not declare (declaration.ts).
   */
  set (filter: string, delta: 1 | -1): boolean {
    if (delta === 1 && !this.#filters.has(filter)) checkDeclarable([...this.#filters.keys(), filter])
    const count = (this.#filters.get(filter) ?? 0) + delta
    const changed = count <= 0 ? this.#filters.delete(filter) : !this.#filters.has(filter)
    if (count > 0) this.#filters.set(filter, count)
    if (changed) {
      this.#list = [...this.#filters.keys()]
      this.#declared = true
      this.bump()
    }
    return changed
  }

  /** A new version of our declaration (a change, or the periodic refresh). */
  bump (): void { this.#version = Math.max(this.#version + 1, Math.floor(this.#clock.wall())) }

  /** Our claim as sent to neighbours (distance 0, proof e_0); undefined until something was declared. */
  claim (): Claim | undefined {
    if (!this.#declared) return undefined
    if (this.#own?.version !== this.#version) {
      const filters = this.filters
      const chain = HashChain.fromSeed(chainSeed(this.#keys.secretKey, this.#version), UNREACHABLE)
      const declaration = signDeclaration({ keys: this.#keys, version: this.#version, filters, anchor: chain.anchor, length: UNREACHABLE, ed25519: this.#ed })
      this.#own = { version: this.#version, filters, declaration, chain }
    }
    const own = this.#own
    return { subscriber: this.#keys.id, version: own.version, hops: 0, proof: own.chain.element(0) as Uint8Array, declaration: own.declaration, publicKey: this.#keys.publicKey }
  }
}
