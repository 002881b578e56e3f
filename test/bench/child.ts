import { fork, type ChildProcess } from 'node:child_process'

/** A benchmark child process driven over IPC ({cmd, id} → {id, ok, res}; events {ev, …}). */
export class Child {
  readonly cp: ChildProcess
  readonly ready: Promise<void>
  onEvent: ((m: Record<string, unknown>) => void) | undefined
  #next = 1
  readonly #pending = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void }>()

  constructor (script: URL, env: Record<string, string> = {}) {
    this.cp = fork(script, { env: { ...process.env, ...env }, execArgv: [...process.execArgv, ...profileArgs()], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    this.ready = new Promise((resolve, reject) => {
      this.cp.once('exit', (code) => reject(new Error(`child ${script.pathname} exited with ${code}`)))
      this.cp.on('message', (m: Record<string, unknown>) => {
        if (m.ev === 'ready') resolve()
        if (typeof m.id === 'number' && this.#pending.has(m.id)) {
          const p = this.#pending.get(m.id)
          this.#pending.delete(m.id)
          if (m.ok === true) p?.resolve(m.res)
          else p?.reject(new Error(String(m.err)))
        } else if (m.ev !== undefined) this.onEvent?.(m)
      })
    })
  }

  async call<T = unknown> (cmd: string, args: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<T> {
    const id = this.#next++
    return await new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => { this.#pending.delete(id); reject(new Error(`${cmd} timed out`)) }, timeoutMs)
      this.#pending.set(id, { resolve: (v) => { clearTimeout(timer); resolve(v as T) }, reject: (e) => { clearTimeout(timer); reject(e) } })
      this.cp.send({ cmd, id, ...args })
    })
  }

  send (m: Record<string, unknown>): void {
    this.cp.send(m)
  }

  /** Asks the child to stop, waits for it to exit (it may be writing a CPU profile), then kills it. */
  async stop (): Promise<void> {
    const exited = new Promise<void>((resolve) => {
      if (this.cp.exitCode !== null || this.cp.signalCode !== null) resolve()
      else this.cp.once('exit', () => { resolve() })
    })
    await this.call('stop', {}, 5000).catch(() => undefined)
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, profileArgs().length > 0 ? 10_000 : 1000))])
    if (this.cp.exitCode === null && this.cp.signalCode === null) this.cp.kill('SIGKILL')
  }
}

/**
 * IOTMESH_BENCH_CPU_PROF=dir: every child writes a V8 CPU profile into `dir` when it exits
 * (`node --cpu-prof`; sampling every 100 µs), how the one-hop path was profiled (README "Benchmarks").
 */
function profileArgs (): string[] {
  const dir = process.env.IOTMESH_BENCH_CPU_PROF
  return dir === undefined || dir === '' ? [] : ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--cpu-prof-interval=100']
}

// The lab's child programs (lab/children/), compiled beside this file's own dist/test/bench/.
export const MESH_CHILD = new URL('../../lab/children/mesh-child.js', import.meta.url)
export const BROKER_CHILD = new URL('../../lab/children/broker-child.js', import.meta.url)
/**
 * For mesh children that take a sender's frames as fast as it pushes them (ingest, throughput):
 * the per-neighbour and per-origin data budgets (5,000 and 500 frames/s by default:
 * mesh/routing/budget.ts) out of the way, so the figure is what the node can verify and deliver, not the budget.
 * IOTMESH_BENCH_DEFAULT_BUDGETS=1 keeps the default budget instead (what a flood meets).
 */
export const UNBUDGETED: Record<string, string> = process.env.IOTMESH_BENCH_DEFAULT_BUDGETS === '1' ? {} : { IOTMESH_CHILD_DATA_BUDGET: '1000000000' }

export async function waitFor (what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const t0 = Date.now()
  while (!(await check())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
