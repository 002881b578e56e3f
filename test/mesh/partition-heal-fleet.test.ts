import { appendFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { afterAll, expect, it } from 'vitest'
import { Gateway } from '../../gateway/index.js'
import { createLan, type Lan } from '../../firmware-sim/fleet/lan.js'
import { assertBuilt } from '../helpers/fresh-build.js'
import { describeNet } from '../helpers/netns.js'

/**
 * Partitions heal completely over TCP, with honest devices (issue 11): fleets of mesh devices
 * (firmware-sim Device: outbox, end-to-end acks) as one real process per namespace host, found by
 * DNS-SD, linked over TCP with the links' and routing's own defaults (as `iotmesh sim --hosts`
 * runs them); the gateway in this process on the LAN's bridge is the only subscriber (durable), so
 * readings travel device to device towards it. Host 0 is never cut off; every second host is cut
 * off silently (`ip link set … down`, no FIN), twice, while every device samples every 250 ms.
 *
 * What it guards against, measured here before the fix (2 cycles): after each heal relays asked
 * their neighbours for whole histories (full DIGEST, WANT) and pushed what they got on to the
 * gateway, which held most of it: 14,591 duplicates reached it unasked (158 after), each counted
 * against the relay that sent it, and the gateway banned 10 of its 20 honest neighbours for
 * "duplicates" (0 after); with 60 devices on 6 hosts, 1,562 of 15,314 readings were still missing
 * 90 s after the last heal. So: every reading published before the last heal reaches the
 * gateway, and no honest node is banned by the gateway or by another device.
 *
 * Tunable for experiments (IOTMESH_HEAL_*): HOSTS, PER_HOST, CYCLES, CUT_MS, HEAL_MS, INTERVAL,
 * SETTLE_MS; FAST=1 for a 500/2000 ms keepalive and 500 ms DIGESTs; CUT=rotate to cut two hosts
 * at a time, rotating; TRACE=file to append the trail of missing readings and the bans.
 */

const HOSTS = Number(process.env.IOTMESH_HEAL_HOSTS ?? 4)
const PER_HOST = Number(process.env.IOTMESH_HEAL_PER_HOST ?? 5)
const CYCLES = Number(process.env.IOTMESH_HEAL_CYCLES ?? 2)
const CUT_MS = Number(process.env.IOTMESH_HEAL_CUT_MS ?? 20_000)
const HEAL_MS = Number(process.env.IOTMESH_HEAL_HEAL_MS ?? 15_000)
const INTERVAL = Number(process.env.IOTMESH_HEAL_INTERVAL ?? 250)
const SETTLE_MS = Number(process.env.IOTMESH_HEAL_SETTLE_MS ?? 40_000)
const FAST = process.env.IOTMESH_HEAL_FAST === '1'
const KEEPALIVE = FAST ? { keepaliveInterval: 500, keepaliveTimeout: 2000 } : {}
const ROUTING = FAST ? { syncInterval: 500 } : {}
const ROTATE = process.env.IOTMESH_HEAL_CUT === 'rotate'
const TRACE = process.env.IOTMESH_HEAL_TRACE

const root = fileURLToPath(new URL('../..', import.meta.url))

/** One host's fleet (the build's createFleet, no gateway), reporting each reading it publishes over IPC. */
const CHILD = `
const { createFleet } = await import(${JSON.stringify(`${root}dist/firmware-sim/index.js`)})
const e = process.env
const fleet = await createFleet({
  devices: Number(e.N), firstIndex: Number(e.FIRST), mode: 'mesh', gateway: false, host: e.HOST, seed: 7, interval: Number(e.INTERVAL),
  sensors: 'temperature', link: JSON.parse(e.LINK), routing: JSON.parse(e.ROUTING)
})
const send = (m) => { if (process.connected) process.send(m) }
fleet.on('reading', (r) => { send({ ev: 'r', o: r.origin, s: r.seq }) })
for (const d of fleet.devices) {
  const node = d.device?.node
  node?.on('peer:banned', (info) => { send({ ev: 'ban', by: d.keys.id, peer: info.peer, score: node.peers().find((p) => p.id === info.peer)?.score }) })
}
process.on('message', (m) => {
  if (m.cmd === 'stats') {
    send({ ev: 'stats', devices: fleet.devices.map((d) => ({ name: d.name, id: d.keys.id, counters: d.device?.counters, node: d.device?.node?.counters })) })
  }
})
process.on('disconnect', () => { void fleet.stop().finally(() => process.exit(0)) })
process.send({ ev: 'ready', ids: fleet.devices.map((d) => d.keys.id) })
`

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

interface Published { host: number, at: number }

let lan: Lan | undefined
let gateway: Gateway | undefined
/** The hosts' fleet processes: told to stop (IPC disconnect) also when the test failed early. */
const running: Array<{ connected: boolean, disconnect: () => void }> = []
afterAll(async () => {
  for (const child of running) if (child.connected) child.disconnect()
  await gateway?.stop()
  await lan?.destroy()
})

describeNet('partitions heal completely over TCP, with device fleets', () => {
  it(`${HOSTS} hosts × ${PER_HOST} mesh devices, ${CYCLES} silent cut/heal cycles: every reading reaches the gateway`, async () => {
    assertBuilt(['mesh', 'shared', 'firmware-sim', 'gateway'])
    lan = await createLan({ hosts: HOSTS, bridgeHost: 254, subnet: '10.81.0' })
    const address = lan.address as string
    const got = new Map<string, Set<number>>()
    gateway = new Gateway({ host: address, port: 0, wsPort: false, mesh: { host: address, link: KEEPALIVE, routing: ROUTING } })
    gateway.on('reading', (r) => {
      if (r.deviceTopic.startsWith('$')) return
      let seqs = got.get(r.origin)
      if (seqs === undefined) got.set(r.origin, seqs = new Set())
      seqs.add(r.seq)
    })
    await gateway.start()
    const bans: Array<Record<string, unknown>> = []
    gateway.mesh?.on('peer:banned', (info) => { bans.push({ by: 'gateway', peer: info.peer, at: Math.round(performance.now()), score: gateway?.mesh?.peers().find((p) => p.id === info.peer)?.score }) })

    const published = new Map<string, Map<number, Published>>()
    const hostOf = new Map<string, number>()
    const t0 = performance.now()
    const children = lan.hosts.map((host, h) => {
      const child = (lan as Lan).spawn(host, process.execPath, ['--input-type=module', '-e', CHILD], {
        ipc: true,
        stderr: 'inherit',
        env: {
          ...process.env, N: String(PER_HOST), FIRST: String(h * PER_HOST), HOST: host.address, INTERVAL: String(INTERVAL),
          LINK: JSON.stringify(KEEPALIVE), ROUTING: JSON.stringify(ROUTING)
        }
      })
      running.push(child)
      const ready = new Promise<void>((resolve, reject) => {
        child.once('exit', (code) => { reject(new Error(`host ${h} fleet exited (${code})`)) })
        child.on('message', (m: { ev: string, o?: string, s?: number, ids?: string[], [key: string]: unknown }) => {
          if (m.ev === 'ban') bans.push({ ...m, at: Math.round(performance.now()) })
          if (m.ev === 'ready') { for (const id of m.ids ?? []) hostOf.set(id, h); resolve() }
          if (m.ev === 'r') {
            let seqs = published.get(m.o as string)
            if (seqs === undefined) published.set(m.o as string, seqs = new Map())
            seqs.set(m.s as number, { host: h, at: performance.now() - t0 })
          }
        })
      })
      return { child, ready }
    })
    await Promise.all(children.map(async (c) => { await c.ready }))

    const warm = Date.now() + 60_000 // 20 processes starting on a loaded machine (12 of 20 heard in 30 s at load 17)
    while (got.size < HOSTS * PER_HOST && Date.now() < warm) await sleep(200)
    expect(got.size, 'devices heard by the gateway before the first cut').toBe(HOSTS * PER_HOST)

    const phases: Array<{ at: number, what: string }> = []
    for (let c = 0; c < CYCLES; c++) {
      // Host 0 stays on the LAN throughout.
      const cut = ROTATE
        ? [1 + (c % (HOSTS - 1)), 1 + ((c + 1) % (HOSTS - 1))].filter((v, i, a) => a.indexOf(v) === i)
        : lan.hosts.map((_, h) => h).filter((h) => h % 2 === 1)
      phases.push({ at: performance.now() - t0, what: `cut ${cut.join('+')}` })
      for (const h of cut) await lan.connect(lan.hosts[h] as never, false)
      await sleep(CUT_MS)
      phases.push({ at: performance.now() - t0, what: 'heal' })
      for (const h of cut) await lan.connect(lan.hosts[h] as never, true)
      await sleep(HEAL_MS)
    }
    const healedAt = performance.now() - t0

    const missing = (): Array<{ origin: string, seq: number, host: number, at: number }> => {
      const out: Array<{ origin: string, seq: number, host: number, at: number }> = []
      for (const [origin, seqs] of published) {
        const have = got.get(origin)
        for (const [seq, p] of seqs) if (p.at < healedAt && have?.has(seq) !== true) out.push({ origin, seq, ...p })
      }
      return out
    }
    const deadline = Date.now() + SETTLE_MS
    const trail: string[] = []
    while (missing().length > 0 && Date.now() < deadline) {
      trail.push(`${Math.round(performance.now() - t0 - healedAt)} ms: ${missing().length}`)
      if (TRACE !== undefined) appendFileSync(TRACE, `${trail.at(-1) as string}\n`)
      await sleep(1000)
    }
    const lost = missing()
    if (TRACE !== undefined) {
      appendFileSync(TRACE, JSON.stringify({ bans, gateway: gateway.mesh?.peers().filter((p) => p.score !== undefined).map((p) => ({ id: p.id.slice(0, 8), ...p.score })) }) + '\n')
    }
    console.log(`missing after the last heal: ${trail.join(', ')}`)
    if (lost.length > 0) {
      const stats: unknown[] = []
      for (const { child } of children) {
        const answer = new Promise((resolve) => {
          const on = (m: { ev?: string }): void => { if (m.ev === 'stats') { child.off('message', on); resolve(m) } }
          child.on('message', on)
        })
        child.send({ cmd: 'stats' })
        stats.push(await Promise.race([answer, sleep(2000)]))
      }
      const phaseOf = (at: number): string => phases.filter((p) => p.at <= at).pop()?.what ?? 'before'
      const byOrigin = new Map<string, typeof lost>()
      for (const m of lost) byOrigin.set(m.origin, [...(byOrigin.get(m.origin) ?? []), m])
      const report = JSON.stringify({
        lost: lost.length,
        published: [...published.values()].reduce((a, s) => a + s.size, 0),
        phases,
        byOrigin: [...byOrigin].map(([o, l]) => ({ origin: o.slice(0, 8), host: hostOf.get(o), n: l.length, seqs: l.slice(0, 6).map((m) => `${m.seq}@${Math.round(m.at)}(${phaseOf(m.at)})`) })),
        bans,
        gateway: gateway.mesh?.counters,
        stats
      }, null, 1)
      if (TRACE !== undefined) appendFileSync(TRACE, report + '\n')
      console.log(report.slice(0, 20_000))
    }
    for (const { child } of children) if (child.connected) child.disconnect()
    expect(lost.length, 'readings published before the last heal that never reached the gateway').toBe(0)
    expect(bans, 'honest nodes banned by the gateway or by another device').toEqual([])
  }, 90_000 + CYCLES * (CUT_MS + HEAL_MS) + SETTLE_MS)
})
