import type { ChildProcess } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
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
 * A fleet closed by credential on `iotmesh device` processes in namespace hosts, on a line
 * H0 — H1 — H2: an enrolled publisher P on H0, an enrolled relay R on H1 with a listener
 * (`iotmesh watch` with an owner's key) beside it, and on H2 five devices that dial R and must be
 * refused at the handshake, each with its stable code, on both sides: one without credential,
 * one whose credential expired, one showing another device's credential, one with fewer owner
 * signatures than the threshold, and a revoked device that comes back (R holds the revocation in
 * its data directory from before it started). P's readings keep reaching the listener throughout.
 */

const root = fileURLToPath(new URL('../..', import.meta.url))
const PORT = 7341
let net: LineNet | undefined
afterAll(async () => { await net?.destroy() })

interface Event { event: string, by?: string, code?: string, peer?: string, links?: number }

describeNet('a fleet closed by credential, on device processes in namespace hosts', () => {
  it('refuses every device that is not validly enrolled with its code, both sides logging it; the enrolled publisher and listener carry on', async () => {
    assertBuilt(['firmware-sim', 'bin', 'mesh', 'shared'])
    const line = net = await createLine(3, 86)
    const dir = await tempDir()
    const waiter = new Waiter()
    const timer = setInterval(waiter.kick, 100)
    const [alice, bob] = [keysFor(130), keysFor(131)]
    const policyJson = { fleet: 'default', threshold: 2, owners: [alice, bob].map((o: KeyPair) => ({ key: toBase64url(o.publicKey) })) }
    const fleetFile = join(dir, 'fleet.json')
    await writeFile(fleetFile, JSON.stringify(policyJson))
    const policy = parseFleetPolicy(policyJson)
    const now = Math.floor(Date.now() / 1000)
    const credential = (keys: KeyPair, options: { owners?: KeyPair[], issuedAt?: number, lifetime?: number } = {}): Uint8Array => {
      const [first, ...rest] = options.owners ?? [alice, bob]
      let bytes = enroll({ policy, publicKey: keys.publicKey, cti: keys.publicKey.slice(0, 8), owners: [first as KeyPair], issuedAt: options.issuedAt ?? now, lifetime: options.lifetime ?? 3600 })
      for (const o of rest) bytes = cosign(bytes, policy, o)
      return bytes
    }
    const children: ChildProcess[] = []
    const events: Record<string, Event[]> = {}
    const logs: Record<string, string> = {}
    const spawn = (host: number, name: string, args: string[]): ChildProcess => {
      const child = line.spawn(host, process.execPath, [join(root, 'bin', 'iotmesh.js'), ...args])
      events[name] = []
      logs[name] = ''
      let rest = ''
      child.stdout?.on('data', (c: Buffer) => {
        const text = rest + c.toString()
        const lines = text.split('\n')
        rest = lines.pop() ?? ''
        for (const l of lines) { try { events[name]?.push(JSON.parse(l) as Event) } catch { /* not JSON */ } }
        logs[name] += c.toString()
        waiter.kick()
      })
      child.stderr?.on('data', (c: Buffer) => { logs[name] += c.toString() })
      children.push(child)
      return child
    }
    const device = async (host: number, name: string, keys: KeyPair, cred: Uint8Array | undefined, extra: string[], fleet = true): Promise<void> => {
      const key = join(dir, `${name}.key`)
      await saveKeyFile(key, keys)
      const credArgs: string[] = []
      if (cred !== undefined) {
        await writeFile(join(dir, `${name}.cred`), cred)
        credArgs.push('--credential', join(dir, `${name}.cred`))
      }
      spawn(host, name, ['device', '--name', name, '--key', key, '--data-dir', join(dir, name), '--sensors', 'battery', '--interval', '300',
        ...(fleet ? ['--fleet-file', fleetFile] : []), '--json', ...credArgs, ...extra])
    }
    const linksOf = (name: string): number => (events[name] ?? []).filter((e) => e.event === 'tick').at(-1)?.links ?? 0
    const refusals = (name: string, by: string): Event[] => (events[name] ?? []).filter((e) => e.event === 'refused' && e.by === by)

    const [p, r] = [keysFor(132), keysFor(133)]
    const refused: Array<{ name: string, keys: KeyPair, cred: Uint8Array | undefined, code: string }> = [
      { name: 'none', keys: keysFor(134), cred: undefined, code: 'ERR_NO_CREDENTIAL' },
      { name: 'expired', keys: keysFor(135), cred: credential(keysFor(135), { issuedAt: now - 7200, lifetime: 60 }), code: 'ERR_CREDENTIAL_EXPIRED' },
      { name: 'copied', keys: keysFor(136), cred: credential(p), code: 'ERR_CREDENTIAL_MISMATCH' },
      { name: 'one-owner', keys: keysFor(137), cred: credential(keysFor(137), { owners: [alice] }), code: 'ERR_TOO_FEW_OWNERS' },
      { name: 'revoked', keys: keysFor(138), cred: credential(keysFor(138)), code: 'ERR_REVOKED' }
    ]
    // R learned of the revocation before (its data directory keeps what it learned).
    const revocation = cosign(revoke({ policy, device: keysFor(138).id, reason: 'stolen', owners: [alice] }), policy, bob)
    await mkdir(join(dir, 'r'), { recursive: true })
    await writeFile(join(dir, 'r', 'revocations.json'), JSON.stringify([toBase64url(revocation)]))
    try {
      await device(0, 'p', p, credential(p), ['--port', String(PORT)])
      await device(1, 'r', r, credential(r), ['--port', String(PORT), '--peers', `${line.left(0)}:${PORT}`])
      const ownerKey = join(dir, 'alice.key')
      await saveKeyFile(ownerKey, alice)
      spawn(1, 'watch', ['watch', `iotmesh/default/${p.id}/#`, '--json', '--no-mdns', '--peers', `127.0.0.1:${PORT}`, '--key', ownerKey])
      const readings = (): number => (events.watch ?? []).length
      await waiter.until(() => linksOf('r') >= 2 && readings() >= 2, 'p — r — watch linked, readings flowing', 30_000)
        .catch((err: Error) => { throw new Error(`${err.message}\n${Object.entries(logs).map(([n, l]) => `--- ${n}\n${l.slice(-1500)}`).join('\n')}`) })

      // 'copied' runs without the fleet file: with it, a device refuses to start with another device's credential.
      for (const [i, d] of refused.entries()) await device(2, d.name, d.keys, d.cred, ['--port', String(PORT + 1 + i), '--peers', `${line.left(1)}:${PORT}`], d.name !== 'copied')
      await waiter.until(() => refused.every((d) => refusals(d.name, 'peer').length > 0 && refusals('r', 'us').some((e) => e.peer === d.keys.id)),
        'every refusal logged on both sides', 30_000)
        .catch((err: Error) => { throw new Error(`${err.message}\n${Object.entries(logs).map(([n, l]) => `--- ${n}\n${l.split('\n').filter((x) => !x.includes('"tick"')).join('\n').slice(-1500)}`).join('\n')}`) })
      for (const d of refused) {
        expect(refusals(d.name, 'peer').map((e) => e.code), `${d.name}: ${logs[d.name] ?? ''}`).toContain(d.code)
        expect(new Set(refusals('r', 'us').filter((e) => e.peer === d.keys.id).map((e) => e.code)), d.name).toEqual(new Set([d.code]))
        expect(linksOf(d.name), d.name).toBe(0)
      }
      // The honest publisher and listener carry on beside them.
      const before = readings()
      await waiter.until(() => readings() >= before + 5, 'five more readings from p at the listener', 15_000)
      expect(linksOf('p')).toBe(1)
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
