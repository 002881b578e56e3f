import type { ChildProcess } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, expect, it } from 'vitest'
import { cosign, enroll, parseFleetPolicy, revoke, toBase64url, type KeyPair } from '../../shared/index.js'
import { saveKeyFile } from '../../shared/node.js'
import { describeNet } from '../helpers/netns.js'
import { assertBuilt } from '../helpers/fresh-build.js'
import { createLine, type LineNet } from '../helpers/line-net.js'
import { tempDir } from './support.js'
import { Waiter, keysFor } from './device-support.js'

/**
 * Revocation on `iotmesh device` processes in namespace hosts, on a line H0 — H1 — H2 — H3 with
 * the victim V on H3 beside D3: the link H1–H2 is cut, `iotmesh fleet publish` hands a revocation
 * to H0; it spreads to H1 and stops at the cut; when the link comes back it crosses (a node hands
 * its whole set to a neighbour whose link opens), reaches H3, whose device drops V. Each device
 * keeps what it learned in its data directory. The fleet is closed by credential (every device is
 * enrolled by both owners, --credential); the revocation is published with an owner's key.
 */

const root = fileURLToPath(new URL('../..', import.meta.url))
const PORT = 7321
const VPORT = 7322
let net: LineNet | undefined
afterAll(async () => { await net?.destroy() })

const revocationsAt = async (dir: string): Promise<string[]> => {
  try { return JSON.parse(await readFile(join(dir, 'revocations.json'), 'utf8')) as string[] } catch { return [] }
}

describeNet('revocation across a partition that heals, on device processes in namespace hosts', () => {
  it('stops at the cut, crosses when it heals, and the last device drops the revoked one', async () => {
    assertBuilt(['firmware-sim', 'bin', 'mesh', 'shared'])
    const line = net = await createLine(4, 85)
    const dir = await tempDir()
    const waiter = new Waiter()
    const timer = setInterval(waiter.kick, 100)
    const [alice, bob] = [keysFor(110), keysFor(111)]
    const fleetFile = join(dir, 'fleet.json')
    await writeFile(fleetFile, JSON.stringify({ fleet: 'default', threshold: 2, owners: [alice, bob].map((o: KeyPair) => ({ key: toBase64url(o.publicKey) })) }))
    const policy = parseFleetPolicy(JSON.parse(await readFile(fleetFile, 'utf8')))
    const victim = keysFor(119)
    const children: ChildProcess[] = []
    const logs: Record<string, string> = {}
    const device = async (host: number, name: string, keys: KeyPair, extra: string[]): Promise<void> => {
      const key = join(dir, `${name}.key`)
      await saveKeyFile(key, keys)
      const credential = join(dir, `${name}.cred`)
      await writeFile(credential, cosign(enroll({ policy, publicKey: keys.publicKey, name, cti: keys.publicKey.slice(0, 8), owners: [alice] }), policy, bob))
      const child = line.spawn(host, process.execPath, [join(root, 'bin', 'iotmesh.js'), 'device', '--name', name, '--key', key, '--data-dir', join(dir, name),
        '--sensors', 'battery', '--interval', '500', '--fleet-file', fleetFile, '--credential', credential, '--json', ...extra])
      logs[name] = ''
      child.stdout?.on('data', (c: Buffer) => { logs[name] += c.toString(); waiter.kick() })
      child.stderr?.on('data', (c: Buffer) => { logs[name] += c.toString() })
      children.push(child)
    }
    await device(0, 'd0', keysFor(112), ['--port', String(PORT)])
    await device(1, 'd1', keysFor(113), ['--port', String(PORT), '--peers', `${line.left(0)}:${PORT}`])
    await device(2, 'd2', keysFor(114), ['--port', String(PORT), '--peers', `${line.left(1)}:${PORT}`])
    await device(3, 'd3', keysFor(115), ['--port', String(PORT), '--peers', `${line.left(2)}:${PORT}`])
    await device(3, 'v', victim, ['--port', String(VPORT), '--peers', `127.0.0.1:${PORT}`])
    const linksOf = (name: string): number => {
      const ticks = (logs[name] ?? '').split('\n').filter((l) => l.includes('"event":"tick"'))
      return (JSON.parse(ticks.at(-1) ?? '{"links":0}') as { links: number }).links
    }
    try {
      await waiter.until(() => linksOf('d3') >= 2 && linksOf('v') >= 1 && linksOf('d1') >= 2, 'the line up, v linked to d3', 30_000)
      await line.cut(1)
      const revocation = cosign(revoke({ policy, device: victim.id, reason: 'stolen', owners: [alice] }), policy, bob)
      const file = join(dir, 'v.rev')
      await writeFile(file, revocation)
      const ownerKey = join(dir, 'alice.key')
      await saveKeyFile(ownerKey, alice)
      const publish = line.spawn(0, process.execPath, [join(root, 'bin', 'iotmesh.js'), 'fleet', 'publish', file, '--file', fleetFile, '--owner-key', ownerKey, '--no-mdns', '--peers', `127.0.0.1:${PORT}`, '--json'])
      let out = ''
      publish.stdout?.on('data', (c: Buffer) => { out += c.toString() })
      publish.stderr?.on('data', (c: Buffer) => { out += c.toString() })
      expect(await new Promise((resolve) => { publish.once('exit', resolve) }), out).toBe(0)
      const expected = toBase64url(revocation)
      const t0 = Date.now()
      while (Date.now() - t0 < 10_000 && !((await revocationsAt(join(dir, 'd1'))).includes(expected))) await new Promise((resolve) => setTimeout(resolve, 100))
      expect(await revocationsAt(join(dir, 'd0'))).toEqual([expected])
      expect(await revocationsAt(join(dir, 'd1'))).toEqual([expected])
      await new Promise((resolve) => setTimeout(resolve, 1500))
      expect(await revocationsAt(join(dir, 'd2'))).toEqual([]) // the cut holds it back
      expect(linksOf('v')).toBeGreaterThanOrEqual(1)
      await line.mend(1)
      const t1 = Date.now()
      while (Date.now() - t1 < 30_000 && !((await revocationsAt(join(dir, 'd3'))).includes(expected))) await new Promise((resolve) => setTimeout(resolve, 100))
      expect(await revocationsAt(join(dir, 'd3')), logs.d3).toEqual([expected])
      await waiter.until(() => linksOf('v') === 0, 'the victim cut off', 10_000)
    } finally {
      clearInterval(timer)
      await Promise.all(children.filter((c) => c.exitCode === null && c.signalCode === null).map(async (c) => {
        const exited = new Promise((resolve) => { c.once('exit', resolve) })
        c.kill('SIGTERM')
        await exited
      }))
    }
  }, 120_000)
})
