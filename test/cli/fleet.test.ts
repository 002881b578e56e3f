import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { cli } from '../helpers/cli.js'
import { parseFleetPolicy, publicKeyText, verifyCredential } from '../../shared/index.js'
import { saveKeyFile } from '../../shared/node.js'
import { seededKeys } from '../shared/support.js'

/** `iotmesh fleet`: two owners of three must sign; each signs on their own (a separate command, as on separate laptops). */


describe('iotmesh fleet', () => {
  it('init, add owners with a threshold of 2, enroll (1 signature: incomplete), cosign (complete), check; revoke the same way', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'iotmesh-fleet-'))
    onTestFinished(async () => { await rm(dir, { recursive: true, force: true }) })
    const file = join(dir, 'fleet.json')
    const [bob, carol, device] = [seededKeys(201), seededKeys(202), seededKeys(203)]
    const aliceKey = join(dir, 'alice.key')
    const bobKey = join(dir, 'bob.key')
    await saveKeyFile(bobKey, bob)
    const f = ['--file', file]

    const init = await cli(['fleet', 'init', '--fleet', 'home', '--owner-key', aliceKey, '--name', 'alice', ...f, '--json'])
    expect(init.code, init.stderr).toBe(0)
    expect(JSON.parse(init.stdout)).toMatchObject({ fleet: 'home', ownerKeyCreated: true })
    expect((await cli(['fleet', 'init', '--fleet', 'home', '--owner-key', aliceKey, ...f])).code).toBe(2) // exists: --force
    expect((await cli(['fleet', 'add-owner', publicKeyText(bob.publicKey), '--name', 'bob', ...f])).code).toBe(0)
    expect((await cli(['fleet', 'add-owner', publicKeyText(carol.publicKey), '--name', 'carol', '--threshold', '2', ...f])).code).toBe(0)
    const policy = parseFleetPolicy(JSON.parse(await readFile(file, 'utf8')))
    expect(policy).toMatchObject({ fleet: 'home', threshold: 2 })
    expect(policy.owners).toHaveLength(3)

    const cred = join(dir, 'kitchen.cred')
    const enrolled = await cli(['fleet', 'enroll', publicKeyText(device.publicKey), '--name', 'kitchen', '--roles', 'sensor,actuator', '--days', '30',
      '--owner-key', aliceKey, '--out', cred, ...f, '--json'])
    expect(JSON.parse(enrolled.stdout)).toMatchObject({ kind: 'credential', complete: false })
    const early = await cli(['fleet', 'check', cred, ...f])
    expect(early.code).toBe(1)
    expect(early.stdout).toContain('ERR_TOO_FEW_OWNERS')
    const cosigned = await cli(['fleet', 'cosign', cred, '--owner-key', bobKey, ...f, '--json'])
    expect(JSON.parse(cosigned.stdout)).toMatchObject({ kind: 'credential', complete: true })
    const checked = await cli(['fleet', 'check', cred, ...f, '--json'])
    expect(checked.code).toBe(0)
    expect(JSON.parse(checked.stdout)).toMatchObject({ ok: true, kind: 'credential', device: device.id, name: 'kitchen', roles: ['sensor', 'actuator'] })
    expect(verifyCredential(new Uint8Array(await readFile(cred)), policy).signers).toHaveLength(2)

    const rev = join(dir, 'kitchen.rev')
    expect(JSON.parse((await cli(['fleet', 'revoke', device.id, '--reason', 'stolen', '--owner-key', bobKey, '--out', rev, ...f, '--json'])).stdout)).toMatchObject({ complete: false })
    await cli(['fleet', 'cosign', rev, '--owner-key', aliceKey, ...f])
    expect(JSON.parse((await cli(['fleet', 'check', rev, ...f, '--json'])).stdout)).toMatchObject({ ok: true, kind: 'revocation', device: device.id, reason: 'stolen' })

    // A key that is no owner cannot sign; bad input is a usage error.
    const strangerKey = join(dir, 'stranger.key')
    await saveKeyFile(strangerKey, seededKeys(204))
    const refused = await cli(['fleet', 'cosign', cred, '--owner-key', strangerKey, ...f])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toContain('ERR_NOT_OWNER')
    expect((await cli(['fleet', 'enroll', 'not-a-key', '--owner-key', aliceKey, '--out', cred, ...f])).code).toBe(2)
    expect((await cli(['fleet', 'frobnicate'])).code).toBe(2)
  })
})
