import { describe, expect, it } from 'vitest'
import { DeviceRegistry, type Reading } from '../../gateway/index.js'
import type { Transport } from '../../mesh/index.js'
import type { KeyPair } from '../../shared/index.js'
import { describeNet } from '../helpers/netns.js'
import { Waiter, startDevice } from '../firmware/device-support.js'
import { tempDir } from '../firmware/support.js'
import { meshAddress, seededKeys, startMeshGateway } from './support.js'
import { createMemoryNetwork } from '../../mesh/testing.js'

/**
 * The dashboard's "Gaps" column (DeviceInfo.seqGaps) counts readings that never arrived, not
 * numbers a restart skipped (gateway/seq-gaps.ts). A device in a crash loop with its data
 * directory kept skips the rest of a sequence block at every start (shared/node/sequence-file.ts).
 */

const keys = seededKeys(41)
const reading = (seq: number): Reading =>
  ({ origin: keys.id, fleet: 'default', seq, time: 1_800_000_000 + seq, deviceTopic: 'telemetry', records: [{ n: 'temp', v: seq }], frame: new Uint8Array(), path: 'mesh', receivedAt: seq })

describeNet('sequence gaps: a crash loop that lost nothing shows none', () => {
  it('a mesh device restarted five times on its data directory: every reading arrives, the gateway counts 0 gaps', async () => {
    const dir = await tempDir()
    const net = createMemoryNetwork({ seed: 16 })
    const waiter = new Waiter()
    // Settle time 0: a gap counts the moment it opens, so nothing here is hidden by waiting.
    const gateway = await startMeshGateway(net, { registry: { gapSettleMs: 0 } })
    const accepted = new Set<number>()
    gateway.on('reading', (r) => { if (r.deviceTopic === 'telemetry') { accepted.add(r.seq); waiter.kick() } })
    const transport = (k: KeyPair): Transport => net.createTransport({}, { keys: k })
    const init = { mode: 'mesh' as const, sensors: 'temperature', dataDir: dir, mesh: { host: 'dev', mdns: false, peers: [meshAddress(gateway.mesh)], dialTarget: 0 } }
    const signed: number[] = []
    let id = ''
    for (let run = 0; run < 5; run++) {
      const started = await startDevice(init, { transport }, waiter)
      id = started.device.id
      await waiter.until(() => started.signed.length >= 3, `three readings in run ${run}`)
      await started.device.crash()
      signed.push(...started.signed)
    }
    // The last run's backlog goes on a last, clean run.
    const last = await startDevice(init, { transport }, waiter)
    await waiter.until(() => last.signed.length >= 2 && [...signed, ...last.signed].every((s) => accepted.has(s)), 'every reading signed at the gateway', 20_000)
    const device = gateway.devices.get(id)
    // Each start skipped the rest of a block: the numbers jump by about a thousand, five times.
    expect(Math.max(...last.signed) - Math.min(...signed)).toBeGreaterThan(5000)
    expect(device).toMatchObject({ seqGaps: 0 })
    expect(device?.seqPending).toBeUndefined()
  }, 60_000)
})

describe('sequence gaps: counted once settled, filled by late readings', () => {
  it('a skipped number counts only after the settle time; one that arrives before does not', () => {
    let now = 0
    const registry = new DeviceRegistry({ gapSettleMs: 60_000 }, { now: () => now })
    for (const seq of [1, 2, 5, 6]) registry.recordReading(reading(seq))
    expect(registry.get(keys.id)).toMatchObject({ seqGaps: 0, seqPending: 2 })
    now = 30_000
    registry.recordReading(reading(4)) // the outbox brought it
    expect(registry.get(keys.id)).toMatchObject({ seqGaps: 0, seqPending: 1 })
    now = 60_000
    expect(registry.get(keys.id)?.seqGaps).toBe(1)
    expect(registry.get(keys.id)?.seqPending).toBeUndefined()
    registry.recordReading(reading(3)) // later still: it did arrive after all
    expect(registry.get(keys.id)?.seqGaps).toBe(0)
  })

  it('a restart\'s skip is no gap; the old run\'s readings that arrive after it prove the numbers below them were used', () => {
    const registry = new DeviceRegistry({ gapSettleMs: 0 })
    for (const seq of [1, 2, 3]) registry.recordReading(reading(seq))
    // A mesh device (no status) restarted: the first number of the next block.
    registry.recordReading(reading(1001))
    expect(registry.get(keys.id)).toMatchObject({ seqGaps: 0 })
    // The old run's outbox drains: 6 arrives, so 4 and 5 were used and are missing; 7..1000 may never have been.
    registry.recordReading(reading(6))
    expect(registry.get(keys.id)?.seqGaps).toBe(2)
    registry.recordReading(reading(4))
    registry.recordReading(reading(5))
    expect(registry.get(keys.id)?.seqGaps).toBe(0)
    // A jump that does not land on a block's first number is a loss.
    registry.recordReading(reading(1500))
    expect(registry.get(keys.id)?.seqGaps).toBe(498)
  })

  it('a broker device\'s restart: its online status, then a frame of the old run from its outbox, then the new block: no gap', () => {
    const registry = new DeviceRegistry({ gapSettleMs: 0 })
    const status = (state: 'online' | 'offline'): void => {
      registry.applyStatus({ deviceId: keys.id, fleet: 'default', status: state === 'online' ? { state, publicKey: keys.publicKey } : { state }, path: 'broker' })
    }
    status('online')
    for (const seq of [1, 2, 3]) registry.recordReading(reading(seq))
    status('offline') // its last will
    status('online') // a restart: the next forward jump is not a loss...
    registry.recordReading(reading(4)) // ...but the first reading is the old run's, from the outbox
    registry.recordReading(reading(1001)) // the new run: the first number of the next block
    expect(registry.get(keys.id)).toMatchObject({ seqGaps: 0, restarts: 1, lastSeq: 1001 })
  })

  it('bounded: a device that signs numbers far apart keeps at most 32 open ranges, the lowest counted as lost', () => {
    const registry = new DeviceRegistry({ gapSettleMs: 60_000 }, { now: () => 0 })
    for (let i = 0; i < 100; i++) registry.recordReading(reading(1 + i * 3))
    const device = registry.get(keys.id)
    expect((device?.seqGaps ?? 0) + (device?.seqPending ?? 0)).toBe(99 * 2)
    expect(device?.seqPending).toBe(32 * 2)
  })
})
