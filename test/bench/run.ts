/**
 * `npm run bench`: prints one JSON object (the last line of stdout) with every figure, each next
 * to the baseline measured in the same run. Progress goes to stderr.
 *   --quick          short rounds (a smoke run)
 *   --only a,b       run only these sections
 */
import { cpus, totalmem } from 'node:os'
import { parseArgs } from 'node:util'
import { spawnSync } from 'node:child_process'
import { benchCodec } from './codec.js'
import { benchCommands } from './commands.js'
import { benchFleet } from './fleet.js'
import { benchFloor } from './floor.js'
import { benchIngest } from './ingest.js'
import { benchLinks } from './links.js'
import { benchPaths } from './paths.js'
import { benchStore } from './store.js'
import { benchTcp } from './tcp.js'
import { benchTraffic } from './traffic.js'
import { benchMoves } from './moves.js'

type Section = (quick: boolean) => Promise<Record<string, unknown>> | Record<string, unknown>

const sections: Record<string, Section> = {
  codec: benchCodec,
  floor: benchFloor,
  links: benchLinks,
  paths: benchPaths,
  ingest: benchIngest,
  store: benchStore,
  traffic: benchTraffic,
  moves: benchMoves,
  fleet: benchFleet,
  tcp: benchTcp,
  commands: benchCommands
}

/**
 * Like ../shared/anchors-bench, the benchmark re-runs itself inside a private network namespace
 * (`unshare -rn`, only `lo`) when it can: every socket is on a loopback of its own. Elsewhere it
 * runs on the host's 127.0.0.1, which is also safe: nothing here multicasts or leaves loopback.
 */
function reexecInNamespace (): void {
  if (process.env.IOTMESH_NETNS === '1' || process.env.IOTMESH_BENCH_HOST_LO === '1') return
  const probe = spawnSync('unshare', ['-rn', 'true'])
  if (probe.status !== 0) return
  const r = spawnSync('unshare', ['-rn', 'sh', '-c', 'ip link set lo up && exec "$0" "$@"', process.execPath, ...process.argv.slice(1)], { stdio: 'inherit', env: { ...process.env, IOTMESH_NETNS: '1' } })
  process.exit(r.status ?? 1)
}

/** The section running now: named if the event loop empties under it (see the `beforeExit` below). */
let running: string | undefined

/**
 * Node exits 13 when a top-level await is left pending on an empty event loop (every timer of the
 * mesh is unref'd, shared/clock.ts): say in which section, instead of a bare exit code.
 */
process.on('beforeExit', () => {
  if (running !== undefined) process.stderr.write(`bench: the event loop emptied while section "${running}" was still waiting: a promise nothing will settle (exit 13)\n`)
})

async function main (): Promise<void> {
  reexecInNamespace()
  const { values } = parseArgs({ options: { quick: { type: 'boolean' }, only: { type: 'string' } } })
  const quick = values.quick === true || process.env.IOTMESH_BENCH_QUICK === '1'
  const only = values.only?.split(',').map((s) => s.trim())
  const result: Record<string, unknown> = {
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model, memory_gib: Math.round(totalmem() / 2 ** 30), node: process.version },
    quick,
    netns: process.env.IOTMESH_NETNS === '1'
  }
  for (const [name, section] of Object.entries(sections)) {
    if (only !== undefined && !only.includes(name)) continue
    process.stderr.write(`bench: ${name}…\n`)
    const t0 = Date.now()
    running = name
    Object.assign(result, await section(quick))
    running = undefined
    process.stderr.write(`bench: ${name} done in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`)
  }
  process.stdout.write(`${JSON.stringify(result)}\n`)
}

await main()
