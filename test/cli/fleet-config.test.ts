import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { cli } from '../helpers/cli.js'
import { parseFleetPolicy, publicKeyText, verifyFleetConfig } from '../../shared/index.js'
import { saveKeyFile } from '../../shared/node.js'
import { MeshNode } from '../../mesh/index.js'
import { seededKeys } from '../shared/support.js'

/** `iotmesh fleet config`: push (signed by one owner of a threshold of 2: incomplete), cosign, check, and a push that goes to the mesh. */

describe('iotmesh fleet config', () => {
  it('push --out (incomplete), cosign (complete), check; refuses invalid settings and an incomplete push to the mesh; a complete push reaches a node', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'iotmesh-fleet-config-'))
    onTestFinished(async () => { await rm(dir, { recursive: true, force: true }) })
    const file = join(dir, 'fleet.json')
    const bob = seededKeys(901)
    const aliceKey = join(dir, 'alice.key')
    const bobKey = join(dir, 'bob.key')
    await saveKeyFile(bobKey, bob)
    const f = ['--file', file]
    expect((await cli(['fleet', 'init', '--fleet', 'default', '--owner-key', aliceKey, ...f])).code).toBe(0)
    expect((await cli(['fleet', 'add-owner', publicKeyText(bob.publicKey), '--threshold', '2', ...f])).code).toBe(0)
    const policy = parseFleetPolicy(JSON.parse(await readFile(file, 'utf8')))

    const help = await cli(['fleet', '--help'])
    expect(help.stdout).toContain('config push FILE')

    const settings = join(dir, 'kitchen.json')
    await writeFile(settings, JSON.stringify({ interval: 2000, sensors: ['battery'] }))
    const signed = join(dir, 'kitchen.cfg')
    const pushed = await cli(['fleet', 'config', 'push', settings, '--to', 'kitchen', '--version', '3', '--owner-key', aliceKey, '--out', signed, ...f, '--json'])
    expect(pushed.code, pushed.stderr).toBe(0)
    expect(JSON.parse(pushed.stdout)).toMatchObject({ kind: 'config', complete: false })
    const early = await cli(['fleet', 'config', 'check', signed, ...f, '--json'])
    expect(early.code).toBe(1)
    expect(JSON.parse(early.stdout)).toMatchObject({ ok: false, code: 'ERR_TOO_FEW_OWNERS' })
    expect(JSON.parse((await cli(['fleet', 'config', 'cosign', signed, '--owner-key', bobKey, ...f, '--json'])).stdout)).toMatchObject({ complete: true })
    const checked = await cli(['fleet', 'config', 'check', signed, ...f, '--json'])
    expect(checked.code).toBe(0)
    expect(JSON.parse(checked.stdout)).toMatchObject({ ok: true, target: 'group:kitchen', version: 3, settings: { interval: 2000, sensors: ['battery'] } })

    // Settings the device would refuse are refused before anything is signed; so are settings that cannot change remotely.
    await writeFile(settings, JSON.stringify({ interval: 5 }))
    const bad = await cli(['fleet', 'config', 'push', settings, '--to', 'kitchen', '--version', '4', '--owner-key', aliceKey, '--out', join(dir, 'bad.cfg'), ...f])
    expect(bad.code).toBe(1)
    expect(bad.stderr).toContain('ERR_BAD_CONFIG')
    await writeFile(settings, JSON.stringify({ fleetFile: '/tmp/x' }))
    expect((await cli(['fleet', 'config', 'push', settings, '--to', 'kitchen', '--version', '4', '--owner-key', aliceKey, '--out', join(dir, 'bad.cfg'), ...f])).stderr).toContain('ERR_BAD_CONFIG')
    expect((await cli(['fleet', 'config', 'push', settings, '--to', 'kitchen', '--owner-key', aliceKey, ...f])).code).toBe(2) // no --version

    // Without --out it goes to the mesh, so it must be complete.
    await writeFile(settings, JSON.stringify({ interval: 1500 }))
    const short = await cli(['fleet', 'config', 'push', settings, '--to', 'kitchen', '--version', '5', '--owner-key', aliceKey, '--no-mdns', ...f])
    expect(short.code).toBe(1)
    expect(short.stderr).toContain('ERR_TOO_FEW_OWNERS')

    const keys = seededKeys(910)
    // An open fleet (requireCredentials: false): the publishers here show no credential; closed fleets are test/mesh/credentials.test.ts's.
    const node = new MeshNode({ name: 'd', host: '127.0.0.1', mdns: false, announceLinks: 0, routing: { fleetPolicy: policy }, requireCredentials: false }, { keys })
    await node.start()
    onTestFinished(async () => { await node.stop() })
    const published = await cli(['fleet', 'config', 'push', settings, '--to', 'kitchen', '--version', '5', '--owner-key', `${aliceKey},${bobKey}`, '--no-mdns',
      '--peers', `127.0.0.1:${node.address?.port ?? 0}`, ...f, '--json'])
    expect(published.code, published.stderr).toBe(0)
    expect(JSON.parse(published.stdout)).toMatchObject({ ok: true, links: 1 })
    expect(node.configs()).toHaveLength(1)
    expect(verifyFleetConfig(node.configs()[0] as Uint8Array, policy)).toMatchObject({ target: 'group:kitchen', version: 5, settings: { interval: 1500 } })
    // The file written earlier, published on its own, is older: the node keeps version 5.
    const older = await cli(['fleet', 'config', 'publish', signed, '--no-mdns', '--peers', `127.0.0.1:${node.address?.port ?? 0}`, ...f])
    expect(older.code, older.stderr).toBe(0)
    expect(verifyFleetConfig(node.configs()[0] as Uint8Array, policy).version).toBe(5)
  }, 30_000)
})
