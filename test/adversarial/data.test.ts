import { afterAll, afterEach, expect } from 'vitest'
import { describeNet } from '../helpers/netns.js'
import {
  TEST_TIMEOUT, addressOf, eventually, expectDisconnectedAndKeptOut, expectNoHarnessErrors, expectSurvived, flowing, itLong, linked, onlyVerdicts, play,
  redialAfter, stage, type Stage, type StageInit
} from '../helpers/adversary.js'

/**
 * The data-plane rows: one neighbour floods frames (valid, with bad signatures, or from
 * signers it never names) as fast as its link takes them; or it fills the replay state with
 * 65,536 fresh origins and then replays a quiet device's frames. The honest device next to it
 * must keep its schedule and its subscriber its readings; a flooding peer is disconnected and
 * kept out for a backoff (gossipsub v1.1 peer scoring).
 */

describeNet('adversarial: floods of frames', () => {
  let s: Stage | undefined
  afterEach(async () => { await s?.world.destroy(); s = undefined })
  afterAll(expectNoHarnessErrors)

  /** Floods the device for 8 s; then tries to link again three times, 1.5 s apart. */
  async function flood (kind: 'valid' | 'badsig' | 'unknown', config: StageInit['device'] = {}): Promise<void> {
    const stage_ = s = await stage({ device: config })
    const { attacker, device } = stage_
    const played = await play(stage_, {
      attack: async () => await attacker.call('data', { to: device.id, kind, durationMs: 8000 }, 20_000),
      ...redialAfter(stage_)
    })
    expectSurvived(played, `${kind} frames flood`)
    expectDisconnectedAndKeptOut(stage_, played, `${kind} frames flood`)
  }

  // Passes since the per-origin rate (mesh/routing/budget.ts OriginBudgets: 500 frames a second, burst 5,000): the
  // flooder's frames are all valid and new, so only the rate of its origin tells it from a relay; past it they are refused
  // unchecked and count against its score. Before, WP 10-B's flow control kept the device on schedule but the flooder linked.
  itLong('a flood of validly signed frames from one neighbour: the device keeps its schedule, the flooder is disconnected and kept out',
    onlyVerdicts(async () => {
    await flood('valid')
  }), TEST_TIMEOUT)

  // Passes since WP 10-C2 (scoring: the flooder is disconnected after ~128 frames and banned for a backoff).
  itLong('a flood of frames with bad signatures: the device keeps its schedule, the flooder is disconnected and kept out', onlyVerdicts(async () => {
    await flood('badsig')
  }), TEST_TIMEOUT)

  // Relaying before verifying (routing `relayBeforeVerify`, mesh/routing/early.ts; issue 15): the device may send the
  // flooder's first forgery on to the subscriber before its own check, never more than one a hold-off (59 s). The
  // subscriber refuses it (its application never sees it) and counts it against the device once: far from a ban.
  itLong('a flood of frames with bad signatures at a device that relays before verifying: at most one goes on, the subscriber keeps its link to the device',
    onlyVerdicts(async () => {
    await flood('badsig', { relayBeforeVerify: true })
    const { subscriber, device, attacker } = s as Stage
    const forged = subscriber.events.filter((e) => e.ev === 'drop' && (e as { code?: string }).code === 'ERR_BAD_SIGNATURE')
    // Exactly one: the first forgery went on before the check (the option is in play: 0 without it), the rest did not.
    expect(forged.length).toBe(1)
    expect(forged.every((e) => (e as { from?: string }).from === device.id)).toBe(true)
    expect(subscriber.seqsFrom(attacker.id)).toEqual([])
    expect(subscriber.linkedTo(device.id)).toBe(true)
  }), TEST_TIMEOUT)

  // Passes since WP 10-C2 (scoring: the flooder is disconnected after ~512 frames and banned for a backoff).
  itLong('a flood of frames from signers never named: the device keeps its schedule, the flooder is disconnected and kept out',
    onlyVerdicts(async () => {
    await flood('unknown')
  }), TEST_TIMEOUT)

  // Passes since the catch-up history keeps a strangers' share (mesh/routing/history.ts: 1,024 origins nobody vouched for,
  // bookkeeping counted in its bytes): before, 66,000 one-frame origins held about 44 MB of history, +28 MB after the attack.
  // The replay is refused since WP 10-C2 (replay state in tiers), and the subscriber stays responsive since WP 10-B.
  itLong('65,536 fresh origins, then a replay of a quiet device\'s frames: no frame is delivered twice', onlyVerdicts(async () => {
    const stage_ = s = await stage({ linkTo: 'subscriber', extraHosts: 1 })
    const { world, attacker, subscriber } = stage_
    // Q: a device that publishes a while and then sleeps; the attacker, linked to it, keeps copies of its frames.
    const quiet = await world.device('Q', 3)
    const signal = AbortSignal.timeout(20_000)
    const q = await quiet.call<{ host: string, port: number, id: string }>('info')
    const { id: listener } = await attacker.call<{ id: string }>('capture', { host: q.host, port: q.port })
    await linked(quiet, listener, signal)
    await flowing(quiet, subscriber, signal, 20)
    await eventually('frames of Q captured', async () => ((await attacker.call<Record<string, number>>('captured'))[q.id] ?? 0) >= 10)
    await quiet.call('stop').catch(() => {})
    const before = subscriber.seqsFrom(q.id).length
    // Past the replay guard's default of 65,536 origins, with room for the honest ones; made before the attack.
    await attacker.call('prepareOrigins', { count: 66_000 }, 60_000)
    await subscriber.call('track', { origins: [stage_.device.id, q.id] }) // not 66,000 reading events
    const sAt = await addressOf(subscriber)
    const played = await play(stage_, {
      attack: async () => {
        const origins = await attacker.call('origins', { to: subscriber.id, durationMs: 45_000 }, 50_000)
        const replay = await attacker.call('replay', { to: subscriber.id, host: sAt.host, port: sAt.port, origin: q.id, count: 10 }, 20_000)
        return { origins, replay }
      },
      attackMs: 8000, // or as long as the subscriber takes the 66,000 origins (about 30 s here)
      attacked: subscriber,
      whole: true
    })
    // The row's point first: the replayed frames were refused (the quiet device's window survived the strangers).
    const seqs = subscriber.seqsFrom(q.id)
    expect(seqs.length - new Set(seqs).size, `readings of the quiet device delivered twice (of ${before} before the attack)`).toBe(0)
    expectSurvived(played, '65,536 origins then a replay')
  }), 2 * TEST_TIMEOUT)
})
