import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, expect, it, onTestFinished } from 'vitest'
import { commandsHandler } from '../../gateway/http-commands.js'
import { meshError, type CommandResult, type ErrorCode } from '../../shared/index.js'

/**
 * The status of a failed HTTP command (gateway/http-commands.ts): a refusal for capacity is 503
 * with Retry-After (RFC 9110 §15.6.4, §10.2.3), not a 400 that tells the client its request was wrong.
 */

const TARGET = 'a'.repeat(26)

async function serve (fail: ErrorCode): Promise<string> {
  const handler = commandsHandler({
    command: async (): Promise<CommandResult> => { throw meshError(fail, `failed with ${fail}`) },
    open: () => false
  })
  const server = createServer((req, res) => {
    void (async () => {
      if (!await handler(req, res, new URL(req.url ?? '/', 'http://127.0.0.1'))) res.writeHead(404).end()
    })()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  onTestFinished(async () => { await new Promise((resolve) => server.close(resolve)) })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/devices/${TARGET}/commands`
}

async function post (url: string): Promise<{ status: number, retryAfter: string | null, code: unknown }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ action: 'relay/set', args: { on: true } }) })
  return { status: res.status, retryAfter: res.headers.get('retry-after'), code: ((await res.json()) as { code?: unknown }).code }
}

describe('POST /api/devices/:id/commands: the status of a failure', () => {
  it.each([
    ['ERR_TABLE_FULL', 503, '5'],
    ['ERR_ABORTED', 503, '5'],
    ['ERR_TIMEOUT', 504, null],
    ['ERR_NO_ROUTE', 504, null],
    ['ERR_NOT_ALLOWED', 403, null],
    ['ERR_BAD_COMMAND', 400, null]
  ] as Array<[ErrorCode, number, string | null]>)('%s is %i (Retry-After %s), with the code in the body', async (code, status, retryAfter) => {
    expect(await post(await serve(code))).toEqual({ status, retryAfter, code })
  })
})
