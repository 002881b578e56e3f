import { createPrivateKey } from 'node:crypto'
import { constants as fsConstants } from 'node:fs'
import { mkdir, open, readFile, stat } from 'node:fs/promises'
import { dirname } from 'node:path'
import { meshError, readerId, readerKeyFromSecret, type ReaderKey } from '../shared/index.js'
import { onFileArgument } from './cli.js'

/**
 * Reader key files (issue 13): an X25519 private key as PKCS#8 PEM (RFC 8410 §7), mode 0600, as
 * device keys are Ed25519 ones (shared/node/keyfile.ts); `openssl pkey -in FILE -text` reads it.
 * Written by `iotmesh keygen --reader`, read by `iotmesh gateway --reader-key` and `iotmesh watch --reader-key`.
 */

const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex')

export async function saveReaderKeyFile (path: string, key: ReaderKey, options: { overwrite?: boolean } = {}): Promise<void> {
  const pem = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, key.secretKey]), format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }).toString()
  await mkdir(dirname(path), { recursive: true })
  const flags = fsConstants.O_WRONLY | fsConstants.O_CREAT | (options.overwrite === true ? fsConstants.O_TRUNC : fsConstants.O_EXCL)
  let handle
  try {
    handle = await open(path, flags, 0o600)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw meshError('ERR_KEY_EXISTS', `${path} already exists; refusing to overwrite a key (remove it first, or choose another --out)`, { cause: err })
    throw err
  }
  try {
    await handle.chmod(0o600)
    await handle.writeFile(pem)
    await handle.sync()
  } finally {
    await handle.close()
  }
}

export async function loadReaderKeyFile (path: string): Promise<ReaderKey> {
  const info = await stat(path).catch((err: NodeJS.ErrnoException) => {
    throw meshError('ERR_BAD_KEY', `cannot read reader key file ${path}: ${err.code ?? err.message}`, { cause: err })
  })
  if (process.platform !== 'win32' && (info.mode & 0o077) !== 0) {
    const mode = (info.mode & 0o777).toString(8).padStart(4, '0')
    throw meshError('ERR_KEY_PERMISSIONS', `permissions ${mode} for reader key file ${path} are too open (run: chmod 600 ${path})`, { details: { path, mode } })
  }
  const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw meshError('ERR_BAD_KEY', `cannot read reader key file ${path}: ${err.code ?? err.message}`, { cause: err })
  })
  let der: Buffer
  try {
    const key = createPrivateKey({ key: text, format: 'pem' })
    if (key.asymmetricKeyType !== 'x25519') throw new Error(`a ${key.asymmetricKeyType ?? 'symmetric'} key`)
    der = key.export({ format: 'der', type: 'pkcs8' })
  } catch (err) {
    throw meshError('ERR_BAD_KEY', `${path} is not an X25519 PKCS#8 PEM private key (iotmesh keygen --reader writes one)`, { cause: err })
  }
  return readerKeyFromSecret(new Uint8Array(der.subarray(der.length - 32)))
}

/** `--reader-key FILE` (iotmesh gateway, iotmesh watch): the key, or undefined when the flag is absent. */
export async function readReaderKeyFlag (path: unknown): Promise<ReaderKey | undefined> {
  return typeof path === 'string' ? await onFileArgument(path, '--reader-key', async () => await loadReaderKeyFile(path)) : undefined
}

/** The gateway banner's line on encrypted readings. */
export function readerBanner (key: ReaderKey | undefined): string {
  return key === undefined
    ? 'encrypted  readings encrypted to readers are forwarded and stored as ciphertext, not mirrored (no --reader-key); counted in /metrics'
    : `encrypted  readings are decrypted as reader ${readerId(key)} (--reader-key) where the owners granted it`
}
