import { afterAll, afterEach, expect, it } from 'vitest'
import { describeNet } from '../helpers/netns.js'
import {
  BOUNDS, TEST_TIMEOUT, delivery, expectNoHarnessErrors, expectSurvived, healthOf, itLong, linked, onlyVerdicts, play, settle, sleep, stage,
  type Honest, type Played, type Stage
} from '../helpers/adversary.js'

/**
 * The link-layer rows: Sybil links that sit idle in every slot, half-open TCP connections,
 * a flood of HELLOs. Each time a subscriber that knows only the device's address (no mDNS: its
 * one way in is a link to the device) starts during the attack and must get a link and the
 * device's readings; the device must stay responsive, and a handshake flood must not cost it a
 * signature per HELLO.
 */

/** Open file descriptors the device may gain during the attack (1,000 half-open connections took 1,030). */
const FD_GROWTH = 256
/** Signed REPLYs per second the device may send to one unauthenticated source (15,095 HELLOs got 15,095). */
const REPLIES_PER_S = 100

describeNet('adversarial: links', () => {
  let s: Stage | undefined
  afterEach(async () => { await s?.world.destroy(); s = undefined })
  afterAll(expectNoHarnessErrors)

  /** A subscriber on host 3 with the device as its only (static) peer; resolves once it linked to the device. */
  async function latecomer (stage_: Stage): Promise<{ node: Honest, linkedAt: number }> {
    const node = await stage_.world.subscriber('S2', 3, { mdns: false, peers: [`${stage_.at.host}:${stage_.at.port}`] })
    await linked(node, stage_.device.id, AbortSignal.timeout(10_000)).catch(() => {})
    const up = node.events.find((e) => e.ev === 'link' && e.peer === stage_.device.id && e.up === true)
    return { node, linkedAt: (up?.t as number | undefined) ?? Infinity }
  }

  /** The latecomer linked during the attack and got ≥ 99 % of the device's readings from then on. */
  async function expectLatecomerServed (stage_: Stage, late: { node: Honest, linkedAt: number }, played: Played, label: string): Promise<void> {
    expect(late.linkedAt, `${label}: a new subscriber got a link to the device during the attack`).toBeLessThanOrEqual(played.t1)
    await settle(stage_.device, late.node, late.linkedAt + 1000, played.t2 - 1000)
    const served = delivery(stage_.device, late.node, late.linkedAt + 1000, played.t2 - 1000)
    const figures = JSON.stringify({ ...served, missing: served.missing.slice(0, 10) })
    expect(served.ratio, `${label}: the new subscriber's share of the device's readings (${figures})`).toBeGreaterThanOrEqual(BOUNDS.delivery)
  }

  function fds (node: Honest, from: number, to: number): { before: number, peak: number } {
    const reports = healthOf(node)
    const before = reports.filter((h) => h.t < from).at(-1)?.fds ?? 0
    return { before, peak: Math.max(before, ...reports.filter((h) => h.t >= from && h.t <= to).map((h) => h.fds)) }
  }

  // Passes since WP 10-B (links: inbound and outbound slots apart, idle inbound links evicted for a newcomer).
  it('12 idle Sybil links in every slot: a new subscriber still gets a link and the readings', onlyVerdicts(async () => {
    const stage_ = s = await stage({ extraHosts: 1 })
    const { attacker, device, at } = stage_
    let late: { node: Honest, linkedAt: number } | undefined
    const played = await play(stage_, {
      attack: async () => {
        // Announced on mDNS too, as any device is: the device may pick them for its own dials as well.
        const sybils = await attacker.call('sybils', { host: at.host, port: at.port, peer: device.id, count: 12, announce: true }, 30_000)
        late = await latecomer(stage_)
        return sybils
      },
      stay: true
    })
    expectSurvived(played, 'idle Sybil links')
    await expectLatecomerServed(stage_, late as { node: Honest, linkedAt: number }, played, 'idle Sybil links')
  }), TEST_TIMEOUT)

  // Passes since WP 10-B (links: caps on handshakes in progress, per source address and in total).
  itLong('1,000 half-open TCP connections: bounded fds, and a new subscriber still gets a link', onlyVerdicts(async () => {
    const stage_ = s = await stage({ extraHosts: 1 })
    const { attacker, device, at } = stage_
    let late: { node: Honest, linkedAt: number } | undefined
    const played = await play(stage_, {
      attack: async () => {
        const opening = attacker.call('halfOpen', { host: at.host, port: at.port, count: 1000, durationMs: 8000 }, 20_000)
        await sleep(2000)
        late = await latecomer(stage_)
        return await opening
      }
    })
    const { before, peak } = fds(device, played.t0, played.t1)
    expectSurvived(played, 'half-open connections')
    expect(peak - before, `half-open connections: the device's open fds went from ${before} to ${peak}`).toBeLessThanOrEqual(FD_GROWTH)
    await expectLatecomerServed(stage_, late as { node: Honest, linkedAt: number }, played, 'half-open connections')
  }), TEST_TIMEOUT)

  // Passes since WP 10-B (links: handshake admission and a budget of signed replies: 94 REPLYs for 15,095 HELLOs).
  itLong('a flood of HELLOs: bounded handshake work, and a new subscriber still gets a link', onlyVerdicts(async () => {
    const stage_ = s = await stage({ extraHosts: 1 })
    const { attacker, at } = stage_
    let late: { node: Honest, linkedAt: number } | undefined
    const played = await play(stage_, {
      attack: async () => {
        const flooding = attacker.call('helloFlood', { host: at.host, port: at.port, count: 15_095, durationMs: 8000, concurrency: 64 }, 20_000)
        await sleep(2000)
        late = await latecomer(stage_)
        return await flooding
      }
    })
    expectSurvived(played, 'HELLO flood')
    const { replies } = played.result as { hellos: number, replies: number }
    const perSecond = replies / ((played.t1 - played.t0) / 1000)
    expect(perSecond, 'HELLO flood: signed REPLYs per second to one unauthenticated source').toBeLessThanOrEqual(REPLIES_PER_S)
    await expectLatecomerServed(stage_, late as { node: Honest, linkedAt: number }, played, 'HELLO flood')
  }), TEST_TIMEOUT)
})
