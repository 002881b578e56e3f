import { encodeCbor } from './cbor.js'
import { HEADER_CONTENT_TYPE } from './cose.js'
import { signCoseSign } from './cose-sign.js'
import type { Ed25519, PublicKey } from './crypto/ed25519.js'
import { meshError } from './errors.js'
import { OWNER_ROTATION_CONTENT_FORMAT, checkSigners, issuer, open, ownerSignatures, payloadMap, type FleetPolicy } from './fleet.js'
import { verifyHandover } from './handover.js'
import { isDeviceId, type DeviceId, type KeyPair } from './identity.js'

/**
 * An owner's key rotates the way a device's does (shared/handover.ts): the old owner key signs a
 * handover to the new key, and the fleet's owners (the threshold of the CURRENT fleet file, k of n,
 * COSE_Sign RFC 9052 §4.1) sign the change. Content type 65008, payload
 *   {1: "iotmesh:<fleet>", 2: the old owner's id, 6: issued at, 8: the handover (COSE_Sign1 by the old owner key)}
 * `applyOwnerRotation` checks it against the current fleet file and returns the next one: the same
 * owners, names and threshold, the old key replaced by the new. The old key is no owner from then
 * on wherever the new fleet file is installed (`iotmesh fleet rotate-owner` writes it once the
 * threshold is met).
 *
 * Not done here: documents signed earlier by the old owner key are not carried over. A credential
 * or revocation that needs the old owner's signature to reach the threshold stops verifying under
 * the new fleet file and is co-signed again by the new key (`iotmesh fleet cosign`); counting old
 * signatures "issued before the rotation" would let whoever holds the old key later backdate them.
 */

export interface OwnerRotation {
  fleet: string
  /** The owner whose key is replaced, and the new key. */
  owner: DeviceId
  successor: DeviceId
  successorKey: PublicKey
  issuedAt: number
  signers: DeviceId[]
}

/** Signs an owner rotation (the handover from the old owner key) with `owners` (co-signers add theirs: `cosign`). */
export function rotateOwner (input: { policy: FleetPolicy, handover: Uint8Array, issuedAt?: number, owners: KeyPair[], ed25519?: Ed25519 }): Uint8Array {
  const h = verifyHandover(input.handover, input.policy.fleet, { ...(input.ed25519 === undefined ? {} : { ed25519: input.ed25519 }) })
  checkOwnerChange(input.policy, h.device, h.successor)
  checkSigners(input.policy, input.owners)
  const payload = new Map<number, unknown>([[1, issuer(input.policy.fleet)], [2, h.device], [6, Math.floor(input.issuedAt ?? Date.now() / 1000)], [8, input.handover]])
  return signCoseSign({ protectedHeader: new Map([[HEADER_CONTENT_TYPE, OWNER_ROTATION_CONTENT_FORMAT]]), payload: encodeCbor(payload), signers: input.owners, ed25519: input.ed25519 })
}

/**
 * Checks an owner rotation against the current fleet file: layout (ERR_BAD_ROTATION), fleet
 * (ERR_UNKNOWN_FLEET), the owners' signatures (ERR_NOT_OWNER, ERR_TOO_FEW_OWNERS), then the old
 * owner key's handover (ERR_BAD_HANDOVER), and that the old key is an owner and the new one not yet.
 */
export function verifyOwnerRotation (bytes: Uint8Array, policy: FleetPolicy, options: { ed25519?: Ed25519 } = {}): OwnerRotation {
  const message = open(bytes, OWNER_ROTATION_CONTENT_FORMAT, 'ERR_BAD_ROTATION')
  const fields = payloadMap(message, 'ERR_BAD_ROTATION')
  const [fleet, owner, issuedAt, handover] = [fields.get(1), fields.get(2), fields.get(6), fields.get(8)]
  if (typeof fleet !== 'string' || !isDeviceId(owner) || !Number.isSafeInteger(issuedAt) || !(handover instanceof Uint8Array)) {
    throw meshError('ERR_BAD_ROTATION', 'an owner rotation is {1: fleet, 2: old owner id, 6: issued at, 8: handover}')
  }
  if (fleet !== issuer(policy.fleet)) throw meshError('ERR_UNKNOWN_FLEET', `the owner rotation is for ${fleet}, not ${issuer(policy.fleet)}`)
  const signers = ownerSignatures(message, policy, options.ed25519)
  const h = verifyHandover(handover, policy.fleet, options)
  if (h.device !== owner) throw meshError('ERR_BAD_HANDOVER', `the rotation of owner ${owner} carries the handover of ${h.device}`)
  checkOwnerChange(policy, h.device, h.successor)
  return { fleet: policy.fleet, owner, successor: h.successor, successorKey: h.successorKey, issuedAt: issuedAt as number, signers }
}

/** The fleet file after a valid owner rotation: the old owner's entry now holds the new key (name and threshold kept). */
export function applyOwnerRotation (bytes: Uint8Array, policy: FleetPolicy, options: { ed25519?: Ed25519 } = {}): FleetPolicy {
  const r = verifyOwnerRotation(bytes, policy, options)
  return { ...policy, owners: policy.owners.map((w) => w.id === r.owner ? { name: w.name, id: r.successor, publicKey: r.successorKey } : w) }
}

function checkOwnerChange (policy: FleetPolicy, owner: DeviceId, successor: DeviceId): void {
  if (!policy.owners.some((w) => w.id === owner)) throw meshError('ERR_NOT_OWNER', `${owner} is not an owner of fleet ${policy.fleet}: only an owner's key is rotated this way`)
  if (policy.owners.some((w) => w.id === successor)) throw meshError('ERR_BAD_ROTATION', `${successor} is an owner of fleet ${policy.fleet} already`)
}
