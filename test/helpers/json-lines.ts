import type { ChildProcess } from 'node:child_process'

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
