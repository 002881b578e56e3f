import type { ChildProcess } from 'node:child_process'
import { copyFile, readFile, writeFile } from 'node:fs/promises'
import { existsSync } from 'node:fs'
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
 * Grants for commands on `iotmesh device` processes in namespace hosts, on a line H0 — H1 — H2:
 * `iotmesh fleet grant … --publish` on H0 hands the owners' grant policy to d0, which passes it to
 * d1 (an enrolled device with a relay and no commanders file); a commander on H2 (`iotmesh cmd
 * --credential`, linked to d1) gets no answer before any grant, is let in by a key grant, kept out
 * once it is revoked, let in again by a grant to its credential's role; a replay of an older version
 * changes nothing; d1 keeps the policy across a restart; d2, an honest device beside it, keeps
 * sending readings throughout.
 */

const root = fileURLToPath(new URL('../..', import.meta.url))
const PORT = 7341
const iotmesh = join(root, 'bin', 'iotmesh.js')
let net: LineNet | undefined
afterAll(async () => { await net?.destroy() })

describeNet('grants for commands on device processes in namespace hosts', () => {
  it('a grant pushed through the mesh lets a commander in, revoking keeps it out, a role grant lets it in again; an honest publisher keeps working', async () => {
    assertBuilt(['firmware-sim', 'bin', 'mesh', 'shared'])
    const line = net = await createLine(3, 93)
    const dir = await tempDir()
    const waiter = new Waiter()
    const timer = setInterval(waiter.kick, 100)
    const [alice, bob] = [keysFor(130), keysFor(131)]
    const fleetFile = join(dir, 'fleet.json')
    await writeFile(fleetFile, JSON.stringify({ fleet: 'default', threshold: 2, owners: [alice, bob].map((o: KeyPair) => ({ key: toBase64url(o.publicKey) })) }))
    const policy = parseFleetPolicy(JSON.parse(await readFile(fleetFile, 'utf8')))
    const [aliceKey, bobKey] = [join(dir, 'alice.key'), join(dir, 'bob.key')]
    await saveKeyFile(aliceKey, alice)
    await saveKeyFile(bobKey, bob)
    const enrolled = async (name: string, keys: KeyPair, roles: string[] = []): Promise<string> => {
      const file = join(dir, `${name}.cred`)
      await writeFile(file, cosign(enroll({ policy, publicKey: keys.publicKey, name, roles, cti: keys.publicKey.slice(0, 8), owners: [alice] }), policy, bob))
      const key = join(dir, `${name}.key`)
      if (!existsSync(key)) await saveKeyFile(key, keys)
      return file
    }
    const children = new Map<string, ChildProcess>()
    const logs: Record<string, string> = {}
    const device = async (host: number, name: string, keys: KeyPair, extra: string[]): Promise<void> => {
      const credential = await enrolled(name, keys)
      const child = line.spawn(host, process.execPath, [iotmesh, 'device', '--name', name, '--key', join(dir, `${name}.key`), '--data-dir', join(dir, name),
        '--sensors', 'battery', '--interval', '300', '--fleet-file', fleetFile, '--credential', credential, '--port', String(PORT), '--json', ...extra])
      logs[name] = ''
      child.stdout?.on('data', (c: Buffer) => { logs[name] += c.toString(); waiter.kick() })
      child.stderr?.on('data', (c: Buffer) => { logs[name] += c.toString() })
      children.set(name, child)
    }
    const ticks = (name: string): Array<{ links: number, frames: unknown[] }> =>
      (logs[name] ?? '').split('\n').filter((l) => l.includes('"event":"tick"')).map((l) => JSON.parse(l) as { links: number, frames: unknown[] })
    const linksOf = (name: string): number => ticks(name).at(-1)?.links ?? 0
    const run = async (host: number, args: string[]): Promise<{ code: number, out: string }> => {
      const child = line.spawn(host, process.execPath, [iotmesh, ...args])
      let out = ''
      child.stdout?.on('data', (c: Buffer) => { out += c.toString() })
      child.stderr?.on('data', (c: Buffer) => { out += c.toString() })
      const code = await new Promise<number>((resolve) => { child.once('exit', (c) => { resolve(c ?? -1) }) })
      return { code, out }
    }
    const grantsFile = join(dir, 'grants.cose')
    const fleetCli = async (args: string[]): Promise<void> => {
      const r = await run(0, ['fleet', ...args, '--owner-key', `${aliceKey},${bobKey}`, '--grants', grantsFile, '--file', fleetFile,
        '--publish', '--no-mdns', '--peers', `127.0.0.1:${PORT}`, '--json'])
      expect(r.code, r.out).toBe(0)
    }
    const commanderKeys = keysFor(135)
    const commanderCred = await enrolled('commander', commanderKeys, ['hub'])
    const d1 = keysFor(133)
    // One command from the commander on H2, straight to d1: 0 ok, 1 refused with a code, 3 no answer (not a commander of d1 at all).
    const command = async (): Promise<number> => (await run(2, ['cmd', d1.id, 'relay/set', '{"on": true}', '--key', join(dir, 'commander.key'), '--credential', commanderCred,
      '--no-mdns', '--peers', `${line.left(1)}:${PORT}`, '--timeout', '2'])).code
    const until = async (code: number, what: string): Promise<void> => {
      const deadline = Date.now() + 30_000
      let last = -1
      while (Date.now() < deadline) if ((last = await command()) === code) return
      throw new Error(`${what}: the command still exits ${last}, not ${code}`)
    }
    try {
      await device(0, 'd0', keysFor(132), [])
      await device(1, 'd1', d1, ['--peers', `${line.left(0)}:${PORT}`, '--actuators', 'relay', '--groups', 'kitchen'])
      await device(2, 'd2', keysFor(134), ['--peers', `${line.left(1)}:${PORT}`])
      await waiter.until(() => linksOf('d0') >= 1 && linksOf('d1') >= 2 && linksOf('d2') >= 1, 'the line up', 30_000)

      // No grant and no commanders file: d1 does not answer the commander.
      expect(await command()).toBe(3)

      // A key grant for relay actions on d1, pushed on H0: it crosses d0 to d1.
      await fleetCli(['grant', '--to', toBase64url(commanderKeys.publicKey), '--actions', 'relay/#', '--on', d1.id, '--name', 'panel'])
      await copyFile(grantsFile, join(dir, 'grants-v1.cose'))
      await until(0, 'the key grant (v1) at d1')

      // Revoked: out again (no grant names it: no answer).
      await fleetCli(['revoke-grant', '--to', toBase64url(commanderKeys.publicKey)])
      await until(3, 'the revocation (v2) at d1')

      // A grant to the role its credential carries, on d1's group: in again.
      await fleetCli(['grant', '--to', 'role:hub', '--actions', '#', '--on', 'group:kitchen'])
      await until(0, 'the role grant (v3) at d1')
      const shown = await run(0, ['fleet', 'grants', grantsFile, '--file', fleetFile, '--json'])
      expect(JSON.parse(shown.out)).toMatchObject({ ok: true, version: 3, grants: [{ to: 'role:hub', actions: ['#'], on: ['group:kitchen'] }] })

      // A replay of v1 is stale wherever it lands; v3 still decides.
      const replay = await run(0, ['fleet', 'config', 'publish', join(dir, 'grants-v1.cose'), '--file', fleetFile, '--owner-key', aliceKey, '--no-mdns', '--peers', `127.0.0.1:${PORT}`])
      expect(replay.code, replay.out).toBe(0)
      expect(await command()).toBe(0)

      // d1 restarted keeps v3 from its data directory.
      const child = children.get('d1') as ChildProcess
      const exited = new Promise((resolve) => { child.once('exit', resolve) })
      child.kill('SIGTERM')
      await exited
      expect(existsSync(join(dir, 'd1', 'grants.cose'))).toBe(true)
      logs.d1 = ''
      await device(1, 'd1', d1, ['--peers', `${line.left(0)}:${PORT}`, '--actuators', 'relay', '--groups', 'kitchen'])
      await waiter.until(() => linksOf('d1') >= 1, 'd1 back', 30_000)
      await until(0, 'v3 at d1 after its restart')

      // The honest publisher sent readings all along and is still linked.
      const sent = ticks('d2').reduce((n, t) => n + t.frames.length, 0)
      expect(sent).toBeGreaterThan(20)
      await waiter.until(() => ticks('d2').reduce((n, t) => n + t.frames.length, 0) >= sent + 3 && linksOf('d2') >= 1, 'more readings from d2', 20_000)
    } finally {
      clearInterval(timer)
      await Promise.all([...children.values()].filter((c) => c.exitCode === null && c.signalCode === null).map(async (c) => {
        const exited = new Promise((resolve) => { c.once('exit', resolve) })
        c.kill('SIGTERM')
        await exited
      }))
    }
  }, 240_000)
})
