import { readFile, writeFile } from 'node:fs/promises'
import {
  applyOwnerRotation, fleetPolicyJson, isDeviceId, meshError, rotate, rotateOwner, verifyHandover, verifyOwnerRotation, type FleetPolicy, type KeyPair
} from '../../shared/index.js'
import { EXIT_OK, onFileArgument, type Options } from '../cli.js'

/**
 * Rotation at the owners' side (issue 13; shared/handover.ts, shared/fleet.ts `rotate`,
 * shared/owner-rotation.ts):
 *   fleet enroll NEWKEY --replaces OLD_ID --handover FILE   the new key's credential (claim "prev")
 *                                                           and the rotation (a revocation "rotated"
 *                                                           carrying the handover), both signed by this owner
 *   fleet rotate-owner HANDOVER --owner-key FILE --out FILE an owner rotation, signed by this owner
 *   fleet apply-rotation FILE                               the fleet file with the rotated owner key,
 *                                                           once enough owners signed (fleet cosign)
 * A device's rotation spreads like a revocation: `iotmesh fleet publish FILE`, or a broker publish
 * on its retained topic.
 */

export const ROTATE_VERBS = ['rotate-owner', 'apply-rotation'] as const

export const ROTATE_OPTIONS: Options = { replaces: { type: 'string' }, handover: { type: 'string' }, 'rotation-out': { type: 'string' } }

export const ROTATE_HELP: Array<[string, string]> = [
  ['enroll PUBKEY --replaces ID --handover FILE', '[--rotation-out FILE]: re-enrolls a rotated device: the credential of the new key (naming the key it replaces) and the rotation ' +
    '(default <out>.rotation: the old key\'s revocation "rotated", carrying its handover; publish it as a revocation)'],
  ['rotate-owner HANDOVER', '--owner-key FILE --out FILE: an owner rotation (the old owner key\'s handover, iotmesh keys rotate), signed by this owner; others co-sign it (fleet cosign)'],
  ['apply-rotation FILE', 'checks an owner rotation against the fleet file (the threshold of current owners) and writes the fleet file with the new owner key']
]

type Say = (object: Record<string, unknown>, text: string) => void
type Finish = (bytes: Uint8Array, out: string, kind: string) => Promise<number>

async function readBytes (path: string, flag: string): Promise<Uint8Array> {
  return await onFileArgument(path, flag, async () => new Uint8Array(await readFile(path)))
}

/**
 * `fleet enroll … --replaces ID --handover FILE`: the handover must be the old key's, from the
 * device `--replaces` names to the key being enrolled (else ERR_BAD_HANDOVER). Returns the
 * rotation's bytes (written by the caller beside the credential) and the id the credential names as
 * replaced.
 */
export async function rotationForEnroll (values: Record<string, unknown>, policy: FleetPolicy, newId: string, owner: KeyPair): Promise<{ previous: string, rotation: Uint8Array } | undefined> {
  const replaces = values.replaces as string | undefined
  const handoverPath = values.handover as string | undefined
  if (replaces === undefined && handoverPath === undefined) return undefined
  if (replaces === undefined || handoverPath === undefined) throw meshError('ERR_BAD_ARGUMENT', 'fleet enroll re-enrolls a rotated device with both --replaces ID and --handover FILE (iotmesh keys rotate writes it)')
  if (!isDeviceId(replaces)) throw meshError('ERR_BAD_DEVICE_ID', `--replaces ${JSON.stringify(replaces)} is not a device id`)
  const handover = await readBytes(handoverPath, '--handover')
  const h = verifyHandover(handover, policy.fleet)
  if (h.device !== replaces || h.successor !== newId) {
    throw meshError('ERR_BAD_HANDOVER', `${handoverPath} hands ${h.device} over to ${h.successor}, not ${replaces} to ${newId}`)
  }
  return { previous: replaces, rotation: rotate({ policy, handover, owners: [owner] }) }
}

export async function runRotate (what: string, arg: string | undefined, values: Record<string, unknown>, file: string, policy: FleetPolicy,
  ownerKey: () => Promise<KeyPair>, finish: Finish, say: Say): Promise<number> {
  if (arg === undefined) throw meshError('ERR_BAD_ARGUMENT', `fleet ${what} FILE`)
  if (what === 'rotate-owner') {
    const out = values.out as string | undefined
    if (out === undefined) throw meshError('ERR_BAD_ARGUMENT', 'fleet rotate-owner needs --out')
    const bytes = rotateOwner({ policy, handover: await readBytes(arg, 'HANDOVER'), owners: [await ownerKey()] })
    return await finish(bytes, out, 'owner-rotation')
  }
  const bytes = await readBytes(arg, 'FILE')
  const rotation = verifyOwnerRotation(bytes, policy)
  const next = applyOwnerRotation(bytes, policy)
  await writeFile(file, `${JSON.stringify(fleetPolicyJson(next), null, 2)}\n`)
  say({ file, owner: rotation.owner, successor: rotation.successor, signers: rotation.signers, threshold: next.threshold },
    `wrote ${file}: owner ${rotation.owner} is now ${rotation.successor} (signed by ${rotation.signers.length} of ${policy.owners.length} owners); give every node the new fleet file`)
  return EXIT_OK
}
