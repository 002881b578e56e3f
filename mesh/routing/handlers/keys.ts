import { deviceIdFromBytes, type DeviceId, type PublicKey } from '../../../shared/index.js'
import { MSG } from '../messages.js'
import type { LinkState, RouterContext } from '../context.js'
import { tellCredential } from './credential.js'

/** KEY [5, [publicKey…]]: keys of origins a neighbour is about to send (self-certifying). */
export function onKeys (learn: (publicKey: PublicKey) => void, keys: Uint8Array[]): void {
  for (const key of keys) learn(key)
}

/** KEYREQ [6, [kid…]]: a neighbour holds frames whose signer it cannot verify, or (a fleet closed by credential) whose origin's credential it lacks. */
export function onKeyRequest (ctx: RouterContext, state: LinkState, kids: Uint8Array[]): void {
  const ids = kids.map((kid) => deviceIdFromBytes(kid))
  const keys = ids.map((id) => ctx.verifier.keys.get(id)).filter((k): k is PublicKey => k !== undefined)
  if (keys.length > 0) ctx.send(state, { kind: MSG.KEY, keys })
  const credentials = ids.map((id) => ctx.credentials?.bytesOf(id)).filter((c): c is Uint8Array => c !== undefined)
  if (credentials.length > 0) ctx.send(state, { kind: MSG.CRED, credentials })
}

/** Sends a neighbour the key of `origin` (and its credential, when held) once, before the first frame or command of `origin` it gets from us. */
export function tellKey (ctx: RouterContext, state: LinkState, origin: DeviceId): void {
  if (state.told.has(origin)) return
  const key = ctx.verifier.keys.get(origin)
  if (key === undefined) return
  state.told.add(origin)
  ctx.send(state, { kind: MSG.KEY, keys: [key] })
  tellCredential(ctx, state, origin)
}
