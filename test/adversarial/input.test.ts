import { afterAll, afterEach, expect, it } from 'vitest'
import { fileURLToPath } from 'node:url'
import { describeNet } from '../helpers/netns.js'
import { JsonLines } from '../helpers/json-lines.js'
import {
  TEST_TIMEOUT, attackerLinks, expectNoHarnessErrors, expectSurvived, itLong, onlyVerdicts, play, stage, ticksOf, within, type Stage
} from '../helpers/adversary.js'

/**
 * The strict-input rows: validly signed frames that no honest encoder writes. Each must be
 * refused at the first node (so it is never relayed), and every consumer must survive it:
 * `iotmesh watch`, the subscriber, the device that received it.
 */

const IOTMESH = fileURLToPath(new URL('../../bin/iotmesh.js', import.meta.url))

/** RFC 9052 §3, RFC 8949 §3.1, §4.2.1 and §5.6, RFC 8428 §6: one frame each (attacker-child.ts `crafted`). */
const VARIANTS = ['dup-alg', 'dup-kid', 'dup-seq', 'dup-value', 'bad-utf8', 'float-label', 'non-preferred']

interface WatchLine { device: string, seq: number, sensor: string, value: unknown }

describeNet('adversarial: strict input', () => {
  let s: Stage | undefined
  afterEach(async () => { await s?.world.destroy(); s = undefined })
  afterAll(expectNoHarnessErrors)

  const rejectedTotal = async (node: Stage['device']): Promise<number> =>
    Object.values((await node.call<{ rejected: Record<string, number> }>('counters')).rejected).reduce((n, c) => n + c, 0)

  // Passes since WP 10-A (strict input: SenML names checked at decode; `watch` survives any frame).
  it('a validly signed frame with SenML name "a b" is refused at the first node; iotmesh watch and the subscriber carry on', onlyVerdicts(async () => {
    const stage_ = s = await stage({ extraHosts: 1 })
    const { world, attacker, device, subscriber, at } = stage_
    // `iotmesh watch` linked to the device only: whatever the device relays reaches it.
    const watch = new JsonLines<WatchLine>(world.lan.spawn(world.host(3), process.execPath,
      [IOTMESH, 'watch', '--json', '--fleet', world.fleet, '--no-mdns', '--peers', `${at.host}:${at.port}`]))
    await watch.waitFor((l) => l.device === device.id, AbortSignal.timeout(20_000))
    let sent: { seqs: Record<string, number>, control: number } | undefined
    const played = await play(stage_, {
      attack: async () => { sent = await attacker.call('frames', { to: device.id, variants: ['bad-name'] }); return sent },
      attackMs: 3000,
      afterMs: 4000
    })
    const { seqs, control } = sent as { seqs: Record<string, number>, control: number }
    expect(await within(10_000, () => subscriber.seqsFrom(attacker.id).includes(control)), 'the control frame, sent after, reached the subscriber').toBe(true)
    expect(subscriber.seqsFrom(attacker.id), `the frame named "a b" (seq ${seqs['bad-name']}) was relayed to the subscriber`).toEqual([control])
    expect(device.events.some((e) => e.ev === 'drop' && e.from === attacker.id), 'the device refused it (a drop event from the attacker)').toBe(true)
    // watch is alive and prints the device's readings signed after the attack.
    const after = ticksOf(device).find((t) => t.t > played.t1)?.seqs[0] ?? Infinity
    const printed = await watch.waitFor((l) => l.device === device.id && l.seq >= after, AbortSignal.timeout(5000)).then(() => true, () => false)
    expect(printed && watch.child.exitCode === null, `iotmesh watch printed the device's next readings; its stderr: ${watch.stderr.slice(0, 500)}`).toBe(true)
    expectSurvived(played, 'SenML name "a b"')
  }), TEST_TIMEOUT)

  // Each variant goes through a neighbour of its own (a Sybil of the attacker's, one refused frame each): the device's peer
  // score bans a neighbour after a few refused frames (WP 10-C2), which would keep the last variants from reaching it.
  itLong('duplicate map keys, invalid UTF-8, float labels, non-preferred heads: each refused at the first node, none relayed', onlyVerdicts(async () => {
    const stage_ = s = await stage()
    const { attacker, device, subscriber, at } = stage_
    const { ids, linked } = await attacker.call<{ ids: string[], linked: number }>('sybils', { ...at, peer: device.id, count: VARIANTS.length }, 30_000)
    expect(linked, 'Sybil neighbours linked to the device').toBe(VARIANTS.length)
    const before = await rejectedTotal(device)
    let sent: { seqs: Record<string, number>, control: number } | undefined
    const played = await play(stage_, {
      attack: async () => { sent = await attacker.call('frames', { to: device.id, variants: VARIANTS, via: ids }); return sent },
      attackMs: 3000,
      afterMs: 3000
    })
    const { seqs, control } = sent as { seqs: Record<string, number>, control: number }
    // The control frame, sent after, shows the path delivered, unless the device disconnected the sender of so many refused
    // frames first (peer scoring, WP 10-C2): then the refusals counted below show each variant reached it.
    const cut = (): boolean => attackerLinks(attacker).some((e) => e.peer === device.id && !e.up && e.t >= played.t0)
    expect(await within(10_000, () => subscriber.seqsFrom(attacker.id).includes(control) || cut()), 'the control frame reached the subscriber').toBe(true)
    const relayed = VARIANTS.filter((v) => subscriber.seqsFrom(attacker.id).includes(seqs[v] as number))
    expect(relayed, 'variants accepted by the device and relayed to the subscriber').toEqual([])
    expect(await rejectedTotal(device) - before, 'refusals counted at the device').toBeGreaterThanOrEqual(VARIANTS.length)
    expectSurvived(played, 'non-canonical CBOR')
  }), TEST_TIMEOUT)
})
