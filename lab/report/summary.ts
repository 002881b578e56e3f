import type { AutomationResults, Check, ExperimentResults, FailoverResults, LatencyResults, RevocationResults, ScaleResults } from '../results/types.js'

/**
 * What `iotmesh experiment` prints when a run is over: the headline figures as a plain-text table
 * and the checks, one line each. report.md has the full story; this is the glance.
 */
export function summaryText (results: ExperimentResults): string {
  const body = results.experiment === 'failover'
    ? failoverTable(results)
    : results.experiment === 'scale' ? scaleTable(results) : results.experiment === 'latency' ? latencyTable(results) : results.experiment === 'automation' ? automationTable(results) : revocationTable(results)
  return [body, '', ...checkLines(results.checks)].join('\n')
}

const MARKS: Record<Check['status'], string> = { pass: '✔', fail: '✘', 'not-run': '–', undecided: '?' }

/** The checks as plain-text lines for the terminal: one per check (mark, id, what was observed), then the count that held. */
export function checkLines (checks: readonly Check[]): string[] {
  const failed = checks.filter((c) => c.status === 'fail').length
  return [
    ...checks.map((c) => `${MARKS[c.status]} ${c.id}: ${c.observed}`),
    `${checks.filter((c) => c.status === 'pass').length} of ${checks.length} checks hold${failed > 0 ? `, ${failed} ${failed === 1 ? 'fails' : 'fail'}` : ''}${undecidedOf(checks)}`
  ]
}

/** Columns padded to their widest cell; numbers (`right`) aligned right. */
export function textTable (header: readonly string[], rows: ReadonlyArray<readonly string[]>, right: ReadonlySet<number> = new Set()): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: readonly string[]): string => cells.map((c, i) => (right.has(i) ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number))).join('  ').trimEnd()
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n')
}

const pct = (r: number | null | undefined): string => (r === null || r === undefined ? '—' : `${(r * 100).toFixed(1)} %`)
const ms = (v: number | null | undefined): string => {
  if (v === null || v === undefined) return '—'
  return Math.abs(v) < 1000 ? `${v.toFixed(v < 10 ? 2 : 0)} ms` : `${(v / 1000).toFixed(1)} s`
}

function failoverTable (results: FailoverResults): string {
  const rows = results.modes.flatMap((m) => [...m.phases, m.total].map((p) => [
    m.mode, p.name, String(p.published), pct(p.gateway.ratio), pct(p.gateway.ratioDuring), pct(p.gateway.ratioOnTime), pct(p.peer?.ratioDuring),
    ms(p.longestGapMs), String(p.lostForGood), String(p.duplicates), ms(p.latencyMs.gateway?.p50)
  ]))
  return textTable(['mode', 'phase', 'published', 'to gateway', 'during phase', 'on time', 'peer during', 'longest gap', 'lost', 'dup', 'p50'], rows, new Set([2, 3, 4, 5, 6, 7, 8, 9, 10]))
}

function scaleTable (results: ScaleResults): string {
  const rows = results.points.map((p) => [
    p.mode, String(p.devices), pct(p.delivery), p.perDevice === null ? '—' : p.perDevice.bytesPerS.toFixed(0),
    p.perDevice === null ? '—' : p.perDevice.framesPerS.toFixed(1), p.perDevice === null ? '—' : `${p.perDevice.cpuPercent.toFixed(2)} %`,
    ms(p.latencyMs?.p50), ms(p.latencyMs?.p99)
  ])
  return textTable(['mode', 'devices', 'delivery', 'bytes/s per device', 'frames/s per device', 'cpu per device', 'p50', 'p99'], rows, new Set([1, 2, 3, 4, 5, 6, 7]))
}

function latencyTable (results: LatencyResults): string {
  const rows = results.paths.map((p) => [
    p.path, `${p.received}/${p.sent}`, ms(p.latencyMs?.p50), ms(p.latencyMs?.p95), ms(p.latencyMs?.p99), ms(p.latencyMs?.max)
  ])
  return textTable(['path', 'received', 'p50', 'p95', 'p99', 'max'], rows, new Set([1, 2, 3, 4, 5]))
}

function automationTable (results: AutomationResults): string {
  const rows = results.ways.flatMap((w) => [...w.phases, w.total].map((p) => [
    w.way, p.name, String(p.triggers), String(p.onTime), String(p.late), String(p.missed), pct(p.notOnTimeShare), String(p.twice), String(p.afterExpiry),
    ms(p.latencyMs?.p50), ms(p.latencyMs?.p99)
  ]))
  return textTable(['way', 'phase', 'triggers', 'on time', 'late', 'missed', 'not on time', 'twice', 'after expiry', 'p50', 'p99'], rows, new Set([2, 3, 4, 5, 6, 7, 8, 9, 10]))
}

function revocationTable (results: RevocationResults): string {
  const rows = results.runs.flatMap((r) => r.paths.map((x) => [
    String(r.seed), x.path, `${x.refusing}/${x.nodes}`, ms(x.refusalMs?.p50), ms(x.refusalMs?.p99), ms(x.refusalMs?.max), ms(x.cutMs), String(x.acceptedAfter), ms(x.lastAcceptedMs)
  ]))
  return textTable(['seed', 'path', 'refusing', 'p50', 'p99', 'max', 'cut off', 'accepted after', 'last accepted'], rows, new Set([0, 2, 3, 4, 5, 6, 7, 8]))
}

function undecidedOf (checks: readonly Check[]): string {
  const n = checks.filter((c) => c.status === 'undecided').length
  return n === 0 ? '' : `, ${n} undecided (too few readings to tell)`
}
