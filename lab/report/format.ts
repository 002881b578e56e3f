import type { Check, ExperimentResults, Resume } from '../results/types.js'
import { seedsOf } from '../results/reproduce.js'

/** Markdown building blocks shared by the three reports. */

export const MARK: Record<Check['status'], string> = { pass: '✔', fail: '✘', 'not-run': '–', undecided: '?' }

/** A GitHub-flavoured Markdown table; `|` inside a cell is escaped. */
export function table (header: readonly string[], rows: ReadonlyArray<readonly string[]>, align?: ReadonlyArray<'l' | 'r'>): string {
  const cell = (c: string): string => c.replace(/\|/g, '\\|')
  const rule = header.map((_, i) => ((align?.[i] ?? 'l') === 'r' ? '---:' : '---'))
  return [header, rule, ...rows].map((r) => `| ${r.map(cell).join(' | ')} |`).join('\n')
}

export function pct (r: number | null): string {
  return r === null ? '—' : `${(r * 100).toFixed(1)} %`
}

/** A duration in ms as ms below a second, as seconds above. */
export function ms (value: number | null | undefined): string {
  if (value === null || value === undefined) return '—'
  if (Math.abs(value) < 10) return `${value.toFixed(2)} ms`
  if (Math.abs(value) < 1000) return `${value.toFixed(0)} ms`
  return `${(value / 1000).toFixed(1)} s`
}

export function resumeCell (r: Resume | null): string {
  if (r === null) return '—'
  if (r.affected === 0) return 'no device concerned'
  if (r.maxMs === null) return `never for ${r.affected - r.resumed} of ${r.affected}`
  return ms(r.maxMs)
}

export function bytes (n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(1)} GiB`
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`
  return `${n} B`
}

/**
 * The checks and their marks. A single run's checks are judged on its own figures; with --repeat N
 * on the intervals over the runs (results/repeat-checks.ts, the other `*-repeat.ts`, revocation.ts),
 * and the heading says so: the tables below are the first run's, the marks are not.
 */
export function checksSection (results: ExperimentResults): string[] {
  const { checks } = results
  const runs = seedsOf(results).length
  const judged = runs === 1
    ? 'the mark is computed from this run\'s figures (✔ held, ✘ did not, ? the data cannot tell, – not in this run)'
    : `the mark is judged over the ${runs} runs, not on one run's figures: on the runs' 95 % intervals (shares on their readings pooled) or on every run, as each line says ` +
      '(✔ held, ✘ did not, ? the interval straddles the threshold: more runs narrow it, – not in these runs)'
  const passed = checks.filter((c) => c.status === 'pass').length
  const failed = checks.filter((c) => c.status === 'fail').length
  const skipped = checks.filter((c) => c.status === 'not-run').length
  const undecided = checks.filter((c) => c.status === 'undecided').length
  return [
    '## Expected shape, checked against the data',
    '',
    `Each line is an expectation; ${judged}.`,
    '',
    ...checks.map((c) => `- ${MARK[c.status]} ${c.statement} — ${c.observed} (\`${c.id}\`)`),
    '',
    `**${passed} of ${checks.length} checks hold**, ${failed} ${failed === 1 ? 'fails' : 'fail'}, ${undecided} undecided, ${skipped} not run.`
  ]
}

export function runLine (results: ExperimentResults): string {
  const m = results.machine
  return `Run from ${results.startedAt} to ${results.finishedAt} on ${m.platform} ${m.release} (${m.arch}), ` +
    `${m.cpus} × ${m.cpuModel}, ${bytes(m.memoryBytes)} of memory.`
}

/** "Seed **3**.", or for repeated runs "3 runs, seeds **3, 4, 5**: …", saying the checks are judged over the runs and the tables are the first run's. */
export function seedLine (results: ExperimentResults): string {
  const seeds = seedsOf(results)
  return seeds.length === 1 ? `Seed **${results.seed}**.` : `${seeds.length} runs, seeds **${seeds.join(', ')}**: the checks are judged over the runs (see Repetitions); the tables and the chart are the first run's.`
}

export function environmentSection (results: ExperimentResults): string[] {
  const m = results.machine
  const s = results.software
  return [
    '## Machine and software',
    '',
    table(['', ''], [
      ['os', `${m.platform} ${m.release} (${m.arch})`],
      ['cpus', `${m.cpus} × ${m.cpuModel}`],
      ['memory', bytes(m.memoryBytes)],
      ['node', s.node],
      ...(['iotmesh', 'aedes', 'mqtt', 'bonjour-service', 'cbor-x'] as const).map((name) => [name, s[name] ?? 'not installed']),
      ...provenanceRows(results)
    ])
  ]
}

export function notesSection (results: ExperimentResults): string[] {
  return results.notes === undefined || results.notes.length === 0 ? [] : ['## Notes', '', ...results.notes.map((n) => `- ${n}`), '']
}

export function parametersTable (params: Record<string, unknown>): string {
  return table(['parameter', 'value'], Object.entries(params).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : String(v)]))
}

/** How the run was made (results.provenance), as table rows; none for reports written before it was recorded. */
function provenanceRows (results: ExperimentResults): string[][] {
  const p = results.provenance
  if (p === undefined) return []
  const load = (l: number[] | null): string => l === null ? 'unknown' : l.map((x) => x.toFixed(2)).join(', ')
  return [
    ['command', p.command === null ? 'run as a library' : `\`${p.command}\``],
    ['commit', p.commit === null ? 'unknown (not a git checkout)' : `${p.commit}${p.dirty === true ? ' with uncommitted changes' : ''}`],
    ...(seedsOf(results).length > 1 ? [['seeds, one per run', seedsOf(results).join(', ')]] : [['seed', String(results.seed)]]),
    ['load average (1, 5, 15 min)', `${load(p.loadBefore)} before; ${load(p.loadAfter)} after`]
  ]
}
