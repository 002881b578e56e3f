import type { ChildProcess } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, expect, it } from 'vitest'
import { publicKeyText, type KeyPair } from '../../shared/index.js'
import { saveKeyFile } from '../../shared/node.js'
import { describeNet } from '../helpers/netns.js'
import { createLine, type LineNet } from '../helpers/line-net.js'
import { assertBuilt } from '../helpers/fresh-build.js'
import { tempDir } from './support.js'
import { Waiter, keysFor } from './device-support.js'

/**
 * A rule chain on real `iotmesh device` processes, one per namespace host, on a line network:
 * S — R — X — Y — T, each link its own veth pair and /30, nothing forwarded, so a host reaches its
 * neighbours only (whatever peer exchange tells it) and no multicast route (no mDNS). A command
 * switches S's relay on; S publishes its new state; the rule on R sees it and commands T's light,
 * three hops away, through two devices that only relay. No broker, no gateway.
 */

const root = fileURLToPath(new URL('../..', import.meta.url))
const PORT = 7311
let net: LineNet | undefined
afterAll(async () => { await net?.destroy() })

/** `iotmesh …` run as host `i`; its exit code and output. */
async function cliOn (i: number, args: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  const child = (net as LineNet).spawn(i, process.execPath, [join(root, 'bin', 'iotmesh.js'), ...args])
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (c: Buffer) => { stdout += c.toString() })
  child.stderr?.on('data', (c: Buffer) => { stderr += c.toString() })
  const code = await new Promise<number>((resolve) => { child.once('exit', (c) => { resolve(c ?? -1) }) })
  return { code, stdout, stderr }
}

describeNet('a rule chain across three hops, on device processes in namespace hosts', () => {
  it('a relay switched on at S fires the rule on R, which switches on T\'s light three hops away', async () => {
    assertBuilt(['firmware-sim', 'bin', 'mesh', 'shared'])
    const line = net = await createLine(5)
    const left = line.left
    const dir = await tempDir()
    const waiter = new Waiter()
    const tester = keysFor(90)
    const [s, r, x, y, t] = [91, 92, 93, 94, 95].map(keysFor) as [KeyPair, KeyPair, KeyPair, KeyPair, KeyPair]
    const file = async (name: string, content: unknown): Promise<string> => {
      const path = join(dir, name)
      await writeFile(path, typeof content === 'string' ? content : JSON.stringify(content))
      return path
    }
    const keyFile = async (name: string, keys: KeyPair): Promise<string> => { const path = join(dir, `${name}.key`); await saveKeyFile(path, keys); return path }
    const allow = (keys: KeyPair, actions: string[]): { key: string, actions: string[] } => ({ key: publicKeyText(keys.publicKey), actions })
    const sCommanders = await file('s-commanders.json', { commanders: [allow(tester, ['relay/#'])] })
    const tCommanders = await file('t-commanders.json', { commanders: [allow(r, ['light/#']), allow(tester, ['state/get'])] })
    const rules = await file('rules.yaml', [
      `devices: { switch: ${s.id}, lamp: ${t.id} }`,
      'rules:',
      '  - name: switch-to-lamp',
      '    when: { all: [ { device: switch, sensor: relay, equals: true } ] }',
      '    then: [ { device: lamp, action: light/set, args: { on: true, level: 60 }, ttl: 10 } ]'
    ].join('\n'))
    // Each host dials its left neighbour.
    const plan: Array<[string, KeyPair, string[]]> = [
      ['s', s, ['--actuators', 'relay', '--commanders', sCommanders]],
      ['r', r, ['--rules', rules, '--peers', `${left(0)}:${PORT}`]],
      ['x', x, ['--peers', `${left(1)}:${PORT}`]],
      ['y', y, ['--peers', `${left(2)}:${PORT}`]],
      ['t', t, ['--actuators', 'light', '--commanders', tCommanders, '--peers', `${left(3)}:${PORT}`]]
    ]
    const children: ChildProcess[] = []
    const started = new Set<string>()
    let errors = ''
    for (const [i, [name, keys, extra]] of plan.entries()) {
      const key = await keyFile(name, keys)
      const child = line.spawn(i, process.execPath, [
        join(root, 'bin', 'iotmesh.js'), 'device', '--name', name, '--key', key, '--data-dir', join(dir, name), '--port', String(PORT),
        '--sensors', 'battery', '--interval', '60000', '--json', ...extra
      ])
      child.stdout?.on('data', (chunk: Buffer) => { if (chunk.toString().includes('"event":"start"')) { started.add(name); waiter.kick() } })
      child.stderr?.on('data', (chunk: Buffer) => { errors += `${name}: ${chunk.toString()}` })
      children.push(child)
    }
    await waiter.until(() => started.size === 5, `five devices started (${errors})`, 30_000)
    const local = ['--no-mdns', '--peers', `127.0.0.1:${PORT}`]
    const tKey = await keyFile('tester', tester)
    // The lamp is off; then the switch goes on (a command to S, one hop from the tester).
    const before = await cliOn(4, ['cmd', t.id, 'state/get', '--key', tKey, ...local, '--json', '--timeout', '20'])
    expect(JSON.parse(before.stdout), before.stderr).toMatchObject({ status: 'ok', state: { light: false } })
    const on = await cliOn(0, ['cmd', s.id, 'relay/set', '{"on": true}', '--key', tKey, ...local, '--json', '--timeout', '20'])
    expect(JSON.parse(on.stdout), on.stderr).toMatchObject({ status: 'ok', state: { relay: true } })
    // The rule on R fires and T's light comes on: asked of T itself.
    let light: unknown
    const deadline = Date.now() + 20_000
    while (Date.now() < deadline) {
      const now = await cliOn(4, ['cmd', t.id, 'state/get', '--key', tKey, ...local, '--json', '--timeout', '10'])
      light = (JSON.parse(now.stdout) as { state?: { light?: boolean, 'light/level'?: number } }).state
      if ((light as { light?: boolean } | undefined)?.light === true) break
      await new Promise((resolve) => setTimeout(resolve, 500))
    }
    expect(light, errors).toEqual({ light: true, 'light/level': 60 })
    await Promise.all(children.filter((c) => c.exitCode === null && c.signalCode === null).map(async (c) => {
      const exited = new Promise((resolve) => { c.once('exit', resolve) })
      c.kill('SIGTERM')
      await exited
    }))
  }, 120_000)
})
