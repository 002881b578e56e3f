import { bytesEqual, meshError, toBase64url, type PublicKey } from '../../shared/index.js'
import type { Authorize, DialOptions, RemotePeer } from './types.js'

/** Checks every transport applies to a peer once it has proven its key (TCP in the handshake, memory at dial). */

/** ERR_PEER_KEY_MISMATCH when the proven peer is not the one discovery announced. */
export function checkExpected (remote: RemotePeer, expected: Pick<DialOptions, 'expectedId' | 'expectedPublicKey'>): void {
  if (expected.expectedPublicKey !== undefined && !bytesEqual(expected.expectedPublicKey, remote.publicKey)) {
    throw meshError('ERR_PEER_KEY_MISMATCH', `the peer proved key ${toBase64url(remote.publicKey)} (id ${remote.id}), but discovery announced key ${toBase64url(expected.expectedPublicKey)}; refusing the link (stale announcement or impostor)`, { details: { id: remote.id, expectedPublicKey: toBase64url(expected.expectedPublicKey) } })
  }
  if (expected.expectedId !== undefined && expected.expectedId !== remote.id) {
    throw meshError('ERR_PEER_KEY_MISMATCH', `the peer proved id ${remote.id}, but discovery announced ${expected.expectedId} at that address; refusing the link (stale announcement or impostor)`, { details: { id: remote.id, expectedId: expected.expectedId } })
  }
}

/** ERR_NOT_IN_ROSTER when the node's `authorize` hook refuses the peer (or throws). */
export function checkAuthorized (remote: RemotePeer, authorize: Authorize | undefined): void {
  if (authorize === undefined) return
  let allowed = false
  let cause: unknown
  try {
    allowed = authorize(remote)
  } catch (err) {
    cause = err
  }
  if (!allowed) throw meshError('ERR_NOT_IN_ROSTER', `device ${remote.id} is not in this node's fleet roster; add its key to the roster to let it link`, { cause, details: { id: remote.id } })
}

/** ERR_HANDSHAKE when a node reaches itself (it discovered its own announcement). */
export function checkNotSelf (remote: RemotePeer, own: PublicKey): void {
  if (bytesEqual(remote.publicKey, own)) throw meshError('ERR_HANDSHAKE', `refusing a link to this node itself (${remote.id})`, { details: { id: remote.id, self: true } })
}
