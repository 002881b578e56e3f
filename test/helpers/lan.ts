import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { promisify } from 'node:util'

/**
 * A LAN of namespace hosts inside the test's private namespace (NETWORK.md recipe): one bridge,
 * one veth pair and one `ip netns` host per device host, addresses 10.201.0.x/24. Names carry
 * the pid, because test files run in parallel in the same namespace. Only for describeNet tests.
 */

const run = promisify(execFile)
const ip = async (...args: string[]): Promise<void> => { await run('ip', args) }

export interface LanHost {
  /** The `ip netns` name. */
  readonly netns: string
  readonly address: string
  /** The bridge end of the host's veth pair, in the test's namespace. */
  readonly port: string
}

export interface Lan {
  readonly hosts: readonly LanHost[]
  /**
   * Runs `command` as host `host` (`ip netns exec`); killed by `destroy`. `ipc` adds an IPC
   * channel (`ip` execs the command, so the channel and the pid are the command's own).
   */
  spawn (host: LanHost, command: string, args: readonly string[], options?: { ipc?: boolean, env?: NodeJS.ProcessEnv }): ChildProcess
  /** Takes host `host` off the bridge (`ip link set <port> down`: a partition) or puts it back. */
  connect (host: LanHost, up: boolean): Promise<void>
  destroy (): Promise<void>
}

let lans = 0

/** `routes[i] === false` leaves host i without a default route: multicast sends then fail. */
export async function createLan (count: number, options: { routes?: readonly boolean[] } = {}): Promise<Lan> {
  const tag = `${process.pid % 100000}${lans++}`
  const bridge = `br${tag}`
  const hosts: LanHost[] = []
  const children = new Set<ChildProcess>()
  const destroy = async (): Promise<void> => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    for (const host of hosts) await ip('netns', 'del', host.netns).catch(() => {})
    await ip('link', 'del', bridge).catch(() => {})
  }
  try {
    await ip('link', 'add', bridge, 'type', 'bridge')
    await ip('link', 'set', bridge, 'up')
    for (let i = 0; i < count; i++) {
      const host = { netns: `iotm${tag}h${i}`, address: `10.201.0.${i + 1}`, port: `v${i}x${tag}` }
      hosts.push(host)
      await ip('netns', 'add', host.netns)
      await ip('link', 'add', host.port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host.netns)
      await ip('link', 'set', host.port, 'master', bridge)
      await ip('link', 'set', host.port, 'up')
      await ip('-n', host.netns, 'link', 'set', 'lo', 'up')
      await ip('-n', host.netns, 'addr', 'add', `${host.address}/24`, 'dev', 'eth0')
      await ip('-n', host.netns, 'link', 'set', 'eth0', 'up')
      // Multicast needs a route out of eth0 (NETWORK.md).
      if (options.routes?.[i] !== false) await ip('-n', host.netns, 'route', 'add', 'default', 'dev', 'eth0')
    }
  } catch (err) {
    await destroy()
    throw err
  }
  return {
    hosts,
    spawn: (host, command, args, spawnOptions = {}) => {
      const child = spawn('ip', ['netns', 'exec', host.netns, command, ...args], {
        stdio: spawnOptions.ipc === true ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
        ...(spawnOptions.env === undefined ? {} : { env: spawnOptions.env })
      })
      children.add(child)
      return child
    },
    connect: async (host, up) => { await ip('link', 'set', host.port, up ? 'up' : 'down') },
    destroy
  }
}

/** JSON lines a child prints, kept in order; `waitFor` finds one, already printed or still to come. */
export class JsonLines<T = Record<string, unknown>> {
  readonly lines: T[] = []
  stderr = ''
  readonly #waiters = new Set<() => void>()
  #closed = false
  /** Resolves with the exit code once the child exited and its output was read. */
  readonly exited: Promise<number | null>

  constructor (readonly child: ChildProcess) {
    let buffer = ''
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk
      let nl
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl).trim()
        buffer = buffer.slice(nl + 1)
        if (line === '') continue
        try { this.lines.push(JSON.parse(line) as T) } catch { this.stderr += `(stdout) ${line}\n` }
        for (const wake of this.#waiters) wake()
      }
    })
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { this.stderr += chunk })
    this.exited = new Promise((resolve) => {
      child.once('close', (code) => {
        this.#closed = true
        for (const wake of this.#waiters) wake()
        resolve(code)
      })
    })
  }

  async waitFor (match: (line: T) => boolean, signal: AbortSignal): Promise<T> {
    return await new Promise<T>((resolve, reject) => {
      const check = (): void => {
        const found = this.lines.find(match)
        if (found !== undefined) { done(); resolve(found); return }
        if (this.#closed) { done(); reject(new Error(`child exited (${this.child.exitCode ?? this.child.signalCode}) before the line awaited; stderr: ${this.stderr}`)) }
      }
      const onAbort = (): void => { done(); reject(new Error(`timed out waiting for a line; got ${JSON.stringify(this.lines)}; stderr: ${this.stderr}`)) }
      const done = (): void => { this.#waiters.delete(check); signal.removeEventListener('abort', onAbort) }
      this.#waiters.add(check)
      signal.addEventListener('abort', onAbort, { once: true })
      check()
    })
  }
}
