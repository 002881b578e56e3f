import { writeFile } from 'node:fs/promises'
import { DEFAULT_FLEET, createHandover, generateKeyPair, meshError, publicKeyText } from '../../shared/index.js'
import { loadKeyFile, saveKeyFile } from '../../shared/node.js'
import { EXIT_OK, onFileArgument, write, type Command } from '../cli.js'
import { defaultKeyPath } from './keys.js'

/**
 * `iotmesh keys rotate` (issue 13): a device (or an owner) replaces its key. It makes the new key
 * and the handover (shared/handover.ts): the OLD key's signature over the new public key, which an
 * owner turns into the new key's credential and the old key's rotation (`iotmesh fleet enroll NEWKEY
 * --replaces OLD_ID --handover FILE`; an owner key: `iotmesh fleet rotate-owner FILE`). The old key
 * file is left as it is: the device goes on with it until the new credential arrives.
 */
export const keys: Command = {
  name: 'keys',
  summary: 'Rotate a key: a new key pair and the old key\'s signed handover to it',
  usage: 'iotmesh keys rotate --out NEW_KEY --handover FILE [--key OLD_KEY] [--fleet F] [--force] [--json]',
  help: [
    ['rotate', 'writes a new key (PKCS#8 PEM, mode 0600) and the handover signed by the old key'],
    ['--key FILE', 'the old key (default $IOTMESH_HOME/device.key or ~/.iotmesh/device.key)'],
    ['--out FILE', 'where to write the new key'],
    ['--handover FILE', 'where to write the handover (give it to an owner: iotmesh fleet enroll NEWKEY --replaces OLD_ID --handover FILE)'],
    ['--fleet F', `the fleet the handover is for (default ${DEFAULT_FLEET})`],
    ['--force', 'overwrite an existing file at --out'],
    ['--json', 'print {"old", "new", "publicKey", "key", "handover"} as JSON']
  ],
  options: { key: { type: 'string' }, out: { type: 'string', short: 'o' }, handover: { type: 'string' }, fleet: { type: 'string' }, force: { type: 'boolean' }, json: { type: 'boolean' } },
  allowPositionals: 1,
  async run ({ values, positionals }, io) {
    if (positionals[0] !== 'rotate') throw meshError('ERR_BAD_ARGUMENT', 'say iotmesh keys rotate (iotmesh keys --help)')
    const need = (name: string): string => {
      const v = values[name] as string | undefined
      if (v === undefined) throw meshError('ERR_BAD_ARGUMENT', `keys rotate needs --${name}`)
      return v
    }
    const [out, handoverPath] = [need('out'), need('handover')]
    const oldPath = (values.key as string | undefined) ?? defaultKeyPath(io.env)
    const old = await onFileArgument(oldPath, '--key', async () => await loadKeyFile(oldPath))
    const next = generateKeyPair()
    const handover = createHandover({ fleet: (values.fleet as string | undefined) ?? DEFAULT_FLEET, oldKeys: old, newPublicKey: next.publicKey })
    await onFileArgument(out, '--out', async () => { await saveKeyFile(out, next, { overwrite: values.force === true }) })
    await onFileArgument(handoverPath, '--handover', async () => { await writeFile(handoverPath, handover) })
    const result = { old: old.id, new: next.id, publicKey: publicKeyText(next.publicKey), key: out, handover: handoverPath }
    if (values.json === true) write(io.stdout, JSON.stringify(result))
    else {
      write(io.stdout, `wrote ${out} (mode 0600): new id ${next.id}\nwrote ${handoverPath}: ${old.id} hands over to it\n` +
        `an owner: iotmesh fleet enroll ${result.publicKey} --replaces ${old.id} --handover ${handoverPath} --owner-key OWNER.key --out new.cred`)
    }
    return EXIT_OK
  }
}
