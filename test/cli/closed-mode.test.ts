import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { expect, it, onTestFinished } from 'vitest'
import { MeshNode, type Delivery } from '../../mesh/index.js'
import { createDevice, createFleet, silentLogger, type Device } from '../../firmware-sim/index.js'
import { generateKeyPair, publicKeyText, type KeyPair, type MeshError } from '../../shared/index.js'
import { saveKeyFile } from '../../shared/node.js'
import { run } from '../../bin/main.js'
import { describeNet } from '../helpers/netns.js'

/**
 * Closed mode on every node (issue 11: `iotmesh device` and `watch` took no roster, so an outsider
 * linked through a rostered device and read 104 records). A device, a listener and a simulated
 * fleet in closed mode: an outsider can neither link to them nor read, at the handshake, and its
 * frames relayed by an insider are refused on arrival.
 */

function capture (): { stream: PassThrough, text: () => string } {
  const stream = new PassThrough()
  let text = ''
  stream.on('data', (chunk: Buffer) => { text += chunk.toString() })
  return { stream, text: () => text }
}

async function node (name: string, keys: KeyPair, peers: string[]): Promise<MeshNode> {
  const n = new MeshNode({ name, host: '127.0.0.1', mdns: false, peers, dialTarget: 0, announceLinks: 0, backoff: { initial: 100, max: 300 } }, { keys })
  onTestFinished(async () => { await n.stop() })
  await n.start()
  return n
}

function collect (n: MeshNode, filter = '#'): Delivery[] {
  const got: Delivery[] = []
  const controller = new AbortController()
  onTestFinished(() => { controller.abort() })
  void (async () => { for await (const d of n.subscribe(filter, { signal: controller.signal })) got.push(d) })().catch(() => {})
  return got
}

describeNet('closed mode (--roster) on every node', () => {
  it('a rostered device: an outsider cannot link nor read; `iotmesh watch --roster --key` (an insider) reads; frames an insider relays from an outsider are refused', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'iotmesh-closed-'))
    onTestFinished(async () => { await rm(dir, { recursive: true, force: true }) })
    const [deviceKeys, watcherKeys, relayKeys, outsiderKeys, farOutsiderKeys] = [generateKeyPair(), generateKeyPair(), generateKeyPair(), generateKeyPair(), generateKeyPair()]
    const rosterFile = join(dir, 'roster.json')
    const members = [deviceKeys, watcherKeys, relayKeys]
    await writeFile(rosterFile, JSON.stringify(members.map((k, i) => ({ pk: publicKeyText(k.publicKey), name: `member-${i}` }))))
    const watcherKeyFile = join(dir, 'watcher.key')
    await saveKeyFile(watcherKeyFile, watcherKeys)

    // The device, in closed mode through the library (what `iotmesh device --roster` builds).
    const device: Device = await createDevice({
      name: 'porch', mode: 'mesh', interval: 150, sensors: 'temperature', announceLinks: 0,
      mesh: { host: '127.0.0.1', mdns: false, roster: members.map((k) => k.publicKey) }
    }, { keys: deviceKeys, logger: silentLogger })
    onTestFinished(async () => { await device.stop() })
    const refusals: MeshError[] = []
    device.node?.transport.on('refused', (err) => { refusals.push(err) })
    const address = `127.0.0.1:${device.node?.address?.port ?? 0}`

    // An outsider dials it, in open mode, and listens for everything.
    const outsider = await node('outsider', outsiderKeys, [address])
    const outsiderGot = collect(outsider)
    // An insider relay that runs open (its key is in the roster) and an outsider behind it that publishes.
    const relay = await node('relay', relayKeys, [address])
    const relayGot = collect(relay, `iotmesh/default/${farOutsiderKeys.id}/#`)
    const farOutsider = await node('far-outsider', farOutsiderKeys, [`127.0.0.1:${relay.address?.port ?? 0}`])
    const publishing = setInterval(() => { farOutsider.publish('telemetry', [{ n: 'intruder', v: 1 }]) }, 100)
    onTestFinished(() => { clearInterval(publishing) })

    // The insider: `iotmesh watch` with the roster and its key, linked to the device only.
    const out = capture()
    const err = capture()
    const code = await run(['watch', '--json', '--count', '6', '--no-mdns', '--peers', address, '--roster', rosterFile, '--key', watcherKeyFile],
      { stdout: out.stream, stderr: err.stream, signal: AbortSignal.timeout(20_000) })
    expect(code, err.text()).toBe(0)
    const lines = out.text().trim().split('\n').map((l) => JSON.parse(l) as { device: string })
    expect(lines).toHaveLength(6)
    expect(new Set(lines.map((l) => l.device))).toEqual(new Set([deviceKeys.id]))
    expect(err.text()).not.toContain('warning')

    // The outsider: refused at the handshake (ERR_NOT_IN_ROSTER), never linked, read nothing.
    await expect.poll(() => refusals.filter((e) => e.code === 'ERR_NOT_IN_ROSTER').length, { timeout: 5000 }).toBeGreaterThan(0)
    expect(outsider.links.size).toBe(0)
    expect(outsiderGot).toEqual([])
    expect(device.node?.links.has(outsiderKeys.id)).toBe(false)
    // Frames of the outsider behind the relay reached the relay (so they were there to forward), and
    // the device refused each one that came to it: not in its roster.
    expect(relayGot.length).toBeGreaterThan(0)
    await expect.poll(() => device.node?.counters.rejected.ERR_NOT_IN_ROSTER ?? 0, { timeout: 5000 }).toBeGreaterThan(0)
  })

  it('`iotmesh watch --roster` without a key of the roster says it will not be let in', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'iotmesh-closed-'))
    onTestFinished(async () => { await rm(dir, { recursive: true, force: true }) })
    const rosterFile = join(dir, 'roster.json')
    await writeFile(rosterFile, JSON.stringify([{ pk: publicKeyText(generateKeyPair().publicKey) }]))
    const err = capture()
    const code = await run(['watch', '--json', '--no-mdns', '--roster', rosterFile], { stdout: capture().stream, stderr: err.stream, signal: AbortSignal.timeout(1000) })
    expect(code).toBe(0)
    expect(err.text()).toMatch(/warning: this listener's key \([a-z2-7]{26}\) is not in the roster.*Pass --key/)
    expect(await run(['watch', '--roster', join(dir, 'missing.json')], { stdout: capture().stream, stderr: err.stream })).toBe(2)
    expect(err.text()).toMatch(/--roster: .*ERR_BAD_ARGUMENT/)
  })

  it('`iotmesh device --roster`: closed mode from the flag (or IOTMESH_ROSTER, or the config file); a device not in it is told', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'iotmesh-closed-'))
    onTestFinished(async () => { await rm(dir, { recursive: true, force: true }) })
    const rosterFile = join(dir, 'roster.json')
    await writeFile(rosterFile, JSON.stringify([{ pk: publicKeyText(generateKeyPair().publicKey) }]))
    const out = capture()
    const err = capture()
    const code = await run(['device', '--mode', 'mesh', '--data-dir', join(dir, 'data'), '--name', 'porch', '--interval', '1000', '--sensors', 'temperature', '--roster', rosterFile, '--json'],
      { stdout: out.stream, stderr: err.stream, signal: AbortSignal.timeout(1500) })
    expect(code, err.text()).toBe(0)
    expect(err.text()).toMatch(/warning: this device's key \([a-z2-7]{26}\) is not in the roster/)
    const bad = capture()
    expect(await run(['device', '--mode', 'mesh', '--data-dir', join(dir, 'data'), '--roster', join(dir, 'missing.json')], { stdout: capture().stream, stderr: bad.stream })).toBe(2)
    expect(bad.text()).toMatch(/--roster: .*ERR_BAD_ARGUMENT/)
  })

  it('a simulated fleet in closed mode (iotmesh sim --roster fleet): delivers as before; an outsider on its network cannot link', async () => {
    const fleet = await createFleet({ devices: 4, mode: 'mesh', transport: 'memory', mdns: false, interval: 200, seed: 7, roster: [], gateway: { http: undefined } })
    onTestFinished(async () => { await fleet.stop() })
    const network = fleet.network
    if (network === undefined) throw new Error('no memory network')
    const outsiderKeys = generateKeyPair()
    const outsider = new MeshNode({ name: 'outsider', host: 'outsider', port: 7000, mdns: false, peers: ['sim-000:7000', 'sim-001:7000'], dialTarget: 0, announceLinks: 0, backoff: { initial: 100, max: 300 } },
      { keys: outsiderKeys, transport: network.createTransport({}, { keys: outsiderKeys }) })
    onTestFinished(async () => { await outsider.stop() })
    await outsider.start()
    const got = collect(outsider)
    const delivered = new Set<string>()
    fleet.on('delivered', (d) => { delivered.add(d.origin) })
    await expect.poll(() => delivered.size, { timeout: 15_000 }).toBe(4)
    expect(outsider.links.size).toBe(0)
    expect(got).toEqual([])
    expect(fleet.devices.every((d) => d.device?.node?.links.has(outsiderKeys.id) !== true)).toBe(true)
  })
})
