import { generateKeyPair, publicKeyText } from '../../shared/index.js'
import { saveKeyFile } from '../../shared/node.js'
import { onFileArgument, write, type Command } from '../cli.js'
import { defaultKeyPath } from './keys.js'

export const keygen: Command = {
  name: 'keygen',
  summary: 'Create a device key pair and print the device id and public key',
  usage: 'iotmesh keygen [--out FILE] [--force] [--json]',
  help: [
    ['--out FILE', 'where to write the private key (PKCS#8 PEM, mode 0600); default $IOTMESH_HOME/device.key or ~/.iotmesh/device.key'],
    ['--force', 'overwrite an existing key file (the old identity is lost)'],
    ['--json', 'print {"id", "publicKey", "path"} as JSON']
  ],
  options: { out: { type: 'string', short: 'o' }, force: { type: 'boolean' }, json: { type: 'boolean' } },
  async run ({ values }, io) {
    const path = (values.out as string | undefined) ?? defaultKeyPath(io.env)
    const keys = generateKeyPair()
    await onFileArgument(path, values.out === undefined ? 'key file' : '--out', () => saveKeyFile(path, keys, { overwrite: values.force === true }))
    const result = { id: keys.id, publicKey: publicKeyText(keys.publicKey), path }
    if (values.json === true) write(io.stdout, JSON.stringify(result))
    else write(io.stdout, `wrote ${path} (mode 0600)\nid         ${result.id}\npublic key ${result.publicKey}`)
    return 0
  }
}
