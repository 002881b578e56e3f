import { request, type IncomingHttpHeaders } from 'node:http'
import { connect } from 'node:net'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { GatewayHttp, type Gateway } from '../../gateway/index.js'
import { checkHostAndOrigin, allowedHostNames, hostOf, isLoopbackHost } from '../../gateway/access.js'
import { describeNet } from '../helpers/netns.js'
import { startGateway } from './support.js'

/**
 * The HTTP side's access checks (gateway/access.ts, gateway/http.ts) and the live stream's caps
 * (gateway/live.ts), over real HTTP requests on loopback inside the test's network namespace.
 * node:http is used rather than fetch so a test can send any Host header (a DNS-rebinding page's).
 */

interface Answer { status: number, headers: IncomingHttpHeaders, body: string }

function get (port: number, path: string, headers: Record<string, string> = {}, options: { localAddress?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', headers: { host: `127.0.0.1:${port}`, ...headers }, ...options }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body }) })
    })
    req.on('error', reject)
    req.end()
  })
}

/** An EventSource-like client: the status and every chunk of the stream, until it ends. */
function stream (port: number, options: { localAddress?: string, token?: string } = {}): Promise<{ status: number, text: () => string, ended: Promise<void>, close: () => void }> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port,
      path: '/api/events',
      headers: { accept: 'text/event-stream', ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }) },
      ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress })
    }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { text += chunk })
      const ended = new Promise<void>((done) => { res.on('end', done); res.on('close', done) })
      resolve({ status: res.statusCode ?? 0, text: () => text, ended, close: () => { req.destroy() } })
    })
    req.on('error', reject)
    req.end()
    onTestFinished(() => { req.destroy() })
  })
}

const portOf = (gateway: Gateway): number => gateway.ports.http ?? 0
const json = (a: Answer): { code?: string, error?: string } => JSON.parse(a.body) as { code?: string, error?: string }

describeNet('HTTP access: token, Host and Origin checks', () => {
  it('on a loopback host needs no token but refuses a rebinding Host and a foreign Origin, on every route (use() hooks too)', async () => {
    const gateway = await startGateway({ http: { host: '127.0.0.1', port: 0 } })
    gateway.http?.use((_req, res, url) => {
      if (url.pathname !== '/api/hooked') return false
      res.writeHead(200, { 'content-type': 'text/plain' }).end('hooked')
      return true
    })
    const port = portOf(gateway)
    expect(gateway.http?.token).toBeUndefined()
    expect((await get(port, '/api/devices')).status).toBe(200)
    expect((await get(port, '/api/devices', { host: `localhost:${port}` })).status).toBe(200)
    expect((await get(port, '/api/hooked')).body).toBe('hooked')

    // A page on evil.example whose name now resolves to the gateway's address (DNS rebinding).
    for (const path of ['/api/devices', '/api/hooked', '/metrics', '/', '/api/events']) {
      const refused = await get(port, path, { host: `evil.example:${port}` })
      expect(refused.status, path).toBe(403)
      expect(json(refused).code, path).toBe('ERR_HTTP_HOST')
    }
    // A cross-site page reaching the gateway by its own address: the browser says where it comes from.
    const foreign = await get(port, '/api/devices', { origin: 'http://evil.example' })
    expect(foreign.status).toBe(403)
    expect(json(foreign).code).toBe('ERR_HTTP_ORIGIN')
    expect((await get(port, '/api/devices', { origin: `http://127.0.0.1:${port + 1}` })).status).toBe(403) // another port is another origin
    expect((await get(port, '/api/devices', { origin: `http://127.0.0.1:${port}` })).status).toBe(200) // the dashboard itself
    expect((await get(port, '/api/devices', { host: 'not a host' })).status).toBe(403)
    expect(gateway.http?.refused).toMatchObject({ ERR_HTTP_HOST: 6, ERR_HTTP_ORIGIN: 2, ERR_HTTP_TOKEN: 0 })
  })

  it('odd request targets: "//[" and "//%zz/x" are paths (404), not hosts; an absolute-form target that is no URL is a 400 with ERR_BAD_INPUT; never a 500', async () => {
    for (const host of ['127.0.0.1', '0.0.0.0']) {
      const gateway = await startGateway({ http: { host, port: 0, token: host === '127.0.0.1' ? undefined : 'target-test-token' } })
      const auth: Record<string, string> = host === '127.0.0.1' ? {} : { authorization: 'Bearer target-test-token' }
      for (const path of ['//[', '//%zz/x', '//[::1', '//a:b@[/x', '//api//devices']) {
        expect((await get(portOf(gateway), path, auth)).status, `${host} ${path}`).toBe(404)
      }
      expect((await get(portOf(gateway), '/api/devices', auth)).status).toBe(200)
      // A request line a browser never sends, written by hand: "GET http://[ HTTP/1.1".
      const raw = await new Promise<string>((resolve, reject) => {
        const socket = connect(portOf(gateway), '127.0.0.1', () => { socket.end(`GET http://[ HTTP/1.1\r\nHost: 127.0.0.1:${portOf(gateway)}\r\nConnection: close\r\n\r\n`) })
        let text = ''
        socket.on('data', (c: Buffer) => { text += c.toString() })
        socket.on('end', () => { resolve(text) })
        socket.on('error', reject)
      })
      expect(raw, host).toMatch(/^HTTP\/1\.1 400 /)
      expect(raw).toContain('"code":"ERR_BAD_INPUT"')
    }
  })

  it('on any other address needs its token: Bearer, ?token= (a cookie for the browser, then the address bar cleaned) or the cookie', async () => {
    const gateway = await startGateway({ http: { host: '0.0.0.0', port: 0 } })
    const port = portOf(gateway)
    const token = gateway.http?.token as string
    expect(token).toMatch(/^[A-Za-z0-9_-]{32}$/)

    for (const path of ['/api/devices', '/metrics', '/api/events', '/assets/app.js', '/api/counters']) {
      const refused = await get(port, path)
      expect(refused.status, path).toBe(401)
      expect(json(refused).code, path).toBe('ERR_HTTP_TOKEN')
      expect(refused.headers['www-authenticate']).toBe('Bearer realm="iotmesh"')
    }
    expect(json(await get(port, '/api/devices', { authorization: 'Bearer wrong-token-123' })).code).toBe('ERR_HTTP_TOKEN')
    expect((await get(port, '/api/devices', { authorization: `Bearer ${token}` })).status).toBe(200)
    expect((await get(port, `/metrics?token=${token}`)).status).toBe(200)

    // A person opening the printed URL: a cookie, and the token taken out of the address bar.
    const opened = await get(port, `/?token=${token}`, { accept: 'text/html' })
    expect(opened.status).toBe(303)
    expect(opened.headers.location).toBe('/')
    const cookie = (opened.headers['set-cookie']?.[0] ?? '').split(';')[0] as string
    expect(opened.headers['set-cookie']?.[0]).toMatch(/HttpOnly; SameSite=Strict/)
    const page = await get(port, '/', { accept: 'text/html', cookie })
    expect(page.status).toBe(200)
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8')
    expect((await get(port, '/api/devices', { cookie })).status).toBe(200)

    // Without it, a browser gets a form that sends the token back as /?token=…, not JSON.
    const login = await get(port, '/', { accept: 'text/html' })
    expect(login.status).toBe(401)
    expect(login.body).toContain('<form method="get" action="/">')
    // The token does not make a rebinding Host acceptable.
    expect(json(await get(port, '/api/devices', { host: `evil.example:${port}`, authorization: `Bearer ${token}` })).code).toBe('ERR_HTTP_HOST')
  })

  it('keeps the token in its state file (0600), the same after a restart; a given token or false overrides', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'iotmesh-http-'))
    onTestFinished(async () => { await rm(dir, { recursive: true, force: true }) })
    const tokenFile = join(dir, 'gateway', 'http-token')
    const sources = (await startGateway({ http: { host: '127.0.0.1', port: 0 } })) // only for its registry and metrics
    const make = (init: ConstructorParameters<typeof GatewayHttp>[0]): GatewayHttp => {
      const http = new GatewayHttp({ port: 0, ...init }, { devices: sources.devices, counters: () => sources.counters, metrics: sources.metrics })
      onTestFinished(async () => { await http.stop() })
      return http
    }
    const first = make({ host: '0.0.0.0', tokenFile })
    await first.start()
    expect(first.tokenCreated).toBe(true)
    expect((await readFile(tokenFile, 'utf8')).trim()).toBe(first.token)
    expect((await stat(tokenFile)).mode & 0o777).toBe(0o600)
    await first.stop()
    const second = make({ host: '0.0.0.0', tokenFile })
    await second.start()
    expect(second.token).toBe(first.token)
    expect(second.tokenCreated).toBe(false)

    const given = make({ host: '0.0.0.0', token: 'a-given-token-1234' })
    await given.start()
    expect((await get(given.port ?? 0, '/api/devices', { authorization: 'Bearer a-given-token-1234' })).status).toBe(200)
    const open = make({ host: '0.0.0.0', token: false })
    await open.start()
    expect((await get(open.port ?? 0, '/api/devices')).status).toBe(200)
    await expect(make({ host: '0.0.0.0', token: 'short' }).start()).rejects.toMatchObject({ code: 'ERR_BAD_ARGUMENT' })
  })
})

describeNet('HTTP access: live-stream clients are capped per address, the oldest idle makes room', () => {
  it('80 idle streams from one address no longer lock the dashboard out: 8 stay, each new one evicts the oldest', async () => {
    const gateway = await startGateway({ http: { host: '127.0.0.1', port: 0 } })
    const port = portOf(gateway)
    const streams = []
    for (let i = 0; i < 80; i++) {
      const s = await stream(port)
      expect(s.status).toBe(200)
      streams.push(s)
    }
    expect(gateway.live?.clients).toBe(8)
    expect(gateway.live?.evicted).toBe(72)
    await Promise.all(streams.slice(0, 72).map(async (s) => { await s.ended }))
    expect(streams[0]?.text()).toContain('event: evicted\ndata: {"code":"ERR_SSE_EVICTED"')
    // The dashboard (a new client) gets in with a full hello.
    const dashboard = await stream(port)
    expect(dashboard.status).toBe(200)
    await expect.poll(() => dashboard.text()).toContain('event: hello')
    await streams[72]?.ended // the oldest of the 8 made room
    expect(gateway.live?.clients).toBe(8)
  })

  it('past the total cap, a new address takes room from the address holding the most, not from the others', async () => {
    const gateway = await startGateway({ http: { host: '127.0.0.1', port: 0 }, live: { maxClients: 6, maxClientsPerAddress: 4 } })
    const port = portOf(gateway)
    const a = await Promise.all([0, 1, 2, 3].map(async () => await stream(port, { localAddress: '127.0.0.2' })))
    const b = [await stream(port, { localAddress: '127.0.0.3' }), await stream(port, { localAddress: '127.0.0.3' })]
    expect(gateway.live?.clients).toBe(6)
    const c = await stream(port, { localAddress: '127.0.0.4' })
    expect(c.status).toBe(200)
    await a[0]?.ended // the oldest of the address with the most
    expect(gateway.live?.clients).toBe(6)
    expect(b[0]?.text()).not.toContain('evicted')
    expect(b[1]?.text()).not.toContain('evicted')
    expect(gateway.live?.evicted).toBe(1)
  })
})

describe('HTTP access: the pure checks', () => {
  it('pure checks: loopback hosts, Host parsing, allowed names', () => {
    expect(['127.0.0.1', '127.8.9.10', '::1', '[::1]', 'localhost'].every(isLoopbackHost)).toBe(true)
    expect(['0.0.0.0', '::', '10.0.0.1', 'gw.local'].some(isLoopbackHost)).toBe(false)
    expect(hostOf('Example.COM.:8080')).toBe('example.com')
    expect(hostOf('[fe80::1]:80')).toBe('fe80::1')
    expect(hostOf('a b')).toBeUndefined()
    const names = allowedHostNames(['proxy.example'])
    expect(checkHostAndOrigin({ host: 'proxy.example' }, names)).toBeUndefined()
    expect(checkHostAndOrigin({ host: 'app.localhost:8080' }, names)).toBeUndefined()
    expect(checkHostAndOrigin({ host: '[::1]:8080', origin: 'http://[::1]:8080' }, names)).toBeUndefined()
    expect(checkHostAndOrigin({ host: '10.0.0.5:8080', origin: 'null' }, names)?.code).toBe('ERR_HTTP_ORIGIN')
    expect(checkHostAndOrigin({ host: 'evil.example' }, names)?.code).toBe('ERR_HTTP_HOST')
    expect(checkHostAndOrigin({}, names)?.code).toBe('ERR_HTTP_HOST')
  })
})
