import { existsSync, readdirSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { extname } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { HttpHandler } from './http.js'

/**
 * The dashboard: static files (HTML, an ES module, CSS; no build step, nothing from a CDN) in
 * `gateway/dashboard/`, served at `/` and `/assets/<file>`. They are not compiled, so they stay
 * in the source tree: from `gateway/dashboard.ts` (tests, tsx) the folder is `./dashboard/`;
 * from the build, `dist/gateway/dashboard.js`, it is `../../gateway/dashboard/`. The page reads
 * `/api/devices`, `/api/topology`, `/api/devices/:id/readings` and the live stream `/api/events`.
 *
 * Only files listed in the folder when the gateway starts are served (no path from the URL ever
 * reaches the file system), with a Content-Security-Policy that allows this origin alone.
 *
 * Access: these files and the API they read pass the checks of gateway/access.ts like every
 * route. With an access token, a person opens the URL the gateway printed (`/?token=…`) once;
 * the token becomes an HttpOnly, SameSite=Strict cookie, which the page's same-origin fetch and
 * EventSource send by themselves, so the page's scripts never see the token.
 */

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon'
}

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer'
}

/** The first folder that holds the dashboard's index.html: beside the source file, or the source tree seen from dist/. */
export function findDashboardDir (candidates: URL[] = [new URL('./dashboard/', import.meta.url), new URL('../../gateway/dashboard/', import.meta.url)]): string | undefined {
  for (const url of candidates) {
    const dir = fileURLToPath(url)
    if (existsSync(`${dir}index.html`)) return dir
  }
  return undefined
}

/** The HTTP handler that serves the dashboard's static files. */
export function dashboardHandler (options: { dir?: string } = {}): HttpHandler {
  const dir = options.dir ?? findDashboardDir()
  const files = new Map<string, string>()
  if (dir !== undefined) {
    for (const name of readdirSync(dir)) {
      const type = CONTENT_TYPES[extname(name)]
      if (type !== undefined && /^[A-Za-z0-9._-]+$/.test(name)) files.set(name, type)
    }
  }
  return async (req, res, url) => {
    const name = url.pathname === '/' || url.pathname === '/index.html' ? 'index.html' : /^\/assets\/([A-Za-z0-9._-]+)$/.exec(url.pathname)?.[1]
    if (name === undefined) return false
    if (req.method !== 'GET' && req.method !== 'HEAD') return false
    const type = files.get(name)
    if (dir === undefined || type === undefined) {
      // The API's shape for a 404 (http.ts): a stable code a client can branch on.
      const error = dir === undefined ? 'the dashboard files were not found (gateway/dashboard/ beside the source or the build)' : `no dashboard file ${name}`
      res.writeHead(404, { 'content-type': 'application/json; charset=utf-8', ...SECURITY_HEADERS }).end(`${JSON.stringify({ error, code: 'ERR_NOT_FOUND' })}\n`)
      return true
    }
    const body = await readFile(`${dir}${name}`)
    res.writeHead(200, { 'content-type': type, 'content-length': body.length, 'cache-control': 'no-cache', ...SECURITY_HEADERS })
    res.end(req.method === 'HEAD' ? undefined : body)
    return true
  }
}
