import { expect, it } from 'vitest'
import { systemClock, type Clock } from '../../shared/index.js'
import type { DropEvent } from '../../gateway/index.js'
import { describeNet } from '../helpers/netns.js'
import { Waiter, gateway, keysFor, startDevice, subscriber } from './device-support.js'

const FAST_RECONNECT = { initial: 50, max: 200, jitter: 0 }

describeNet('device runtime: signing in to the broker with its key', () => {
  it('a device presents a fresh token on every CONNECT: it gets in again after the broker restarts', async () => {
    const waiter = new Waiter()
    const { gateway: gw, url } = await gateway(waiter)
    const keys = keysFor(31)
    const sub = await subscriber(url, `iotmesh/default/${keys.id}/telemetry`, waiter)
    const { device } = await startDevice({ mode: 'broker', broker: { url, reconnect: FAST_RECONNECT }, sensors: 'temperature' }, { keys }, waiter)
    expect(device.counters.paths.broker).toBeDefined()
    await waiter.until(() => sub.from(keys.id).length >= 2, 'two readings before the restart')
    const drops: DropEvent[] = []
    gw.on('drop', (d) => { drops.push(d) })
    await gw.stopBroker()
    await gw.startBroker()
    const after = await subscriber(url, `iotmesh/default/${keys.id}/telemetry`, waiter)
    await waiter.until(() => after.from(keys.id).length >= 2, 'readings after the restart')
    // No token was refused: a reused one would be ERR_REPLAY.
    expect(drops.filter((d) => d.reason === 'bad_token' || d.reason === 'token_time')).toEqual([])
    expect(gw.devices.get(keys.id)?.online).toBe(true)
  })

  it('a device whose clock was never set (a Raspberry Pi without RTC, at boot) is told ERR_CLOCK_SKEW; the gateway counts it', async () => {
    const waiter = new Waiter()
    const { gateway: gw, url } = await gateway(waiter)
    const keys = keysFor(32)
    const drops: DropEvent[] = []
    gw.on('drop', (d) => { drops.push(d); waiter.kick() })
    const at1970: Clock = { ...systemClock, wall: () => 12_000 }
    const { device } = await startDevice({ mode: 'broker', broker: { url, reconnect: FAST_RECONNECT }, sensors: 'temperature' }, { keys, clock: at1970 }, waiter)
    const warnings: Array<string | undefined> = []
    device.on('warning', ({ error }) => { warnings.push((error as { code?: string }).code); waiter.kick() })
    await waiter.until(() => drops.length >= 1 && warnings.includes('ERR_CLOCK_SKEW'), 'the refusal on both sides')
    expect(drops[0]).toMatchObject({ reason: 'token_time', code: 'ERR_CLOCK_SKEW', deviceId: keys.id })
    expect(drops[0]?.message).toContain('1970-01-01T00:00:12Z')
    expect(device.counters.paths.broker?.up ?? false).toBe(false)
  })

  it('a device whose clock is a day behind (fake-hwclock, NTP not synced yet) is told ERR_CLOCK_SKEW, naming its clock', async () => {
    const waiter = new Waiter()
    const { gateway: gw, url } = await gateway(waiter)
    const keys = keysFor(34)
    const behind: Clock = { ...systemClock, wall: () => Date.now() - 86_400_000 }
    const { device } = await startDevice({ mode: 'broker', broker: { url, reconnect: FAST_RECONNECT }, sensors: 'temperature' }, { keys, clock: behind }, waiter)
    const warnings: Error[] = []
    device.on('warning', ({ error }) => { warnings.push(error); waiter.kick() })
    await waiter.until(() => warnings.length >= 1, 'the device to hear of the refusal')
    expect((warnings[0] as { code?: string }).code).toBe('ERR_CLOCK_SKEW')
    expect(warnings[0]?.message).toContain(new Date(Date.now() - 86_400_000).toISOString().slice(0, 10))
    expect(gw.counters.dropped.token_time).toBeGreaterThanOrEqual(1)
  })

  it('a device outside the roster is told ERR_NOT_AUTHORIZED', async () => {
    const waiter = new Waiter()
    const { gateway: gw, url } = await gateway(waiter, { roster: [keysFor(36).publicKey] })
    const keys = keysFor(35)
    const { device } = await startDevice({ mode: 'broker', broker: { url, reconnect: FAST_RECONNECT }, sensors: 'temperature' }, { keys }, waiter)
    const warnings: string[] = []
    device.on('warning', ({ error }) => { warnings.push(String((error as { code?: string }).code)); waiter.kick() })
    await waiter.until(() => warnings.length >= 1, 'the device to hear of the refusal')
    expect(warnings[0]).toBe('ERR_NOT_AUTHORIZED')
    expect(gw.counters.dropped.not_in_roster).toBeGreaterThanOrEqual(1)
  })

  it('a device with a wrong token setup (auth none) against the secure broker is refused as anonymous', async () => {
    const waiter = new Waiter()
    const { gateway: gw, url } = await gateway(waiter)
    const keys = keysFor(33)
    const { device } = await startDevice({ mode: 'broker', broker: { url, reconnect: FAST_RECONNECT, auth: 'none' }, sensors: 'temperature' }, { keys }, waiter)
    const warnings: string[] = []
    device.on('warning', ({ error }) => { warnings.push(String((error as { code?: string }).code)); waiter.kick() })
    await waiter.until(() => gw.counters.dropped.anonymous >= 1 && warnings.length >= 1, 'the refusal')
    expect(warnings[0]).toBe('ERR_LINK_CLOSED')
  })
})
