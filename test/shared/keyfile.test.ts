import { spawnSync } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { toHex } from '../../shared/index.js'
import { loadKeyFile, saveKeyFile } from '../../shared/node.js'
import { codeOfAsync, seededKeys, tempDir } from './support.js'

const hasOpenssl = spawnSync('openssl', ['version'], { encoding: 'utf8' }).status === 0
if (!hasOpenssl) console.warn('keyfile.test.ts: openssl not found on PATH; the OpenSSL interoperability tests are skipped')

async function modeOf (path: string): Promise<number> {
  return (await stat(path)).mode & 0o777
}

describe('key files (PKCS#8 PEM, RFC 8410 §7)', () => {
  it('are written with mode 0600, whatever the umask, and load back to the same key pair', async () => {
    const dir = await tempDir()
    const path = join(dir, 'device.key')
    const keys = seededKeys(1)
    const umask = process.umask(0o000) // the most permissive umask: the file must still be 0600
    try {
      await saveKeyFile(path, keys)
    } finally {
      process.umask(umask)
    }
    expect(await modeOf(path)).toBe(0o600)
    expect(await readFile(path, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n[\s\S]+\n-----END PRIVATE KEY-----\n$/)
    const loaded = await loadKeyFile(path)
    expect(loaded.id).toBe(keys.id)
    expect(toHex(loaded.publicKey)).toBe(toHex(keys.publicKey))
    expect(toHex(loaded.secretKey)).toBe(toHex(keys.secretKey))
  })

  it('creates missing parent directories', async () => {
    const path = join(await tempDir(), 'a', 'b', 'device.key')
    await saveKeyFile(path, seededKeys(2))
    expect((await loadKeyFile(path)).id).toBe(seededKeys(2).id)
  })

  it('refuses to overwrite an existing file (ERR_KEY_EXISTS), and leaves it as it was', async () => {
    const path = join(await tempDir(), 'device.key')
    await saveKeyFile(path, seededKeys(1))
    expect(await codeOfAsync(() => saveKeyFile(path, seededKeys(2)))).toBe('ERR_KEY_EXISTS')
    expect((await loadKeyFile(path)).id).toBe(seededKeys(1).id)
  })

  it('overwrites with { overwrite: true }, and tightens an existing file to 0600', async () => {
    const path = join(await tempDir(), 'device.key')
    await writeFile(path, 'old contents that are longer than nothing at all '.repeat(10))
    await chmod(path, 0o644)
    await saveKeyFile(path, seededKeys(2), { overwrite: true })
    expect(await modeOf(path)).toBe(0o600)
    expect((await loadKeyFile(path)).id).toBe(seededKeys(2).id)
  })

  it.each([
    [0o644, 'ERR_KEY_PERMISSIONS'], [0o640, 'ERR_KEY_PERMISSIONS'], [0o604, 'ERR_KEY_PERMISSIONS'],
    [0o660, 'ERR_KEY_PERMISSIONS'], [0o606, 'ERR_KEY_PERMISSIONS'], [0o601, 'ERR_KEY_PERMISSIONS'],
    [0o700, 'no error'] // owner-only bits are fine, as ssh has it
  ])('loading a file with mode %o: %s', async (mode, expected) => {
    const path = join(await tempDir(), 'device.key')
    await saveKeyFile(path, seededKeys(1))
    await chmod(path, mode)
    expect(await codeOfAsync(() => loadKeyFile(path))).toBe(expected)
  })

  it('accepts 0400 (read-only for the owner)', async () => {
    const path = join(await tempDir(), 'device.key')
    await saveKeyFile(path, seededKeys(1))
    await chmod(path, 0o400)
    expect((await loadKeyFile(path)).id).toBe(seededKeys(1).id)
  })

  it.each([
    ['garbage', 'this is not a key\n'],
    ['an empty file', ''],
    ['a truncated PEM', '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n-----END PRIVATE KEY-----\n'],
    ['a public key', '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n-----END PUBLIC KEY-----\n'],
    ['an EC P-256 key', generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()],
    ['an Ed448 key', generateKeyPairSync('ed448').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()],
    ['an X25519 key', generateKeyPairSync('x25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()]
  ])('loading %s is refused (ERR_BAD_KEY)', async (_what, contents) => {
    const path = join(await tempDir(), 'device.key')
    await writeFile(path, contents, { mode: 0o600 })
    expect(await codeOfAsync(() => loadKeyFile(path))).toBe('ERR_BAD_KEY')
  })

  it('a missing file or a directory is ERR_BAD_KEY, not a bare file-system error', async () => {
    const dir = await tempDir()
    expect(await codeOfAsync(() => loadKeyFile(join(dir, 'missing.key')))).toBe('ERR_BAD_KEY')
    const asDir = join(dir, 'device.key')
    await mkdir(asDir, { mode: 0o700 })
    expect(await codeOfAsync(() => loadKeyFile(asDir))).toBe('ERR_BAD_KEY')
  })
})

describe.skipIf(!hasOpenssl)('key files interoperate with OpenSSL', () => {
  it('`openssl pkey -pubout -outform DER` reads our file and yields our public key', async () => {
    const path = join(await tempDir(), 'device.key')
    const keys = seededKeys(5)
    await saveKeyFile(path, keys)
    const out = spawnSync('openssl', ['pkey', '-in', path, '-pubout', '-outform', 'DER'])
    expect(out.status).toBe(0)
    // SubjectPublicKeyInfo (RFC 8410 §4): a 12-byte prefix, then the raw 32-byte key
    expect(out.stdout).toHaveLength(44)
    expect(toHex(new Uint8Array(out.stdout.subarray(-32)))).toBe(toHex(keys.publicKey))
  })

  it('a key made by `openssl genpkey -algorithm ed25519` loads with the same public key', async () => {
    const path = join(await tempDir(), 'openssl.key')
    expect(spawnSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', path]).status).toBe(0)
    await chmod(path, 0o600)
    const pub = spawnSync('openssl', ['pkey', '-in', path, '-pubout', '-outform', 'DER'])
    const keys = await loadKeyFile(path)
    expect(toHex(keys.publicKey)).toBe(toHex(new Uint8Array(pub.stdout.subarray(-32))))
  })
})
