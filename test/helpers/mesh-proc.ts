import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Lan, LanHost } from '../../firmware-sim/fleet/lan.js'
import { assertBuilt } from './fresh-build.js'

/**
 * Mesh nodes as real processes: lab/children/mesh-child.ts from the build, driven over IPC (its
 * protocol: `{ev:'ready', id}`; `{cmd, id, ...}` answered by `{id, ok, res}`; `{ev:'reading'}` per
 * verified reading from another device; `{ev:'link' | 'drop' | 'state'}` with
 * IOTMESH_CHILD_EVENTS=1). Either forked into the test's namespace, or run as a namespace host
 * (`ip netns exec hN node …`: `ip` execs node, so the IPC channel reaches it and its pid is node's).
 * Only for describeNet tests.
 */

const root = fileURLToPath(new URL('../..', import.meta.url))
export const MESH_CHILD = `${root}dist/lab/children/mesh-child.js`

/** A verified reading from another device; `from` is the neighbour it came through, `at` when it arrived here (performance.now()). */
export interface Reading { origin: string, seq: number, hops: number, from?: string, at: number, records: Array<{ n: string, v?: number }> }
export interface ChildEvent { ev: string, [key: string]: unknown }
export interface PeerView { id: string, linked: boolean, source: string, port: number, addresses: string[] }
export interface StateEvent { ev: 'state', peers: PeerView[], invalid: Record<string, number> }

/** Environment of one mesh child (see mesh-child.ts). */
export interface MeshEnv {
  IOTMESH_CHILD_HOST?: string
  IOTMESH_CHILD_MDNS?: '1'
  IOTMESH_CHILD_FLEET?: string
  IOTMESH_CHILD_NAME?: string
  IOTMESH_CHILD_KEEPALIVE_INTERVAL?: string
  IOTMESH_CHILD_KEEPALIVE_TIMEOUT?: string
  IOTMESH_CHILD_SYNC_INTERVAL?: string
  IOTMESH_CHILD_EVENTS?: '1'
}

/** The children run dist/, so a stale build would test old code: say so instead. */
export function assertFreshBuild (): void {
  assertBuilt(['mesh', 'shared', 'lab/children'])
}

export class MeshProc {
  readonly readings: Reading[] = []
  readonly events: ChildEvent[] = []
  output = ''
  /** The device id, once ready. */
  id = ''
  readonly exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  readonly #pending = new Map<number, { resolve: (res: unknown) => void, reject: (err: Error) => void }>()
  readonly #waiters = new Set<() => void>()
  #calls = 0
  #gone = false

  constructor (readonly child: ChildProcess, readonly label: string) {
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => { this.output += chunk })
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { this.output += chunk })
    child.on('message', (m: ChildEvent & { id?: unknown, ok?: boolean, res?: unknown, err?: string }) => {
      if (typeof m.id === 'number' && m.ev === undefined) {
        const call = this.#pending.get(m.id)
        this.#pending.delete(m.id)
        if (m.ok === true) call?.resolve(m.res)
        else call?.reject(new Error(`${this.label}: ${m.err ?? 'failed'}`))
        return
      }
      if (m.ev === 'ready') this.id = m.id as string
      if (m.ev === 'reading') this.readings.push({ ...(m as unknown as Reading), at: performance.now() })
      else this.events.push(m)
      this.#wake()
    })
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#gone = true
        for (const call of this.#pending.values()) call.reject(new Error(`${this.label} exited (${code ?? signal}) before answering; output: ${this.output}`))
        this.#pending.clear()
        this.#wake()
        resolve({ code, signal })
      })
    })
  }

  get pid (): number { return this.child.pid ?? 0 }
  get alive (): boolean { return !this.#gone }

  /** One IPC command; rejects if the child fails it, exits or does not answer in time. */
  async call<T = unknown> (cmd: string, args: Record<string, unknown> = {}, timeoutMs = 10_000): Promise<T> {
    if (this.#gone) throw new Error(`${this.label} has exited; output: ${this.output}`)
    const id = ++this.#calls
    return await new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => { this.#pending.delete(id); reject(new Error(`${this.label}: ${cmd} got no answer in ${timeoutMs} ms`)) }, timeoutMs)
      this.#pending.set(id, {
        resolve: (res) => { clearTimeout(timer); resolve(res as T) },
        reject: (err) => { clearTimeout(timer); reject(err) }
      })
      this.child.send({ ...args, cmd, id })
    })
  }

  /** Resolves with the result of `check` once it is defined, re-checked on every message from the child. */
  async until<T> (what: string | (() => string), check: () => T | undefined, signal: AbortSignal): Promise<T> {
    const say = (): string => typeof what === 'string' ? what : what()
    return await new Promise<T>((resolve, reject) => {
      const test = (): void => {
        let found: T | undefined
        try { found = check() } catch (err) { done(); reject(err as Error); return }
        if (found !== undefined) { done(); resolve(found); return }
        if (this.#gone) { done(); reject(new Error(`${this.label} exited while waiting for ${say()}; output: ${this.output}`)) }
      }
      const onAbort = (): void => {
        done()
        reject(new Error(`${this.label}: timed out waiting for ${say()}; last events: ${JSON.stringify(this.events.slice(-5))}; output: ${this.output}`))
      }
      const done = (): void => { this.#waiters.delete(test); signal.removeEventListener('abort', onAbort) }
      if (signal.aborted) { onAbort(); return }
      this.#waiters.add(test)
      signal.addEventListener('abort', onAbort, { once: true })
      test()
    })
  }

  /** The first event (already received or still to come) that `match` accepts. */
  async event<E extends ChildEvent = ChildEvent> (match: (e: ChildEvent) => boolean, signal: AbortSignal, what = 'an event'): Promise<E> {
    return await this.until(what, () => this.events.find(match) as E | undefined, signal)
  }

  /** The latest `state` event (the peer list and invalid counts) that `match` accepts, now or later. */
  async state (match: (s: StateEvent) => boolean, signal: AbortSignal, what = 'a state'): Promise<StateEvent> {
    return await this.until(what, () => {
      const last = this.events.findLast((e) => e.ev === 'state') as StateEvent | undefined
      return last !== undefined && match(last) ? last : undefined
    }, signal)
  }

  /** True while the latest link event about `peer` says it is up. */
  linkedTo (peer: string): boolean {
    return (this.events.findLast((e) => e.ev === 'link' && e.peer === peer) as { up?: boolean } | undefined)?.up === true
  }

  /** Resolves once links to all of `peers` are up (IOTMESH_CHILD_EVENTS=1). */
  async linked (peers: readonly string[], signal: AbortSignal): Promise<void> {
    await this.until(`links to ${peers.join(', ')}`, () => peers.every((p) => this.linkedTo(p)) ? true : undefined, signal)
  }

  /** The sequence numbers received from `origin`, in arrival order (duplicates kept: there must be none). */
  seqsFrom (origin: string): number[] {
    return this.readings.filter((r) => r.origin === origin).map((r) => r.seq)
  }

  /** Resolves once every one of `seqs` from `origin` has arrived. */
  async received (origin: string, seqs: readonly number[], signal: AbortSignal): Promise<void> {
    const missing = (): number[] => {
      const got = new Set(this.seqsFrom(origin))
      return seqs.filter((s) => !got.has(s))
    }
    await this.until(() => `${seqs.length} readings from ${origin.slice(0, 8)}; missing ${missing().length}: ${missing().slice(0, 20).join(' ')}`,
      () => missing().length === 0 ? true : undefined, signal)
  }

  /** Publishes one reading; resolves with its sequence number. */
  async publish (v: number): Promise<number> {
    return await this.call<number>('publish', { records: [{ n: 'i', v }] })
  }

  /** Graceful stop (discovery goodbye, links closed): resolves once the process exited. */
  async stop (): Promise<void> {
    if (this.#gone) return
    await this.call('stop').catch(() => {})
    await this.exited
  }

  /** SIGKILL, and wait for the exit. */
  async kill (): Promise<void> {
    if (!this.#gone) this.child.kill('SIGKILL')
    await this.exited
  }

  #wake (): void {
    for (const wake of [...this.#waiters]) wake()
  }
}

/** Children started here, killed by `killAll` (teardown). */
export class MeshProcs {
  readonly #procs = new Set<MeshProc>()

  /** Forks a mesh child (or another program that speaks its protocol) into this namespace; resolves once it is ready. */
  async fork (label: string, env: MeshEnv, signal = AbortSignal.timeout(15_000), script = MESH_CHILD): Promise<MeshProc> {
    const child = fork(script, [], { execArgv: [], stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env: { ...process.env, ...env } })
    return await this.#ready(new MeshProc(child, label), signal)
  }

  /** Runs a mesh child as namespace host `host` of `lan`; resolves once it is ready. */
  async spawn (lan: Lan, host: LanHost, label: string, env: MeshEnv, signal = AbortSignal.timeout(15_000)): Promise<MeshProc> {
    const child = lan.spawn(host, process.execPath, [MESH_CHILD], { ipc: true, env: { ...process.env, ...env } })
    return await this.#ready(new MeshProc(child, label), signal)
  }

  /**
   * Runs another child program that speaks this protocol (test/adversarial/*-child.ts from the
   * build) as namespace host `host`, with `args`; resolves once it is ready.
   */
  async run (lan: Lan, host: LanHost, label: string, script: string, args: readonly string[], signal = AbortSignal.timeout(30_000)): Promise<MeshProc> {
    const child = lan.spawn(host, process.execPath, [script, ...args], { ipc: true })
    return await this.#ready(new MeshProc(child, label), signal)
  }

  async killAll (): Promise<void> {
    await Promise.all([...this.#procs].map(async (p) => { await p.kill() }))
    this.#procs.clear()
  }

  async #ready (proc: MeshProc, signal: AbortSignal): Promise<MeshProc> {
    this.#procs.add(proc)
    await proc.event((e) => e.ev === 'ready', signal, 'ready')
    return proc
  }
}

/** Sequence numbers sorted, duplicates kept. */
export const sorted = (seqs: readonly number[]): number[] => [...seqs].sort((a, b) => a - b)
