import {
  decodeCommand, isMeshError, meshError, verifySigned,
  type Clock, type CommandResult, type DeviceId, type Ed25519, type ErrorCode, type PublicKey, type TimerHandle
} from '../shared/index.js'
import type { Router } from './routing/router.js'

/**
 * Issuing one command over the mesh and waiting for its verified result (MeshNode.command). The
 * routing is mesh/routing/commands.ts; what makes it safe to send the same bytes again is the
 * target's journal (firmware-sim/commands/journal.ts): a command id executes at most once, and a
 * repeat is answered with the result of the first execution.
 *
 *   - No route yet (the target's declaration has not reached this node): tried again every
 *     `routeRetryMs` until the deadline (ERR_NO_ROUTE then).
 *   - Sent: the same signed bytes go again every `retryMs` (a lost command or a lost result), so
 *     a path broken on the way is routed around as soon as the routes know it.
 *   - A result counts once verified with the target's key; anything else is ignored and counted.
 *   - The wait ends with the first verified result, at the deadline (ERR_TIMEOUT: the command may
 *     or may not have run), or when `signal` aborts (ERR_ABORTED).
 */

export interface CommandOptions {
  /** How long to wait for the result, ms (default: until the command expires, by this node's clock, at least 1 s). */
  timeoutMs?: number
  /** The same command is sent again this often while no result came, ms (default 1000). */
  retryMs?: number
  /** While no route to the target is known, looked for again this often, ms (default 100). */
  routeRetryMs?: number
  signal?: AbortSignal
}

export interface CommandClientDeps {
  router: Router
  clock: Clock
  /** The key to check the target's result with. */
  keyOf: (id: DeviceId) => PublicKey | undefined
  ed25519?: Ed25519
}

export async function commandOverMesh (deps: CommandClientDeps, signed: Uint8Array, options: CommandOptions = {}): Promise<CommandResult> {
  const { router, clock } = deps
  const command = decodeCommand(signed)
  if (command.issuer !== router.id) throw meshError('ERR_BAD_COMMAND', `this node is ${router.id}; the command was signed by ${command.issuer}: a node sends its own commands`)
  const timeoutMs = options.timeoutMs ?? Math.max(1000, command.expiresAt * 1000 - clock.wall())
  const retryMs = Math.max(10, options.retryMs ?? 1000)
  const routeRetryMs = Math.max(10, options.routeRetryMs ?? 100)
  options.signal?.throwIfAborted()
  return await new Promise<CommandResult>((resolve, reject) => {
    let timer: TimerHandle | undefined
    let routed = false
    /** Why the last attempt was not sent (ERR_NO_ROUTE, or ERR_TABLE_FULL: too many of this node's commands in flight). */
    let refused: ErrorCode | undefined
    const finish = (error: Error | undefined, result?: CommandResult): void => {
      if (timer !== undefined) clock.clearTimeout(timer)
      clock.clearTimeout(deadline)
      router.off('result', onResult)
      options.signal?.removeEventListener('abort', onAbort)
      if (error === undefined) resolve(result as CommandResult)
      else reject(error)
    }
    const onResult = (result: CommandResult): void => {
      if (result.issuer !== command.issuer || result.id !== command.id) return
      const key = deps.keyOf(command.target)
      if (result.target !== command.target || key === undefined) return
      try {
        verifySigned(result, command.target, key, deps.ed25519)
      } catch (err) {
        router.drop({ code: isMeshError(err) ? err.code : 'ERR_BAD_SIGNATURE', origin: command.target })
        return
      }
      finish(undefined, result)
    }
    const onAbort = (): void => { finish(meshError('ERR_ABORTED', `the command ${command.action} to ${command.target} was abandoned; it may or may not have run`)) }
    const attempt = (): void => {
      const code = router.sendSigned(signed)
      if (code === undefined) routed = true
      else refused = code
      timer = clock.setTimeout(attempt, code === 'ERR_NO_ROUTE' ? routeRetryMs : retryMs)
    }
    const deadline = clock.setTimeout(() => {
      finish(routed
        ? meshError('ERR_TIMEOUT', `no verified result of ${command.action} from ${command.target} within ${Math.round(timeoutMs)} ms; it may or may not have run`)
        : refused !== undefined && refused !== 'ERR_NO_ROUTE'
          ? meshError(refused, `${command.action} to ${command.target} was not sent within ${Math.round(timeoutMs)} ms (${refused}: this node has too many commands in flight, or the path is closed); it did not run`)
          : meshError('ERR_NO_ROUTE', `no route to ${command.target} within ${Math.round(timeoutMs)} ms: no device in reach declared that it takes commands under that id`))
    }, timeoutMs)
    router.on('result', onResult)
    options.signal?.addEventListener('abort', onAbort, { once: true })
    attempt()
  })
}
