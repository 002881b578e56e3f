import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { isIP } from 'node:net'
import { hostname, networkInterfaces } from 'node:os'
import { dirname } from 'node:path'
import { meshError } from '../shared/index.js'

/**
 * Who may use the gateway's HTTP side (gateway/http.ts), decided before any route runs:
 *
 * - **Host** (against DNS rebinding): a page on evil.example whose name is made to resolve to the
 *   gateway's address sends `Host: evil.example`. Accepted are IP literals (a rebinding needs a
 *   name), `localhost` and `*.localhost` (RFC 6761 §6.3), this machine's host name (and
 *   `<name>.local`, RFC 6762), and the names the operator lists (`allowedHosts`).
 * - **Origin** (RFC 6454 §7): when a browser says which page asks, it must be this very origin
 *   (same host and port as the request's Host). The API sends no CORS headers, so no other page
 *   may read it; refusing at the server keeps a cross-site request from causing any work either.
 * - **Token**: on anything but a loopback address an access token is required (as Jupyter does):
 *   `Authorization: Bearer <token>` (RFC 6750 §2.1), the `?token=` query parameter (RFC 6750 §2.3:
 *   for the URL printed at start), or the cookie a browser gets when it opens that URL
 *   (HttpOnly, SameSite=Strict: RFC 6265bis). Compared in constant time.
 */

export type AccessRefusal = { status: 403, code: 'ERR_HTTP_HOST' | 'ERR_HTTP_ORIGIN', message: string } | { status: 401, code: 'ERR_HTTP_TOKEN', message: string }

/** True for an address that only this machine can reach: 127.0.0.0/8, ::1, localhost. */
export function isLoopbackHost (host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase()
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '::ffff:127.0.0.1'
}

/** The host name of a Host header (`name:port`, `[v6]:port`), lower case, without a trailing dot; undefined when malformed. */
export function hostOf (header: string | undefined): string | undefined {
  if (header === undefined) return undefined
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]/\s@]+))(?::(\d{1,5}))?$/.exec(header.trim())
  if (m === null) return undefined
  return (m[1] ?? m[2] ?? '').toLowerCase().replace(/\.$/, '')
}

/** The names a Host header may carry besides IP literals: localhost, this machine's names, and `extra`. */
export function allowedHostNames (extra: readonly string[] = []): Set<string> {
  const names = new Set<string>(['localhost'])
  const own = hostname().toLowerCase()
  if (own !== '') {
    names.add(own)
    names.add(`${own.split('.')[0] ?? own}.local`)
  }
  for (const name of extra) names.add(name.toLowerCase().replace(/\.$/, ''))
  return names
}

/** The addresses of this machine's interfaces (for a banner's URLs). */
export function ownAddresses (): string[] {
  return Object.values(networkInterfaces()).flat().filter((a) => a !== undefined && !a.internal).map((a) => (a as { address: string }).address)
}

export function hostAllowed (host: string, names: ReadonlySet<string>): boolean {
  if (isIP(host) !== 0) return true
  return names.has(host) || host.endsWith('.localhost')
}

/** The request's Host and Origin checks; undefined when both pass. */
export function checkHostAndOrigin (headers: { host?: string, origin?: string }, names: ReadonlySet<string>): AccessRefusal | undefined {
  const host = hostOf(headers.host)
  if (host === undefined || !hostAllowed(host, names)) {
    return { status: 403, code: 'ERR_HTTP_HOST', message: `the Host ${JSON.stringify(headers.host ?? '')} is not one of this gateway's names (IP addresses, localhost, ${[...names].filter((n) => n !== 'localhost').join(', ') || 'no other'}); add it with allowedHosts if it is yours` }
  }
  const origin = headers.origin
  if (origin !== undefined) {
    let same: boolean
    try {
      same = new URL(origin).host.toLowerCase() === (headers.host ?? '').trim().toLowerCase()
    } catch { same = false }
    if (!same) return { status: 403, code: 'ERR_HTTP_ORIGIN', message: `a page from ${JSON.stringify(origin)} may not use this gateway's API: only its own dashboard may` }
  }
  return undefined
}

/** A new access token: 24 random bytes, base64url (192 bits, as Jupyter's 48 hex digits). */
export function newToken (): string {
  return randomBytes(24).toString('base64url')
}

/** Constant-time comparison of a presented token with the expected one (hashes first, so lengths do not leak). */
export function tokenMatches (presented: string | undefined, expected: string): boolean {
  if (presented === undefined || presented === '') return false
  const a = createHash('sha256').update(presented).digest()
  const b = createHash('sha256').update(expected).digest()
  return timingSafeEqual(a, b)
}

/** The token a request presents: a Bearer header (RFC 6750 §2.1), the cookie, or `?token=` (RFC 6750 §2.3). */
export function presentedToken (headers: { authorization?: string, cookie?: string }, url: URL, cookieName: string): { token: string | undefined, via: 'header' | 'cookie' | 'query' | undefined } {
  const bearer = /^Bearer\s+([A-Za-z0-9._~+/=-]+)\s*$/i.exec(headers.authorization ?? '')?.[1]
  if (bearer !== undefined) return { token: bearer, via: 'header' }
  const query = url.searchParams.get('token')
  if (query !== null) return { token: query, via: 'query' }
  for (const part of (headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === cookieName) return { token: decodeURIComponent(part.slice(eq + 1).trim()), via: 'cookie' }
  }
  return { token: undefined, via: undefined }
}

/**
 * The token kept in `file` (created with a new token, mode 0600, on first use): the gateway's
 * state, so a restarted gateway keeps the URL its users have. A file that cannot be read or
 * holds no token is ERR_BAD_ARGUMENT naming it.
 */
export async function loadOrCreateToken (file: string): Promise<{ token: string, created: boolean }> {
  let text: string | undefined
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw meshError('ERR_BAD_ARGUMENT', `cannot read the HTTP token file ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err })
  }
  if (text !== undefined) {
    const token = text.trim()
    if (!/^[A-Za-z0-9._~+/=-]{16,256}$/.test(token)) throw meshError('ERR_BAD_ARGUMENT', `the HTTP token file ${file} does not hold a token (16 to 256 characters of A-Z a-z 0-9 . _ ~ + / = -); delete it to make a new one`)
    return { token, created: false }
  }
  const token = newToken()
  await mkdir(dirname(file), { recursive: true, mode: 0o700 })
  try {
    await writeFile(file, `${token}\n`, { mode: 0o600, flag: 'wx' })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return await loadOrCreateToken(file) // another start made it first
    throw meshError('ERR_BAD_ARGUMENT', `cannot write the HTTP token file ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err })
  }
  return { token, created: true }
}
