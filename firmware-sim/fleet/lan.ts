import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { promisify } from 'node:util'
import { meshError } from '../../shared/index.js'

/**
 * A LAN of network-namespace hosts, the recipe of ../shared/NETWORK.md ("A LAN of several
 * hosts"): one bridge and, per host, an `ip netns` namespace joined to it by a veth pair, with its
 * own address on a /24 and a default route out of its eth0 (multicast needs a route). A host
 * taken off the bridge (`connect(host, false)`) is a partition. Build it only inside a private
 * network namespace with a private /run/netns (`unshare -rnm`, as test/run.sh and
 * `iotmesh sim --hosts` do): nothing here touches a real interface. Names carry a tag, so several
 * LANs can share one namespace (test files running in parallel).
 */
export interface LanInit {
  hosts: number
  /** The first three octets of the /24; host i (from 0) is `<subnet>.<i + 1>`. Default `10.77.0`. */
  subnet?: string
  /**
   * The last octet of an address for the bridge itself: the namespace that builds the LAN joins it
   * there (a gateway listens on it) and sends multicast out through the bridge. Default: none.
   */
  bridgeHost?: number
  /** `routes[i] === false` leaves host i without a default route: its multicast sends then fail. */
  routes?: readonly boolean[]
  /** Unique among the LANs of one namespace; default the pid and a counter. */
  tag?: string
}

export interface LanHost {
  /** The `ip netns` name. */
  readonly netns: string
  readonly address: string
  /** The bridge end of the host's veth pair, in the namespace that built the LAN. */
  readonly port: string
}

export interface LanSpawnOptions {
  /** An IPC channel to the child (`ip` execs the command, so the channel and the pid are the command's own). */
  ipc?: boolean
  env?: NodeJS.ProcessEnv
  /** The child's stderr: piped (default) or this process's own. */
  stderr?: 'pipe' | 'inherit'
}

export interface Lan {
  readonly bridge: string
  /** The bridge's own address when `bridgeHost` was given. */
  readonly address: string | undefined
  readonly hosts: readonly LanHost[]
  /** Runs `command` as host `host` (`ip netns exec`), stdout piped; killed by `destroy`. */
  spawn (host: LanHost, command: string, args: readonly string[], options?: LanSpawnOptions): ChildProcess
  /** Takes `host` off the bridge (`ip link set <port> down`: a partition) or puts it back. */
  connect (host: LanHost, up: boolean): Promise<void>
  /** Kills what `spawn` started and deletes the hosts and the bridge; idempotent. */
  destroy (): Promise<void>
}

const run = promisify(execFile)

async function ip (...args: string[]): Promise<void> {
  try {
    await run('ip', args)
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? '').trim()
    const needs = 'a LAN of namespace hosts needs ip(8) inside a private network namespace (unshare -rnm)'
    throw meshError('ERR_BAD_ARGUMENT', `ip ${args.join(' ')} failed: ${stderr}; ${needs}`, { cause: err })
  }
}

let lans = 0

/** Builds the bridge and the hosts; on any failure, removes what it built and rejects. */
export async function createLan (init: LanInit): Promise<Lan> {
  const tag = init.tag ?? `${process.pid % 100000}${lans++}`
  const subnet = init.subnet ?? '10.77.0'
  const bridge = `br${tag}`
  const address = init.bridgeHost === undefined ? undefined : `${subnet}.${init.bridgeHost}`
  const hosts: LanHost[] = []
  const children = new Set<ChildProcess>()
  let destroying: Promise<void> | undefined
  const destroy = async (): Promise<void> => {
    destroying ??= (async () => {
      for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      for (const host of hosts) await ip('netns', 'del', host.netns).catch(() => {})
      await ip('link', 'del', bridge).catch(() => {})
    })()
    await destroying
  }
  try {
    await ip('link', 'add', bridge, 'type', 'bridge')
    if (address !== undefined) await ip('addr', 'add', `${address}/24`, 'dev', bridge)
    await ip('link', 'set', bridge, 'up')
    if (address !== undefined) await ip('route', 'add', '224.0.0.0/4', 'dev', bridge) // multicast needs a route out (NETWORK.md)
    for (let i = 0; i < init.hosts; i++) {
      const host = { netns: `iotm${tag}h${i}`, address: `${subnet}.${i + 1}`, port: `v${i}x${tag}` }
      hosts.push(host)
      await ip('netns', 'add', host.netns)
      await ip('link', 'add', host.port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host.netns)
      await ip('link', 'set', host.port, 'master', bridge)
      await ip('link', 'set', host.port, 'up')
      await ip('-n', host.netns, 'link', 'set', 'lo', 'up')
      await ip('-n', host.netns, 'addr', 'add', `${host.address}/24`, 'dev', 'eth0')
      await ip('-n', host.netns, 'link', 'set', 'eth0', 'up')
      if (init.routes?.[i] !== false) await ip('-n', host.netns, 'route', 'add', 'default', 'dev', 'eth0')
    }
  } catch (err) {
    await destroy()
    throw err
  }
  return {
    bridge,
    address,
    hosts,
    spawn: (host, command, args, options = {}) => {
      const child = spawn('ip', ['netns', 'exec', host.netns, command, ...args], {
        stdio: ['ignore', 'pipe', options.stderr ?? 'pipe', ...(options.ipc === true ? ['ipc' as const] : [])],
        env: options.env ?? process.env
      })
      children.add(child)
      return child
    },
    connect: async (host, up) => { await ip('link', 'set', host.port, up ? 'up' : 'down') },
    destroy
  }
}
