import { afterAll, afterEach, expect, it } from 'vitest'
import { fileURLToPath } from 'node:url'
import { describeNet } from '../helpers/netns.js'
import { JsonLines } from '../helpers/json-lines.js'
import { TEST_TIMEOUT, World, expectNoHarnessErrors, itLong, onlyVerdicts, sleep } from '../helpers/adversary.js'

/**
 * The issue's rows without an attacker: the control plane of a simulated fleet looping on its
 * own, and what a power-cut device leaves in standard DNS-SD browsers.
 */

const IOTMESH = fileURLToPath(new URL('../../bin/iotmesh.js', import.meta.url))
/** One report of loop-monitor.ts. */
interface LoopReport { t: number, p99: number, max: number }

const LOOP_MONITOR = fileURLToPath(new URL('../../dist/test/adversarial/loop-monitor.js', import.meta.url))
/** The issue's run: 50 hybrid devices over memory links for 30 s. */
const SIM_SECONDS = 30
/**
 * The longest a timer of the simulator may wait, ms: a busy in-process fleet of 50 and its gateway
 * on a loaded machine (1.5 s seen here), not a loop that never yields (the rest of the run).
 */
const STARVED_MS = 3000

describeNet('adversarial: a fleet on its own', () => {
  let world: World | undefined
  afterEach(async () => { await world?.destroy(); world = undefined })
  afterAll(expectNoHarnessErrors)

  // Never it.fails: before WP 10-C1 the loop showed in some runs only (2 of 10, both with the
  // machine's load average at 8 or more: the summary printed, then no timer ran and SIGINT did
  // nothing until SIGKILL). WP 10-C1 (routing: adverts on the clock) fixed it: this must pass every time.
  itLong('iotmesh sim --devices 50 --mode hybrid --transport memory --duration 30 ends on time and answers SIGINT', onlyVerdicts(async () => {
    world = await World.create(1)
    const started = Date.now()
    const sim = new JsonLines(world.lan.spawn(world.host(0), process.execPath,
      [IOTMESH, 'sim', '--devices', '50', '--mode', 'hybrid', '--transport', 'memory', '--duration', String(SIM_SECONDS), '--http-port', '0', '--json'],
      { env: { ...process.env, NODE_OPTIONS: `--import=${LOOP_MONITOR}` } }))
    const ended = await Promise.race([sim.exited.then(() => Date.now()), sleep((SIM_SECONDS + 15) * 1000).then(() => undefined)])
    const watched = ended ?? Date.now()
    let answeredSigint: boolean | undefined
    if (ended === undefined) {
      sim.child.kill('SIGINT')
      answeredSigint = await Promise.race([sim.exited.then(() => true), sleep(5000).then(() => false)])
    }
    const summary = sim.lines.at(-1)
    // The loop monitor's reports: a control plane looping in microtasks starves the timer that sends them.
    const loop = sim.stderr.split('\n').filter((l) => l.startsWith('iotmesh-loop ')).map((l) => JSON.parse(l.slice(13)) as LoopReport)
    // From 10 s in (starting 50 devices and a gateway held the loop for 4 s once) to the exit, or to
    // when we stopped waiting: the silence after the last report counts (a loop that never yields).
    const times = [...loop.map((r) => r.t), watched]
    const gaps = times.slice(1).map((t, i) => t > started + 10_000 ? t - (times[i] as number) : 0)
    const figures = {
      seconds: ended === undefined ? null : (ended - started) / 1000,
      answeredSigint,
      reports: loop.length,
      maxGapMs: Math.max(0, ...gaps),
      maxDelayMs: Math.max(0, ...loop.map((r) => r.max)),
      summary
    }
    console.log(`[adversarial] memory fleet ${JSON.stringify(figures)}`)
    expect(summary, `the summary; stderr: ${sim.stderr.slice(-500)}`).toMatchObject({ devices: 50 })
    expect(ended, `the run did not end within ${SIM_SECONDS + 15} s (after SIGINT: ${String(answeredSigint)})`).toBeDefined()
    expect(((ended as number) - started) / 1000).toBeLessThanOrEqual(SIM_SECONDS + 15)
    expect(figures.maxGapMs, 'the longest time the loop monitor\'s timer was starved, ms').toBeLessThanOrEqual(STARVED_MS)
  }), TEST_TIMEOUT)

  // Passes since WP 10-B (RFC 6762 §10 TTLs); before it, the service PTR lived 28,800 s.
  it('a power-cut device leaves DNS-SD browsers within minutes: host-bound records 120 s, none over 75 min (RFC 6762 §10)', onlyVerdicts(async () => {
    world = await World.create(2)
    const device = await world.device('P', 0)
    const browser = await world.attacker(1)
    const records = await browser.call<Array<{ name: string, type: string, ttl: number }>>('mdnsQuery', { durationMs: 2500 })
    const mine = records.filter((r) => r.type !== 'PTR' || r.name.startsWith('_'))
    console.log(`[adversarial] DNS-SD TTLs ${JSON.stringify([...new Set(mine.map((r) => `${r.type} ${r.ttl}`))])}`)
    expect(mine.map((r) => r.type)).toEqual(expect.arrayContaining(['PTR', 'SRV', 'TXT', 'A']))
    await device.kill() // the power cut: no goodbye; browsers keep what they heard for its TTL
    for (const r of mine) {
      expect(r.ttl, `${r.type} ${r.name}: no record lives longer than 75 min`).toBeLessThanOrEqual(4500)
      if (['SRV', 'A', 'AAAA'].includes(r.type)) expect(r.ttl, `${r.type} ${r.name}: bound to a host name, 120 s`).toBeLessThanOrEqual(120)
    }
  }), TEST_TIMEOUT)
})
