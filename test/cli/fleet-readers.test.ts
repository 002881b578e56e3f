import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { cli } from '../helpers/cli.js'
import { decodeFrame, decryptFrame, encodeFrame, parseFleetPolicy, publicKeyText, readerPublic, verifyReaderGrants } from '../../shared/index.js'
import { saveKeyFile } from '../../shared/node.js'
import { loadReaderKeyFile } from '../../bin/reader-key.js'
import { seededKeys } from '../shared/support.js'

/** `iotmesh keygen --reader` and `iotmesh fleet grant-reader | revoke-reader | readers | cosign-readers`, as owners run them. */
describe('iotmesh fleet grant-reader', () => {
  it('keygen --reader; grant (incomplete with a threshold of 2), cosign-readers, readers; revoke-reader writes the next version without it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'iotmesh-readers-'))
    onTestFinished(async () => { await rm(dir, { recursive: true, force: true }) })
    const f = ['--file', join(dir, 'fleet.json')]
    const [aliceKey, bobKey] = [join(dir, 'alice.key'), join(dir, 'bob.key')]
    const bob = seededKeys(601)
    await saveKeyFile(bobKey, bob)
    expect((await cli(['fleet', 'init', '--fleet', 'home', '--owner-key', aliceKey, ...f])).code).toBe(0)
    expect((await cli(['fleet', 'add-owner', publicKeyText(bob.publicKey), '--threshold', '2', ...f])).code).toBe(0)

    const made = await cli(['keygen', '--reader', '--out', join(dir, 'gw.reader'), '--json'])
    expect(made.code, made.stderr).toBe(0)
    const gw = JSON.parse(made.stdout) as { reader: string, publicKey: string }
    const phone = JSON.parse((await cli(['keygen', '--reader', '--out', join(dir, 'phone.reader'), '--json'])).stdout) as { reader: string, publicKey: string }
    const gwKey = await loadReaderKeyFile(join(dir, 'gw.reader'))
    expect(publicKeyText(gwKey.publicKey)).toBe(gw.publicKey)
    expect((await cli(['keygen', '--reader', '--out', join(dir, 'gw.reader')])).code).not.toBe(0) // never overwrites a key

    const list = join(dir, 'readers.cose')
    const r = ['--readers', list, ...f]
    const granted = await cli(['fleet', 'grant-reader', gw.publicKey, '--name', 'gateway', '--owner-key', aliceKey, ...r, '--json'])
    expect(granted.code, granted.stderr).toBe(0)
    expect(JSON.parse(granted.stdout)).toMatchObject({ kind: 'readers', version: 1, complete: false })
    expect((await cli(['fleet', 'readers', list, ...f])).code).toBe(1) // ERR_TOO_FEW_OWNERS
    expect(JSON.parse((await cli(['fleet', 'cosign-readers', list, '--owner-key', bobKey, ...f, '--json'])).stdout)).toMatchObject({ version: 1, complete: true })
    await cli(['fleet', 'grant-reader', phone.publicKey, '--name', 'phone', '--owner-key', aliceKey, ...r])
    await cli(['fleet', 'cosign-readers', list, '--owner-key', bobKey, ...f])
    const shown = await cli(['fleet', 'readers', list, ...f, '--json'])
    expect(JSON.parse(shown.stdout)).toMatchObject({ ok: true, version: 2, readers: [{ reader: gw.reader, name: 'gateway' }, { reader: phone.reader, name: 'phone' }] })

    expect((await cli(['fleet', 'revoke-reader', phone.reader, '--owner-key', bobKey, ...r])).code).toBe(0)
    await cli(['fleet', 'cosign-readers', list, '--owner-key', aliceKey, ...f])
    const policy = parseFleetPolicy(JSON.parse(await readFile(join(dir, 'fleet.json'), 'utf8')))
    const v3 = verifyReaderGrants(new Uint8Array(await readFile(list)), policy)
    expect(v3.version).toBe(3)
    expect(v3.readers.map((x) => x.name)).toEqual(['gateway'])
    // What a device sends with version 3 the gateway's key reads, through the key file as written.
    const frame = decodeFrame(encodeFrame({ keys: seededKeys(602), seq: 1, time: 1_800_000_000, records: [{ n: 't', v: 1 }], encrypt: { readers: v3.readers.map((x) => readerPublic(x.publicKey)) } }))
    expect(decryptFrame(frame, gwKey).records[0]?.v).toBe(1)
    expect((await cli(['fleet', 'revoke-reader', phone.reader, '--owner-key', bobKey, ...r])).code).toBe(2) // not on the list any more
    await writeFile(join(dir, 'junk'), 'x')
    expect((await cli(['fleet', 'readers', join(dir, 'junk'), ...f])).stdout).toContain('ERR_BAD_READER_GRANT')
  })
})
