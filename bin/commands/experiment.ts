import { copyFile, mkdir, readdir, readFile, rmdir, stat, writeFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'
import { dirname, join, resolve } from 'node:path'
import {
  AUTOMATION_PRESETS, AUTOMATION_WAYS, REVOCATION_PATHS, REVOCATION_PRESETS, refreshRevocation, revocationParams, revocationRunSeconds, runRevocation, type RevocationPath, EXPERIMENT_KINDS, MODES, automationPlan, automationRunSeconds, clockTime, runAutomation, createProgress, failoverRunSeconds, failoverTimeline, latencyRunSeconds, compareRuns, parseSavedResults, refreshAutomationRepetitions, refreshLatency, refreshScale, reproductionMarkdown, refreshRepetitions, runFailover, runLatency, runScale,
  writeReport,
  scaleRunSeconds, summaryText, FAILOVER_PRESETS, LATENCY_DEFAULTS, LATENCY_QUICK, SCALE_DEFAULTS, SCALE_QUICK,
  type AutomationRunInit, type AutomationWay, type ExperimentKind, type ExperimentResults, type FailoverRunInit, type LatencyRunInit, type Mode, type ProgressStream, type ScaleRunInit
} from '../../lab/index.js'
import { meshError } from '../../shared/index.js'
import { EXIT_INVALID, EXIT_OK, intFlag, numberFlag, onFileArgument, write, type Command, type Io } from '../cli.js'

/**
 * `iotmesh experiment failover|scale|latency|automation`: runs one experiment (lab/runners/*.ts),
 * shows its progress on stderr, writes the report into --out and prints the headline figures and
 * the checks. Exit 0 when every check holds, 1 when one fails, 2 for a usage error.
 */

/** Flags each experiment takes, besides --out, --seed, --quick and --json. */
const FLAGS: Record<ExperimentKind, readonly string[]> = {
  failover: ['repeat', 'devices', 'modes', 'interval', 'transport', 'settle', 'steady', 'broker-down', 'crash-count', 'crash', 'partition', 'gap', 'drain'],
  scale: ['repeat', 'devices', 'sizes', 'modes', 'interval', 'transport', 'settle', 'duration', 'warmup', 'drain'],
  latency: ['repeat', 'rounds', 'warmup', 'pause'],
  automation: ['repeat', 'devices', 'ways', 'interval', 'settle', 'steady', 'broker-down', 'crash-count', 'crash', 'partition', 'gap', 'drain', 'ttl'],
  revocation: ['repeat', 'devices', 'topology', 'paths', 'interval', 'victim-interval', 'before', 'after', 'settle', 'link-delay', 'transport']
}

export const experiment: Command = {
  name: 'experiment',
  summary: 'Measure broker versus mesh: failover, scale, latency, automation or revocation; writes a report (Markdown, JSON, SVG)',
  usage: 'iotmesh experiment failover|scale|latency|automation|revocation [--out DIR [--force]] [--seed X] [--devices N] [--quick] [--json] [flags of the experiment]\n' +
    '       iotmesh experiment [KIND] --from DIR/results.json [--render-only] [--out DIR [--force]] [--json]',
  help: [
    ['failover', 'each mode (broker, mesh, hybrid) through the same seeded faults: broker down, crashes, a partition'],
    ['scale', 'fleets of growing size: traffic, CPU and memory per device, delivery, latency'],
    ['latency', 'one mesh hop, three mesh hops and the broker path between processes, interleaved'],
    ['automation', 'the same rules (motion → hall light, cold → heater) run on the devices, at the gateway, and both, through the failover faults: ' +
      'per phase, triggers acted on in time, late, missed, executed twice or after expiry, and trigger-to-action latency'],
    ['revocation', 'a fleet closed by credential on a multi-hop mesh, and the same devices on the broker: the owners revoke one device that keeps publishing; ' +
      'per node the time until it refuses the device (p50/p99/max), frames accepted from it after the revocation was issued, the broker\'s cut-off'],
    ['--out DIR', 'where the report goes (default ./experiment-<kind>-<UTC timestamp>); a directory that holds files is refused'],
    ['--force', 'write the report into --out even when it holds files (an earlier report is overwritten)'],
    ['--from FILE', 'reproduce a saved run: its recorded command again, then reproduction.md says whether each new figure falls inside the saved run\'s 95 % interval (runs made with --repeat); exit 1 when one falls outside'],
    ['--render-only', 'with --from: run nothing, re-render report.md and the charts from the saved results.json (checked against its schema); repeated runs get their intervals and checks again from each run\'s values'],
    ['--seed X', 'seed of the fleets and the fault timeline (default 1); latency: of the order of the paths within each round'],
    ['--quick', 'the short preset: failover 6 devices, about 40 s per mode; scale 5, 10, 20 devices; latency 200 rounds; automation 6 devices, about 70 s per way'],
    ['--json', 'no progress; print {out, files, results} as JSON'],
    ['--repeat N', 'N runs with seeds X, X+1, …; every figure with a 95 % t-interval over the runs, the checks judged on the intervals (shares on the runs\' readings pooled). failover, scale, latency, automation: default 1; revocation: default 5, quick 3'],
    ['--devices N', 'failover: fleet size (default 20; quick 6); automation: default 12, quick 6; scale: the largest fleet; revocation: default 100, quick 12'],
    ['--topology T', 'revocation: the mesh path\'s fixed links, grid (default) or line'],
    ['--paths LIST', 'revocation: mesh,broker (default both)'],
    ['--victim-interval MS', 'revocation: sampling interval of the revoked device (default 500; quick 100); the others use --interval (default 5000; quick 1000)'],
    ['--before S', 'revocation: normal traffic before the revocation (default 3; quick 2)'],
    ['--after S', 'revocation: observation after it (default 8; quick 4)'],
    ['--link-delay MS', 'revocation: delay each mesh link adds to every message (default 0: in-memory links; memory only)'],
    ['--ways LIST', 'automation: where the rules run, default device,central,hybrid'],
    ['--ttl S', 'automation: lifetime of every rule\'s command; a trigger acted on later is late (default 5; quick 3)'],
    ['--modes LIST', 'failover: default broker,mesh,hybrid; scale: default broker,mesh'],
    ['--interval MS', 'failover, scale: sampling interval of every device (default 1000); automation: default 250'],
    ['--transport T', 'failover: tcp (default, with DNS-SD) or memory; scale: tcp, memory or auto (default: tcp up to 50 devices); revocation: the mesh path\'s links, memory (default) or tcp (127.0.0.1, each node its own TCP transport: credentials shown and checked at every handshake)'],
    ['--settle S', 'failover, scale: longest wait for a fleet to form before measuring (default 30); revocation: default 60, quick 30'],
    ['--steady S', 'failover: the first phase, no fault (default 20; quick 5); automation: quick 8'],
    ['--broker-down S', 'failover: how long the broker stays down (default 30; quick 6; 0: no broker fault); automation: default 40, quick 15'],
    ['--crash-count N', 'failover: devices crashed at once (default 3; quick 2; 0: none)'],
    ['--crash S', 'failover: how long they stay down (default 20; quick 5)'],
    ['--partition S', 'failover: how long the fleet stays split in two (default 20; quick 6; 0: none)'],
    ['--gap S', 'failover: the recovery phase after each fault (default 20; quick 5)'],
    ['--drain S', 'failover: observation after the last phase (default 10; quick 5); scale: after each window (default 3)'],
    ['--sizes LIST', 'scale: fleet sizes (default 5,10,20,50,100,200; a mode stops growing below 99 % delivery)'],
    ['--duration S', 'scale: measured window per fleet (default 20; quick 8)'],
    ['--warmup N', 'scale: seconds of settling before the window (default 5); latency: unrecorded rounds (default 100)'],
    ['--rounds N', 'latency: measured rounds, one probe per path each (default 1000; quick 200)'],
    ['--pause MS', 'latency: pause between two probes (default 2)']
  ],
  allowPositionals: 1,
  options: {
    out: { type: 'string' }, from: { type: 'string' }, 'render-only': { type: 'boolean' }, seed: { type: 'string' }, quick: { type: 'boolean' }, json: { type: 'boolean' }, force: { type: 'boolean' },
    devices: { type: 'string', short: 'n' }, modes: { type: 'string' }, interval: { type: 'string' }, transport: { type: 'string' }, settle: { type: 'string' },
    steady: { type: 'string' }, 'broker-down': { type: 'string' }, 'crash-count': { type: 'string' }, crash: { type: 'string' }, partition: { type: 'string' },
    gap: { type: 'string' }, drain: { type: 'string' }, sizes: { type: 'string' }, duration: { type: 'string' }, warmup: { type: 'string' },
    rounds: { type: 'string' }, pause: { type: 'string' }, repeat: { type: 'string' }, ways: { type: 'string' }, ttl: { type: 'string' },
    topology: { type: 'string' }, paths: { type: 'string' }, 'victim-interval': { type: 'string' }, before: { type: 'string' }, after: { type: 'string' }, 'link-delay': { type: 'string' }
  },
  async run ({ values, positionals }, io) {
    if (values.from !== undefined) return values['render-only'] === true ? await rerender(values, positionals[0], io) : await reproduce(values, positionals[0], io)
    if (values['render-only'] === true) throw meshError('ERR_BAD_ARGUMENT', '--render-only goes with --from FILE: it re-renders a saved run')
    const { run, out } = await runKind(positionals[0], values, io)
    return report(run, out, values.json === true, io)
  }
}

/** Runs experiment `kind` with `values` (flags), its report into --out; the results and where they went. */
async function runKind (kind: string | undefined, values: Record<string, unknown>, io: Io): Promise<{ run: { results: ExperimentResults, files: string[] }, out: string }> {
  if (kind === undefined || !(EXPERIMENT_KINDS as readonly string[]).includes(kind)) {
    throw meshError('ERR_BAD_ARGUMENT', `name the experiment: ${EXPERIMENT_KINDS.join(', ')} (got ${kind === undefined ? 'none' : JSON.stringify(kind)}); see iotmesh experiment --help`)
  }
  const k = kind as ExperimentKind
  for (const flag of Object.values(FLAGS).flat()) {
    if (values[flag] !== undefined && !FLAGS[k].includes(flag)) {
      const owners = EXPERIMENT_KINDS.filter((e) => FLAGS[e].includes(flag))
      throw meshError('ERR_BAD_ARGUMENT', `--${flag} is a flag of ${owners.join(' and ')}, not of ${k}`)
    }
  }
  const json = values.json === true
  const out = resolve((values.out as string | undefined) ?? `experiment-${k}-${stamp(new Date())}`)
  const plan = k === 'failover' ? failoverPlan(values) : k === 'scale' ? scalePlan(values) : k === 'latency' ? latencyPlan(values) : k === 'automation' ? automationRunPlan(values) : revocationPlan(values)
  // Never over an earlier report: a directory that holds anything is refused unless --force.
  const existing = await onFileArgument(out, '--out', async () => await readdir(out).catch((err: NodeJS.ErrnoException) => { if (err.code === 'ENOENT') return []; throw err }))
  if (existing.length > 0 && values.force !== true) {
    throw meshError('ERR_BAD_ARGUMENT', `--out ${out} already holds ${existing.length} file${existing.length === 1 ? '' : 's'} (${existing.slice(0, 3).join(', ')}${existing.length > 3 ? ', …' : ''}): choose another directory, or --force to write over them`)
  }
  const created = await onFileArgument(out, '--out', async () => await mkdir(out, { recursive: true }))
  const progress = createProgress({ totalS: plan.seconds, json, label: `experiment ${k}` }, { stream: progressStream(io.stderr) })
  if (!json) write(io.stdout, `iotmesh experiment ${k}: ${plan.describe}, about ${clockTime(plan.seconds)}; report in ${out}`)
  const components = { progress, signal: io.signal, command: commandLine(k, values) }
  let run: { results: ExperimentResults, files: string[] }
  try {
    run = await plan.run(out, components)
  } catch (err) {
    // Interrupted or failed before writing: leave no empty directory behind (one we made).
    if (created !== undefined) await rmdir(out).catch(() => {})
    throw err
  } finally {
    progress.finish()
  }
  return { run, out }
}

/**
 * `--from results.json` (issue 14): the saved run's command again (its provenance, the flags as
 * they were typed; --out, --force and --json are this call's), then each figure of the new run
 * against the saved run's 95 % intervals (lab/results/reproduce.ts), into reproduction.md and
 * reproduction.json beside the new report. Exit 1 when a check of the new run fails or a figure
 * falls outside its old interval.
 */
async function reproduce (values: Record<string, unknown>, kind: string | undefined, io: Io): Promise<number> {
  const from = resolve(values.from as string)
  const given = RUN_FLAGS.find((f) => values[f] !== undefined)
  if (given !== undefined) throw meshError('ERR_BAD_ARGUMENT', `--from runs the saved run's own command: --${given} does not apply (drop --from to run with other flags)`)
  const saved = parseSavedResults(await onFileArgument(from, '--from', async () => await readFile(from, 'utf8')), from)
  if (kind !== undefined && kind !== saved.experiment) throw meshError('ERR_BAD_ARGUMENT', `--from ${from} holds a ${saved.experiment} experiment, not ${kind}`)
  const argv = commandArgv(saved.provenance?.command ?? null, from)
  const parsed = parseArgs({ args: argv.slice(3), options: experiment.options, allowPositionals: false, strict: true }).values as Record<string, unknown>
  for (const own of ['out', 'force', 'json']) parsed[own] = values[own] // the new run records the effective command, without --from
  if (values.json !== true) write(io.stdout, `iotmesh experiment --from ${from}: running its command again (${commandLine(argv[2] as string, { ...parsed, out: undefined, force: undefined, json: undefined, from: undefined, 'render-only': undefined })})`)
  const { run, out } = await runKind(argv[2], parsed, io)
  const reproduction = compareRuns(from, saved, run.results)
  const files = [join(out, 'reproduction.md'), join(out, 'reproduction.json')]
  await writeFile(files[0] as string, reproductionMarkdown(reproduction))
  await writeFile(files[1] as string, `${JSON.stringify(reproduction, null, 2)}\n`)
  run.files.push(...files)
  const code = report(run, out, values.json === true, io)
  if (values.json === true) {
    write(io.stdout, JSON.stringify({ reproduction }))
  } else {
    write(io.stdout, `\nreproduction ${join(out, 'reproduction.md')}: ${reproduction.verdict} (${reproduction.inside} inside the saved intervals, ${reproduction.outside} outside, ${reproduction.unjudged} not judged)`)
  }
  return code !== EXIT_OK || reproduction.verdict === 'not-reproduced' ? EXIT_INVALID : EXIT_OK
}

/** The argv of a recorded command line (`commandLine` below wrote it: single quotes, '\\'' inside), checked to be an experiment's. */
function commandArgv (command: string | null, from: string): string[] {
  if (command === null) throw meshError('ERR_BAD_ARGUMENT', `${from} records no command (made before runs recorded their provenance): re-render it with --from FILE --render-only`)
  const argv: string[] = []
  let token: string | undefined
  for (let i = 0; i < command.length; i++) {
    const c = command[i] as string
    if (c === ' ') { if (token !== undefined) argv.push(token); token = undefined; continue }
    if (c === "'") {
      const end = command.indexOf("'", i + 1)
      if (end === -1) throw meshError('ERR_BAD_ARGUMENT', `${from}: its recorded command has an unclosed quote: ${command}`)
      token = (token ?? '') + command.slice(i + 1, end)
      i = end
      continue
    }
    if (c === '\\' && command[i + 1] === "'") { token = (token ?? '') + "'"; i++; continue }
    token = (token ?? '') + c
  }
  if (token !== undefined) argv.push(token)
  if (argv[0] !== 'iotmesh' || argv[1] !== 'experiment' || !(EXPERIMENT_KINDS as readonly string[]).includes(argv[2] ?? '')) {
    throw meshError('ERR_BAD_ARGUMENT', `${from}: its recorded command is not an iotmesh experiment run: ${command}`)
  }
  return argv
}

/** Flags that make a run, refused beside --from (which re-renders, or runs the saved run's own command). */
const RUN_FLAGS = ['seed', 'quick', ...new Set(Object.values(FLAGS).flat())]

/** `--from results.json`: the saved figures through the current report code, into --out (refused if it holds files, unless --force). */
async function rerender (values: Record<string, unknown>, kind: string | undefined, io: Io): Promise<number> {
  const from = resolve(values.from as string)
  const given = RUN_FLAGS.find((f) => values[f] !== undefined)
  if (given !== undefined) throw meshError('ERR_BAD_ARGUMENT', `--from re-renders a saved run and runs nothing: --${given} does not apply (drop --from to run)`)
  const saved = parseSavedResults(await onFileArgument(from, '--from', async () => await readFile(from, 'utf8')), from)
  // Repetitions keep each run's values: their intervals and the checks on them are made again by this code.
  const results = saved.experiment === 'failover'
    ? refreshRepetitions(saved)
    : saved.experiment === 'automation'
      ? refreshAutomationRepetitions(saved)
      : saved.experiment === 'revocation' ? refreshRevocation(saved) : saved.experiment === 'scale' ? refreshScale(saved) : refreshLatency(saved)
  if (kind !== undefined && kind !== results.experiment) throw meshError('ERR_BAD_ARGUMENT', `--from ${from} holds a ${results.experiment} experiment, not ${kind}`)
  const out = resolve((values.out as string | undefined) ?? `experiment-${results.experiment}-${stamp(new Date())}`)
  const existing = await onFileArgument(out, '--out', async () => await readdir(out).catch((err: NodeJS.ErrnoException) => { if (err.code === 'ENOENT') return []; throw err }))
  if (existing.length > 0 && values.force !== true) {
    throw meshError('ERR_BAD_ARGUMENT', `--out ${out} already holds ${existing.length} file${existing.length === 1 ? '' : 's'} (${existing.slice(0, 3).join(', ')}${existing.length > 3 ? ', …' : ''}): choose another directory, or --force to write over them`)
  }
  // The readings' fates are not in results.json: a readings.csv beside it goes along, and the report links it.
  const csv = join(dirname(from), 'readings.csv')
  const hasCsv = results.experiment === 'failover' && await stat(csv).then((s) => s.isFile(), () => false)
  await onFileArgument(out, '--out', async () => await mkdir(out, { recursive: true }))
  if (hasCsv && join(out, 'readings.csv') !== csv) await copyFile(csv, join(out, 'readings.csv'))
  const files = await writeReport(out, results, hasCsv ? { readingsFile: 'readings.csv' } : {})
  if (hasCsv) files.push(join(out, 'readings.csv'))
  if (values.json !== true) write(io.stdout, `iotmesh experiment ${results.experiment}: re-rendered from ${from} (nothing run)`)
  return report({ results, files }, out, values.json === true, io)
}

interface Plan {
  seconds: number
  describe: string
  run: (out: string, components: { progress: ReturnType<typeof createProgress>, signal: AbortSignal }) => Promise<{ results: ExperimentResults, files: string[] }>
}

function failoverPlan (values: Record<string, unknown>): Plan {
  const quick = values.quick === true
  const preset = FAILOVER_PRESETS[quick ? 'quick' : 'default']
  const seconds = (name: string, fallback: number): number => numberFlag(values, name, fallback, 0, 86_400)
  const init: FailoverRunInit = {
    preset: quick ? 'quick' : 'default',
    repeat: intFlag(values, 'repeat', 1, 1, 100),
    seed: intFlag(values, 'seed', 1, 0, 0xffff_ffff),
    devices: intFlag(values, 'devices', preset.devices, 2, 1000),
    modes: modesFlag(values, [...MODES]),
    intervalMs: intFlag(values, 'interval', 1000, 50, 3_600_000),
    transport: transportFlag(values, 'tcp', ['tcp', 'memory']) as 'tcp' | 'memory',
    settleS: seconds('settle', 30),
    steadyS: seconds('steady', preset.steadyS),
    brokerDownS: seconds('broker-down', preset.brokerDownS),
    crashCount: intFlag(values, 'crash-count', preset.crashCount, 0, 999),
    crashS: seconds('crash', preset.crashS),
    partitionS: seconds('partition', preset.partitionS),
    gapS: seconds('gap', preset.gapS),
    drainS: seconds('drain', preset.drainS)
  }
  const timeline = failoverTimeline(init) // checks the parameters before anything runs
  return {
    seconds: failoverRunSeconds(init),
    describe: `${timeline.params.devices} devices, ${(init.modes ?? []).join(', ')}, ${seeds(timeline.params.seed, init.repeat ?? 1)}`,
    run: async (out, components) => await runFailover({ ...init, out }, components)
  }
}

function scalePlan (values: Record<string, unknown>): Plan {
  const quick = values.quick === true
  const preset = quick ? SCALE_QUICK : SCALE_DEFAULTS
  let sizes = values.sizes === undefined ? [...preset.sizes] : listFlag(values, 'sizes').map((s) => intFlag({ sizes: s }, 'sizes', 0, 1, 5000))
  if (values.devices !== undefined) {
    const most = intFlag(values, 'devices', 0, 1, 5000)
    sizes = [...new Set([...sizes.filter((n) => n < most), most])]
  }
  const init: ScaleRunInit = {
    sizes,
    modes: modesFlag(values, ['broker', 'mesh']),
    seed: intFlag(values, 'seed', 1, 0, 0xffff_ffff),
    intervalMs: intFlag(values, 'interval', 1000, 50, 3_600_000),
    durationS: numberFlag(values, 'duration', preset.durationS, 1, 86_400),
    warmupS: numberFlag(values, 'warmup', preset.warmupS, 0, 86_400),
    drainS: numberFlag(values, 'drain', preset.drainS, 0, 86_400),
    transport: transportFlag(values, 'auto', ['tcp', 'memory', 'auto']) as 'tcp' | 'memory' | 'auto',
    repeat: intFlag(values, 'repeat', 1, 1, 100),
    ...(values.settle === undefined ? {} : { settleS: numberFlag(values, 'settle', 30, 0, 86_400) })
  }
  return {
    seconds: scaleRunSeconds(init),
    describe: `fleets of ${[...sizes].sort((a, b) => a - b).join(', ')} devices, ${(init.modes ?? []).join(', ')}, ${seeds(init.seed ?? 1, init.repeat ?? 1)}`,
    run: async (out, components) => await runScale({ ...init, out }, components)
  }
}

function latencyPlan (values: Record<string, unknown>): Plan {
  const preset = values.quick === true ? LATENCY_QUICK : LATENCY_DEFAULTS
  const init: LatencyRunInit = {
    rounds: intFlag(values, 'rounds', preset.rounds, 1, 1_000_000),
    warmup: intFlag(values, 'warmup', preset.warmup, 0, 1_000_000),
    intervalMs: intFlag(values, 'pause', preset.intervalMs, 0, 60_000),
    seed: intFlag(values, 'seed', 1, 0, 0xffff_ffff),
    repeat: intFlag(values, 'repeat', 1, 1, 100)
  }
  return {
    seconds: latencyRunSeconds(init),
    describe: `${init.rounds ?? preset.rounds} rounds of one hop, three hops and the broker path, ${seeds(init.seed ?? 1, init.repeat ?? 1)}`,
    run: async (out, components) => await runLatency({ ...init, out }, components)
  }
}

function automationRunPlan (values: Record<string, unknown>): Plan {
  const quick = values.quick === true
  const preset = AUTOMATION_PRESETS[quick ? 'quick' : 'default']
  const seconds = (name: string, fallback: number): number => numberFlag(values, name, fallback, 0, 86_400)
  const ways = values.ways === undefined ? [...AUTOMATION_WAYS] : listFlag(values, 'ways')
  if (ways.some((w) => !(AUTOMATION_WAYS as readonly string[]).includes(w)) || new Set(ways).size !== ways.length) {
    throw meshError('ERR_BAD_ARGUMENT', `--ways must list distinct ways from ${AUTOMATION_WAYS.join(', ')}, got ${JSON.stringify(values.ways)}`)
  }
  const init: AutomationRunInit = {
    preset: quick ? 'quick' : 'default',
    ways: ways as AutomationWay[],
    seed: intFlag(values, 'seed', 1, 0, 0xffff_ffff),
    devices: intFlag(values, 'devices', preset.devices, 4, 1000),
    intervalMs: intFlag(values, 'interval', 250, 50, 3_600_000),
    settleS: seconds('settle', 30),
    steadyS: seconds('steady', preset.steadyS),
    brokerDownS: seconds('broker-down', preset.brokerDownS),
    crashCount: intFlag(values, 'crash-count', preset.crashCount, 0, 999),
    crashS: seconds('crash', preset.crashS),
    partitionS: seconds('partition', preset.partitionS),
    gapS: seconds('gap', preset.gapS),
    drainS: seconds('drain', preset.drainS),
    ttlS: numberFlag(values, 'ttl', preset.ttlS, 1, 60),
    repeat: intFlag(values, 'repeat', 1, 1, 100)
  }
  const plan = automationPlan(init) // checks the parameters before anything runs
  return {
    seconds: automationRunSeconds(init),
    describe: `${plan.params.devices} devices, rules ${(init.ways ?? []).join(', ')}, ${seeds(plan.params.seed, init.repeat ?? 1)}`,
    run: async (out, components) => await runAutomation({ ...init, out }, components)
  }
}

function revocationPlan (values: Record<string, unknown>): Plan {
  const quick = values.quick === true
  const preset = REVOCATION_PRESETS[quick ? 'quick' : 'default']
  const paths = values.paths === undefined ? [...REVOCATION_PATHS] : listFlag(values, 'paths')
  if (paths.some((x) => !(REVOCATION_PATHS as readonly string[]).includes(x)) || new Set(paths).size !== paths.length) {
    throw meshError('ERR_BAD_ARGUMENT', `--paths must list distinct paths from ${REVOCATION_PATHS.join(', ')}, got ${JSON.stringify(values.paths)}`)
  }
  const topology = (values.topology as string | undefined) ?? preset.topology
  if (topology !== 'grid' && topology !== 'line') throw meshError('ERR_BAD_ARGUMENT', `--topology must be grid or line, got ${JSON.stringify(topology)}`)
  const transport = transportFlag(values, preset.transport ?? 'memory', ['memory', 'tcp'])
  const init = {
    preset: quick ? 'quick' as const : 'default' as const,
    paths: paths as RevocationPath[],
    topology: topology as 'grid' | 'line',
    seed: intFlag(values, 'seed', 1, 0, 0xffff_ffff),
    repeat: intFlag(values, 'repeat', preset.repeat, 1, 100),
    devices: intFlag(values, 'devices', preset.devices, 3, 1000),
    intervalMs: intFlag(values, 'interval', preset.intervalMs, 50, 3_600_000),
    victimIntervalMs: intFlag(values, 'victim-interval', preset.victimIntervalMs, 20, 3_600_000),
    beforeS: numberFlag(values, 'before', preset.beforeS, 0, 86_400),
    afterS: numberFlag(values, 'after', preset.afterS, 1, 86_400),
    settleS: numberFlag(values, 'settle', preset.settleS, 0, 86_400),
    linkDelayMs: numberFlag(values, 'link-delay', preset.linkDelayMs, 0, 10_000),
    transport: transport as 'memory' | 'tcp'
  }
  const p = revocationParams(init) // checks the parameters before anything runs
  return {
    seconds: revocationRunSeconds(init),
    describe: `${p.devices} devices (${p.topology}, ${p.transport ?? 'memory'} links), paths ${p.paths.join(', ')}, ${seeds(p.seed, p.repeat)}`,
    run: async (out, components) => await runRevocation({ ...init, out }, components)
  }
}

function report (run: { results: ExperimentResults, files: string[] }, out: string, json: boolean, io: Io): number {
  const failed = run.results.checks.some((c) => c.status === 'fail')
  if (json) {
    write(io.stdout, JSON.stringify({ out, files: run.files, results: run.results }))
  } else {
    const names = run.files.map((f) => f.slice(out.length + 1))
    write(io.stdout, [
      `report   ${out}/report.md`,
      `files    ${names.join(', ')}`,
      '',
      summaryText(run.results)
    ].join('\n'))
  }
  return failed ? EXIT_INVALID : EXIT_OK
}

function listFlag (values: Record<string, unknown>, name: string): string[] {
  const list = String(values[name]).split(',').map((s) => s.trim()).filter((s) => s !== '')
  if (list.length === 0) throw meshError('ERR_BAD_ARGUMENT', `--${name} must be a comma-separated list, got ${JSON.stringify(values[name])}`)
  return list
}

function modesFlag (values: Record<string, unknown>, fallback: Mode[]): Mode[] {
  if (values.modes === undefined) return fallback
  const modes = listFlag(values, 'modes')
  const bad = modes.find((m) => !(MODES as readonly string[]).includes(m))
  if (bad !== undefined || new Set(modes).size !== modes.length) {
    throw meshError('ERR_BAD_ARGUMENT', `--modes must list distinct modes from ${MODES.join(', ')}, got ${JSON.stringify(values.modes)}`)
  }
  return modes as Mode[]
}

function transportFlag (values: Record<string, unknown>, fallback: string, allowed: string[]): string {
  const t = (values.transport as string | undefined) ?? fallback
  if (!allowed.includes(t)) throw meshError('ERR_BAD_ARGUMENT', `--transport must be ${allowed.join(', ')}, got ${JSON.stringify(t)}`)
  return t
}

/** stderr as lab/progress.ts wants it; a terminal that reports no width (0) counts as 80 columns. */
function progressStream (stderr: Io['stderr']): ProgressStream {
  const tty = stderr as Io['stderr'] & { isTTY?: boolean, columns?: number }
  return {
    write: (chunk) => stderr.write(chunk),
    get isTTY () { return tty.isTTY === true },
    get columns () { return tty.columns === undefined || tty.columns <= 0 ? 80 : tty.columns }
  }
}

/** "seed 3", or "3 runs, seeds 3…5". */
function seeds (seed: number, repeat: number): string {
  return repeat === 1 ? `seed ${seed}` : `${repeat} runs, seeds ${seed}…${seed + repeat - 1}`
}

/** 20260314-093012: UTC, sortable, safe in a file name. */
function stamp (d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15)
}

/** The command as a user would type it again: `iotmesh experiment KIND` and the flags given, in order. */
function commandLine (kind: string, values: Record<string, unknown>): string {
  const quote = (v: string): string => /^[A-Za-z0-9._,:/=+-]+$/.test(v) ? v : `'${v.replaceAll("'", "'\\''")}'`
  const flags = Object.entries(values).flatMap(([k, v]) => v === true ? [`--${k}`] : typeof v === 'string' ? [`--${k}`, quote(v)] : [])
  return ['iotmesh', 'experiment', kind, ...flags].join(' ')
}
