import { spawn, type ChildProcess } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect, it, onTestFinished } from 'vitest'
import { cli } from '../helpers/cli.js'
import { EXIT_NO_RESULT } from '../../bin/commands/cmd.js'
import { encodeCommand, publicKeyText, type KeyPair } from '../../shared/index.js'
import { saveKeyFile } from '../../shared/node.js'
import { MeshNode } from '../../mesh/index.js'
import { describeNet } from '../helpers/netns.js'
import { assertBuilt } from '../helpers/fresh-build.js'
import { tempDir } from './support.js'
import { Waiter, keysFor } from './device-support.js'

/**
 * `iotmesh device --actuators --commanders` as a real process, commanded by `iotmesh cmd` over
 * TCP mesh links (no broker, no gateway), and exactly once across SIGKILL: the journal on disk
 * answers a command that ran before the crash, and nothing runs twice.
 */

const root = fileURLToPath(new URL('../..', import.meta.url))


interface Line { event: string, id?: string, port?: number, counters?: { commands?: { executed: number, repeated: number, refused: Record<string, number> } } }

function spawnDevice (args: string[], waiter: Waiter): { child: ChildProcess, lines: Line[], stderr: () => string, exited: Promise<unknown> } {
  const child = spawn(process.execPath, [join(root, 'bin', 'iotmesh.js'), 'device', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: Line[] = []
  let buffer = ''
  let err = ''
  child.stdout?.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8')
    for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
      lines.push(JSON.parse(buffer.slice(0, i)) as Line)
      buffer = buffer.slice(i + 1)
      waiter.kick()
    }
  })
  child.stderr?.on('data', (chunk: Buffer) => { err += chunk.toString('utf8'); waiter.kick() })
  const exited = new Promise((resolve) => { child.once('exit', (code, signal) => { resolve({ code, signal }); waiter.kick() }) })
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      process.kill(child.pid, 'SIGKILL')
      await exited
    }
  })
  return { child, lines, stderr: () => err, exited }
}

async function keyFile (dir: string, name: string, keys: KeyPair): Promise<string> {
  const path = join(dir, `${name}.key`)
  await saveKeyFile(path, keys)
  return path
}

describeNet('iotmesh cmd and a device process over TCP mesh links', () => {
  it('ok (exit 0), refused with its code (exit 1), no answer for a stranger (exit 3); executed once across SIGKILL', async () => {
    assertBuilt(['firmware-sim', 'bin', 'mesh', 'shared'])
    const waiter = new Waiter()
    const dir = await tempDir()
    const owner = keysFor(70)
    const stranger = keysFor(71)
    const commanders = join(dir, 'commanders.json')
    await writeFile(commanders, JSON.stringify({ commanders: [{ name: 'owner', key: publicKeyText(owner.publicKey), actions: ['relay/#', 'state/get'] }] }))
    const ownerKey = await keyFile(dir, 'owner', owner)
    const strangerKey = await keyFile(dir, 'stranger', stranger)
    const data = join(dir, 'device')
    const args = ['--data-dir', data, '--sensors', 'temperature', '--interval', '60000', '--actuators', 'relay,light', '--commanders', commanders, '--json']
    const first = spawnDevice([...args, '--port', '0'], waiter)
    await waiter.until(() => first.lines.some((l) => l.event === 'start') || first.child.exitCode !== null, 'the device to start', 15_000)
    const start = first.lines.find((l) => l.event === 'start')
    if (start?.id === undefined || start.port == null) throw new Error(`the device did not start: ${first.stderr()}`)
    const { id, port } = start
    const peers = ['--no-mdns', '--peers', `127.0.0.1:${port}`]

    const ok = await cli(['cmd', id, 'relay/set', '{"on": true}', '--key', ownerKey, ...peers, '--json', '--timeout', '10', '--ttl', '20'])
    expect(ok, ok.stderr).toMatchObject({ code: 0 })
    expect(JSON.parse(ok.stdout)).toMatchObject({ device: id, action: 'relay/set', via: 'mesh', status: 'ok', state: { relay: true, light: false } })
    const refused = await cli(['cmd', id, 'light/set', '{"on": true}', '--key', ownerKey, ...peers, '--timeout', '10'])
    expect(refused.code).toBe(1) // a commander, but not of lights
    expect(refused.stdout).toContain('ERR_NOT_ALLOWED')
    const unanswered = await cli(['cmd', id, 'relay/set', '{"on": false}', '--key', strangerKey, ...peers, '--timeout', '1.5'])
    expect(unanswered.code).toBe(EXIT_NO_RESULT)
    expect(unanswered.stderr).toContain('ERR_TIMEOUT')
    const usage = await cli(['cmd', id, 'Relay Set', '--key', ownerKey, ...peers])
    expect(usage.code).toBe(2)

    // One command of the owner's, sent from a node of our own, executed; then the device is killed.
    const node = new MeshNode({ name: 'owner', mdns: false, peers: [`127.0.0.1:${port}`], announceLinks: 0 }, { keys: owner })
    onTestFinished(async () => { await node.stop() })
    await node.start()
    const signed = encodeCommand({ keys: owner, target: id, action: 'relay/set', args: { on: false }, id: Date.now() * 1000, ttl: 60 })
    expect((await node.command(signed, { timeoutMs: 10_000 })).status).toBe('ok')
    first.child.kill('SIGKILL')
    await first.exited
    // Restarted on the same data directory and port: the same bytes again are answered from the journal, not run again.
    const second = spawnDevice([...args, '--port', String(port)], waiter)
    await waiter.until(() => second.lines.some((l) => l.event === 'start') || second.child.exitCode !== null, 'the restart', 15_000)
    const again = await node.command(signed, { timeoutMs: 15_000 })
    expect(again.status).toBe('ok')
    second.child.kill('SIGTERM')
    await second.exited
    const stop = second.lines.find((l) => l.event === 'stop')
    expect(stop?.counters?.commands).toMatchObject({ executed: 0, repeated: 1 })
  }, 90_000)
})
