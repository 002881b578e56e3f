import { createPrivateKey } from 'node:crypto'
import { constants as fsConstants } from 'node:fs'
import { mkdir, open, readFile, stat } from 'node:fs/promises'
import { dirname } from 'node:path'
import { meshError } from '../errors.js'
import { keyPairFromSecret, type KeyPair } from '../identity.js'
import { pkcs8KeyInput } from '../crypto/ed25519-node.js'

/**
 * Key files are PKCS#8 PEM (RFC 8410 §7, "-----BEGIN PRIVATE KEY-----"), the format OpenSSL writes,
 * so `openssl pkey -in device.key -pubout` reads them. Created with mode 0600; loading a file that
 * group or others can read is refused, as ssh refuses a private key with open permissions.
 */

export async function saveKeyFile (path: string, keys: KeyPair, options: { overwrite?: boolean } = {}): Promise<void> {
  const pem = createPrivateKey(pkcs8KeyInput(keys.secretKey)).export({ format: 'pem', type: 'pkcs8' }).toString()
  await mkdir(dirname(path), { recursive: true })
  const flags = fsConstants.O_WRONLY | fsConstants.O_CREAT | (options.overwrite === true ? fsConstants.O_TRUNC : fsConstants.O_EXCL)
  let handle
  try {
    handle = await open(path, flags, 0o600)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw meshError('ERR_KEY_EXISTS', `${path} already exists; refusing to overwrite a key (choose another --out, or pass --force to replace it: the old identity is then lost)`, { cause: err })
    throw err
  }
  try {
    await handle.chmod(0o600) // O_CREAT's mode is filtered by the umask, and an existing file keeps its mode
    await handle.writeFile(`${pem}`)
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/** Reads a device key file (PKCS#8, PEM), refusing one that others can read. */
export async function loadKeyFile (path: string): Promise<KeyPair> {
  const info = await stat(path).catch((err: NodeJS.ErrnoException) => {
    throw meshError('ERR_BAD_KEY', `cannot read key file ${path}: ${err.code ?? err.message}`, { cause: err })
  })
  if (process.platform !== 'win32' && (info.mode & 0o077) !== 0) {
    const mode = (info.mode & 0o777).toString(8).padStart(4, '0')
    throw meshError('ERR_KEY_PERMISSIONS', `permissions ${mode} for key file ${path} are too open: a private key must not be readable by others (run: chmod 600 ${path})`, { details: { path, mode } })
  }
  const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw meshError('ERR_BAD_KEY', `cannot read key file ${path}: ${err.code ?? err.message}`, { cause: err })
  })
  let jwk
  try {
    jwk = createPrivateKey({ key: text, format: 'pem' }).export({ format: 'jwk' })
  } catch (err) {
    throw meshError('ERR_BAD_KEY', `${path} is not a PKCS#8 PEM private key`, { cause: err })
  }
  if (jwk.crv !== 'Ed25519' || typeof jwk.d !== 'string') throw meshError('ERR_BAD_KEY', `${path} holds a ${jwk.crv ?? jwk.kty ?? 'non-Ed25519'} key; iotmesh keys are Ed25519`)
  return keyPairFromSecret(new Uint8Array(Buffer.from(jwk.d, 'base64url')))
}
