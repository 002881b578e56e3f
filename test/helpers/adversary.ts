import { cp, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'
import { createLan, type Lan, type LanHost } from '../../firmware-sim/fleet/lan.js'
import { assertBuilt } from './fresh-build.js'
import { MeshProcs, type MeshProc } from './mesh-proc.js'
import { uniqueFleet } from './mdns.js'
import { DELAY_THRESHOLDS_MS, type AttackerLinkEvent, type HealthEvent, type NodeChildConfig, type TickEvent } from '../adversarial/protocol.js'

/**
 * The adversarial suite's world (test/adversarial/): a LAN of namespace hosts (fleet/lan.ts), honest
 * nodes (dist/test/adversarial/node-child.js: a device that samples on a schedule, subscribers)
 * and an attacker (attacker-child.js), all real processes; and the measures every attack is
 * judged by, each computed from what the children reported over IPC:
 *   responsiveness  event-loop delay of the attacked node (p99 over the phase, worst single
 *                   delay), and the longest silence between its health reports (a frozen loop
 *                   sends none);
 *   sampling        the device's own ticks against its interval;
 *   delivery        the device's frames that the subscriber received, of those it signed;
 *   memory          the attacked node's RSS before the attack and at its highest after.
 * Only for describeNet tests.
 */

const root = fileURLToPath(new URL('../..', import.meta.url))
export const NODE_CHILD = `${root}dist/test/adversarial/node-child.js`
export const ATTACKER_CHILD = `${root}dist/test/adversarial/attacker-child.js`

/** Sampling interval of the honest device, ms: 10 frames a second, so 1 % is one frame in 10 s. */
export const INTERVAL_MS = 100

/**
 * What "the node stays responsive" means here, picked with data. On the 2-core machine this suite
 * runs on, shared with other jobs (load average 5–13), the phases where no attack is at work (the
 * control; the watch after a single WANT or the INTEREST hijack, which leave nothing to do),
 * 34 phases over 14 runs, measured: p99 event-loop delay 5–100 ms, worst single delay 13–384 ms,
 * longest silence between health reports 251–469 ms, 75–100 % of the ticks (the device's timer
 * re-arms after each tick, so a loaded machine drifts it), longest time between two ticks ≤ 929 ms,
 * RSS peak +4 to +11 MB, heap after a full collection +0.5 to +0.9 MB; under bounded floods
 * (PEERS, INTEREST after WP 10-C1; the device used 10–25 % of a core) p99 up to 100 ms, worst
 * delay 230 ms, ticks down to 65 %, ticks up to 558 ms apart, RSS peak +18 to +50 MB (garbage:
 * the heap after a collection +1.1 to +2.3 MB). The attacks of the issue on the code before its
 * fixes measured: silences of 4–22 s (WANT, PEERS, floods), single delays of 0.4–9.8 s, p99 from
 * 50 ms to over 1 s, 0–17 % of the ticks, RSS +48 to +290 MB (KEY flood: heap after a collection
 * +34 MB). On a loaded machine "a few ms p99" cannot tell an attack from the neighbours' load, so
 * the bounds sit above the noise measured and below what a message that takes the loop does;
 * where an attack leaves the node responsive, its row fails on what it breaks instead (delivery,
 * a link slot, fds, signatures, a relayed frame, the state kept). Beside them, every stage runs a
 * control device C that nobody sends anything (Stage.control): when the machine lets C keep its
 * schedule, the attacked device must sample within 10 points of C and its p99 loop delay stay
 * within twice C's or 20 ms above it, which is "a few ms" beyond what the machine itself causes.
 */
export const BOUNDS = {
  /** The phase's p99 event-loop delay, ms beyond the monitor's 5 ms resolution (≤ 1 % of samples delayed more); noise ≤ 100. */
  loopP99Ms: 200,
  /** Worst single event-loop delay, ms; noise ≤ 384, a node frozen by a message 400–9,800. */
  loopMaxMs: 750,
  /** Longest silence between two health reports, ms (they are due every 250 ms); noise ≤ 465, frozen 4–22 s. */
  healthGapMs: 1000,
  /** Ticks of the device against its interval; noise ≥ 0.65 (load 13), the floods of the issue ≤ 0.17. */
  sampling: 0.5,
  /** Longest time between two ticks, ms; noise ≤ 929 (load 13), frozen nodes 2.2–7.8 s. */
  tickGapMs: INTERVAL_MS + 1900,
  /**
   * Against the control C (Stage.control: a device nobody sends anything, on the same machine,
   * over the same phase), which measures the machine's noise: the attacked device's share of ticks
   * may be at most this far below C's…
   */
  samplingBehindControl: 0.1,
  /**
   * …judged only when the control kept at least this share of its own schedule over the phase: on a
   * machine that starves a device nobody attacks (a loaded CI box: the control kept 79–85 % there
   * while identical processes differed by up to 12 points), the difference is noise, not the attack.
   */
  controlOnSchedule: 0.95,
  /** …and its p99 event-loop delay at most twice C's, or this many ms above it ("a few ms" beyond the noise). */
  loopP99OverControlMs: 20,
  /** Share of the device's frames the subscriber must receive. */
  delivery: 0.99,
  /** RSS growth of the attacked node over the attack, bytes (its peak: garbage counts until collected); noise ≤ 50 MB. */
  rssGrowth: 96 * 1024 * 1024,
  /** Growth of what the attacked node's heap holds after a full collection, from before the attack to after it, bytes: its state. */
  retainedGrowth: 16 * 1024 * 1024
} as const

/**
 * The long suite (`npm run test:adversarial`, IOTMESH_ADVERSARIAL=1) plays every attack; `npm test`
 * plays a short representative subset (the tests declared with `it`), to fit its time budget.
 */
export const LONG = process.env.IOTMESH_ADVERSARIAL === '1'
export const itLong = it.runIf(LONG)

/**
 * Errors of the harness (a stage that did not set, a child that did not answer) seen in tests of
 * this file. An `it.fails` test passes on any error, so one that failed for such a reason would
 * hide a broken harness: `onlyVerdicts` records them and `expectNoHarnessErrors` (afterAll) fails
 * the file. Only the suite's assertions (vitest AssertionError) are verdicts.
 */
const harnessErrors: string[] = []

/** Wraps a test body: errors other than assertions are recorded (then rethrown) for `expectNoHarnessErrors`. */
export function onlyVerdicts (body: () => Promise<void>): () => Promise<void> {
  return async () => {
    try {
      await body()
    } catch (err) {
      if ((err as Error).name !== 'AssertionError') harnessErrors.push(String((err as Error).stack ?? err).slice(0, 2000))
      throw err
    }
  }
}

/** For afterAll: no test of the file failed for a reason other than the suite's assertions. */
export function expectNoHarnessErrors (): void {
  expect(harnessErrors, 'tests failed for reasons other than the suite\'s assertions (the harness, not the attack)').toEqual([])
}

/** A test's time limit: setting the stage, the attack, the watch after it, and teardown. */
export const TEST_TIMEOUT = 120_000

/** A node silent this long is frozen: its phase ends there (BOUNDS.healthGapMs is already exceeded). */
const FROZEN_MS = 4000

export type Honest = MeshProc
export type Attacker = MeshProc

export const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

export class World {
  readonly procs = new MeshProcs()
  readonly fleet = uniqueFleet('adv')
  readonly #dirs: string[] = []
  #names = 0

  private constructor (readonly lan: Lan) {}

  /** A LAN of `hosts` namespace hosts (firmware-sim/fleet/lan.ts; host i at 10.77.0.<i + 1>). */
  static async create (hosts: number): Promise<World> {
    // The children run dist/: the mesh, the device runtime and the children themselves.
    assertBuilt(['shared', 'mesh', 'firmware-sim', 'test/adversarial'], '`npm run build` first (npm test and npm run test:adversarial do)')
    return new World(await createLan({ hosts }))
  }

  host (i: number): LanHost { return this.lan.hosts[i] as LanHost }

  /** The honest device (firmware-sim runtime) on host `i`, sampling every INTERVAL_MS, with a disk outbox. */
  async device (label: string, i: number, config: Partial<NodeChildConfig> = {}): Promise<Honest> {
    const dataDir = config.dataDir ?? await this.tempDir()
    return await this.#node(label, i, { role: 'device', interval: INTERVAL_MS, dataDir, ...config })
  }

  /** An honest subscriber (a MeshNode subscribed to '#') on host `i`. */
  async subscriber (label: string, i: number, config: Partial<NodeChildConfig> = {}): Promise<Honest> {
    return await this.#node(label, i, { role: 'subscriber', ...config })
  }

  async attacker (i: number): Promise<Attacker> {
    const host = this.host(i)
    return await this.procs.run(this.lan, host, 'attacker', ATTACKER_CHILD, [JSON.stringify({ host: host.address, fleet: this.fleet })])
  }

  async #node (label: string, i: number, config: Partial<NodeChildConfig>): Promise<Honest> {
    const host = this.host(i)
    const full: NodeChildConfig = { role: 'subscriber', host: host.address, fleet: this.fleet, name: `${label.toLowerCase()}-${this.#names++}`, ...config }
    return await this.procs.run(this.lan, host, label, NODE_CHILD, [JSON.stringify(full)])
  }

  async tempDir (): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'iotmesh-adv-'))
    this.#dirs.push(dir)
    return dir
  }

  /** A copy of a device's data directory: one SD-card image flashed on a second board. */
  async cloneDir (dir: string): Promise<string> {
    const copy = await this.tempDir()
    await cp(dir, copy, { recursive: true })
    return copy
  }

  async destroy (): Promise<void> {
    await this.procs.killAll()
    await this.lan.destroy()
    await Promise.all(this.#dirs.map(async (dir) => { await rm(dir, { recursive: true, force: true }) }))
  }
}

/** True once `check` holds (asked every 100 ms); false after `ms` (for a verdict: `expect(await within(…)).toBe(true)`). */
export async function within (ms: number, check: () => Promise<boolean> | boolean): Promise<boolean> {
  const end = Date.now() + ms
  for (;;) {
    if (await check()) return true
    if (Date.now() > end) return false
    await sleep(100)
  }
}

/** Resolves once `check` holds (asked every 100 ms), or rejects with `what` after `ms`. */
export async function eventually (what: string, check: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  for (;;) {
    if (await check()) return
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await sleep(100)
  }
}

/** The node's address for links (`host:port`), as its `info` says. */
export async function addressOf (node: Honest): Promise<{ host: string, port: number, id: string }> {
  const info = await node.call<{ host: string, port: number, id: string }>('info')
  return { host: info.host, port: info.port, id: info.id }
}

// ---- what the children reported ----

export const healthOf = (node: MeshProc): HealthEvent[] => node.events.filter((e) => e.ev === 'health') as unknown as HealthEvent[]
export const ticksOf = (node: MeshProc): TickEvent[] => node.events.filter((e) => e.ev === 'tick') as unknown as TickEvent[]
export const attackerLinks = (attacker: MeshProc): AttackerLinkEvent[] => attacker.events.filter((e) => e.ev === 'alink') as unknown as AttackerLinkEvent[]

/** Resolves once `node` has a link to `peer` (from its health reports or link events). */
export async function linked (node: MeshProc, peer: string, signal: AbortSignal): Promise<void> {
  const up = (): true | undefined => node.linkedTo(peer) || healthOf(node).at(-1)?.links.includes(peer) === true ? true : undefined
  await node.until(`${node.label} linked to ${peer.slice(0, 8)}`, up, signal)
}

/** Resolves once `subscriber` received `count` readings of `device` signed after `since` (wall ms). */
export async function flowing (device: MeshProc, subscriber: MeshProc, signal: AbortSignal, count = 5, since = 0): Promise<void> {
  await subscriber.until(`${subscriber.label} receiving ${device.label}'s readings`, () => {
    const signed = new Set(ticksOf(device).filter((t) => t.t >= since).flatMap((t) => t.seqs))
    return subscriber.seqsFrom(device.id).filter((s) => signed.has(s)).length >= count ? true : undefined
  }, signal)
}

export interface Responsiveness {
  reports: number
  /** Longest silence between two health reports (or the phase's ends), ms. */
  maxGapMs: number
  /** The phase's p99 event-loop delay, as the smallest of DELAY_THRESHOLDS_MS that at most 1 % of its samples exceed. */
  p99Ms: number
  maxMs: number
  /** CPU time the node used over the phase, as a share of one core (from its health reports). */
  cpu: number
}

/** Event-loop delay of `node` over [from, to] (wall ms), and the longest silence between its health reports. */
export function responsiveness (node: MeshProc, from: number, to: number): Responsiveness {
  const reports = healthOf(node).filter((h) => h.t >= from && h.t <= to)
  let gap = 0
  let last = from
  for (const h of reports) { gap = Math.max(gap, h.t - last); last = h.t }
  gap = Math.max(gap, to - last)
  const samples = reports.reduce((n, h) => n + h.delay.count, 0)
  const over = DELAY_THRESHOLDS_MS.map((_, i) => reports.reduce((n, h) => n + (h.delay.over[i] ?? 0), 0))
  const p99 = DELAY_THRESHOLDS_MS.find((_, i) => (over[i] as number) <= samples / 100) ?? Infinity
  const first = reports[0]
  const last_ = reports.at(-1)
  const cpu = first === undefined || last_ === undefined || last_.t === first.t ? 0 : (last_.cpuUs - first.cpuUs) / 1000 / (last_.t - first.t)
  return { reports: reports.length, maxGapMs: gap, p99Ms: samples === 0 ? Infinity : p99, maxMs: Math.max(0, ...reports.map((h) => h.delay.max)), cpu }
}

export interface Sampling { ticks: number, expected: number, ratio: number, maxGapMs: number }

/** The device's ticks over [from, to] against its interval. */
export function sampling (device: MeshProc, from: number, to: number, interval = INTERVAL_MS): Sampling {
  const ticks = ticksOf(device).filter((t) => t.t >= from && t.t <= to)
  let gap = 0
  let last = from
  for (const t of ticks) { gap = Math.max(gap, t.t - last); last = t.t }
  gap = Math.max(gap, to - last)
  const expected = Math.floor((to - from) / interval)
  return { ticks: ticks.length, expected, ratio: expected === 0 ? 1 : ticks.length / expected, maxGapMs: gap }
}

export interface Delivery { signed: number, received: number, ratio: number, missing: number[], duplicates: number }

/** Of the frames `device` signed in [from, to], those `subscriber` received (at any time so far). */
export function delivery (device: MeshProc, subscriber: MeshProc, from: number, to: number): Delivery {
  const signed = ticksOf(device).filter((t) => t.t >= from && t.t <= to).flatMap((t) => t.seqs)
  const all = subscriber.seqsFrom(device.id)
  const got = new Set(all)
  const missing = signed.filter((s) => !got.has(s))
  const ratio = signed.length === 0 ? 0 : 1 - missing.length / signed.length
  return { signed: signed.length, received: signed.length - missing.length, ratio, missing, duplicates: all.length - got.size }
}

export interface Memory {
  beforeBytes: number
  peakBytes: number
  growthBytes: number
  /** Heap after a full collection before the attack and after the watch (`retained`; Infinity when the node did not answer). */
  retainedBefore: number
  retainedAfter: number
}

/** RSS of `node` at the last report before `from`, and its highest from then to `to`. */
export function memory (node: MeshProc, from: number, to: number): Memory {
  const reports = healthOf(node)
  const before = reports.filter((h) => h.t < from).at(-1)?.rss ?? reports[0]?.rss ?? 0
  const peak = Math.max(before, ...reports.filter((h) => h.t >= from && h.t <= to).map((h) => h.rss))
  return { beforeBytes: before, peakBytes: peak, growthBytes: peak - before, retainedBefore: 0, retainedAfter: 0 }
}

/** Heap of `node` after a full collection (node-child's `retained`), or Infinity when it does not answer within `ms`. */
export async function retained (node: MeshProc, ms = 5000): Promise<number> {
  return await node.call<{ heapUsed: number }>('retained', {}, ms).then((r) => r.heapUsed, () => Infinity)
}

/** Waits until `subscriber` has every frame `device` signed in [from, to], or `ms` passed (the repair path may need a sync round). */
export async function settle (device: MeshProc, subscriber: MeshProc, from: number, to: number, ms = 3000): Promise<void> {
  const end = Date.now() + ms
  while (Date.now() < end && delivery(device, subscriber, from, to).missing.length > 0 && subscriber.alive) await sleep(100)
}

/** One phase of an attack: from `from` to `to` (wall ms); delivery counts frames signed up to `signedBy` (default `to`). */
export interface Phase { name: string, from: number, to: number, signedBy?: number }

export interface Verdict {
  phase: string
  responsive: Responsiveness
  sampling: Sampling
  delivery: Delivery
  /** The control device's measures over the same phase: what the machine's own noise does to a device nobody attacks. */
  control?: { responsive: Responsiveness, sampling: Sampling }
}

/**
 * Measures one phase: the attacked node's responsiveness, the device's sampling, and the share of
 * its frames `subscriber` received; and the control device's (when the stage has one).
 */
export function judge (attacked: MeshProc, device: MeshProc, subscriber: MeshProc, phase: Phase, control?: MeshProc): Verdict {
  return {
    phase: phase.name,
    responsive: responsiveness(attacked, phase.from, phase.to),
    sampling: sampling(device, phase.from, phase.to),
    delivery: delivery(device, subscriber, phase.from, phase.signedBy ?? phase.to),
    ...control === undefined ? {} : { control: { responsive: responsiveness(control, phase.from, phase.to), sampling: sampling(control, phase.from, phase.to) } }
  }
}

/** The suite's assertions for one phase (BOUNDS), with the measures in every message. */
export function expectHealthy (v: Verdict, label: string): void {
  const figures = JSON.stringify({ ...v, delivery: { ...v.delivery, missing: v.delivery.missing.slice(0, 10) } })
  const say = (what: string): string => `${label}, ${v.phase}: ${what} (${figures})`
  expect(v.responsive.maxGapMs, say('the attacked node went silent (event loop taken)')).toBeLessThanOrEqual(BOUNDS.healthGapMs)
  expect(v.responsive.p99Ms, say('event-loop delay p99')).toBeLessThanOrEqual(BOUNDS.loopP99Ms)
  expect(v.responsive.maxMs, say('event-loop delay max')).toBeLessThanOrEqual(BOUNDS.loopMaxMs)
  expect(v.sampling.ratio, say('the device sampled off its schedule')).toBeGreaterThanOrEqual(BOUNDS.sampling)
  expect(v.sampling.maxGapMs, say('the longest time between two samples')).toBeLessThanOrEqual(BOUNDS.tickGapMs)
  expect(v.delivery.ratio, say('honest delivery')).toBeGreaterThanOrEqual(BOUNDS.delivery)
  expect(v.delivery.duplicates, say('readings delivered twice')).toBe(0)
  if (v.control === undefined) return
  // The absolute bounds above hold on a machine with any load; these judge the attack apart from the load.
  const c = v.control
  if (c.sampling.ratio < BOUNDS.controlOnSchedule) {
    log(`${label}, ${v.phase}: not judged against the control`, { reason: 'the machine starved the control too', control: `${c.sampling.ticks}/${c.sampling.expected}` })
    return
  }
  expect(v.sampling.ratio, say('the device sampled further off its schedule than the control beside it'))
    .toBeGreaterThanOrEqual(Math.min(1, c.sampling.ratio) - BOUNDS.samplingBehindControl)
  expect(v.responsive.p99Ms, say('event-loop delay p99 beyond the control\'s'))
    .toBeLessThanOrEqual(Math.max(2 * c.responsive.p99Ms, c.responsive.p99Ms + BOUNDS.loopP99OverControlMs))
}

export function expectMemoryBounded (m: Memory, label: string): void {
  expect(m.growthBytes, `${label}: RSS grew from ${mb(m.beforeBytes)} to ${mb(m.peakBytes)}`).toBeLessThanOrEqual(BOUNDS.rssGrowth)
  const held = `${label}: the heap held after a full collection grew from ${mb(m.retainedBefore)} to ${mb(m.retainedAfter)} (state kept)`
  expect(m.retainedAfter - m.retainedBefore, held).toBeLessThanOrEqual(BOUNDS.retainedGrowth)
}

const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`

/** One line of figures per attack, for the suite's log (and for picking the bounds with data). */
export function log (label: string, figures: Record<string, unknown>): void {
  const round = (_: string, v: unknown): unknown => typeof v === 'number' && !Number.isInteger(v) ? Math.round(v * 1000) / 1000 : v
  console.log(`[adversarial] ${label} ${JSON.stringify(figures, round)}`)
}

// ---- the common plot: a device, a subscriber, an attacker ----

/** The honest device P (host 0), the honest subscriber S (host 1), the attacker A (host 2), all on one LAN with mDNS. */
export interface Stage {
  world: World
  device: Honest
  subscriber: Honest
  attacker: Attacker
  /**
   * The control C: a device like P on a host of its own, alone (no mDNS, no peers), sampling on the
   * same schedule through every phase. Nothing reaches it, so its measures are the machine's noise
   * (load, scheduling), and P's are judged against them (expectHealthy). Absent on a world made beforehand.
   */
  control?: Honest
  /** The device's link address. */
  at: { host: string, port: number, id: string }
}

export interface StageInit {
  /** The node the attacker links to (default the device). */
  linkTo?: 'device' | 'subscriber' | 'none'
  /** Hosts beyond the three (3, 4, …), for nodes the test starts itself. */
  extraHosts?: number
  device?: Partial<NodeChildConfig>
  subscriber?: Partial<NodeChildConfig>
  /** A world made beforehand (its hosts 0–2 take P, S and A). */
  world?: World
}

/**
 * Sets the stage: P and S find each other by mDNS and link; S receives P's readings; A links to
 * the node it attacks (`linkTo`: the device by default) with its own valid key.
 */
export async function stage (options: StageInit = {}): Promise<Stage> {
  const controlHost = options.world === undefined ? 3 + (options.extraHosts ?? 0) : undefined
  const world = options.world ?? await World.create(4 + (options.extraHosts ?? 0))
  try {
    const [device, subscriber, attacker, control] = await Promise.all([
      world.device('P', 0, options.device), world.subscriber('S', 1, options.subscriber), world.attacker(2),
      controlHost === undefined ? undefined : world.device('C', controlHost, { mdns: false })
    ])
    const signal = AbortSignal.timeout(20_000)
    await linked(subscriber, device.id, signal)
    await flowing(device, subscriber, signal)
    const at = await addressOf(device)
    const linkTo = options.linkTo ?? 'device'
    if (linkTo !== 'none') {
      const target = linkTo === 'device' ? at : await addressOf(subscriber)
      await attacker.call('link', { host: target.host, port: target.port, peer: target.id })
      await linked(linkTo === 'device' ? device : subscriber, attacker.id, signal)
    }
    return { world, device, subscriber, attacker, at, ...control === undefined ? {} : { control } }
  } catch (err) {
    await world.destroy()
    throw err
  }
}

export interface Played {
  /** Wall-clock ms: the attack began, ended (the attacker left, if it did), and the observation ended. */
  t0: number
  t1: number
  t2: number
  during: Verdict
  after: Verdict
  memory: Memory
  /** What the attack command answered (undefined if it did not answer in time), and what `after` did. */
  result: unknown
  afterResult: unknown
  /** Links of the attacker that the far end closed during the attack (a node disconnected it). */
  attackerDropped: number
}

/**
 * Plays one attack against the stage: `attack` runs for at least `attackMs` (its own work may end
 * sooner: a single message), then the attacker leaves (closes everything) unless `stay`, and the
 * world is watched for `afterMs`. Measures the attacked node (`attacked`, default the device).
 */
export async function play (s: Stage, options: {
  attack: () => Promise<unknown>
  /** Runs while the world is watched after the attack (a redial, say). */
  after?: () => Promise<unknown>
  attackMs?: number
  afterMs?: number
  stay?: boolean
  attacked?: Honest
  /** Play the attack out even if the attacked node freezes, for up to 90 s (its second half is the point: a replay after a flood). */
  whole?: boolean
}): Promise<Played> {
  const attackMs = options.attackMs ?? 8000
  const afterMs = options.afterMs ?? 5000
  const attacked = options.attacked ?? s.device
  const retainedBefore = await retained(attacked)
  await sleep(1000) // a baseline second: RSS and delay before
  const t0 = Date.now()
  let result: unknown
  const work = options.attack().then((r) => { result = r }, (err: Error) => { result = { error: err.message.slice(0, 300) } })
  const frozen = frozenWatch(attacked, options.whole !== true)
  await Promise.race([Promise.all([work, sleep(attackMs)]), sleep(attackMs + (options.whole === true ? 90_000 : 20_000)), frozen.promise])
  const t1 = Date.now()
  let afterResult: unknown
  if (!frozen.seen) {
    if (options.stay !== true) await s.attacker.call('leave', {}, 3000).catch(() => {})
    const watching = (options.after?.() ?? Promise.resolve())
      .then((r) => { afterResult = r }, (err: Error) => { afterResult = { error: err.message.slice(0, 300) } })
    await Promise.race([Promise.all([sleep(afterMs), Promise.race([watching, sleep(afterMs + 20_000)])]), frozen.promise])
  }
  frozen.stop()
  const t2 = Date.now()
  await settle(s.device, s.subscriber, t0, t2 - 1000)
  const retainedAfter = frozen.seen ? Infinity : await retained(attacked)
  return {
    t0,
    t1,
    t2,
    during: judge(attacked, s.device, s.subscriber, { name: 'during the attack', from: t0, to: t1 }, s.control),
    after: judge(attacked, s.device, s.subscriber, { name: 'after the attack', from: t1, to: t2, signedBy: t2 - 1000 }, s.control),
    memory: { ...memory(attacked, t0, t2), retainedBefore, retainedAfter },
    result,
    afterResult,
    attackerDropped: attackerLinks(s.attacker).filter((e) => !e.up && e.t >= t0 && e.t <= t1 && e.reason !== 'local').length
  }
}

/**
 * Resolves once `node` has sent no health report for FROZEN_MS: its event loop is taken, and
 * watching on would only burn a core for nothing (the verdict is already in).
 */
function frozenWatch (node: MeshProc, enabled: boolean): { promise: Promise<void>, seen: boolean, stop: () => void } {
  let timer: NodeJS.Timeout | undefined
  const watch = { seen: false, stop: () => { clearInterval(timer) }, promise: new Promise<void>(() => {}) }
  if (!enabled) return watch
  watch.promise = new Promise<void>((resolve) => {
    timer = setInterval(() => {
      const last = healthOf(node).at(-1)?.t ?? 0
      if (Date.now() - last > FROZEN_MS) { watch.seen = true; clearInterval(timer); resolve() }
    }, 250)
  })
  return watch
}

/** The attacker's link to `peer` closed by the far end during [from, to]: the node it flooded disconnected it. */
export function disconnectedBy (s: Stage, peer: string, played: Played): boolean {
  return attackerLinks(s.attacker).some((e) => e.peer === peer && !e.up && e.t >= played.t0 && e.t <= played.t1 && e.reason !== 'local')
}

/**
 * For a flood played with `redialAfter`: the attacked node closed the flooding link during the
 * attack, and none of the attacker's redials after it kept a link (scoring's ban, mesh/routing/score.ts).
 */
export function expectDisconnectedAndKeptOut (s: Stage, played: Played, label: string): void {
  expect(disconnectedBy(s, s.at.id, played), `${label}: the flooding link was closed by the device`).toBe(true)
  expect(played.afterResult, `${label}: the flooding peer is kept out: no redial keeps a link`).toEqual(expect.any(Array))
  expect(played.afterResult, `${label}: the flooding peer is kept out: no redial keeps a link`).not.toContain('kept')
}

/** Play's `after` for a flood: the attacker tries to link to the device again three times, 1.5 s apart (stay: true). */
export function redialAfter (s: Stage): { after: () => Promise<unknown>, stay: true } {
  return { after: async () => await s.attacker.call<string[]>('redial', { ...s.at, peer: s.at.id, attempts: 3, everyMs: 1500, holdMs: 1000 }, 20_000), stay: true }
}

/** The suite's verdict on a played attack: responsive, on schedule and delivering during and after, memory bounded. */
export function expectSurvived (played: Played, label: string): void {
  log(label, {
    during: brief(played.during),
    after: brief(played.after),
    rssMB: [played.memory.beforeBytes, played.memory.peakBytes].map((b) => Math.round(b / 1048576)),
    retainedMB: [played.memory.retainedBefore, played.memory.retainedAfter].map((b) => Number.isFinite(b) ? Math.round(b / 104857.6) / 10 : '-'),
    attackerDropped: played.attackerDropped,
    result: played.result
  })
  expectHealthy(played.during, label)
  expectHealthy(played.after, label)
  expectMemoryBounded(played.memory, label)
}

function brief (v: Verdict): Record<string, unknown> {
  return {
    ...v.responsive,
    p99Ms: Number.isFinite(v.responsive.p99Ms) ? v.responsive.p99Ms : '>1000',
    ticks: `${v.sampling.ticks}/${v.sampling.expected}`,
    tickGap: v.sampling.maxGapMs,
    delivered: `${v.delivery.received}/${v.delivery.signed}`,
    dup: v.delivery.duplicates,
    ...v.control === undefined
      ? {}
      : { control: { p99Ms: Number.isFinite(v.control.responsive.p99Ms) ? v.control.responsive.p99Ms : '>1000', maxMs: v.control.responsive.maxMs, ticks: `${v.control.sampling.ticks}/${v.control.sampling.expected}`, tickGap: v.control.sampling.maxGapMs } }
  }
}
