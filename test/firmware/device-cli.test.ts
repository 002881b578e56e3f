import { spawn, type ChildProcess } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it, onTestFinished } from 'vitest'
import { cli } from '../helpers/cli.js'
import type { DropEvent, StatusEvent } from '../../gateway/index.js'
import { describeNet } from '../helpers/netns.js'
import { tempDir } from './support.js'
import { Waiter, gateway, increasing } from './device-support.js'
import { assertBuilt } from '../helpers/fresh-build.js'

const root = fileURLToPath(new URL('../..', import.meta.url))


describeNet('iotmesh device: a mesh port it cannot listen on', () => {
  it('is a usage error naming --port (exit 2), not ERR_LINK_CLOSED', async () => {
    const taken = createServer()
    await new Promise<void>((resolve) => taken.listen(0, '0.0.0.0', resolve))
    onTestFinished(() => { taken.close() })
    const port = (taken.address() as AddressInfo).port
    const result = await cli(['device', '--data-dir', await tempDir(), '--mode', 'mesh', '--port', String(port)])
    expect(result.code).toBe(2)
    expect(result.stderr).toContain(`cannot listen on mesh port ${port} (EADDRINUSE): another program (or another device) listens there; choose another --port`)
    expect(result.stderr).toContain('(ERR_BAD_ARGUMENT)')
    expect(result.stderr).not.toContain('ERR_LINK_CLOSED')
  })
})

describe('iotmesh device: configuration errors (exit 2, naming the setting)', () => {
  it.each([
    [['--interval', 'fast'], {}, /interval from --interval/],
    [['--mode', 'p2p'], {}, /mode from --mode/],
    [['--peers', '10.0.0.1'], {}, /peers from --peers/],
    [['--sensors', 'thermometer'], {}, /sensors from --sensors/],
    [[], { IOTMESH_MODE: 'broker' }, /broker must be set .* \(mode from IOTMESH_MODE\)/],
    [[], { IOTMESH_PORT: '70000' }, /port from IOTMESH_PORT/],
    [['--intervall', '100'], {}, /intervall/]
  ] as Array<[string[], Record<string, string>, RegExp]>)('%j %j', async (args, env, named) => {
    const dir = await tempDir()
    const result = await cli(['device', '--data-dir', dir, ...args], env)
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(named)
    expect(result.stderr).toContain('(ERR_BAD_ARGUMENT)')
    expect(result.stdout).toBe('')
  })

  it('names the setting and the file for a bad config file value', async () => {
    const dir = await tempDir()
    const file = join(dir, 'device.json')
    await writeFile(file, JSON.stringify({ mode: 'hybrid', broker: 'http://nope' }))
    const result = await cli(['device', '--config', file])
    expect(result.code).toBe(2)
    expect(result.stderr).toContain(`broker from ${file}`)
  })

  it('lists the device command in the help', async () => {
    const result = await cli(['--help'])
    expect(result.stdout).toMatch(/^ {2}device +Run a device/m)
  })
})

/** The children run dist/, so a stale build would test old code: say so instead. */
function assertFreshBuild (): void {
  assertBuilt(['firmware-sim', 'bin'])
}

interface Line { event: string, id?: string, frames?: Array<{ seq: number }>, sensor?: string, state?: string }

/** `node bin/iotmesh.js device …` with its JSON lines parsed as they come; SIGKILLed (by pid) if still alive when the test ends. */
function spawnDevice (args: string[], waiter: Waiter): { child: ChildProcess, lines: Line[], stderr: () => string, exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }> } {
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
  child.stderr?.on('data', (chunk: Buffer) => { err += chunk.toString('utf8') })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => { resolve({ code, signal }); waiter.kick() })
  })
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      process.kill(child.pid, 'SIGKILL')
      await exited
    }
  })
  return { child, lines, stderr: () => err, exited }
}

/** Throws with the child's stderr when it exited: a wait for its output would only time out. */
function alive (run: { child: ChildProcess, stderr: () => string }): boolean {
  if (run.child.exitCode !== null || run.child.signalCode !== null) throw new Error(`the device exited (${run.child.exitCode ?? run.child.signalCode}): ${run.stderr()}`)
  return true
}

const signedBy = (lines: Line[]): number[] => lines.filter((l) => l.event === 'tick').flatMap((l) => (l.frames ?? []).map((f) => f.seq))

describeNet('iotmesh device: crash and restart (child process, broker mode)', () => {
  it('after SIGKILL and restart no sequence number is reused, nothing is lost, and the gateway refuses none as a replay', async () => {
    assertFreshBuild()
    const waiter = new Waiter()
    const { gateway: gw, readings, url } = await gateway(waiter)
    const drops: DropEvent[] = []
    const statuses: StatusEvent[] = []
    gw.on('drop', (d) => { drops.push(d) })
    gw.on('status', (s) => { statuses.push(s) })
    const dir = await tempDir()
    // bme280: no I²C here; reported once, and the device runs on with the battery.
    const args = ['--data-dir', dir, '--mode', 'broker', '--broker', url, '--interval', '100', '--sensors', 'battery,bme280', '--name', 'crashy', '--json']

    const first = spawnDevice(args, waiter)
    await waiter.until(() => alive(first) && first.lines.some((l) => l.event === 'start'), 'the first run to start', 15_000)
    const id = first.lines.find((l) => l.event === 'start')?.id as string
    const mine = (): number[] => readings.filter((r) => r.origin === id).map((r) => r.seq)
    await waiter.until(() => mine().length >= 5, 'five readings from the first run')
    const killed = first.exited
    first.child.kill('SIGKILL')
    expect(await killed).toEqual({ code: null, signal: 'SIGKILL' })
    // The broker publishes the last will: the device is offline.
    await waiter.until(() => statuses.some((s) => s.deviceId === id && s.status?.state === 'offline'), 'the last will')
    const signedFirst = signedBy(first.lines)
    const acceptedAtKill = mine()
    const highest = Math.max(...signedFirst, ...acceptedAtKill)

    const second = spawnDevice(args, waiter)
    await waiter.until(() => alive(second) && signedBy(second.lines).length >= 5 && mine().filter((s) => s > highest).length >= 5, 'five readings from the second run', 15_000)
    const stopped = second.exited
    second.child.kill('SIGTERM')
    expect(await stopped).toEqual({ code: 0, signal: null })
    await waiter.until(() => statuses.filter((s) => s.deviceId === id && s.status?.state === 'offline').length >= 2, 'the goodbye status')

    const signedSecond = signedBy(second.lines)
    const accepted = mine()
    expect(Math.min(...signedSecond)).toBeGreaterThan(highest) // numbers move on past everything the first run used
    expect(increasing(accepted)).toBe(true) // as the gateway saw them: strictly increasing across the crash
    for (const seq of signedFirst) expect(accepted).toContain(seq) // what the first run signed arrived (drained after the restart)
    expect(gw.counters.dropped.too_old).toBe(0)
    // A frame delivered just before the kill but not yet marked so may be sent again: a duplicate of
    // an accepted frame of the first run, never a fresh reading refused.
    for (const drop of drops.filter((d) => d.deviceId === id)) {
      expect(drop.reason).toBe('duplicate')
      expect(acceptedAtKill).toContain(drop.seq)
    }
    for (const run of [first, second]) expect(run.stderr().match(/sensor bme280 is absent/g)).toHaveLength(1)
    expect(second.lines.at(-1)?.event).toBe('stop')
  })

  it('a backlog kept on disk during a broker outage survives SIGKILL and is delivered after the restart', async () => {
    assertFreshBuild()
    const waiter = new Waiter()
    const first = await gateway(waiter)
    const port = first.gateway.ports.mqtt as number
    const dir = await tempDir()
    const args = ['--data-dir', dir, '--mode', 'broker', '--broker', first.url, '--interval', '100', '--sensors', 'battery', '--json', '--fsync', 'always']
    const run1 = spawnDevice(args, waiter)
    await waiter.until(() => alive(run1) && first.readings.length >= 3, 'three readings before the outage', 15_000)
    await first.gateway.stop()
    const signedAtOutage = signedBy(run1.lines).length
    await waiter.until(() => alive(run1) && signedBy(run1.lines).length >= signedAtOutage + 4, 'four readings during the outage')
    run1.child.kill('SIGKILL')
    await run1.exited
    const signedFirst = signedBy(run1.lines)
    const acceptedFirst = first.readings.map((r) => r.seq)
    const backlog = signedFirst.filter((s) => !acceptedFirst.includes(s))
    expect(backlog.length).toBeGreaterThanOrEqual(4)

    const second = await gateway(waiter, { port })
    const run2 = spawnDevice(args, waiter)
    const accepted2 = (): number[] => second.readings.map((r) => r.seq)
    await waiter.until(() => alive(run2) && backlog.every((s) => accepted2().includes(s)) && signedBy(run2.lines).length >= 3 &&
      signedBy(run2.lines).slice(0, 3).every((s) => accepted2().includes(s)), 'the backlog and three fresh readings', 15_000)
    run2.child.kill('SIGTERM')
    expect(await run2.exited).toEqual({ code: 0, signal: null })
    expect(increasing(accepted2())).toBe(true) // the backlog first, oldest first, then the new numbers
    expect(Math.min(...signedBy(run2.lines))).toBeGreaterThan(Math.max(...signedFirst))
    const all = [...new Set([...acceptedFirst, ...accepted2()])]
    expect(increasing(all)).toBe(true)
    for (const seq of signedFirst) expect(all).toContain(seq) // nothing the first run signed was lost
    expect(second.gateway.counters.dropped.too_old).toBe(0)
    expect(second.gateway.counters.dropped.duplicate).toBe(0)
  })
})
