import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { hostNameFor, type BrowseRow } from '../../mesh/discovery/index.js'
import { describeNet } from '../helpers/netns.js'
import { createLan, type Lan, type LanHost } from '../../firmware-sim/fleet/lan.js'
import { JsonLines } from '../helpers/json-lines.js'
import { assertBuilt } from '../helpers/fresh-build.js'
import { PYTHON, hasZeroconf } from '../helpers/zeroconf.js'

/**
 * A LAN of namespace hosts (NETWORK.md): every host has its own address on one bridge, and all
 * share one host name. Devices run as children from the build (test/fixtures/*.mjs import dist/),
 * and a standard DNS-SD browser, python-zeroconf, must see each with its own address and port.
 */

const fixture = (name: string): string => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url))

const zeroconf = hasZeroconf('mdns-lan')

/** The children run dist/, so a stale build would test old code: say so instead. */
function assertFreshBuild (): void {
  assertBuilt(['mesh/discovery'])
}

interface ReadyDevice { id: string, publicKey: string, name: string, port: number }
type Line = { event: string, devices?: ReadyDevice[], errors?: number, id?: string, addresses?: string[], port?: number, at?: number }

describeNet('DNS-SD over mDNS on a LAN of namespace hosts', () => {
  let lan: Lan
  // h0 browses; h1 runs three devices on one responder; h2 (bound to its interface) and h3 one each.
  const hosted = new Map<string, { host: LanHost, device: ReadyDevice }>()
  const children: Array<JsonLines<Line>> = []
  let watcher: JsonLines<Line>

  const start = async (host: LanHost, script: string, options: object): Promise<JsonLines<Line>> => {
    const lines = new JsonLines<Line>(lan.spawn(host, process.execPath, [fixture(script), JSON.stringify(options)]))
    children.push(lines)
    await lines.waitFor((l) => l.event === 'ready', AbortSignal.timeout(15_000))
    return lines
  }

  beforeAll(async () => {
    assertFreshBuild()
    lan = await createLan({ hosts: 5, routes: [true, true, true, true, false] })
    const [h0, h1, h2, h3] = lan.hosts as [LanHost, LanHost, LanHost, LanHost]
    watcher = await start(h0, 'mdns-watch.mjs', {})
    const devices = await Promise.all([
      start(h1, 'mdns-device.mjs', { count: 3, basePort: 7100, prefix: 'h1', shared: true }),
      start(h2, 'mdns-device.mjs', { count: 1, basePort: 7200, prefix: 'h2', interface: h2.address }),
      start(h3, 'mdns-device.mjs', { count: 1, basePort: 7300, prefix: 'h3' })
    ])
    devices.forEach((lines, i) => {
      const ready = lines.lines.find((l) => l.event === 'ready')
      for (const device of ready?.devices ?? []) hosted.set(device.id, { host: lan.hosts[i + 1] as LanHost, device })
    })
  }, 30_000)

  afterAll(async () => { await lan?.destroy() })

  it.skipIf(!zeroconf)('python-zeroconf sees each device with its own address, port and TXT', async () => {
    const lines = new JsonLines<Array<{ name: string, addresses: string[], port: number, server: string, txt: Record<string, string> }>>(
      lan.spawn(lan.hosts[0] as LanHost, PYTHON, [fixture('zeroconf_browse.py'), '--expect', String(hosted.size), '--timeout', '10']))
    const [rows] = await Promise.all([lines.waitFor(() => true, AbortSignal.timeout(20_000)), lines.exited])
    expect(rows.map((r) => r.name).sort()).toEqual([...hosted.values()].map((h) => h.device.name).sort())
    for (const row of rows) {
      const { host, device } = [...hosted.values()].find((h) => h.device.name === row.name) as { host: LanHost, device: ReadyDevice }
      expect(row).toEqual({
        name: device.name,
        addresses: [host.address], // its own address only, though every host has the same name
        port: device.port,
        server: `${hostNameFor(device.id)}.`,
        txt: { txtvers: '1', id: device.id, pk: device.publicKey, v: '1', fleet: 'default' }
      })
    }
  })

  it('browsePeers (iotmesh peers) lists each device with its own address, key checked', async () => {
    const lines = new JsonLines<BrowseRow[]>(lan.spawn(lan.hosts[0] as LanHost, process.execPath, [fixture('browse-peers.mjs'), JSON.stringify({ timeoutMs: 1500 })]))
    const rows = await lines.waitFor(() => true, AbortSignal.timeout(10_000))
    expect(rows).toHaveLength(hosted.size)
    for (const row of rows) {
      const { host, device } = hosted.get(row.id as string) as { host: LanHost, device: ReadyDevice }
      expect(row).toMatchObject({ name: device.name, addresses: [host.address], port: device.port, keyMatches: true, valid: true, fleet: 'default', version: 1 })
    }
  })

  it('a node on another host sees each device with its own address', async () => {
    const signal = AbortSignal.timeout(10_000)
    for (const [id, { host, device }] of hosted) {
      const line = await watcher.waitFor((l) => l.event === 'peer' && l.id === id, signal)
      expect(line).toMatchObject({ addresses: [host.address], port: device.port })
    }
    expect(watcher.lines.filter((l) => l.event === 'invalid')).toEqual([])
  })

  it('survives every send failing: a host without a route counts errors and keeps running', async () => {
    const lines = await start(lan.hosts[4] as LanHost, 'mdns-device.mjs', { count: 1, basePort: 7400, prefix: 'h4' })
    expect(lines.lines[0]?.errors).toBeGreaterThan(0) // ENETUNREACH, counted rather than thrown
    lines.child.kill('SIGTERM')
    expect(await lines.exited).toBe(0)
    expect(lines.lines.at(-1)).toMatchObject({ event: 'stopped' })
  })

  it('a device that stops sends goodbyes: the other host drops it at once', async () => {
    const h2 = children[2] as JsonLines<Line>
    const [id] = [...hosted].find(([, h]) => h.host === lan.hosts[2]) as [string, unknown]
    const stoppedAt = Date.now()
    h2.child.kill('SIGTERM')
    const lost = await watcher.waitFor((l) => l.event === 'lost' && l.id === id, AbortSignal.timeout(10_000))
    expect(await h2.exited).toBe(0)
    expect((lost.at as number) - stoppedAt).toBeLessThan(5_000) // the SRV TTL is 120 s
    expect(watcher.lines.filter((l) => l.event === 'lost').map((l) => l.id)).toEqual([id])
  })
})
