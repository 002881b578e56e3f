import { spawn, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'
import { describeNet } from '../helpers/netns.js'

const bin = fileURLToPath(new URL('../../bin/iotmesh.js', import.meta.url))
// `--hosts` builds its LAN in namespaces of its own, nested in the test's: not every system allows that.
const nested = spawnSync('unshare', ['-rnm', '--propagation', 'private', 'true']).status === 0

async function sim (args: string[]): Promise<{ code: number, stdout: string }> {
  const child = spawn(process.execPath, [bin, 'sim', ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
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
    // more on a loaded machine, so the floor asks for half of that: enough to span the partition.
    // What this test is about is the next line: every reading published arrives, none lost.
    expect(summary.published).toBeGreaterThanOrEqual(6 * 14)
    expect(summary.atGateway).toBe(summary.published)
  }, 60_000)

  it('refuses faults it cannot apply across hosts, naming them', async () => {
    const { code } = await sim(['--hosts', '2', '--devices', '4', '--faults', 'crash:0@3'])
    expect(code).toBe(2)
  })
})
