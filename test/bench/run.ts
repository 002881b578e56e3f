/**
 * `npm run bench`: prints one JSON object (the last line of stdout) with every figure, each next
 * to the baseline measured in the same run. Progress goes to stderr.
 *   --quick          short rounds (a smoke run)
 *   --only a,b       run only these sections
 */
import { cpus, totalmem } from 'node:os'
import { parseArgs } from 'node:util'
import { benchCodec } from './codec.js'

type Section = (quick: boolean) => Promise<Record<string, unknown>> | Record<string, unknown>

const sections: Record<string, Section> = {
  codec: benchCodec
}

async function main (): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean' }, only: { type: 'string' } } })
  const quick = values.quick === true || process.env.IOTMESH_BENCH_QUICK === '1'
  const only = values.only?.split(',').map((s) => s.trim())
  const result: Record<string, unknown> = {
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model, memory_gib: Math.round(totalmem() / 2 ** 30), node: process.version },
    quick
  }
  for (const [name, section] of Object.entries(sections)) {
    if (only !== undefined && !only.includes(name)) continue
    process.stderr.write(`bench: ${name}…\n`)
    const t0 = Date.now()
    Object.assign(result, await section(quick))
    process.stderr.write(`bench: ${name} done in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`)
  }
  process.stdout.write(`${JSON.stringify(result)}\n`)
}

await main()
