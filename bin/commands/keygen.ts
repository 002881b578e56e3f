import { generateKeyPair, generateReaderKey, publicKeyText, readerId, toBase64url } from '../../shared/index.js'
import { saveKeyFile } from '../../shared/node.js'
import { saveReaderKeyFile } from '../reader-key.js'
import { onFileArgument, write, type Command } from '../cli.js'
import { defaultKeyPath } from './keys.js'

export const keygen: Command = {
  name: 'keygen',
  summary: 'Create a device key pair and print the device id and public key',
  usage: 'iotmesh keygen [--out FILE] [--force] [--json] [--reader]',
  help: [
    ['--out FILE', 'where to write the private key (PKCS#8 PEM, mode 0600); default $IOTMESH_HOME/device.key or ~/.iotmesh/device.key'],
    ['--force', 'overwrite an existing key file (the old identity is lost)'],
    ['--json', 'print {"id", "publicKey", "path"} as JSON'],
    ['--reader', 'a reader key instead (X25519, PKCS#8 PEM; default ./reader.key): encrypted readings granted to it (iotmesh fleet grant-reader) decrypt with it']
  ],
  options: { out: { type: 'string', short: 'o' }, force: { type: 'boolean' }, json: { type: 'boolean' }, reader: { type: 'boolean' } },
  async run ({ values }, io) {
    if (values.reader === true) {
      const path = (values.out as string | undefined) ?? 'reader.key'
      const key = generateReaderKey()
      await onFileArgument(path, values.out === undefined ? 'key file' : '--out', () => saveReaderKeyFile(path, key, { overwrite: values.force === true }))
      const result = { reader: readerId(key), publicKey: toBase64url(key.publicKey), path }
      if (values.json === true) write(io.stdout, JSON.stringify(result))
      else write(io.stdout, `wrote ${path} (mode 0600)\nreader     ${result.reader}\npublic key ${result.publicKey}   (iotmesh fleet grant-reader ${result.publicKey})`)
      return 0
    }
    const path = (values.out as string | undefined) ?? defaultKeyPath(io.env)
    const keys = generateKeyPair()
    await onFileArgument(path, values.out === undefined ? 'key file' : '--out', () => saveKeyFile(path, keys, { overwrite: values.force === true }))
    const result = { id: keys.id, publicKey: publicKeyText(keys.publicKey), path }
    if (values.json === true) write(io.stdout, JSON.stringify(result))
    else write(io.stdout, `wrote ${path} (mode 0600)\nid         ${result.id}\npublic key ${result.publicKey}`)
    return 0
  }
}
