import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import {
  cosign, deviceIdFromPublicKey, enroll, fleetDocumentKind, fleetPolicyJson, fromBase64, isMeshError, meshError, parseFleetPolicy, revoke, verifyCredential, verifyOwnerRotation, verifyRevocation,
  DEFAULT_FLEET, generateKeyPair, type FleetPolicy, type KeyPair
} from '../../shared/index.js'
import { loadKeyFile, saveKeyFile } from '../../shared/node.js'
import { MeshNode } from '../../mesh/index.js'
import { readKeyFlag } from '../roster-flags.js'
import { CONFIG_HELP, CONFIG_OPTIONS, fleetConfig } from './fleet-config.js'
import { READER_HELP, READER_VERBS, runReaders } from './fleet-readers.js'
import { GRANT_HELP, GRANT_OPTIONS, GRANT_VERBS, runGrants } from './fleet-grants.js'
import { ROTATE_HELP, ROTATE_OPTIONS, ROTATE_VERBS, rotationForEnroll, runRotate } from './fleet-rotate.js'
import { FILE_HELP, FILE_VERBS, describeFleetFile, runFleetFile } from './fleet-file.js'
import { EXIT_INVALID, EXIT_OK, clientLinks, intFlag, onFileArgument, write, type Command } from '../cli.js'

/**
 * `iotmesh fleet`: a fleet's owners and what they sign together (shared/fleet.ts). The fleet file
 * is the trust anchor every node is given (as a roster is); credentials and revocations are signed
 * files (COSE_Sign) that owners co-sign one after the other until the fleet's threshold is met.
 * What uses them on the nodes (links, frames, the broker) is not built yet: see the README.
 */
export const fleet: Command = {
  name: 'fleet',
  summary: 'Fleet owners: create the fleet file, enroll, revoke and re-enroll rotated devices, rotate owner keys, with owner signatures (k of n)',
  usage: 'iotmesh fleet init|add-owner|enroll|cosign|revoke|check|publish|rotate-owner|apply-rotation|sign-file|config|grant|revoke-grant|grants … [--file fleet.json] [--owner-key FILE] [--json]',
  help: [
    ['init', '--fleet NAME --owner-key FILE [--name N] [--force]: a fleet file with this owner (its key created if absent), threshold 1'],
    ['add-owner PUBKEY', '[--name N] [--threshold K]: another owner (its public key, base64url); K owners must then sign'],
    ['enroll PUBKEY', '--owner-key FILE --out FILE [--name N] [--roles a,b] [--days D]: a device\'s credential, signed by this owner'],
    ['cosign FILE', '--owner-key FILE [--out FILE]: adds this owner\'s signature to a credential, revocation, owner rotation or signed fleet file (in place by default)'],
    ['revoke DEVICE_ID', '--reason TEXT --owner-key FILE --out FILE: a revocation, signed by this owner'],
    ['check FILE', 'verifies a credential, revocation, owner rotation or signed fleet file against the fleet file and says what it is; exit 1 with the code if it does not hold'],
    ['publish FILE', '[--peers LIST] [--no-mdns] [--timeout S] [--owner-key FILE]: joins the mesh and hands a complete revocation or signed fleet file to the devices it links to, which spread it (a fleet closed by credential links with an owner\'s key); with --no-mdns it links to the --peers given, and to no peer they name'],
    ...ROTATE_HELP,
    ...FILE_HELP,
    ...CONFIG_HELP,
    ...READER_HELP,
    ...GRANT_HELP,
    ['--file FILE', 'the fleet file (default fleet.json)'],
    ['--json', 'print one JSON object']
  ],
  options: {
    file: { type: 'string' }, fleet: { type: 'string' }, 'owner-key': { type: 'string' }, name: { type: 'string' }, force: { type: 'boolean' },
    threshold: { type: 'string' }, out: { type: 'string' }, roles: { type: 'string' }, days: { type: 'string' }, reason: { type: 'string' }, json: { type: 'boolean' },
    peers: { type: 'string' }, 'no-mdns': { type: 'boolean' }, timeout: { type: 'string' }, ...CONFIG_OPTIONS, ...ROTATE_OPTIONS, readers: { type: 'string' }, topics: { type: 'string' }, ...GRANT_OPTIONS
  },
  allowPositionals: 3,
  async run ({ values, positionals }, io) {
    const [what, arg] = positionals
    const file = (values.file as string | undefined) ?? 'fleet.json'
    const json = values.json === true
    const say = (object: Record<string, unknown>, text: string): void => { write(io.stdout, json ? JSON.stringify(object) : text) }
    const str = (name: string): string | undefined => values[name] as string | undefined
    const need = (name: string): string => {
      const v = str(name)
      if (v === undefined) throw meshError('ERR_BAD_ARGUMENT', `fleet ${what ?? ''} needs --${name}`)
      return v
    }
    if ((READER_VERBS as readonly string[]).includes(what ?? '')) return await runReaders(what as string, arg, values, await readPolicy(file), say, io)
    if ((GRANT_VERBS as readonly string[]).includes(what ?? '')) return await runGrants(what as string, arg, values, file, await readPolicy(file), say, io)
    if ((FILE_VERBS as readonly string[]).includes(what ?? '')) {
      const policy = await readPolicy(file)
      return await runFleetFile(arg, values, policy, async () => await ownerKey(need('owner-key')), async (bytes, out, kind) => await finish(bytes, policy, out, kind, say))
    }
    if ((ROTATE_VERBS as readonly string[]).includes(what ?? '')) {
      const policy = await readPolicy(file)
      return await runRotate(what as string, arg, values, file, policy, async () => await ownerKey(need('owner-key')), async (bytes, out, kind) => await finish(bytes, policy, out, kind, say), say)
    }
    switch (what) {
      case 'config': return await fleetConfig({ values, positionals: positionals.slice(1), file, say }, io)
      case 'init': {
        if (existsSync(file) && values.force !== true) throw meshError('ERR_BAD_ARGUMENT', `${file} exists; --force replaces it (every node trusts what it lists)`)
        const keyPath = need('owner-key')
        let owner: KeyPair
        let created = false
        if (existsSync(keyPath)) owner = await readKeyFlag(keyPath)
        else { owner = generateKeyPair(); await saveKeyFile(keyPath, owner); created = true }
        const policy: FleetPolicy = { fleet: str('fleet') ?? DEFAULT_FLEET, threshold: 1, owners: [{ name: str('name'), id: owner.id, publicKey: owner.publicKey }] }
        const checked = parseFleetPolicy(fleetPolicyJson(policy), file)
        await onFileArgument(file, '--file', async () => { await writeFile(file, `${JSON.stringify(fleetPolicyJson(checked), null, 2)}\n`) })
        say({ file, fleet: checked.fleet, owner: owner.id, ownerKeyCreated: created },
          `wrote ${file}: fleet ${checked.fleet}, owner ${owner.id}${created ? ` (key created: ${keyPath})` : ''}, threshold 1`)
        return EXIT_OK
      }
      case 'add-owner': {
        const policy = await readPolicy(file)
        const publicKey = arg === undefined ? undefined : fromBase64(arg)
        if (publicKey?.length !== 32) throw meshError('ERR_BAD_ARGUMENT', 'fleet add-owner PUBKEY: a 32-byte Ed25519 public key in base64url (iotmesh keygen --json prints it)')
        const next = fleetPolicyJson(policy)
        ;(next.owners as unknown[]).push({ ...(str('name') === undefined ? {} : { name: str('name') }), key: arg })
        next.threshold = intFlag(values, 'threshold', policy.threshold, 1, policy.owners.length + 1)
        const checked = parseFleetPolicy(next, file)
        await writeFile(file, `${JSON.stringify(fleetPolicyJson(checked), null, 2)}\n`)
        say({ file, owners: checked.owners.length, threshold: checked.threshold }, `wrote ${file}: ${checked.owners.length} owners, ${checked.threshold} must sign`)
        return EXIT_OK
      }
      case 'enroll': {
        const policy = await readPolicy(file)
        const publicKey = arg === undefined ? undefined : fromBase64(arg)
        if (publicKey?.length !== 32) throw meshError('ERR_BAD_ARGUMENT', 'fleet enroll PUBKEY: the device\'s 32-byte Ed25519 public key in base64url')
        const roles = str('roles')?.split(',').map((r) => r.trim()).filter((r) => r !== '') ?? []
        const days = intFlag(values, 'days', 365, 1, 3650)
        const name = str('name')
        const owner = await ownerKey(need('owner-key'))
        const out = need('out')
        // A rotated device (--replaces, --handover): its rotation is written beside the credential, and the credential names the key it replaces.
        const rotation = await rotationForEnroll(values, policy, deviceIdFromPublicKey(publicKey), owner)
        const bytes = enroll({
          policy, publicKey, roles, lifetime: days * 86_400, cti: new Uint8Array(randomBytes(8)), owners: [owner], ...(name === undefined ? {} : { name }), ...(rotation === undefined ? {} : { previous: rotation.previous })
        })
        if (rotation !== undefined) await finish(rotation.rotation, policy, str('rotation-out') ?? `${out}.rotation`, 'revocation', say)
        return await finish(bytes, policy, out, 'credential', say)
      }
      case 'revoke': {
        const policy = await readPolicy(file)
        if (arg === undefined) throw meshError('ERR_BAD_ARGUMENT', 'fleet revoke DEVICE_ID --reason TEXT')
        const bytes = revoke({ policy, device: arg, reason: need('reason'), owners: [await ownerKey(need('owner-key'))] })
        return await finish(bytes, policy, need('out'), 'revocation', say)
      }
      case 'cosign': {
        const policy = await readPolicy(file)
        if (arg === undefined) throw meshError('ERR_BAD_ARGUMENT', 'fleet cosign FILE --owner-key FILE')
        const before = await onFileArgument(arg, 'FILE', async () => new Uint8Array(await readFile(arg)))
        const kind = fleetDocumentKind(before)
        if (kind === undefined) throw meshError('ERR_NOT_COSE_SIGN', `${arg} is neither a credential, a revocation, an owner rotation nor a signed fleet file`)
        const bytes = cosign(before, policy, await ownerKey(need('owner-key')))
        return await finish(bytes, policy, str('out') ?? arg, kind, say)
      }
      case 'check': {
        const policy = await readPolicy(file)
        if (arg === undefined) throw meshError('ERR_BAD_ARGUMENT', 'fleet check FILE')
        const bytes = await onFileArgument(arg, 'FILE', async () => new Uint8Array(await readFile(arg)))
        try {
          return report(bytes, policy, say)
        } catch (err) {
          if (!isMeshError(err)) throw err
          say({ ok: false, code: err.code, message: err.message }, `${arg}: ${err.code}: ${err.message}`)
          return EXIT_INVALID
        }
      }
      case 'publish': {
        const policy = await readPolicy(file)
        if (arg === undefined) throw meshError('ERR_BAD_ARGUMENT', 'fleet publish FILE: a revocation or a signed fleet file')
        const bytes = await onFileArgument(arg, 'FILE', async () => new Uint8Array(await readFile(arg)))
        const isFile = fleetDocumentKind(bytes) === 'fleet-file'
        if (isFile) describeFleetFile(bytes, policy) // complete, or refused here with its code
        else verifyRevocation(bytes, policy)
        const peers = str('peers')?.split(',').map((p) => p.trim()).filter((p) => p !== '') ?? []
        // In a fleet closed by credential, devices link with an owner's key (mesh/credentials.ts): --owner-key; else a throwaway key (open fleets).
        const keys = str('owner-key') === undefined ? generateKeyPair() : await ownerKey(need('owner-key'))
        const node = new MeshNode({
          name: 'iotmesh-fleet', fleet: policy.fleet, ...clientLinks(values, peers), announceLinks: 0, routing: { fleetPolicy: policy }, requireCredentials: false
        }, { keys })
        await node.start()
        try {
          if (isFile) node.updateFleet(bytes)
          else node.revoke(bytes)
          const deadline = Date.now() + intFlag(values, 'timeout', 10, 1, 3600) * 1000
          while (node.links.size === 0 && Date.now() < deadline && !io.signal.aborted) await new Promise((resolve) => setTimeout(resolve, 100))
          if (node.links.size === 0 && io.signal.aborted) throw meshError('ERR_ABORTED', `stopped before any device linked: nobody got the ${isFile ? 'fleet file' : 'revocation'}`)
          if (node.links.size === 0) throw meshError('ERR_NO_ROUTE', `no device linked in time: nobody got the ${isFile ? 'fleet file' : 'revocation'} (give --peers, or check the fleet name)`)
          await new Promise((resolve) => setTimeout(resolve, 1000)) // the REVOKE goes out on each link as it opens; let it leave
          say({ ok: true, links: node.links.size }, `handed the ${isFile ? 'fleet file' : 'revocation'} to ${node.links.size} device(s); the mesh spreads it`)
          return EXIT_OK
        } finally {
          await node.stop()
        }
      }
      default:
        throw meshError('ERR_BAD_ARGUMENT', 'say iotmesh fleet init, add-owner, enroll, cosign, revoke, check, publish or sign-file (iotmesh fleet --help)')
    }
  }
}

async function readPolicy (file: string): Promise<FleetPolicy> {
  const text = await onFileArgument(file, '--file', async () => await readFile(file, 'utf8'))
  let json: unknown
  try { json = JSON.parse(text) } catch (err) { throw meshError('ERR_BAD_ARGUMENT', `${file} is not JSON: ${(err as Error).message}`) }
  return parseFleetPolicy(json, file)
}

async function ownerKey (path: string): Promise<KeyPair> {
  return await onFileArgument(path, '--owner-key', async () => await loadKeyFile(path))
}

type Say = (object: Record<string, unknown>, text: string) => void

/** Writes a signed document and says whether it already holds (enough owners signed) or needs co-signatures. */
async function finish (bytes: Uint8Array, policy: FleetPolicy, out: string, kind: string, say: Say): Promise<number> {
  await onFileArgument(out, '--out', async () => { await writeFile(out, bytes) })
  try {
    report(bytes, policy, () => {})
    say({ file: out, kind, complete: true }, `wrote ${out}: a ${kind}, signed by enough owners (${policy.threshold} of ${policy.owners.length})`)
  } catch (err) {
    if (!isMeshError(err) || err.code !== 'ERR_TOO_FEW_OWNERS') throw err
    say({ file: out, kind, complete: false, message: err.message }, `wrote ${out}: a ${kind}; ${err.message}`)
  }
  return EXIT_OK
}

function report (bytes: Uint8Array, policy: FleetPolicy, say: Say): number {
  const kind = fleetDocumentKind(bytes)
  if (kind === 'revocation') {
    const r = verifyRevocation(bytes, policy)
    say({ ok: true, kind, device: r.device, reason: r.reason, issuedAt: r.issuedAt, signers: r.signers, ...(r.successor === undefined ? {} : { successor: r.successor }) },
      `revocation of ${r.device} ("${r.reason}"${r.successor === undefined ? '' : `, replaced by ${r.successor}`}), issued ${new Date(r.issuedAt * 1000).toISOString()}, signed by ${r.signers.length} owner(s): valid`)
    return EXIT_OK
  }
  if (kind === 'fleet-file') {
    const { object, text } = describeFleetFile(bytes, policy)
    say(object, text)
    return EXIT_OK
  }
  if (kind === 'owner-rotation') {
    const r = verifyOwnerRotation(bytes, policy)
    say({ ok: true, kind, owner: r.owner, successor: r.successor, issuedAt: r.issuedAt, signers: r.signers },
      `owner rotation of ${r.owner} to ${r.successor}, signed by ${r.signers.length} owner(s): valid (iotmesh fleet apply-rotation writes the fleet file)`)
    return EXIT_OK
  }
  const c = verifyCredential(bytes, policy)
  say({ ok: true, kind: 'credential', device: c.device, name: c.name ?? null, roles: c.roles, expiresAt: c.expiresAt, signers: c.signers, ...(c.previous === undefined ? {} : { replaces: c.previous }) },
    `credential of ${c.device}${c.name === undefined ? '' : ` (${c.name})`}${c.roles.length === 0 ? '' : `, roles ${c.roles.join(',')}`}, until ` +
    `${new Date(c.expiresAt * 1000).toISOString()}, signed by ${c.signers.length} owner(s): valid`)
  return EXIT_OK
}
