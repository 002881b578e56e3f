import { afterAll, afterEach, expect, it } from 'vitest'
import { describeNet } from '../helpers/netns.js'
import {
  TEST_TIMEOUT, eventually, expectDisconnectedAndKeptOut, expectNoHarnessErrors, expectSurvived, itLong, linked, onlyVerdicts, play, redialAfter, stage,
  type Stage
} from '../helpers/adversary.js'

/**
 * The control-plane rows, each played by a neighbour with its own valid key (open mode)
 * over an authenticated link to the honest device, beside an honest subscriber (harness:
 * test/helpers/adversary.ts). Every control message must do bounded work and leave bounded state.
 */

describeNet('adversarial: control messages', () => {
  let s: Stage | undefined
  afterEach(async () => { await s?.world.destroy(); s = undefined })
  afterAll(expectNoHarnessErrors)

  // Passes since WP 10-C1 (routing): want.ts spent its budget only on stored frames, so it looped ~2^53 times.
  it('one WANT [[kid, 0, 2^53−1]] does bounded work: the device stays responsive and keeps sampling and delivering', onlyVerdicts(async () => {
    const stage_ = s = await stage()
    const played = await play(stage_, {
      attack: async () => await stage_.attacker.call('want', { to: stage_.device.id, origin: stage_.device.id, from: 0, upto: Number.MAX_SAFE_INTEGER })
    })
    expectSurvived(played, 'WANT range')
  }), TEST_TIMEOUT)

  // Passes since WP 10-C1 (routing: signed declarations, SEAD distance proofs); before it, versions and hops were unauthenticated
  // and a higher version won.
  it('INTEREST for every subscriber heard of, version 2^53−1 and hops 0, cannot take the route: the subscriber keeps receiving',
    onlyVerdicts(async () => {
    const stage_ = s = await stage()
    const { attacker, subscriber } = stage_
    // The device tells every new neighbour of the subscribers it routes to (INTEREST): the attacker heard of S.
    const heard = async (): Promise<string[]> => (await attacker.call<{ subscribers: string[] }>('heard')).subscribers
    await eventually('the attacker hearing of the subscriber', async () => (await heard()).includes(subscriber.id))
    const route = async (): Promise<unknown> =>
      (await stage_.device.call<Array<{ subscriber: string, via?: string, hops?: number }>>('interest')).find((r) => r.subscriber === subscriber.id)
    const played = await play(stage_, {
      attack: async () => await attacker.call('hijack', { to: stage_.device.id, rounds: 8, everyMs: 1000 }, 20_000)
    })
    expectSurvived(played, 'INTEREST hijack')
    // The claims were checked and refused (mesh/routing/interest.ts): a forged distance, a declaration not of the version claimed.
    const refused = new Set(stage_.device.events.filter((e) => e.ev === 'drop' && e.from === attacker.id).map((e) => e.code))
    expect([...refused], 'the device refused the attacker\'s claims').toEqual(expect.arrayContaining(['ERR_ROUTE_PROOF', 'ERR_BAD_DECLARATION']))
    expect(await route(), 'the device routes to the subscriber directly, as before the attack').toMatchObject({ via: subscriber.id, hops: 1 })
  }), TEST_TIMEOUT)

  // Passes since session 35 (mesh/routing/interest.ts `#departed`): once a departed subscriber's routes expired, a neighbour
  // replaying its last signed declaration installed them again, for three more refresh periods per replay.
  itLong('a subscriber that left stays gone: its last declaration replayed is refused, and the honest subscriber keeps receiving',
    onlyVerdicts(async () => {
    // Refresh every 2 s, so that routes expire after 6 s (three periods) and the departed are remembered for 60 s.
    const routing = { interestRefresh: 2000 }
    const stage_ = s = await stage({ extraHosts: 1, device: routing, subscriber: routing })
    const { attacker, device, world } = stage_
    const signal = AbortSignal.timeout(20_000)
    const leaver = await world.subscriber('L', 3, routing)
    await linked(leaver, device.id, signal)
    // The device passes L's signed declaration on to its other neighbours (INTEREST): the attacker keeps the last one heard.
    const heard = async (): Promise<string[]> => (await attacker.call<{ subscribers: string[] }>('heard')).subscribers
    await eventually('the attacker hearing of L', async () => (await heard()).includes(leaver.id))
    const route = async (): Promise<unknown> =>
      (await device.call<Array<{ subscriber: string, via?: string }>>('interest')).find((r) => r.subscriber === leaver.id)
    expect(await route(), 'the device routes to L before it leaves').toMatchObject({ via: leaver.id })
    await leaver.kill() // a power cut: no retraction; its routes expire after three refresh periods
    await eventually('the device forgetting L', async () => await route() === undefined, 20_000)
    const played = await play(stage_, {
      attack: async () => await attacker.call('hijack', { to: device.id, rounds: 5, everyMs: 1000 }, 20_000),
      stay: true
    })
    expectSurvived(played, 'departed subscriber replay')
    const refused = device.events.filter((e) => e.ev === 'drop' && e.from === attacker.id && e.origin === leaver.id).map((e) => e.code)
    expect(refused, 'the device refused the replay of L\'s last declaration').toContain('ERR_REPLAY')
    expect(await route(), 'no route to the departed L, through the attacker or anyone').toBeUndefined()
  }), TEST_TIMEOUT)

  // Passes since WP 10-C1 (routing): the peer-exchange table was unbounded, with an O(n) scan per entry.
  itLong('132,600 invented peers in PEERS: bounded table, bounded work, the flooder disconnected and kept out', onlyVerdicts(async () => {
    const stage_ = s = await stage()
    const played = await play(stage_, {
      attack: async () => await stage_.attacker.call('flood', { to: stage_.device.id, kind: 'peers', count: 132_600, durationMs: 8000 }, 15_000),
      ...redialAfter(stage_)
    })
    expectSurvived(played, 'PEERS flood')
    expectDisconnectedAndKeptOut(stage_, played, 'PEERS flood')
  }), TEST_TIMEOUT)

  // Passes since WP 10-C1 (routing): the interest table had no cap on subscribers, in total or per neighbour. The flooder is
  // disconnected and kept out since the count of new subscribers per neighbour (mesh/routing/introductions.ts): its claims
  // are valid (fresh self-signed subscribers), so only their number, far beyond an honest neighbour's table, tells.
  itLong('116,800 invented subscribers in INTEREST: bounded table, bounded work, the flooder disconnected and kept out', onlyVerdicts(async () => {
    const stage_ = s = await stage()
    // Past an honest neighbour's table (4,096 new subscribers), made before the attack; the flood invents the rest as it goes.
    await stage_.attacker.call('prepareSubscribers', { count: 5000 }, 60_000)
    const played = await play(stage_, {
      attack: async () => await stage_.attacker.call('flood', { to: stage_.device.id, kind: 'interest', count: 116_800, durationMs: 8000 }, 15_000),
      ...redialAfter(stage_)
    })
    expectSurvived(played, 'INTEREST flood')
    expectDisconnectedAndKeptOut(stage_, played, 'INTEREST flood')
  }), TEST_TIMEOUT)

  // Passes since WP 10-C2 (scoring: per-peer budgets, the flooder disconnected); before it, KEY was learned without a budget.
  itLong('361,000 random KEYs: memory bounded, bounded work, the flooder disconnected and kept out', onlyVerdicts(async () => {
    const stage_ = s = await stage()
    const played = await play(stage_, {
      attack: async () => await stage_.attacker.call('flood', { to: stage_.device.id, kind: 'keys', count: 361_000, durationMs: 8000 }, 15_000),
      ...redialAfter(stage_)
    })
    expectSurvived(played, 'KEY flood')
    expectDisconnectedAndKeptOut(stage_, played, 'KEY flood')
  }), TEST_TIMEOUT)
})
