import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'
import { writeFile } from 'node:fs/promises'
import { publicKeyText, telemetryTopic } from '../../shared/index.js'
import { describeNet } from '../helpers/netns.js'
import { tempDir } from '../shared/support.js'
import { connectClient, connectDevice, freePort, makeFrame, seededKeys, spawnServer } from './support.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const built = existsSync(join(root, 'dist', 'bin', 'commands', 'gateway.js'))
const DEVICES = [81, 82, 83, 84].map(seededKeys)

/**
 * Issue 11, "Gateway SIGKILL and restart under load": a real `node bin/iotmesh.js gateway`
 * process with its SQLite state, devices publishing (MQTT QoS 1) while it is SIGKILLed and started
 * again on the same data dir. Then: every reading a device had acknowledged is in the history,
 * no reading reaches the …/json subscriber twice (the devices' own retransmissions of what the
 * killed gateway had accepted are duplicates), and captured frames replayed to the restarted
 * gateway are refused.
 */
describeNet('iotmesh gateway state flags', () => {
  it('is built (npm test builds dist/ first; run `npm run build` before test/run.sh alone)', () => {
    expect(built).toBe(true)
  })

  it.runIf(built)('--data-dir, --database and --memory exclude each other; --database takes a postgres:// URL (exit 2, ERR_BAD_ARGUMENT); a state dir that cannot be made is ERR_STORE', async () => {
    const run = async (...args: string[]): Promise<{ code: number | null, stderr: string }> => {
      const child = spawn(process.execPath, [join(root, 'bin', 'iotmesh.js'), 'gateway', ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
      let stderr = ''
      child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
      return { code, stderr }
    }
    const both = await run('--memory', '--data-dir', '/tmp/x')
    expect(both.code).toBe(2)
    expect(both.stderr).toMatch(/--data-dir and --memory exclude each other.*ERR_BAD_ARGUMENT/)
    const mysql = await run('--database', 'mysql://u:secret@db/x')
    expect(mysql.code).toBe(2)
    expect(mysql.stderr).toMatch(/--database must be a postgres:\/\/ URL.*ERR_BAD_ARGUMENT/)
    expect(mysql.stderr).not.toContain('secret')
    // A folder that cannot be made (here under /proc, where Node's recursive mkdir never returns) is ERR_STORE, exit 1.
    const proc = await run('--mqtt-port', '0', '--ws-port', 'off', '--http-port', '0', '--host', '127.0.0.1', '--no-mesh', '--data-dir', '/proc/iotmesh-none')
    expect(proc.code).toBe(1)
    expect(proc.stderr).toMatch(/cannot open the gateway database \/proc\/iotmesh-none\/default\.db.*ERR_STORE/)
  })
})

const PG_URL = process.env.IOTMESH_PG_URL
const kinds = ['SQLite', ...(PG_URL === undefined ? [] : ['PostgreSQL'])]

describeNet.each(kinds)('gateway SIGKILL and restart under load (real process, state in %s)', (kind) => {
  it.runIf(built)('no reading delivered twice downstream, captured replays refused, history intact', async () => {
    const dir = await tempDir()
    const fleet = kind === 'SQLite' ? 'default' : `k${Math.random().toString(36).slice(2, 10)}` // a fleet of its own in the shared database
    // Closed mode: the keys are known from the first frame in every run (key restore is tested in store.test.ts).
    const roster = join(dir, 'roster.json')
    await writeFile(roster, JSON.stringify(DEVICES.map((k) => ({ pk: publicKeyText(k.publicKey) }))))
    const [mqttPort, httpPort] = [await freePort(), await freePort()]
    const start = async (): ReturnType<typeof spawnServer> => await spawnServer(process.execPath, [
      join(root, 'bin', 'iotmesh.js'), 'gateway', '--mqtt-port', String(mqttPort), '--ws-port', 'off', '--http-port', String(httpPort),
      // An open LAN broker (anonymous clients): this test is about the state, broker access has its own (test/gateway/auth.test.ts).
      '--host', '127.0.0.1', '--no-mesh', '--allow-anonymous', '--roster', roster, '--fleet', fleet,
      ...(kind === 'SQLite' ? ['--data-dir', dir] : ['--database', PG_URL ?? ''])
    ], /^Press Ctrl-C/m)
    const url = `mqtt://127.0.0.1:${mqttPort}`
    const api = `http://127.0.0.1:${httpPort}/api`
    let gateway = await start()

    // Downstream: the SenML JSON mirror, and the raw frames (what an eavesdropper captures to replay).
    const json = await connectClient(url, { reconnectPeriod: 50 })
    await json.client.subscribeAsync(`iotmesh/${fleet}/+/json`, { qos: 1 })
    const capture = await connectClient(url, { reconnectPeriod: 50 })
    await capture.client.subscribeAsync(`iotmesh/${fleet}/+/telemetry`, { qos: 0 })

    const acked = new Map<string, Set<number>>(DEVICES.map((k) => [k.id, new Set()]))
    const devices = await Promise.all(DEVICES.map(async (keys) => await connectDevice(url, keys, { fleet, mqtt: { reconnectPeriod: 50 } })))
    let publishing = true
    const inFlight = new Set<Promise<void>>()
    const loops = devices.map(async (device, i) => {
      const keys = DEVICES[i] as (typeof DEVICES)[number]
      for (let seq = 1; publishing; seq++) {
        const sent = device.client.publishAsync(telemetryTopic(fleet, keys.id), makeFrame(keys, seq), { qos: 1 })
          .then(() => { acked.get(keys.id)?.add(seq) }, () => {})
        inFlight.add(sent)
        void sent.finally(() => inFlight.delete(sent))
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
    })
    const total = (): number => [...acked.values()].reduce((n, s) => n + s.size, 0)
    const until = async (cond: () => boolean, ms = 15_000): Promise<void> => {
      const end = Date.now() + ms
      while (!cond()) {
        if (Date.now() > end) throw new Error('timed out')
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
    }

    await until(() => total() >= 200)
    const exited = new Promise((resolve) => gateway.once('exit', resolve))
    gateway.kill('SIGKILL')
    await exited
    const ackedBeforeKill = total()
    const capturedBeforeKill = capture.messages.slice(0, 5)
    expect(capturedBeforeKill).toHaveLength(5)

    gateway = await start()
    await until(() => total() >= ackedBeforeKill + 200) // the devices reconnected, their backlog went through, and more
    publishing = false
    await Promise.all(loops)
    await until(() => inFlight.size === 0)

    // A captured frame replayed to the restarted gateway is a duplicate: refused, never mirrored.
    const attacker = await connectClient(url)
    const before = await (await fetch(`${api}/counters`)).json() as { accepted: number, dropped: { duplicate: number } }
    for (const m of capturedBeforeKill) await attacker.client.publishAsync(m.topic, m.payload, { qos: 1 })
    const after = await (await fetch(`${api}/counters`)).json() as { accepted: number, dropped: { duplicate: number } }
    expect(after.accepted).toBe(before.accepted)
    expect(after.dropped.duplicate).toBe(before.dropped.duplicate + 5)

    // Let the mirror drain (the subscriber has the newest reading of every device), then: nothing delivered twice downstream.
    const mirroredKeys = (): Map<string, number> => {
      const seen = new Map<string, number>()
      for (const m of json.messages) {
        const first = (JSON.parse(m.payload.toString()) as Array<{ bn?: string, seq?: number }>)[0]
        const key = `${first?.bn ?? '?'}#${first?.seq ?? '?'}`
        seen.set(key, (seen.get(key) ?? 0) + 1)
      }
      return seen
    }
    await until(() => { const seen = mirroredKeys(); return DEVICES.every((k) => seen.has(`${k.id}:#${Math.max(...acked.get(k.id) ?? [])}`)) })
    await new Promise((resolve) => setTimeout(resolve, 200))
    const seen = mirroredKeys()
    expect([...seen].filter(([, n]) => n > 1)).toEqual([])
    expect(seen.size).toBeGreaterThan(100)

    // History intact: every reading mirrored downstream is stored, once; with SQLite (committed before
    // the broker acknowledges) so is every reading a device had acknowledged. PostgreSQL's commit comes
    // after the acknowledgement (the broker's authorization callback does not wait for it): a SIGKILL in
    // between loses it from the history, though never into a duplicate downstream (mirrored after commit).
    const mirrored = new Map<string, number[]>()
    for (const key of seen.keys()) {
      const [bn, seq] = key.split('#')
      const id = (bn ?? '').replace(/:$/, '')
      mirrored.set(id, [...mirrored.get(id) ?? [], Number(seq)])
    }
    for (const keys of DEVICES) {
      const stored: number[] = []
      let cursor: string | undefined
      do {
        const page = await (await fetch(`${api}/devices/${keys.id}/history?limit=5000${cursor === undefined ? '' : `&cursor=${cursor}`}`)).json() as { readings: Array<{ seq: number }>, next?: string }
        stored.push(...page.readings.map((r) => r.seq))
        cursor = page.next
      } while (cursor !== undefined)
      expect(new Set(stored).size).toBe(stored.length)
      expect((mirrored.get(keys.id) ?? []).filter((seq) => !stored.includes(seq))).toEqual([])
      if (kind === 'SQLite') expect([...acked.get(keys.id) ?? []].filter((seq) => !stored.includes(seq))).toEqual([])
    }
  }, 60_000)
})
