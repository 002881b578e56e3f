import type { IncomingMessage, ServerResponse } from 'node:http'
import { isDeviceId, isMeshError, type CommandResult } from '../shared/index.js'
import { resultToJson, type CommandRequest } from './commands.js'
import type { HttpHandler } from './http.js'

/**
 * POST /api/devices/:id/commands   { "action": "relay/set", "args": { "on": true }, "ttl": 5, "timeout": 5, "via": "broker" }
 *
 * Signs the command with the gateway's key, sends it and answers the verified result as JSON
 * (gateway/commands.ts, `resultToJson`): 200 with `status` "ok" or the device's refusal code;
 * 504 ERR_TIMEOUT when no result came in time (or ERR_NO_ROUTE: `via: "mesh"` found no route); 403 ERR_NOT_ALLOWED when the
 * fleet's grant policy grants the gateway no such action on that device (gateway/trust.ts: refused before
 * anything is sent, counted as command_not_granted); 503 with Retry-After when the gateway cannot take it
 * now (stopping, or ERR_TABLE_FULL: too many commands in flight); 400 for a body, action or arguments no device
 * would take; 413 over 4 KiB; 415 without `content-type: application/json` (a cross-site form
 * cannot send that without a CORS preflight, which the gateway never grants).
 *
 * Access: the HTTP layer's checks ran before (gateway/access.ts: Host, Origin, the token off
 * loopback). A command acts on the world, so it is refused (403 ERR_HTTP_TOKEN) where those
 * checks let anyone in: an HTTP server open without a token (`--http-token off`) on anything but
 * a loopback address.
 */

export const MAX_COMMAND_BODY_BYTES = 4096

export interface HttpCommandsHost {
  command: (request: CommandRequest) => Promise<CommandResult>
  /** True when no token is in force and the server listens beyond loopback. */
  open: () => boolean
}

export function commandsHandler (host: HttpCommandsHost): HttpHandler {
  return async (req, res, url) => {
    const match = /^\/api\/devices\/([^/]+)\/commands\/?$/.exec(url.pathname)
    if (match === null) return false
    if (req.method !== 'POST') {
      send(res, 405, { error: 'send commands with POST', code: 'ERR_BAD_ARGUMENT' }, { allow: 'POST' })
      return true
    }
    if (host.open()) {
      const error = 'this gateway serves HTTP without an access token beyond loopback (--http-token off): it takes no commands over HTTP. ' +
        'Use a token, or listen on 127.0.0.1'
      send(res, 403, { error, code: 'ERR_HTTP_TOKEN' })
      return true
    }
    const id = match[1] ?? ''
    if (!isDeviceId(id)) return reply(res, 400, 'ERR_BAD_DEVICE_ID', `${JSON.stringify(String(id).slice(0, 40))} is not a device id (26 characters a-z, 2-7)`)
    const json = /^application\/json\s*(;|$)/i.test(req.headers['content-type'] ?? '')
    if (!json) return reply(res, 415, 'ERR_BAD_INPUT', 'the body is JSON: send content-type: application/json')
    const body = await readBody(req, MAX_COMMAND_BODY_BYTES)
    if (body === undefined) return reply(res, 413, 'ERR_BAD_INPUT', `the body is over ${MAX_COMMAND_BODY_BYTES} bytes`)
    let parsed: unknown
    try { parsed = JSON.parse(body) } catch { return reply(res, 400, 'ERR_BAD_INPUT', 'the body is not JSON') }
    const request = readRequest(parsed)
    if (typeof request === 'string') return reply(res, 400, 'ERR_BAD_INPUT', request)
    try {
      const result = await host.command({ target: id, ...request })
      send(res, 200, resultToJson(result, request.action))
    } catch (err) {
      const code = isMeshError(err) ? err.code : 'ERR_BAD_COMMAND'
      const { status, headers } = commandFailureStatus(code)
      send(res, status, { error: (err as Error).message, code }, headers)
    }
    return true
  }
}

/** Seconds a client is asked to wait after a capacity refusal: about one command timeout (default 5 s), after which the waiting commands that filled the table are gone. */
export const COMMAND_RETRY_AFTER_SECONDS = 5

/**
 * The HTTP status of a command that failed: 504 when no answer came (ERR_TIMEOUT, ERR_NO_ROUTE);
 * 503 with Retry-After when the gateway cannot take it now, not because of the request: it is
 * stopping (ERR_ABORTED), or a bounded table is full (ERR_TABLE_FULL: the mesh node's share of
 * commands in flight), RFC 9110 §15.6.4 and §10.2.3; 403 ERR_NOT_ALLOWED; 400 for the rest (the request).
 */
export function commandFailureStatus (code: string): { status: number, headers: Record<string, string> } {
  if (code === 'ERR_TIMEOUT' || code === 'ERR_NO_ROUTE') return { status: 504, headers: {} }
  if (code === 'ERR_ABORTED' || code === 'ERR_TABLE_FULL') return { status: 503, headers: { 'retry-after': String(COMMAND_RETRY_AFTER_SECONDS) } }
  if (code === 'ERR_NOT_ALLOWED') return { status: 403, headers: {} }
  return { status: 400, headers: {} }
}

/** The command fields of a body, or what is wrong with it. */
function readRequest (body: unknown): Omit<CommandRequest, 'target'> | string {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return 'the body is a JSON object: {"action": "relay/set", "args": {"on": true}}'
  const { action, args, ttl, timeout, via, ...rest } = body as Record<string, unknown>
  const extra = Object.keys(rest)
  if (extra.length > 0) return `unknown field ${JSON.stringify(extra[0])}: the body takes action, args, ttl, timeout, via`
  if (typeof action !== 'string') return 'action is text, e.g. "relay/set"'
  if (ttl !== undefined && (typeof ttl !== 'number' || !Number.isFinite(ttl))) return 'ttl is the lifetime of the command in seconds'
  if (timeout !== undefined && (typeof timeout !== 'number' || !(timeout > 0 && timeout <= 60))) return 'timeout is the wait in seconds (at most 60)'
  if (via !== undefined && via !== 'broker' && via !== 'mesh') return 'via is "broker" or "mesh"'
  return {
    action,
    ...(args === undefined ? {} : { args }),
    ...(ttl === undefined ? {} : { ttl }),
    ...(timeout === undefined ? {} : { timeoutMs: timeout * 1000 }),
    ...(via === undefined ? {} : { via })
  }
}

async function readBody (req: IncomingMessage, limit: number): Promise<string | undefined> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > limit) return undefined
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}

function reply (res: ServerResponse, status: number, code: string, error: string): true {
  send(res, status, { error, code })
  return true
}

function send (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers }).end(JSON.stringify(body))
}
