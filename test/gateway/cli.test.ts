import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { describe, expect, it, onTestFinished } from 'vitest'
import { EXIT_USAGE, parse, type Io } from '../../bin/cli.js'
import { gateway as command } from '../../bin/commands/gateway.js'
import { isMeshError, publicKeyText } from '../../shared/index.js'
import { describeNet } from '../helpers/netns.js'
import { watchOutput } from '../helpers/cli.js'
import { connectClient, connectDevice, seededKeys } from './support.js'

/** `iotmesh gateway`: flags, what it prints, and a clean stop on Ctrl-C (in-process, and the compiled binary with SIGINT). */

const root = fileURLToPath(new URL('../..', import.meta.url))
const built = existsSync(join(root, 'dist', 'bin', 'commands', 'gateway.js'))

/** Runs the command as bin/main.ts does (parse, run, a MeshError becomes its code and exit status), with captured streams. */
async function runCommand (argv: string[], io: Io): Promise<number> {
  try {
    const args = parse(command, argv)
    if (args.values.help === true) {
      io.stdout.write(commandHelp())
      return 0
    }
    return await command.run(args, io)
  } catch (err) {
    if (!isMeshError(err)) throw err
    io.stderr.write(`iotmesh gateway: ${err.message} (${err.code})\n`)
    return err.code === 'ERR_BAD_ARGUMENT' ? EXIT_USAGE : 1
  }
}

function commandHelp (): string {
  return command.help.map(([flag, text]) => `${flag}  ${text}`).join('\n')
}

function streams (signal: AbortSignal = new AbortController().signal): { io: Io, out: ReturnType<typeof watchOutput>, err: ReturnType<typeof watchOutput> } {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  return { io: { stdout, stderr, stdin: Readable.from([]), env: {}, signal }, out: watchOutput(stdout), err: watchOutput(stderr) }
}

async function cli (argv: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  const { io, out, err } = streams()
  const code = await runCommand(argv, io)
  return { code, stdout: out.text(), stderr: err.text() }
}

describe('iotmesh gateway: bad flags are usage errors naming the flag', () => {
  it.each([
    [['--mqtt-port', 'abc'], '--mqtt-port'],
    [['--http-port', '70000'], '--http-port'],
    [['--ws-port', '-1'], '--ws-port'],
    [['--fleet', 'a/b'], '--fleet'],
    [['--host', 'localhost.example'], '--host'],
    [['--broker', 'ftp://example.com'], '--broker'],
    [['--broker', 'mqtt://127.0.0.1:1883', '--mqtt-port', '1884'], '--mqtt-port'],
    [['--no-mesh', '--key', 'gw.key'], '--key'],
    [['--key', '/nonexistent/gw.key'], '--key'],
    [['--roster', '/nonexistent/roster.json'], '--roster'],
    [['--users', '/nonexistent/users.json'], '--users'],
    [['--token-skew', '0'], '--token-skew'],
    [['--broker', 'mqtt://127.0.0.1:1883', '--allow-anonymous'], '--allow-anonymous'],
    [['--bogus'], '--bogus']
  ])('%j', async (args, flag) => {
    const result = await cli(args)
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('ERR_BAD_ARGUMENT')
    expect(result.stderr).toContain(flag)
    expect(result.stdout).toBe('')
  })

  it('--help lists every flag', async () => {
    const result = await cli(['--help'])
    expect(result.code).toBe(0)
    for (const flag of ['--fleet', '--mqtt-port', '--ws-port', '--http-port', '--host', '--broker', '--no-mesh', '--roster', '--key', '--users', '--allow-anonymous', '--token-skew']) {
      expect(result.stdout).toContain(flag)
    }
  })
})

describeNet('iotmesh gateway: broker access flags', () => {
  async function run (args: string[]): Promise<{ out: ReturnType<typeof watchOutput>, err: ReturnType<typeof watchOutput>, url: string, stop: () => Promise<number> }> {
    const controller = new AbortController()
    const { io, out, err } = streams(controller.signal)
    const running = runCommand(['--mqtt-port', '0', '--ws-port', 'off', '--http-port', '0', '--host', '127.0.0.1', '--no-mesh', ...args], io)
    onTestFinished(() => { controller.abort() })
    const [, mqttPort] = await out.match(/^mqtt {7}mqtt:\/\/127\.0\.0\.1:(\d+)$/m)
    return { out, err, url: `mqtt://127.0.0.1:${mqttPort}`, stop: async () => { controller.abort(); return await running } }
  }

  it('by default anonymous clients are refused, and the refusal is logged with its code; --users lets a user read', async () => {
    const home = await mkdtemp(join(tmpdir(), 'iotmesh-gw-'))
    onTestFinished(async () => { await rm(home, { recursive: true, force: true }) })
    const users = join(home, 'users.json')
    await writeFile(users, JSON.stringify({ grafana: 'long-random-secret' }))
    const gw = await run(['--users', users])
    expect(gw.out.text()).toMatch(/^access {5}devices with their key \(token\), 1 users \(--users\); anonymous clients refused$/m)
    await expect(connectClient(gw.url)).rejects.toThrow()
    await gw.err.match(/refused \(ERR_NOT_AUTHORIZED, anonymous\): client .* connected without a user name/)
    await connectClient(gw.url, { username: 'grafana', password: 'long-random-secret' })
    expect(await gw.stop()).toBe(0)
  })

  it('--allow-anonymous is an open LAN broker, and says so', async () => {
    const gw = await run(['--allow-anonymous'])
    expect(gw.out.text()).toMatch(/^access {5}OPEN LAN broker \(--allow-anonymous\)/m)
    await connectClient(gw.url)
    expect(await gw.stop()).toBe(0)
  })
})

describeNet('iotmesh gateway', () => {
  it('in-process: prints the dashboard URL with the real ports, serves devices, and stops when the signal aborts', async () => {
    const controller = new AbortController()
    const home = await mkdtemp(join(tmpdir(), 'iotmesh-gw-'))
    onTestFinished(async () => { await rm(home, { recursive: true, force: true }) })
    const dev = seededKeys(91)
    const roster = join(home, 'roster.json')
    await writeFile(roster, JSON.stringify([{ pk: publicKeyText(dev.publicKey), name: 'porch' }]))
    const { io, out, err } = streams(controller.signal)
    const running = runCommand(['--fleet', 'cli', '--mqtt-port', '0', '--ws-port', 'off', '--http-port', '0', '--host', '127.0.0.1', '--roster', roster, '--data-dir', join(home, 'state')], io)
    onTestFinished(() => { controller.abort() })
    const [, httpPort] = await out.match(/^dashboard {2}http:\/\/127\.0\.0\.1:(\d+)\/$/m)
    const [, mqttPort] = await out.match(/^mqtt {7}mqtt:\/\/127\.0\.0\.1:(\d+)$/m)
    expect(Number(httpPort)).toBeGreaterThan(0)
    expect(Number(mqttPort)).toBeGreaterThan(0)
    expect(out.text()).toMatch(/^mesh {7}iotmesh-gw-\w+, id [a-z2-7]{26}, links on port \d+ \(a new identity/m)
    expect(out.text()).not.toMatch(/^websocket/m)
    expect(out.text()).toMatch(/^roster {5}closed mode, 1 keys$/m)
    await err.match(/warning: the gateway's mesh key .* is not in the roster/)
    const base = `http://127.0.0.1:${httpPort}`
    expect((await fetch(`${base}/`)).headers.get('content-type')).toBe('text/html; charset=utf-8')
    await connectDevice(`mqtt://127.0.0.1:${mqttPort}`, dev, { fleet: 'cli', name: 'porch', authenticate: true }) // secure by default: it signs in with its key
    const { devices } = await (await fetch(`${base}/api/devices`)).json() as { devices: Array<{ id: string, name: string, online: boolean }> }
    expect(devices).toEqual([expect.objectContaining({ id: dev.id, name: 'porch', online: true })])

    controller.abort()
    expect(await running).toBe(0)
    expect(out.text()).toMatch(/^stopped$/m)
    await expect(fetch(`${base}/api/devices`)).rejects.toThrow()
  })

  it('Ctrl-C while it waits for an external broker that does not answer stops it at once (exit 130), not after the start timeout', async () => {
    const controller = new AbortController()
    const home = await mkdtemp(join(tmpdir(), 'iotmesh-gw-'))
    onTestFinished(async () => { await rm(home, { recursive: true, force: true }) })
    const { io, err } = streams(controller.signal)
    // 10.9.9.9 is no host of this namespace: mqtt.js retries every second, the start waits up to 10 s.
    const running = runCommand(['--broker', 'mqtt://10.9.9.9:1883', '--http-port', '0', '--host', '127.0.0.1', '--data-dir', join(home, 'state')], io)
    await new Promise((resolve) => setTimeout(resolve, 1500))
    const aborted = Date.now()
    controller.abort()
    expect(await running).toBe(130)
    expect(Date.now() - aborted).toBeLessThan(2000)
    await err.match(/stopped while starting \(no answer yet from the broker mqtt:\/\/10\.9\.9\.9:1883\)/)
  })

  it('SIGTERM while it waits for an external broker exits 143 (128 + 15, as a shell or systemd reports it), not Ctrl-C\'s 130', async () => {
    const controller = new AbortController()
    const home = await mkdtemp(join(tmpdir(), 'iotmesh-gw-'))
    onTestFinished(async () => { await rm(home, { recursive: true, force: true }) })
    const { io, err } = streams(controller.signal)
    const running = runCommand(['--broker', 'mqtt://10.9.9.9:1883', '--http-port', '0', '--host', '127.0.0.1', '--data-dir', join(home, 'state')], io)
    await new Promise((resolve) => setTimeout(resolve, 500))
    controller.abort('SIGTERM') // bin/main.ts aborts with the signal's name
    expect(await running).toBe(143)
    await err.match(/stopped while starting/)
  })

  it('on every interface: prints the dashboard URL with its access token, kept in $IOTMESH_HOME/gateway/http-token; the API wants it', async () => {
    const controller = new AbortController()
    const home = await mkdtemp(join(tmpdir(), 'iotmesh-gw-'))
    onTestFinished(async () => { await rm(home, { recursive: true, force: true }) })
    const { io, out } = streams(controller.signal)
    const running = runCommand(['--mqtt-port', '0', '--ws-port', 'off', '--http-port', '0', '--host', '0.0.0.0', '--no-mesh'], { ...io, env: { IOTMESH_HOME: home } })
    onTestFinished(() => { controller.abort() })
    const [, httpPort, token] = await out.match(/^dashboard {2}http:\/\/localhost:(\d+)\/\?token=([A-Za-z0-9_-]+)$/m)
    expect(out.text()).toContain(`http token new, kept in ${join(home, 'gateway', 'http-token')}`)
    expect((await readFile(join(home, 'gateway', 'http-token'), 'utf8')).trim()).toBe(token)
    const base = `http://127.0.0.1:${httpPort}`
    expect((await fetch(`${base}/api/devices`)).status).toBe(401)
    expect((await fetch(`${base}/api/devices`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200)
    controller.abort()
    expect(await running).toBe(0)
  })

  it('is built (npm test builds dist/ first; run `npm run build` before test/run.sh alone)', () => {
    expect(built).toBe(true)
  })

  it.runIf(built)('the compiled binary: node bin/iotmesh.js gateway on ports 0 serves the dashboard from the build; SIGINT stops it with exit code 0', async () => {
    // The default state dir is $IOTMESH_HOME/gateway: a temporary one, never the user's ~/.iotmesh.
    const home = await mkdtemp(join(tmpdir(), 'iotmesh-gw-'))
    onTestFinished(async () => { await rm(home, { recursive: true, force: true }) })
    const child = spawn(process.execPath, [join(root, 'bin', 'iotmesh.js'), 'gateway', '--mqtt-port', '0', '--ws-port', '0', '--http-port', '0', '--host', '127.0.0.1'],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, IOTMESH_HOME: home } })
    const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
    onTestFinished(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL')
        await exited
      }
    })
    const out = watchOutput(child.stdout)
    const err = watchOutput(child.stderr)
    const [, httpPort] = await out.match(/^dashboard {2}http:\/\/127\.0\.0\.1:(\d+)\/$/m)
    const [, wsPort] = await out.match(/^websocket {2}ws:\/\/127\.0\.0\.1:(\d+)\/mqtt$/m)
    expect(Number(wsPort)).toBeGreaterThan(0)
    const base = `http://127.0.0.1:${httpPort}`
    const page = await fetch(`${base}/`)
    expect(page.status).toBe(200)
    expect(await page.text()).toContain('/assets/app.js')
    expect((await fetch(`${base}/assets/app.js`)).status).toBe(200)
    expect((await fetch(`${base}/metrics`)).status).toBe(200)
    child.kill('SIGINT')
    expect(await exited).toEqual({ code: 0, signal: null })
    expect(out.text()).toMatch(/^stopped$/m)
    expect(err.text()).toBe('')
  })

  it.runIf(built)('the compiled binary: a bad flag value exits 2 with ERR_BAD_ARGUMENT naming the flag', async () => {
    const child = spawn(process.execPath, [join(root, 'bin', 'iotmesh.js'), 'gateway', '--http-port', 'eighty'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
    const err = watchOutput(child.stderr)
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
    expect(code).toBe(2)
    expect(err.text()).toMatch(/--http-port .*\(ERR_BAD_ARGUMENT\)/)
  })
})
