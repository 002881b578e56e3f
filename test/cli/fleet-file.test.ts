import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { cli } from '../helpers/cli.js'
import { parseFleetPolicy, publicKeyText } from '../../shared/index.js'
import { saveKeyFile } from '../../shared/node.js'
import { MeshNode } from '../../mesh/index.js'
import { seededKeys } from '../shared/support.js'

/**
 * `iotmesh fleet sign-file`: the next fleet file (here: a third owner) signed by 2 of 2 current
 * owners, each as a separate command, checked, refused while short or once stale, and published
 * to a node, which puts it in force (and the mesh spreads it: test/mesh/fleet-gossip.test.ts).
 */
describe('iotmesh fleet sign-file', () => {
  it('signs the next fleet file k of n, checks it, refuses it short or stale, and publishes it to the mesh', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'iotmesh-fleet-file-'))
    onTestFinished(async () => { await rm(dir, { recursive: true, force: true }) })
    const [file, nextFile, signed] = [join(dir, 'fleet.json'), join(dir, 'next.json'), join(dir, 'fleet-v1.cose')]
    const f = ['--file', file]
    const [aliceKey, bobKey] = [join(dir, 'alice.key'), join(dir, 'bob.key')]
    const [bob, carol] = [seededKeys(971), seededKeys(972)]
    await saveKeyFile(bobKey, bob)
    expect((await cli(['fleet', 'init', '--fleet', 'home', '--owner-key', aliceKey, '--name', 'alice', ...f])).code).toBe(0)
    expect((await cli(['fleet', 'add-owner', publicKeyText(bob.publicKey), '--name', 'bob', '--threshold', '2', ...f])).code).toBe(0)
    await copyFile(file, nextFile)
    expect((await cli(['fleet', 'add-owner', publicKeyText(carol.publicKey), '--name', 'carol', '--threshold', '2', '--file', nextFile])).code).toBe(0)

    const first = await cli(['fleet', 'sign-file', nextFile, '--owner-key', aliceKey, '--out', signed, ...f, '--json'])
    expect(first.code, first.stderr).toBe(0)
    expect(JSON.parse(first.stdout)).toMatchObject({ kind: 'fleet-file', complete: false })
    const short = await cli(['fleet', 'check', signed, ...f])
    expect([short.code, short.stdout.includes('ERR_TOO_FEW_OWNERS')]).toEqual([1, true])
    expect((await cli(['fleet', 'cosign', signed, '--owner-key', bobKey, ...f])).code).toBe(0)
    const checked = await cli(['fleet', 'check', signed, ...f, '--json'])
    expect(checked.code, checked.stdout).toBe(0)
    expect(JSON.parse(checked.stdout)).toMatchObject({ ok: true, kind: 'fleet-file', version: 1, threshold: 2, owners: [expect.any(String), bob.id, carol.id] })
    // NEXT now says its version: a node given it by hand holds version 1, so the signed file is stale there.
    expect(parseFleetPolicy(JSON.parse(await readFile(nextFile, 'utf8'))).version).toBe(1)
    const stale = await cli(['fleet', 'check', signed, '--file', nextFile])
    expect([stale.code, stale.stdout.includes('ERR_FLEET_STALE')]).toEqual([1, true])

    // Published to a node that holds the current fleet file: it takes it, and three owners are in force.
    const policy = parseFleetPolicy(JSON.parse(await readFile(file, 'utf8')))
    const node = new MeshNode({ name: 'd', fleet: 'home', host: '127.0.0.1', mdns: false, announceLinks: 0, routing: { fleetPolicy: policy }, requireCredentials: false }, { keys: seededKeys(973) })
    await node.start()
    onTestFinished(async () => { await node.stop() })
    const published = await cli(['fleet', 'publish', signed, '--no-mdns', '--peers', `127.0.0.1:${node.address?.port ?? 0}`, ...f, '--json'])
    expect(published.code, published.stderr).toBe(0)
    expect(JSON.parse(published.stdout)).toMatchObject({ ok: true, links: 1 })
    expect(node.fleetPolicy).toMatchObject({ version: 1, threshold: 2 })
    expect(node.fleetPolicy?.owners.map((o) => o.id).slice(1)).toEqual([bob.id, carol.id])
  }, 30_000)
})
