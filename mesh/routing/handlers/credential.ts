import { deviceIdToBytes, isMeshError, ownBytes, type DeviceId, type ErrorCode } from '../../../shared/index.js'
import { MSG } from '../messages.js'
import type { HeldFrame, LinkState, RouterContext } from '../context.js'

/**
 * CRED [12, [credential…]]: owner-signed enrollment credentials (shared/fleet.ts) of devices this
 * node may never link with (issue 13, "credential gossip for relayed frames"). In a fleet closed by
 * credential every hop checks its neighbours' credentials at the handshake (mesh/credentials.ts);
 * a relayed frame's origin, or a command's issuer, is further away. So the credential travels with
 * what needs it: a node sends a neighbour an origin's credential with its key (KEY), once per link,
 * before the first frame or command of that origin it passes to it (`tellKey`), and answers a KEYREQ
 * with the credentials it holds of the kids asked for.
 *
 * A credential taken here is checked as at a handshake (layout, fleet, key binding, expiry, not
 * revoked, then at most one signature check per owner; bytes verified before cost a lookup) and
 * kept in the node's bounded credential cache (1,024, least recently used out first). Then its key
 * is learned as vouched for by the owners, and frames that waited for it are admitted again. What a
 * neighbour may make this node read is its CRED budget (budget.ts); a credential that fails counts
 * against it (score.ts 'invalid'), one of another fleet does not.
 *
 * With `checkOrigins` (a node that checks its neighbours' credentials itself), a frame from a link
 * whose origin has no credential held here (nor is an owner) waits, bounded as frames wait for a
 * key (per neighbour, per origin, in all, `keyWait` ms), while the neighbour is asked (KEYREQ); if
 * none comes it is refused with ERR_NO_CREDENTIAL and counts against the neighbour as an unknown
 * signer would. An honest relay always sends the credential first, and passes on only frames whose
 * origin's credential it holds.
 */

export function onCredentials (ctx: RouterContext, state: LinkState, credentials: Uint8Array[]): void {
  for (const bytes of credentials) takeCredential(ctx, bytes, state.peer)
}

/** Takes one credential from a neighbour (undefined: from here). */
export function takeCredential (ctx: RouterContext, bytes: Uint8Array, from: DeviceId | undefined): 'added' | 'known' | 'ignored' | ErrorCode {
  const book = ctx.credentials
  if (book === undefined) return 'ignored'
  let taken: ReturnType<typeof book.learn>
  try {
    taken = book.learn(bytes)
  } catch (err) {
    const code: ErrorCode = isMeshError(err) ? err.code : 'ERR_BAD_CREDENTIAL'
    ctx.drop({ code, ...(from === undefined ? {} : { from }) })
    // Not the sender's fault: another fleet's, one that expired or was revoked on its way here.
    if (code !== 'ERR_UNKNOWN_FLEET' && code !== 'ERR_CREDENTIAL_EXPIRED' && code !== 'ERR_REVOKED') ctx.observe(from, 'invalid')
    return code
  }
  const { device, publicKey } = taken.credential
  if (taken.verdict === 'added') ctx.counters.credentials++
  ctx.learnKey(publicKey, device, 'pin')
  const waiting = ctx.credentialWait.release(device)
  if (waiting.length > 0) ctx.readmit(waiting)
  return taken.verdict
}

/** Sends a neighbour `origin`'s credential, when this node holds one (with its key: handlers/keys.ts tellKey). */
export function tellCredential (ctx: RouterContext, state: LinkState, origin: DeviceId): void {
  const bytes = ctx.credentials?.bytesOf(origin)
  if (bytes !== undefined) ctx.send(state, { kind: MSG.CRED, credentials: [bytes] })
}

/**
 * In a fleet closed by credential, a frame from a link whose origin is not enrolled as far as this
 * node knows: held while the neighbour is asked (KEYREQ), or refused (ERR_NO_CREDENTIAL) when the
 * wait is full. Undefined: the frame goes on (not gated, its own, an owner's, or a credential held).
 */
export function awaitCredential (ctx: RouterContext, bytes: Uint8Array, hops: number, origin: DeviceId, seq: number, state: LinkState | undefined): { verdict: 'held' } | { verdict: 'refused', code: ErrorCode } | undefined {
  const book = ctx.credentials
  if (!ctx.checkOrigins || book === undefined || state === undefined || origin === ctx.id || book.enrolled(origin)) return undefined
  const from = state.peer
  const held: HeldFrame = { bytes: ownBytes(bytes), hops, from, via: state }
  const onExpire = (h: HeldFrame): void => {
    if (h.via !== undefined) h.via.held--
    ctx.drop({ code: 'ERR_NO_CREDENTIAL', origin, from: h.from })
    ctx.observe(h.from, 'unknownSigner')
  }
  if (state.held < ctx.options.maxHeldPerPeer && ctx.credentialWait.hold(origin, held, onExpire)) {
    state.held++
    if (ctx.credentialWait.count(origin) === 1) ctx.send(state, { kind: MSG.KEYREQ, kids: [deviceIdToBytes(origin)] })
    return { verdict: 'held' }
  }
  ctx.drop({ code: 'ERR_NO_CREDENTIAL', origin, seq, from })
  return { verdict: 'refused', code: 'ERR_NO_CREDENTIAL' }
}
