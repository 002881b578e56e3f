import { systemClock, type Clock } from './clock.js'
import { defaultEd25519 } from './crypto/ed25519-default.js'
import type { Ed25519, PublicKey } from './crypto/ed25519.js'
import { isMeshError, type ErrorCode } from './errors.js'
import { DEFAULT_FRAME_LIMITS, decodeFrame, verifyFrame, type FrameLimits, type TelemetryFrame } from './frame.js'
import { HoldPen } from './hold.js'
import type { DeviceId } from './identity.js'
import { KeyStore, type KeySource, type LearnResult } from './keys.js'
import { createReplayGuard, type ReplayGuard } from './replay.js'
import { carryMark, markVerified, vouched } from './verified.js'

/**
 * The one frame verifier of iotmesh: what the mesh router and the gateway's ingest both do with a
 * signed frame before anyone sees it. One key store, one holding pen for frames of signers whose
 * key is not known yet, one replay window, one set of limits and defaults:
 *
 *   decode (bounded) → replay check → roster → key known? → verify the signature → record (origin, seq)
 *                   │                            └─ no: hold (bounded) until a key arrives, else refuse
 *                   └─ seen: the same frame (a duplicate), or another one signed for that (origin, seq): a clone
 *
 * (origin, seq) is recorded only after the signature holds, so a forged frame cannot burn a
 * sequence number. A frame whose key is unknown is held with an item of the caller's choosing
 * (the router holds the bytes and the link they came from, the gateway the decoded frame and a
 * promise); `learnKey` hands back every item held for that signer, and the caller admits them
 * again. Callers bind the frame to where it travelled (an MQTT topic, a link) themselves.
 *
 * State that strangers cannot evict: keys and replay windows of devices vouched for by a trusted
 * source (`learnKey(pk, id, 'pin')`: a roster, a link handshake, DNS-SD, a retained status, an
 * operator) or that earned it (`promoteAfter` verified frames) live apart from those of strangers
 * (gossiped keys, origins seen a few times): see keys.ts and replay.ts.
 *
 * Cloned identities (one key on two boards): Ed25519 signatures are deterministic (RFC 8032 §5.1.6),
 * so one signer signs one (origin, seq) once, and a second, different, validly signed frame for an
 * (origin, seq) already accepted means two signers share the key. The verifier remembers a
 * fingerprint of each origin's recent frames (the first 4 signature bytes); a duplicate whose
 * fingerprint differs is verified, and refused as ERR_CLONED_IDENTITY when it holds (the first
 * copy stays). A duplicate costs a lookup unless its fingerprint differs.
 *
 * Verify once per process (verified.ts): a frame whose bytes object this process signed, or a
 * verifier of this process accepted, with the very key held here for its origin is not checked
 * again (every other check still runs: replay window, roster, key known); an accepted frame's
 * bytes are marked so. Bytes from a link, a socket or a file are a new object and always checked.
 */

export interface VerifierInit {
  /** Closed mode: only these keys are ever trusted. */
  roster?: Iterable<PublicKey>
  /** Open mode: most keys remembered. Default 100,000. */
  maxKeys?: number
  /** Replay window per origin, in sequence numbers (RFC 4303 §3.4.3). Default 1024. */
  replayWindow?: number
  /** Most known origins the replay window tracks (vouched for, or earned). Default 65,536. */
  maxOrigins?: number
  /** Most origins nobody vouched for yet that the replay window tracks. Default 4096. */
  maxStrangers?: number
  /** Most gossiped keys nobody vouched for yet. Default 4096. */
  maxStrangerKeys?: number
  /** A stranger becomes known after this many verified frames (if the known tier has room). Default 3. */
  promoteAfter?: number
  /** How long a frame waits for its signer's key, ms. Default 3000. */
  holdMs?: number
  /** Most frames held at once, all signers together. Default 1024. */
  maxHeld?: number
  /** Most frames held for one signer. Default 64. */
  maxHeldPerSigner?: number
  /** Size and shape limits of a frame. */
  limits?: FrameLimits
}

export interface VerifierComponents {
  /** Timers of the holding pen. */
  clock?: Clock
  ed25519?: Ed25519
}

export const VERIFIER_DEFAULTS = {
  maxKeys: 100_000,
  replayWindow: 1024,
  maxOrigins: 65_536,
  maxStrangers: 4096,
  maxStrangerKeys: 4096,
  promoteAfter: 3,
  holdMs: 3000,
  maxHeld: 1024,
  maxHeldPerSigner: 64
} as const

/** Why the verifier refused a frame. */
export type Refusal = 'malformed' | 'too-old' | 'not-in-roster' | 'bad-signature' | 'unknown-signer' | 'cloned'

export type Admission =
  | { verdict: 'accepted', frame: TelemetryFrame }
  /** Already accepted: a retransmission, a second path, or a replay inside the window. */
  | { verdict: 'duplicate', frame: TelemetryFrame }
  /** Waiting for the signer's key; `first` when it is the first frame held for that signer. */
  | { verdict: 'held', frame: TelemetryFrame, first: boolean }
  | { verdict: 'refused', refusal: Refusal, code: ErrorCode, message: string, frame?: TelemetryFrame }

/** An item held while its signer's key is asked for, and what to do when the wait is over. */
export interface HoldRequest<T> {
  item: T
  /** Called when the hold time passed without a key. */
  onExpire: (item: T) => void
}

/** Admits telemetry frames: decodes, checks the signature with the signer's key, refuses replays, holds frames while a key is asked for. */
export class Verifier<T = unknown> {
  readonly keys: KeyStore
  readonly replay: ReplayGuard
  readonly limits: FrameLimits
  readonly #pen: HoldPen<T>
  readonly #ed: Ed25519
  readonly #promoteAfter: number
  /** Second copies that verified: (origin, seq) signed twice by one key. */
  clones = 0
  /** Signatures of frames checked here (admit and secondCopy). */
  checked = 0
  /** Frames admitted on this process's own mark instead of a second check (verified.ts). */
  vouched = 0

  constructor (init: VerifierInit = {}, components: VerifierComponents = {}) {
    this.keys = new KeyStore({ roster: init.roster, max: init.maxKeys ?? VERIFIER_DEFAULTS.maxKeys, maxStrangers: init.maxStrangerKeys ?? VERIFIER_DEFAULTS.maxStrangerKeys })
    this.replay = createReplayGuard({
      window: init.replayWindow ?? VERIFIER_DEFAULTS.replayWindow,
      maxOrigins: init.maxOrigins ?? VERIFIER_DEFAULTS.maxOrigins,
      maxStrangers: init.maxStrangers ?? Math.min(init.maxOrigins ?? VERIFIER_DEFAULTS.maxOrigins, VERIFIER_DEFAULTS.maxStrangers)
    })
    this.#promoteAfter = Math.max(1, init.promoteAfter ?? VERIFIER_DEFAULTS.promoteAfter)
    if (init.roster !== undefined) for (const id of this.keys.ids()) this.replay.protect(id, 'pin')
    this.limits = init.limits ?? DEFAULT_FRAME_LIMITS
    this.#pen = new HoldPen({
      clock: components.clock ?? systemClock,
      holdMs: init.holdMs ?? VERIFIER_DEFAULTS.holdMs,
      max: init.maxHeld ?? VERIFIER_DEFAULTS.maxHeld,
      maxPerSigner: init.maxHeldPerSigner ?? VERIFIER_DEFAULTS.maxHeldPerSigner
    })
    this.#ed = components.ed25519 ?? defaultEd25519
  }

  /** Frames waiting for a key right now. */
  get heldCount (): number { return this.#pen.size }

  /** Decodes a frame within the limits, or refuses it with the codec's stable code. Never throws. */
  decode (bytes: Uint8Array): { ok: true, frame: TelemetryFrame } | { ok: false, refusal: Extract<Admission, { verdict: 'refused' }> } {
    try {
      return { ok: true, frame: decodeFrame(bytes, this.limits) }
    } catch (err) {
      const code: ErrorCode = isMeshError(err) ? err.code : 'ERR_BAD_CBOR'
      return { ok: false, refusal: { verdict: 'refused', refusal: 'malformed', code, message: err instanceof Error ? err.message : String(err) } }
    }
  }

  /**
   * Decides on one decoded frame. With `hold`, a frame whose key is unknown waits in the pen
   * (bounded) and `learnKey` later hands `hold.item` back; without it, it is refused.
   */
  /**
   * True when `admit` would check this frame's signature now and accept it if it holds: a number
   * new to the replay window, an allowed origin whose key is known (not held, not a duplicate).
   * Costs lookups only; records nothing.
   */
  fresh (frame: TelemetryFrame): boolean {
    return this.replay.check(frame.origin, frame.seq) === 'ok' && this.keys.allowed(frame.origin) && this.keys.get(frame.origin) !== undefined
  }

  admit (frame: TelemetryFrame, hold?: HoldRequest<T>): Admission {
    const { origin, seq } = frame
    const early = this.replay.check(origin, seq)
    if (early === 'replay') return this.#seen(frame)
    if (early === 'too-old') return this.#tooOld(frame)
    if (!this.keys.allowed(origin)) return { verdict: 'refused', refusal: 'not-in-roster', code: 'ERR_NOT_IN_ROSTER', message: `device ${origin} is not in the roster`, frame }
    const key = this.keys.get(origin)
    if (key === undefined) {
      if (hold !== undefined && this.#pen.hold(origin, hold.item, hold.onExpire)) return { verdict: 'held', frame, first: this.#pen.count(origin) === 1 }
      return { verdict: 'refused', refusal: 'unknown-signer', code: 'ERR_UNKNOWN_SIGNER', message: `no key is known for ${origin}${hold === undefined ? '' : ' and the holding pen is full'}`, frame }
    }
    const taken = vouched(frame.bytes, key)
    if (taken) this.vouched++
    else {
      const refused = this.#check(frame, key)
      if (refused !== undefined) return refused
    }
    // Only now is (origin, seq) recorded: a forged frame cannot burn a sequence number.
    const verdict = this.replay.accept(origin, seq)
    if (verdict === 'replay') return this.#seen(frame)
    if (verdict === 'too-old') return this.#tooOld(frame)
    if (!taken) markVerified(frame.bytes, key)
    this.replay.mark(origin, seq, fingerprint(frame))
    if (this.replay.hits(origin) >= this.#promoteAfter) this.#earn(origin)
    return { verdict: 'accepted', frame }
  }

  /**
   * Judges a second copy of an (origin, seq) already accepted whose bytes differ from the first
   * (the caller compared them, or the fingerprints differ): refused as ERR_CLONED_IDENTITY when
   * its signature holds (two signers share the key), as ERR_BAD_SIGNATURE when it does not (a
   * duplicate when no key is held to judge it). Nothing is recorded.
   */
  secondCopy (frame: TelemetryFrame): Admission {
    const key = this.keys.get(frame.origin)
    if (key === undefined) return { verdict: 'duplicate', frame } // cannot be judged: refused as a duplicate
    const refused = this.#check(frame, key)
    if (refused !== undefined) return refused
    this.clones++
    return {
      verdict: 'refused',
      refusal: 'cloned',
      code: 'ERR_CLONED_IDENTITY',
      message: `${frame.origin}#${frame.seq} was signed twice with different contents: two devices hold ${frame.origin}'s key (a cloned SD card?); the first copy is kept`,
      frame
    }
  }

  /**
   * Checks the signature of a frame already accepted here (a copy passed on again, not admitted):
   * true when its origin's key is known and the signature holds. Nothing is recorded.
   */
  authentic (frame: TelemetryFrame): boolean {
    const key = this.keys.get(frame.origin)
    return key !== undefined && (vouched(frame.bytes, key) || this.#check(frame, key) === undefined)
  }

  /**
   * Gives a copy of an accepted frame's bytes (a router keeps its own copy of what a link handed
   * it) the mark the original got here, so this process's other verifiers take it without a second
   * check. Only equal bytes of a marked original get it.
   */
  carry (original: Uint8Array, copy: Uint8Array): void {
    carryMark(original, copy)
  }

  /** Records a frame this node signed itself (no verification needed). */
  recordOwn (origin: DeviceId, seq: number, frame?: TelemetryFrame): void {
    this.replay.protect(origin, 'pin')
    this.replay.accept(origin, seq)
    if (frame !== undefined) this.replay.mark(origin, seq, fingerprint(frame))
  }

  /**
   * Learns a key (for `id` when given: it must derive to it). Returns what the key store said and
   * the items held for that signer, which the caller admits again now that the key is known.
   * `source`: 'pin' (the default) for a trusted source, whose device's key and replay window
   * strangers cannot evict; 'gossip' for a key anyone could have sent (a KEY message).
   */
  learnKey (publicKey: PublicKey, id?: DeviceId, source: KeySource = 'pin'): { result: LearnResult, id: DeviceId, released: T[] } {
    const learned = this.keys.learn(publicKey, id, source)
    const ok = learned.result === 'added' || learned.result === 'known'
    if (ok && source === 'pin') this.replay.protect(learned.id, 'pin')
    const released = ok ? this.#pen.release(learned.id) : []
    return { ...learned, released }
  }

  /** True when `id` is a known device: vouched for by a trusted source, or earned with verified frames. */
  known (id: DeviceId): boolean {
    return this.replay.known(id)
  }

  /** Takes every held item (on stop); their `onExpire` is not called. */
  clear (): T[] {
    return this.#pen.clear()
  }

  /** A frame whose (origin, seq) was accepted before: the same frame, or a clone's (see `secondCopy`). */
  #seen (frame: TelemetryFrame): Admission {
    const first = this.replay.print(frame.origin, frame.seq)
    if (first === undefined || first === fingerprint(frame)) return { verdict: 'duplicate', frame }
    return this.secondCopy(frame)
  }

  /** A stranger that sent `promoteAfter` verified frames: its window and key join the known tier, if it has room. */
  #earn (origin: DeviceId): void {
    if (this.replay.protect(origin, 'earn')) this.keys.promote(origin)
  }

  /** Checks the signature; the refusal when it does not hold. */
  #check (frame: TelemetryFrame, key: PublicKey): Extract<Admission, { verdict: 'refused' }> | undefined {
    this.checked++
    try {
      verifyFrame(frame, key, { ed25519: this.#ed, checkId: false })
      return undefined
    } catch (err) {
      const code: ErrorCode = isMeshError(err) ? err.code : 'ERR_BAD_SIGNATURE'
      return { verdict: 'refused', refusal: 'bad-signature', code, message: err instanceof Error ? err.message : String(err), frame }
    }
  }

  #tooOld (frame: TelemetryFrame): Admission {
    const message = `${frame.origin}#${frame.seq} is below the replay window (highest ${this.replay.high(frame.origin) ?? '?'})`
    return { verdict: 'refused', refusal: 'too-old', code: 'ERR_REPLAY', message, frame }
  }
}

/** The first 4 bytes of a frame's signature: the same frame has the same, another frame (almost surely) not. */
export function fingerprint (frame: TelemetryFrame): number {
  const s = frame.signature
  return (((s[0] ?? 0) << 24) | ((s[1] ?? 0) << 16) | ((s[2] ?? 0) << 8) | (s[3] ?? 0)) >>> 0
}
