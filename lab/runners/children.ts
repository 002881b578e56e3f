import { fork, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { meshError } from '../../shared/index.js'
import { findPackageRoot } from '../results/environment.js'

/**
 * The lab's child programs and the driver that runs them. lab/children/mesh-child.ts (one mesh
 * node) and lab/children/broker-child.ts (the gateway, an MQTT device or a subscriber) are
 * programs, never imported: they run as compiled JavaScript in their own processes, and speak
 * one IPC protocol, `{ev:'ready'}`, `{cmd, id, ...}` answered by `{id, ok, res}`, events `{ev, ...}`.
 * `npm run bench` and the multi-process tests run the same programs.
 */

/** The compiled child programs (dist/lab/children/), found from the iotmesh package this module belongs to. */
export function childPrograms (): { mesh: string, broker: string } {
  const root = findPackageRoot(dirname(fileURLToPath(import.meta.url)))
  const dir = root === undefined ? undefined : join(root, 'dist', 'lab', 'children')
  const mesh = dir === undefined ? undefined : join(dir, 'mesh-child.js')
  const broker = dir === undefined ? undefined : join(dir, 'broker-child.js')
  if (mesh === undefined || broker === undefined || !existsSync(mesh) || !existsSync(broker)) {
    throw meshError('ERR_BAD_ARGUMENT', `iotmesh experiment latency runs the lab's compiled child programs (dist/lab/children/mesh-child.js and broker-child.js${root === undefined ? '' : ` under ${root}`}), and they are missing: run \`npm run build\` in the iotmesh checkout first`)
  }
  return { mesh, broker }
}

/** A child program (lab/children/) in its own process, driven over IPC: {cmd, id} answered by {id, ok, res}; events {ev, …}. */
export class ChildProgram {
  readonly cp: ChildProcess
  readonly ready: Promise<void>
  onEvent: ((m: Record<string, unknown>) => void) | undefined
  #stderr = ''
  #next = 1
  readonly #pending = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void }>()

  constructor (script: string, env: Record<string, string>) {
    this.cp = fork(script, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
    this.cp.stderr?.setEncoding('utf8').on('data', (chunk: string) => { this.#stderr = (this.#stderr + chunk).slice(-2000) })
    this.ready = new Promise((resolve, reject) => {
      this.cp.once('exit', (code) => { reject(new Error(`latency: ${script} exited with ${code}${this.#stderr === '' ? '' : `: ${this.#stderr.trim()}`}`)) })
      this.cp.on('message', (m: Record<string, unknown>) => {
        if (m.ev === 'ready') resolve()
        const pending = typeof m.id === 'number' ? this.#pending.get(m.id) : undefined
        if (pending !== undefined) {
          this.#pending.delete(m.id as number)
          if (m.ok === true) pending.resolve(m.res)
          else pending.reject(new Error(String(m.err)))
        } else if (m.ev !== undefined) this.onEvent?.(m)
      })
    })
    this.ready.catch(() => {})
  }

  async call<T = unknown> (cmd: string, args: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<T> {
    const id = this.#next++
    return await new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => { this.#pending.delete(id); reject(new Error(`latency: ${cmd} timed out`)) }, timeoutMs)
      this.#pending.set(id, { resolve: (v) => { clearTimeout(timer); resolve(v as T) }, reject: (e) => { clearTimeout(timer); reject(e) } })
      this.cp.send({ cmd, id, ...args })
    })
  }

  send (m: Record<string, unknown>): void {
    if (this.cp.connected) this.cp.send(m)
  }

  async stop (): Promise<void> {
    if (this.cp.exitCode === null && this.cp.connected) await this.call('stop', {}, 5000).catch(() => undefined)
    if (this.cp.exitCode === null && this.cp.signalCode === null) this.cp.kill('SIGKILL')
  }
}
