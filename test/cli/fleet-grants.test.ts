import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { cli } from '../helpers/cli.js'
import { parseFleetPolicy, publicKeyText, verifyCommandGrants } from '../../shared/index.js'
import { saveKeyFile } from '../../shared/node.js'
import { seededKeys } from '../shared/support.js'

/** `iotmesh fleet grant | revoke-grant | grants | cosign-grants`, as owners run them (the mesh side: test/firmware/grants-net.test.ts). */
describe('iotmesh fleet grant', () => {
  it('grant (incomplete with a threshold of 2), cosign-grants, grants; revoke-grant writes the next version without it; usage errors', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'iotmesh-grants-'))
    onTestFinished(async () => { await rm(dir, { recursive: true, force: true }) })
    const f = ['--file', join(dir, 'fleet.json')]
    const [aliceKey, bobKey] = [join(dir, 'alice.key'), join(dir, 'bob.key')]
    const bob = seededKeys(611)
    const panel = seededKeys(612)
    const lamp = seededKeys(613)
    await saveKeyFile(bobKey, bob)
    expect((await cli(['fleet', 'init', '--fleet', 'home', '--owner-key', aliceKey, ...f])).code).toBe(0)
    expect((await cli(['fleet', 'add-owner', publicKeyText(bob.publicKey), '--threshold', '2', ...f])).code).toBe(0)
    const file = join(dir, 'grants.cose')
    const g = ['--grants', file, ...f]

    const granted = await cli(['fleet', 'grant', '--to', publicKeyText(panel.publicKey), '--actions', 'relay/#,state/get', '--on', lamp.id, '--name', 'panel',
      '--owner-key', aliceKey, ...g, '--json'])
    expect(granted.code, granted.stderr).toBe(0)
    expect(JSON.parse(granted.stdout)).toMatchObject({ kind: 'grants', version: 1, complete: false })
    expect((await cli(['fleet', 'grants', file, ...f])).code).toBe(1) // ERR_TOO_FEW_OWNERS
    expect(JSON.parse((await cli(['fleet', 'cosign-grants', file, '--owner-key', bobKey, ...f, '--json'])).stdout)).toMatchObject({ version: 1, complete: true })
    // Both owners at once: complete at once.
    const role = await cli(['fleet', 'grant', '--to', 'role:hub', '--actions', '+/get', '--on', 'kitchen,*', '--owner-key', `${aliceKey},${bobKey}`, ...g, '--json'])
    expect(JSON.parse(role.stdout)).toMatchObject({ version: 2, complete: true })
    const shown = await cli(['fleet', 'grants', file, ...f, '--json'])
    expect(JSON.parse(shown.stdout)).toMatchObject({
      ok: true, version: 2, target: '$grants',
      grants: [
        { to: panel.id, key: publicKeyText(panel.publicKey), name: 'panel', actions: ['relay/#', 'state/get'], on: [lamp.id] },
        { to: 'role:hub', name: null, actions: ['+/get'], on: ['group:kitchen', '*'] }
      ]
    })
    expect((await cli(['fleet', 'grants', file, ...f])).stdout).toContain('role:hub may +/get on group:kitchen,*')

    expect((await cli(['fleet', 'revoke-grant', '--to', publicKeyText(panel.publicKey), '--owner-key', `${aliceKey},${bobKey}`, ...g])).code).toBe(0)
    const policy = parseFleetPolicy(JSON.parse(await readFile(join(dir, 'fleet.json'), 'utf8')))
    const v3 = verifyCommandGrants(new Uint8Array(await readFile(file)), policy)
    expect(v3.version).toBe(3)
    expect(v3.grants.map((x) => 'role' in x.to ? x.to.role : x.to.id)).toEqual(['hub'])
    // A signed configuration tool checks it as one, too.
    expect(JSON.parse((await cli(['fleet', 'config', 'check', file, ...f, '--json'])).stdout)).toMatchObject({ ok: true, target: '$grants', version: 3 })

    expect((await cli(['fleet', 'revoke-grant', '--to', publicKeyText(panel.publicKey), '--owner-key', aliceKey, ...g])).code).toBe(2) // no grant to it any more
    expect((await cli(['fleet', 'grant', '--to', 'hub', '--actions', '#', '--on', '*', '--owner-key', aliceKey, ...g])).code).toBe(2) // neither a key nor role:R
    expect((await cli(['fleet', 'grant', '--to', 'role:hub', '--on', '*', '--owner-key', aliceKey, ...g])).code).toBe(2) // no --actions
    expect((await cli(['fleet', 'grant', '--to', 'role:hub', '--actions', 'a/#/b', '--on', '*', '--owner-key', aliceKey, ...g])).code).toBe(2) // not a pattern
    expect((await cli(['fleet', 'grant', '--to', 'role:hub', '--actions', '#', '--on', '*', '--owner-key', join(dir, 'mallory.key'), ...g])).code).not.toBe(0)
    await writeFile(join(dir, 'junk'), 'x')
    expect((await cli(['fleet', 'grants', join(dir, 'junk'), ...f])).stdout).toContain('ERR_BAD_CONFIG')
  })
})
