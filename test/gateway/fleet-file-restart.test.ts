import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect, it, onTestFinished } from 'vitest'
import { cosign, decodeFleetFiles, fleetFilesTopic, parseFleetPolicy, revoke, signFleetFile, toBase64url, type KeyPair } from '../../shared/index.js'
import { MeshNode } from '../../mesh/index.js'
import type { FleetTrustJson } from '../../gateway/trust.js'
import { describeNet } from '../helpers/netns.js'
import { tempDir } from '../shared/support.js'
import { connectDevice, freePort, seededKeys, spawnServer } from './support.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const built = existsSync(join(root, 'dist', 'bin', 'commands', 'gateway.js'))

/**
 * Issue 13, "the gateway keeps the fleet file across a restart": a real `iotmesh gateway` process
 * with its SQLite state follows v1 of the fleet file by gossip (alice, whose laptop was stolen, is
 * replaced by carol) and takes a revocation only the new owners could sign; it is SIGKILLed and
 * started again with the same flags (its --fleet-file still says v0) while nobody is there to tell
 * it again. It still enforces v1: the API lists the new owners, the revoked device is refused at
 * CONNECT (ERR_REVOKED), an honest device connects, and its broker retains v1 for broker devices. Without the store it had gone back to v0 and
 * forgotten the revocation (which v0's owners could not have signed).
 */

const [alice, bob, carol] = [seededKeys(961), seededKeys(962), seededKeys(963)]
const owners = (...keys: KeyPair[]): Array<{ key: string }> => keys.map((o) => ({ key: toBase64url(o.publicKey) }))
const v0 = parseFleetPolicy({ fleet: 'default', threshold: 2, owners: owners(alice, bob) })
const v1 = cosign(signFleetFile({ current: v0, version: 1, next: { threshold: 2, owners: [carol, bob] }, owners: [alice] }), v0, bob)
const p1 = parseFleetPolicy({ fleet: 'default', threshold: 2, owners: owners(carol, bob), version: 1 })
const [victim, honest] = [seededKeys(964), seededKeys(965)]

describeNet('the gateway keeps the fleet file it followed across a restart (real process, SQLite)', () => {
  it('is built (npm test builds dist/ first; run `npm run build` before test/run.sh alone)', () => {
    expect(built).toBe(true)
  })

  it.runIf(built)('follows v1 by gossip, is SIGKILLed and restarted on its --fleet-file v0: still enforces v1 (owners, a revocation only they could sign)', async () => {
    const dir = await tempDir()
    const fleetFile = join(dir, 'fleet.json')
    await writeFile(fleetFile, JSON.stringify({ fleet: 'default', threshold: 2, owners: owners(alice, bob) }))
    const [mqttPort, httpPort, meshPort] = [await freePort(), await freePort(), await freePort()]
    const start = async (): ReturnType<typeof spawnServer> => await spawnServer(process.execPath, [
      join(root, 'bin', 'iotmesh.js'), 'gateway', '--mqtt-port', String(mqttPort), '--ws-port', 'off', '--http-port', String(httpPort),
      '--mesh-port', String(meshPort), '--host', '127.0.0.1', '--fleet-file', fleetFile, '--data-dir', join(dir, 'state')
    ], /^Press Ctrl-C/m, 20_000)
    const fleet = async (): Promise<FleetTrustJson> => await (await fetch(`http://127.0.0.1:${httpPort}/api/fleet`)).json() as FleetTrustJson
    const url = `mqtt://127.0.0.1:${mqttPort}`
    let gateway = await start()
    expect((await fleet()).owners?.map((o) => o.id)).toEqual([alice.id, bob.id])

    // Bob (an owner in v0 and v1) hands v1 and then the new owners' revocation to the gateway over a mesh link, as `iotmesh fleet publish` does.
    const node = new MeshNode({ host: '127.0.0.1', mdns: false, peers: [`127.0.0.1:${meshPort}`], announceLinks: 0, routing: { fleetPolicy: v0 }, requireCredentials: false }, { keys: bob })
    await node.start()
    expect(node.updateFleet(v1)).toBe('added')
    expect(node.revoke(cosign(revoke({ policy: p1, device: victim.id, reason: 'stolen', owners: [carol] }), p1, bob))).toBe('added')
    await expect.poll(async () => { const f = await fleet(); return [f.owners?.map((o) => o.id), f.revocations.map((r) => r.device)] }, { timeout: 15_000 })
      .toEqual([[carol.id, bob.id], [victim.id]])
    await node.stop() // nobody left to tell the restarted gateway again

    const exited = new Promise((resolve) => gateway.once('exit', resolve))
    gateway.kill('SIGKILL')
    await exited
    gateway = await start()
    onTestFinished(() => { gateway.kill('SIGKILL') })
    const after = await fleet()
    expect(after.owners?.map((o) => o.id)).toEqual([carol.id, bob.id])
    expect(after.revocations.map((r) => r.device)).toEqual([victim.id])
    await expect(connectDevice(url, victim, { authenticate: true })).rejects.toThrow(/Not authorized|refused/i)
    const ok = await connectDevice(url, honest, { authenticate: true })
    expect(ok.client.connected).toBe(true)
    // Its new broker retains v1 again for devices on the broker alone.
    await ok.client.subscribeAsync(fleetFilesTopic('default'), { qos: 1 })
    const retained = await ok.next((topic) => topic === fleetFilesTopic('default'))
    expect(decodeFleetFiles(new Uint8Array(retained.payload)).map((f) => toBase64url(f))).toEqual([toBase64url(v1)])
  }, 90_000)
})
