import type { ChildProcess } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, expect, it } from 'vitest'
import { cosign, enroll, parseFleetPolicy, toBase64url, type KeyPair } from '../../shared/index.js'
import { saveKeyFile } from '../../shared/node.js'
import { describeNet } from '../helpers/netns.js'
import { assertBuilt } from '../helpers/fresh-build.js'
import { createLine, type LineNet } from '../helpers/line-net.js'
import { tempDir } from './support.js'
import { Waiter, keysFor } from './device-support.js'

/**
 * Signed configuration on `iotmesh device` processes in namespace hosts, on a line H0 — H1 — H2 — H3
 * (3 hops, no shortcut): `iotmesh fleet config push` on H0 hands version 2 for the group "kitchen"
 * to d0; it crosses d1 and d2 (not in the group: they keep and pass it on, and apply nothing) and
 * d3 (in the group) samples at the new interval; an older version pushed after it is refused by d3
 * with ERR_CONFIG_STALE (pushed for d3's id: one for the group would stop at d0, which holds a
 * higher version of that target); d3 restarted comes back with version 2 from its data directory.
 */

const root = fileURLToPath(new URL('../..', import.meta.url))
const PORT = 7331
let net: LineNet | undefined
afterAll(async () => { await net?.destroy() })

interface ConfigEvent { event: 'config', version?: number, refused?: { version: number, code: string }, interval: number }

describeNet('signed configuration across 3 hops, on device processes in namespace hosts', () => {
  it('reaches the group\'s device over 3 hops and applies at once; an older one is refused; it survives a restart', async () => {
    assertBuilt(['firmware-sim', 'bin', 'mesh', 'shared'])
    const line = net = await createLine(4, 86)
    const dir = await tempDir()
    const waiter = new Waiter()
    const timer = setInterval(waiter.kick, 100)
    const [alice, bob] = [keysFor(120), keysFor(121)]
    const fleetFile = join(dir, 'fleet.json')
    await writeFile(fleetFile, JSON.stringify({ fleet: 'default', threshold: 2, owners: [alice, bob].map((o: KeyPair) => ({ key: toBase64url(o.publicKey) })) }))
    const [aliceKey, bobKey] = [join(dir, 'alice.key'), join(dir, 'bob.key')]
    await saveKeyFile(aliceKey, alice)
    await saveKeyFile(bobKey, bob)
    const children = new Map<string, ChildProcess>()
    const logs: Record<string, string> = {}
    const device = async (host: number, name: string, keys: KeyPair, extra: string[]): Promise<void> => {
      const key = join(dir, `${name}.key`)
      if (!children.has(name)) await saveKeyFile(key, keys)
      // A fleet file closes the fleet by credential (mesh/credentials.ts): each device is enrolled by both owners.
      const policy = parseFleetPolicy(JSON.parse(await readFile(fleetFile, 'utf8')))
      const credential = join(dir, `${name}.cred`)
      await writeFile(credential, cosign(enroll({ policy, publicKey: keys.publicKey, name, cti: keys.publicKey.slice(0, 8), owners: [alice] }), policy, bob))
      const child = line.spawn(host, process.execPath, [join(root, 'bin', 'iotmesh.js'), 'device', '--name', name, '--key', key, '--data-dir', join(dir, name),
        '--sensors', 'battery', '--interval', '500', '--fleet-file', fleetFile, '--credential', credential, '--port', String(PORT), '--json', ...extra])
      logs[name] = ''
      child.stdout?.on('data', (c: Buffer) => { logs[name] += c.toString(); waiter.kick() })
      child.stderr?.on('data', (c: Buffer) => { logs[name] += c.toString() })
      children.set(name, child)
    }
    const events = (name: string, kind: string): Array<Record<string, unknown>> =>
      (logs[name] ?? '').split('\n').filter((l) => l.includes(`"event":"${kind}"`)).map((l) => JSON.parse(l) as Record<string, unknown>)
    const linksOf = (name: string): number => (events(name, 'tick').at(-1)?.links as number | undefined) ?? 0
    const configOf = (name: string): ConfigEvent | undefined => events(name, 'config').at(-1) as ConfigEvent | undefined
    const push = async (to: string, version: number, interval: number): Promise<void> => {
      const settings = join(dir, `v${version}.json`)
      await writeFile(settings, JSON.stringify({ interval }))
      const child = line.spawn(0, process.execPath, [join(root, 'bin', 'iotmesh.js'), 'fleet', 'config', 'push', settings, '--to', to, '--version', String(version),
        '--owner-key', `${aliceKey},${bobKey}`, '--file', fleetFile, '--no-mdns', '--peers', `127.0.0.1:${PORT}`, '--json'])
      let out = ''
      child.stdout?.on('data', (c: Buffer) => { out += c.toString() })
      child.stderr?.on('data', (c: Buffer) => { out += c.toString() })
      expect(await new Promise((resolve) => { child.once('exit', resolve) }), out).toBe(0)
    }
    const d3 = keysFor(125)
    try {
      await device(0, 'd0', keysFor(122), [])
      await device(1, 'd1', keysFor(123), ['--peers', `${line.left(0)}:${PORT}`])
      await device(2, 'd2', keysFor(124), ['--peers', `${line.left(1)}:${PORT}`])
      await device(3, 'd3', d3, ['--peers', `${line.left(2)}:${PORT}`, '--groups', 'kitchen,hall'])
      await waiter.until(() => linksOf('d1') >= 2 && linksOf('d2') >= 2 && linksOf('d3') >= 1, 'the line up', 30_000)
      expect(configOf('d3')).toMatchObject({ interval: 500 })
      expect(configOf('d3')?.version).toBeUndefined()

      await push('kitchen', 2, 1200)
      await waiter.until(() => configOf('d3')?.version === 2, 'version 2 applied at d3', 20_000)
      expect(configOf('d3')?.interval).toBe(1200)
      // d1 and d2 are not in the group: they passed it on and applied nothing.
      expect(configOf('d1')?.version).toBeUndefined()
      expect(configOf('d2')?.version).toBeUndefined()
      const ticks = events('d3', 'tick').length
      await new Promise((resolve) => setTimeout(resolve, 2600))
      expect(events('d3', 'tick').length - ticks).toBeLessThanOrEqual(3) // 1.2 s apart now (it was 0.5 s: 5 in this time)

      // An older version (for d3 itself: a target the mesh has no version of yet, so it spreads; one for the group would stop at d0).
      await push(d3.id, 1, 800)
      await waiter.until(() => configOf('d3')?.refused !== undefined, 'version 1 refused at d3', 20_000)
      expect(configOf('d3')).toMatchObject({ version: 2, refused: { version: 1, code: 'ERR_CONFIG_STALE' }, interval: 1200 })

      const child = children.get('d3') as ChildProcess
      const exited = new Promise((resolve) => { child.once('exit', resolve) })
      child.kill('SIGTERM')
      await exited
      const kept = JSON.parse(await readFile(join(dir, 'd3', 'signed-config.json'), 'utf8')) as { applied: string, refused: { version: number } }
      expect(kept.refused.version).toBe(1)
      logs.d3 = ''
      await device(3, 'd3', d3, ['--peers', `${line.left(2)}:${PORT}`, '--groups', 'kitchen,hall'])
      await waiter.until(() => configOf('d3') !== undefined, 'd3 back', 20_000)
      expect(configOf('d3')).toMatchObject({ version: 2, interval: 1200, refused: { version: 1, code: 'ERR_CONFIG_STALE' } })
    } finally {
      clearInterval(timer)
      await Promise.all([...children.values()].filter((c) => c.exitCode === null && c.signalCode === null).map(async (c) => {
        const exited = new Promise((resolve) => { c.once('exit', resolve) })
        c.kill('SIGTERM')
        await exited
      }))
    }
  }, 120_000)
})
