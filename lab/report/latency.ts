import type { LatencyResults } from '../results/types.js'
import { checksSection, environmentSection, ms, notesSection, parametersTable, runLine, seedLine, table } from './format.js'
import { latencyRepetitionsSection } from './repeat.js'

/** report.md for `iotmesh experiment latency`. */
export function latencyMarkdown (results: LatencyResults, files: { latency: string }): string {
  const p = results.parameters
  return [
    '# Broker versus mesh, measured: latency',
    '',
    `${p.rounds} rounds, each probing every path in turn (${p.paths.join(', ')}), ${p.intervalMs} ms apart, so a slow`,
    'moment of the machine weighs on every path alike.',
    runLine(results),
    seedLine(results),
    '',
    ...checksSection(results),
    '',
    ...latencyRepetitionsSection(results),
    '## Latency by path',
    '',
    table(
      ['path', 'received', 'min', 'p50', 'p50, 95 % interval', 'p95', 'p99', 'max', 'mean'],
      results.paths.map((pt) => {
        const d = pt.latencyMs
        const ci = pt.p50Ci95 === undefined || pt.p50Ci95 === null ? '—' : `[${ms(pt.p50Ci95[0])}, ${ms(pt.p50Ci95[1])}]`
        return [pt.path, `${pt.received}/${pt.sent}`, ms(d?.min), ms(d?.p50), ci, ms(d?.p95), ms(d?.p99), ms(d?.max), ms(d?.mean)]
      }),
      ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r']
    ),
    '',
    'The p50 interval is distribution-free (order statistics, exact binomial): the median lies in it with at least 95 %',
    'probability if probes were independent; on a shared machine neighbouring probes share a moment, so read it as a',
    'little too narrow.',
    '',
    ...pairedSection(results),
    `![Latency distributions by path](${files.latency})`,
    '',
    '## Parameters',
    '',
    parametersTable({ seed: results.seed, ...p }),
    '',
    ...environmentSection(results),
    '',
    ...notesSection(results),
    '## Reproducibility',
    '',
    'The same seed gives the same fleet and the same probe schedule; latencies vary with the machine and its load.',
    '',
    '## Files',
    '',
    '- `results.json`: every figure; its JSON Schema (draft 2020-12) is `results.schema.json`.',
    `- \`${files.latency}\`: the chart.`,
    ''
  ].join('\n')
}

/** Path against path in the same round: what the checks judge. */
function pairedSection (results: LatencyResults): string[] {
  const diffs = results.differences ?? []
  if (diffs.length === 0) return []
  const signed = (v: number | null | undefined): string => v === null || v === undefined ? '—' : `${v > 0 ? '+' : ''}${ms(v)}`
  return [
    '## Paired by round',
    '',
    'Each round probes every path one after another, so the difference of two paths within a round compares them in the',
    'same moment of the machine. Median of the differences (a − b; negative: a faster) with its 95 % interval, as above:',
    'the interval below 0 says a is faster, above 0 that b is, and across 0 that this run cannot tell.',
    '',
    table(
      ['a', 'b', 'rounds with both', 'a faster in', 'median a − b', '95 % interval'],
      diffs.map((d) => [d.a, d.b, String(d.rounds), String(d.aFaster), signed(d.medianMs), d.ci95 === null ? '—' : `[${signed(d.ci95[0])}, ${signed(d.ci95[1])}]`]),
      ['l', 'l', 'r', 'r', 'r', 'r']
    ),
    ''
  ]
}
