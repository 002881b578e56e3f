import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { promisify } from 'node:util'

/**
 * A line network of namespace hosts for tests that need multi-hop paths the nodes cannot shortcut:
 * host 0 — host 1 — … — host n-1, each link its own veth pair and /30 (10.84.<i>.1 on host i,
 * 10.84.<i>.2 on host i + 1), nothing forwarded and no default route (no multicast, so no mDNS):
 * a host reaches its neighbours only, whatever peer exchange tells it. Runs inside the test's
 * private network namespace (test/run.sh); `cut` and `mend` take a link down and up (a partition).
 */

const run = promisify(execFile)
let lines = 0

export interface LineNet {
  /** Host i's address on its link to host i + 1. */
  left: (i: number) => string
  /** Runs a command as host i; killed by `destroy`. */
  spawn: (i: number, command: string, args: readonly string[]) => ChildProcess
  /** Takes the link between host i and host i + 1 down, or back up. */
  cut: (i: number) => Promise<void>
  mend: (i: number) => Promise<void>
  destroy: () => Promise<void>
}

export async function createLine (hosts: number, subnet = 84): Promise<LineNet> {
  const tag = `ln${process.pid % 100000}${lines++}`
  const netns = (i: number): string => `${tag}n${i}`
  const children = new Set<ChildProcess>()
  let made = 0
  const destroy = async (): Promise<void> => {
    for (const child of children) {
      if (child.exitCode !== null || child.signalCode !== null) continue
      const exited = new Promise((resolve) => { child.once('exit', resolve) })
      child.kill('SIGKILL')
      await exited
    }
    for (let i = 0; i < made; i++) await run('ip', ['netns', 'del', netns(i)]).catch(() => {})
  }
  try {
    for (let i = 0; i < hosts; i++) {
      await run('ip', ['netns', 'add', netns(i)])
      made++
      await run('ip', ['-n', netns(i), 'link', 'set', 'lo', 'up'])
    }
    for (let i = 0; i + 1 < hosts; i++) {
      await run('ip', ['link', 'add', `${tag}a${i}`, 'netns', netns(i), 'type', 'veth', 'peer', 'name', `${tag}b${i}`, 'netns', netns(i + 1)])
      await run('ip', ['-n', netns(i), 'addr', 'add', `10.${subnet}.${i}.1/30`, 'dev', `${tag}a${i}`])
      await run('ip', ['-n', netns(i + 1), 'addr', 'add', `10.${subnet}.${i}.2/30`, 'dev', `${tag}b${i}`])
      await run('ip', ['-n', netns(i), 'link', 'set', `${tag}a${i}`, 'up'])
      await run('ip', ['-n', netns(i + 1), 'link', 'set', `${tag}b${i}`, 'up'])
    }
  } catch (err) {
    await destroy()
    throw err
  }
  return {
    left: (i) => `10.${subnet}.${i}.1`,
    spawn: (i, command, args) => {
      const child = spawn('ip', ['netns', 'exec', netns(i), command, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
      children.add(child)
      return child
    },
    cut: async (i) => { await run('ip', ['-n', netns(i), 'link', 'set', `${tag}a${i}`, 'down']) },
    mend: async (i) => { await run('ip', ['-n', netns(i), 'link', 'set', `${tag}a${i}`, 'up']) },
    destroy
  }
}
