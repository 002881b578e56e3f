import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { cli } from '../helpers/cli.js'
import { parseFleetPolicy, publicKeyText, verifyCredential, verifyRevocation } from '../../shared/index.js'
import { loadKeyFile, saveKeyFile } from '../../shared/node.js'
import { seededKeys } from '../shared/support.js'

/**
 * `iotmesh keys rotate` and the owners' side (`fleet enroll --replaces --handover`, `fleet rotate-owner`,
 * `fleet apply-rotation`), in a fleet where 2 of 2 owners sign, each as a separate command.
 */
describe('iotmesh keys rotate, fleet enroll --replaces, fleet rotate-owner', () => {
  it('a device rotates; owners re-enroll it and sign its rotation; an owner rotates; each refusal with its code', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'iotmesh-rotate-'))
    onTestFinished(async () => { await rm(dir, { recursive: true, force: true }) })
    const file = join(dir, 'fleet.json')
    const f = ['--file', file]
    const [aliceKey, bobKey, oldKey, strangerKey] = ['alice', 'bob', 'old', 'stranger'].map((n) => join(dir, `${n}.key`)) as [string, string, string, string]
    const [bob, old] = [seededKeys(961), seededKeys(962)]
    await saveKeyFile(bobKey, bob)
    await saveKeyFile(oldKey, old)
    await saveKeyFile(strangerKey, seededKeys(963))
    expect((await cli(['fleet', 'init', '--fleet', 'home', '--owner-key', aliceKey, '--name', 'alice', ...f])).code).toBe(0)
    expect((await cli(['fleet', 'add-owner', publicKeyText(bob.publicKey), '--name', 'bob', '--threshold', '2', ...f])).code).toBe(0)

    // The device: a new key and the old key's handover.
    const [newKey, handover] = [join(dir, 'new.key'), join(dir, 'handover.cose')]
    const rotated = await cli(['keys', 'rotate', '--key', oldKey, '--out', newKey, '--handover', handover, '--fleet', 'home', '--json'])
    expect(rotated.code, rotated.stderr).toBe(0)
    const r = JSON.parse(rotated.stdout) as { old: string, new: string, publicKey: string }
    expect(r.old).toBe(old.id)
    expect((await loadKeyFile(newKey)).id).toBe(r.new)
    expect((await cli(['keys', 'rotate', '--key', oldKey, '--out', newKey, '--handover', handover])).code).toBe(1) // ERR_KEY_EXISTS: never overwrites a key

    // The owners: the credential of the new key and the rotation, alice then bob.
    const cred = join(dir, 'new.cred')
    const enrolled = await cli(['fleet', 'enroll', r.publicKey, '--replaces', old.id, '--handover', handover, '--name', 'kitchen', '--owner-key', aliceKey, '--out', cred, ...f])
    expect(enrolled.code, enrolled.stderr).toBe(0)
    for (const doc of [cred, `${cred}.rotation`]) expect((await cli(['fleet', 'cosign', doc, '--owner-key', bobKey, ...f])).code).toBe(0)
    const policy = parseFleetPolicy(JSON.parse(await readFile(file, 'utf8')))
    expect(verifyCredential(new Uint8Array(await readFile(cred)), policy)).toMatchObject({ device: r.new, previous: old.id, name: 'kitchen' })
    expect(verifyRevocation(new Uint8Array(await readFile(`${cred}.rotation`)), policy)).toMatchObject({ device: old.id, reason: 'rotated', successor: r.new })
    const checked = await cli(['fleet', 'check', `${cred}.rotation`, ...f, '--json'])
    expect(JSON.parse(checked.stdout)).toMatchObject({ ok: true, kind: 'revocation', device: old.id, successor: r.new })
    // A handover of another key, or for another device, is refused (ERR_BAD_HANDOVER); so is a handover without --replaces.
    const wrong = await cli(['fleet', 'enroll', publicKeyText(bob.publicKey), '--replaces', old.id, '--handover', handover, '--owner-key', aliceKey, '--out', join(dir, 'x.cred'), ...f])
    expect([wrong.code, wrong.stderr.includes('ERR_BAD_HANDOVER')]).toEqual([1, true])
    expect((await cli(['fleet', 'enroll', r.publicKey, '--handover', handover, '--owner-key', aliceKey, '--out', join(dir, 'x.cred'), ...f])).code).toBe(2)
    const stranger = await cli(['fleet', 'enroll', r.publicKey, '--replaces', old.id, '--handover', handover, '--owner-key', strangerKey, '--out', join(dir, 'x.cred'), ...f])
    expect([stranger.code, stranger.stderr.includes('ERR_NOT_OWNER')]).toEqual([1, true])

    // An owner rotates: alice's key hands over; one signature is not enough; bob co-signs; the fleet file changes.
    const [aliceNew, ownerHandover, ownerRotation] = [join(dir, 'alice2.key'), join(dir, 'alice.handover'), join(dir, 'alice.rotation')]
    expect((await cli(['keys', 'rotate', '--key', aliceKey, '--out', aliceNew, '--handover', ownerHandover, '--fleet', 'home'])).code).toBe(0)
    const signed = await cli(['fleet', 'rotate-owner', ownerHandover, '--owner-key', aliceKey, '--out', ownerRotation, ...f, '--json'])
    expect(JSON.parse(signed.stdout)).toMatchObject({ kind: 'owner-rotation', complete: false })
    const early = await cli(['fleet', 'apply-rotation', ownerRotation, ...f])
    expect([early.code, early.stderr.includes('ERR_TOO_FEW_OWNERS')]).toEqual([1, true])
    expect((await cli(['fleet', 'cosign', ownerRotation, '--owner-key', bobKey, ...f])).code).toBe(0)
    const applied = await cli(['fleet', 'apply-rotation', ownerRotation, ...f, '--json'])
    expect(applied.code, applied.stderr).toBe(0)
    const next = parseFleetPolicy(JSON.parse(await readFile(file, 'utf8')))
    expect(next.owners.map((w) => [w.name, w.id])).toEqual([['alice', (await loadKeyFile(aliceNew)).id], ['bob', bob.id]])
    // The old owner key signs nothing any more.
    const byOld = await cli(['fleet', 'revoke', old.id, '--reason', 'x', '--owner-key', aliceKey, '--out', join(dir, 'x.rev'), ...f])
    expect([byOld.code, byOld.stderr.includes('ERR_NOT_OWNER')]).toEqual([1, true])
  })
})
