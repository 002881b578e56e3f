import { existsSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import {
  cosign, fromBase64, isMeshError, meshError, readGrants, readerId, signReaderGrants, verifyReaderGrants, type FleetPolicy, type KeyPair, type ReaderGrants
} from '../../shared/index.js'
import { loadKeyFile } from '../../shared/node.js'
import { EXIT_INVALID, EXIT_OK, onFileArgument, type Io } from '../cli.js'

/**
 * `iotmesh fleet grant-reader | revoke-reader | readers | cosign-readers` (issue 13): the fleet's
 * owner-signed reader grant list (shared/readers.ts), a file every encrypting device is given
 * (`iotmesh device --encrypt FILE`). Each grant or revocation writes the next version of the list,
 * signed by this owner; other owners co-sign it until the fleet's threshold is met.
 */

export const READER_VERBS = ['grant-reader', 'revoke-reader', 'readers', 'cosign-readers'] as const

export const READER_HELP: Array<[string, string]> = [
  ['grant-reader PUBKEY', '--owner-key FILE [--readers FILE] [--name N] [--topics a,b]: the next reader grant list with this reader (iotmesh keygen --reader prints PUBKEY)'],
  ['revoke-reader READER', '--owner-key FILE [--readers FILE]: the next list without this reader (its id or public key): frames sent after devices take it are not readable by it'],
  ['readers [FILE]', 'verifies a reader grant list (default readers.cose) against the fleet file and lists its readers; exit 1 with the code if it does not hold'],
  ['cosign-readers FILE', '--owner-key FILE: adds this owner\'s signature to a reader grant list (in place)']
]

type Say = (object: Record<string, unknown>, text: string) => void

export async function runReaders (what: string, arg: string | undefined, values: Record<string, unknown>, policy: FleetPolicy, say: Say, _io: Io): Promise<number> {
  const str = (name: string): string | undefined => values[name] as string | undefined
  const file = (what === 'readers' || what === 'cosign-readers' ? arg : undefined) ?? str('readers') ?? 'readers.cose'
  const ownerKey = async (): Promise<KeyPair> => {
    const path = str('owner-key')
    if (path === undefined) throw meshError('ERR_BAD_ARGUMENT', `fleet ${what} needs --owner-key`)
    return await onFileArgument(path, '--owner-key', async () => await loadKeyFile(path))
  }
  const current = async (): Promise<ReturnType<typeof readGrants> | undefined> => {
    if (!existsSync(file)) return undefined
    const grants = readGrants(await onFileArgument(file, '--readers', async () => new Uint8Array(await readFile(file))))
    if (grants.fleet !== policy.fleet) throw meshError('ERR_UNKNOWN_FLEET', `${file} is the reader list of fleet ${grants.fleet}, not ${policy.fleet}`)
    return grants
  }
  switch (what) {
    case 'grant-reader':
    case 'revoke-reader': {
      if (arg === undefined) throw meshError('ERR_BAD_ARGUMENT', `fleet ${what} ${what === 'grant-reader' ? 'PUBKEY' : 'READER'}`)
      const before = await current()
      let readers = [...(before?.readers ?? [])].map((r) => ({ publicKey: r.publicKey, name: r.name }))
      if (what === 'grant-reader') {
        const publicKey = fromBase64(arg)
        if (publicKey?.length !== 32) throw meshError('ERR_BAD_ARGUMENT', 'fleet grant-reader PUBKEY: a reader\'s 32-byte X25519 public key in base64url (iotmesh keygen --reader prints it)')
        readers = readers.filter((r) => readerId(r.publicKey) !== readerId(publicKey))
        readers.push({ publicKey, name: str('name') })
      } else {
        const key = /^[0-9a-f]{16}$/.test(arg) ? undefined : fromBase64(arg)
        const target = key?.length === 32 ? readerId(key) : arg
        const left = readers.filter((r) => readerId(r.publicKey) !== target)
        if (left.length === readers.length) throw meshError('ERR_BAD_ARGUMENT', `${arg} is not a reader in ${file}`)
        readers = left
      }
      const topicsFlag = str('topics')
      const topics = topicsFlag === undefined ? before?.topics : topicsFlag.split(',').map((t) => t.trim()).filter((t) => t !== '')
      const bytes = signReaderGrants({ policy, version: (before?.version ?? 0) + 1, readers, topics, owners: [await ownerKey()] })
      await onFileArgument(file, '--readers', async () => { await writeFile(file, bytes) })
      return finish(bytes, policy, file, say)
    }
    case 'cosign-readers': {
      const before = await onFileArgument(file, 'FILE', async () => new Uint8Array(await readFile(file)))
      readGrants(before) // a reader grant list, or ERR_BAD_READER_GRANT
      const bytes = cosign(before, policy, await ownerKey())
      await onFileArgument(file, 'FILE', async () => { await writeFile(file, bytes) })
      return finish(bytes, policy, file, say)
    }
    default: {
      const bytes = await onFileArgument(file, 'FILE', async () => new Uint8Array(await readFile(file)))
      try {
        const g = verifyReaderGrants(bytes, policy)
        say(json(g, file), `${file}: reader grant list version ${g.version} of fleet ${g.fleet}, signed by ${g.signers.length} owner(s): valid; ` +
          `${g.topics === undefined ? 'every topic' : `topics ${g.topics.join(',')}`} encrypted to ${g.readers.length} reader(s)` +
          g.readers.map((r) => `\n  ${readerId(r)}${r.name === undefined ? '' : `  ${r.name}`}`).join(''))
        return EXIT_OK
      } catch (err) {
        if (!isMeshError(err)) throw err
        say({ ok: false, code: err.code, message: err.message }, `${file}: ${err.code}: ${err.message}`)
        return EXIT_INVALID
      }
    }
  }
}

function json (g: ReaderGrants, file: string): Record<string, unknown> {
  return { ok: true, file, kind: 'readers', version: g.version, topics: g.topics ?? null, readers: g.readers.map((r) => ({ reader: readerId(r), name: r.name ?? null })), signers: g.signers }
}

function finish (bytes: Uint8Array, policy: FleetPolicy, file: string, say: Say): number {
  try {
    const g = verifyReaderGrants(bytes, policy)
    say({ ...json(g, file), complete: true }, `wrote ${file}: reader grant list version ${g.version}, ${g.readers.length} reader(s), signed by enough owners (${policy.threshold} of ${policy.owners.length})`)
  } catch (err) {
    if (!isMeshError(err) || err.code !== 'ERR_TOO_FEW_OWNERS') throw err
    const g = readGrants(bytes)
    say({ file, kind: 'readers', version: g.version, complete: false, message: err.message }, `wrote ${file}: reader grant list version ${g.version}; ${err.message} (iotmesh fleet cosign-readers ${file})`)
  }
  return EXIT_OK
}
