import { readFile, writeFile } from 'node:fs/promises'
import { fleetPolicyJson, meshError, parseFleetPolicy, signFleetFile, verifyFleetFile, type FleetPolicy, type KeyPair } from '../../shared/index.js'
import { intFlag, onFileArgument } from '../cli.js'

/**
 * `iotmesh fleet sign-file NEXT`: the owners' side of fleet-file gossip (shared/fleet-file.ts,
 * mesh/routing/handlers/fleet.ts). NEXT is a fleet file (owners, threshold) edited as usual, e.g. a
 * copy of the current one after `fleet add-owner --file NEXT` or `fleet apply-rotation --file NEXT`;
 * it is signed as the successor of `--file` by the current owners (this one now, the others with
 * `fleet cosign`), its version written into NEXT, and `fleet publish` hands it to the mesh, where
 * every node holding `--file` takes it. A node given NEXT by hand holds that version already.
 */

export const FILE_VERBS = ['sign-file'] as const

export const FILE_HELP: Array<[string, string]> = [
  ['sign-file NEXT', '--owner-key FILE --out FILE [--version V]: the fleet file NEXT (e.g. a copy of --file after add-owner or apply-rotation) signed as the successor of --file ' +
    'by this owner, version V (default one above --file\'s, written into NEXT); others co-sign it (fleet cosign); fleet publish spreads it through the mesh']
]

type Finish = (bytes: Uint8Array, out: string, kind: string) => Promise<number>

export async function runFleetFile (arg: string | undefined, values: Record<string, unknown>, policy: FleetPolicy, ownerKey: () => Promise<KeyPair>, finish: Finish): Promise<number> {
  if (arg === undefined) throw meshError('ERR_BAD_ARGUMENT', 'fleet sign-file NEXT --owner-key FILE --out FILE')
  const out = values.out as string | undefined
  if (out === undefined) throw meshError('ERR_BAD_ARGUMENT', 'fleet sign-file needs --out')
  const text = await onFileArgument(arg, 'NEXT', async () => await readFile(arg, 'utf8'))
  let json: unknown
  try { json = JSON.parse(text) } catch (err) { throw meshError('ERR_BAD_ARGUMENT', `${arg} is not JSON: ${(err as Error).message}`) }
  const next = parseFleetPolicy(json, arg)
  if (next.fleet !== policy.fleet) throw meshError('ERR_UNKNOWN_FLEET', `${arg} is for fleet ${next.fleet}, the fleet file for ${policy.fleet}`)
  const version = intFlag(values, 'version', (policy.version ?? 0) + 1, (policy.version ?? 0) + 1, 0xffff_ffff)
  const bytes = signFleetFile({ current: policy, next, version, owners: [await ownerKey()] })
  await writeFile(arg, `${JSON.stringify(fleetPolicyJson({ ...next, version }), null, 2)}\n`)
  return await finish(bytes, out, 'fleet-file')
}

/** What `fleet check` and `fleet publish` say of a signed fleet file (throws its code when it does not hold against `policy`). */
export function describeFleetFile (bytes: Uint8Array, policy: FleetPolicy): { object: Record<string, unknown>, text: string } {
  const f = verifyFleetFile(bytes, policy)
  return {
    object: { ok: true, kind: 'fleet-file', version: f.version, threshold: f.threshold, owners: f.owners.map((o) => o.id), signers: f.signers },
    text: `fleet file version ${f.version}: ${f.owners.length} owners, ${f.threshold} must sign; signed by ${f.signers.length} owner(s) of version ${policy.version ?? 0}: valid`
  }
}
