import { spawn, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { describeNet } from '../helpers/netns.js'
import { hostFaultSpec, hostFaults } from '../../bin/commands/sim-hosts.js'
import { parseFaultSpec } from '../../firmware-sim/index.js'

const bin = fileURLToPath(new URL('../../bin/iotmesh.js', import.meta.url))
// `--hosts` builds its LAN in namespaces of its own, nested in the test's: not every system allows that.
const nested = spawnSync('unshare', ['-rnm', '--propagation', 'private', 'true']).status === 0

async function sim (args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number, stdout: string }> {
  const child = spawn(process.execPath, [bin, 'sim', ...args], { stdio: ['ignore', 'pipe', 'inherit'], env })
  let stdout = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  const code = await new Promise<number>((resolve) => child.on('exit', (c) => resolve(c ?? -1)))
  return { code, stdout }
}

describeNet('iotmesh sim --hosts: a fleet over network-namespace hosts on a private LAN', () => {
  it.skipIf(!nested)('mesh devices on 3 hosts reach the gateway across the bridge; a partition of hosts heals with nothing lost', async () => {
    const { code, stdout } = await sim(['--hosts', '3', '--devices', '6', '--mode', 'mesh', '--interval', '500', '--duration', '14', '--json', '--http-port', '0', '--faults', 'partition@3,heal@7'])
    expect(code).toBe(0)
    const summary = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as { hosts: number, published: number, atGateway: number, deliveryRatio: number }
    expect(summary.hosts).toBe(3)
    // 6 devices at 2/s for 14 s schedule up to 168 readings; the hosts take a few seconds to start,
    // more on a loaded machine (81 published in one CI run at load 16, 94–105 before), so the floor
    // asks for 60: ten seconds of the fleet, enough to span the partition (3 s to 7 s) and the heal.
    // What this test is about is the next line: every reading published arrives, none lost.
    expect(summary.published).toBeGreaterThanOrEqual(6 * 10)
    expect(summary.atGateway).toBe(summary.published)
  }, 60_000)

  it.skipIf(!nested)('every fault kind across hosts: broker devices crashed and restarted on their host, loss and delay on MQTT, the broker stopped and started; nothing lost', async () => {
    const faults = 'loss:0.05@0,delay:2-10@0,crash:1-2@3,broker-stop@4,restart:1-2@6,broker-start@7'
    const { code, stdout } = await sim(['--hosts', '2', '--devices', '4', '--mode', 'broker', '--interval', '500', '--duration', '12', '--json', '--http-port', '0', '--faults', faults])
    expect(code).toBe(0)
    const summary = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as { published: number, atGateway: number, waiting: number, faults: unknown[] }
    expect(summary.faults).toHaveLength(6)
    // Up to 96 readings are scheduled; under load the hosts start seconds late (28 published in one full-suite run),
    // so the floor only asks that the run spanned the faults. The line after is what this test is about.
    expect(summary.published).toBeGreaterThanOrEqual(16)
    // Nothing lost: every reading is at the gateway or still unacknowledged in its device's outbox when
    // the hosts stopped. Under load the test failed with 63 of 64 at the gateway (and 43/46, 25/27 with
    // runs side by side): every missing reading was in its device's outbox, unacknowledged, at the stop
    // (each device's last 1-2 readings, and a crashed device's last ones when its restart came late, the
    // hosts then timing their faults from their own late start, before --faults-epoch). A reading in both (its PUBACK on its way) counts twice.
    expect(summary.atGateway).toBeLessThanOrEqual(summary.published)
    expect(summary.atGateway + summary.waiting, JSON.stringify(summary)).toBeGreaterThanOrEqual(summary.published)
  }, 60_000)

  it.skipIf(!nested)('every fault on the command\'s clock: hosts whose fleets come up 5 s late fire the faults already due at once, in order, and the rest on time', async () => {
    // Both hosts hold their fleet back 5 s (the test hook), as a slow host would. Host 1 runs devices 0-1,
    // host 2 devices 2-3. crash:0@2 is due before host 1 is up; skew:3@8 after (unless the machine is so
    // loaded that host 2 takes longer still); restart:0@8 waits for the crash before it on its host;
    // partition@8 and heal@10 are the parent's. Before the hosts had the command's clock, each counted
    // from its own start: crash:0@2 fired 2 s after its host was up, skew:3@8 at about 5 + start-up + 8 s.
    const faults = 'crash:0@2,restart:0@8,skew:3:-500@8,partition@8,heal@10'
    const { code, stdout } = await sim(['--hosts', '2', '--devices', '4', '--mode', 'mesh', '--interval', '500', '--duration', '16', '--json', '--http-port', '0', '--faults', faults],
      { ...process.env, IOTMESH_SIM_START_DELAY_MS: '5000' })
    expect(code).toBe(0)
    interface Fired { firedS?: number, lateS?: number, doneS?: number }
    const summary = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as {
      hostsUpS: Array<number | null>
      faults: Array<{ kind: string, atS: number, where: string, hosts?: Array<Fired & { host: number }> } & Fired>
    }
    const why = JSON.stringify(summary)
    const [up1, up2] = summary.hostsUpS as [number, number]
    expect(up1, why).toBeGreaterThanOrEqual(5)
    expect(up2, why).toBeGreaterThanOrEqual(5)
    const [crash, restart, skew, partition, heal] = summary.faults
    expect(summary.faults.map((f) => [f.kind, f.where, f.hosts?.map((h) => h.host)])).toEqual([
      ['crash', 'hosts', [1]], ['restart', 'hosts', [1]], ['skew', 'hosts', [2]], ['partition', 'here', undefined], ['heal', 'here', undefined]
    ])
    const on = (f: typeof crash): Fired => f?.hosts?.[0] ?? {}
    // A fault fires at its time on the command's clock, or when it can no sooner: its host up, the
    // fault before it on that host done. Within `slack` s of that (a host's own clock is 2 s or more off).
    const bound = (fired: Fired, atS: number, readyS: number, slack: number): void => {
      const from = Math.max(atS, readyS)
      expect(fired.firedS, why).toBeGreaterThanOrEqual(from - 0.05)
      expect(fired.firedS, why).toBeLessThan(from + slack)
      expect(fired.lateS, why).toBeCloseTo((fired.firedS as number) - atS, 2)
    }
    bound(on(crash), 2, up1, 1) // due before its host was up: at once when it is, and it says how late
    expect(on(crash).lateS, why).toBeGreaterThanOrEqual(3)
    bound(on(skew), 8, up2, 2)
    bound(on(restart), 8, Math.max(up1, on(crash).doneS as number), 2) // in order: after the crash is done
    bound(partition as Fired, 8, 0, 2)
    bound(heal as Fired, 10, 0, 2)
  }, 60_000)

  it('refuses --faults-epoch that is not a wall-clock time in ms near now, before building anything', async () => {
    expect((await sim(['--hosts', '2', '--devices', '4', '--faults-epoch', String(Math.floor(Date.now() / 1000))])).code).toBe(2)
    expect((await sim(['--devices', '4', '--faults-epoch', 'soon'])).code).toBe(2)
  }, 60_000) // two CLI starts: 21 s on this machine under a soak run's load

  it('refuses a fault outside the fleet before building anything', async () => {
    const { code } = await sim(['--hosts', '2', '--devices', '4', '--faults', 'crash:5@3'])
    expect(code).toBe(2)
  })
})

describe('iotmesh sim --hosts: which host gets which fault', () => {
  it('device faults go to the host that runs the devices, with local indices; link faults to every host; the rest stay here', () => {
    const faults = parseFaultSpec('crash:1-4@3,restart:1-4@6,skew:3:-500@2,loss:0.05@0,delay:5-20@1,dup:0.01@1,partition@4,heal@5,broker-stop@7,broker-start@8')
    // Devices 0-2 on host 1, 3-5 on host 2.
    expect(hostFaultSpec(faults, 0, 3).split(',')).toEqual(['loss:0.05@0', 'delay:5-20@1', 'dup:0.01@1', 'crash:1-2@3', 'restart:1-2@6'])
    expect(hostFaultSpec(faults, 3, 3).split(',')).toEqual(['loss:0.05@0', 'delay:5-20@1', 'dup:0.01@1', 'skew:0:-500@2', 'crash:0-1@3', 'restart:0-1@6'])
    expect(hostFaultSpec(parseFaultSpec('partition@1,heal@2'), 0, 3)).toBe('')
  })

  it('each host fault keeps the index of the fault it comes from, in the order the host will parse them', () => {
    const faults = parseFaultSpec('crash:1-4@3,partition@4,restart:4@6,loss:0.05@0')
    expect(hostFaults(faults, 3, 3)).toEqual([{ index: 0, item: 'loss:0.05@0' }, { index: 1, item: 'crash:0-1@3' }, { index: 3, item: 'restart:1@6' }])
    const items = hostFaults(faults, 3, 3).map((f) => f.item).join(',')
    expect(parseFaultSpec(items).map((f) => f.kind)).toEqual(hostFaults(faults, 3, 3).map((f) => faults[f.index]?.kind))
  })
})
