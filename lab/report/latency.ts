import type { LatencyResults } from '../results/types.js'
import { checksSection, environmentSection, ms, notesSection, parametersTable, runLine, table } from './format.js'

/** report.md for `iotmesh experiment latency`. */
export function latencyMarkdown (results: LatencyResults, files: { latency: string }): string {
  const p = results.parameters
  return [
    '# Broker versus mesh, measured: latency',
    '',
    `${p.rounds} rounds, each probing every path in turn (${p.paths.join(', ')}), ${p.intervalMs} ms apart, so a slow`,
    'moment of the machine weighs on every path alike.',
    runLine(results),
    `Seed **${results.seed}**.`,
    '',
    ...checksSection(results.checks),
    '',
    '## Latency by path',
    '',
    table(
      ['path', 'received', 'min', 'p50', 'p95', 'p99', 'max', 'mean'],
      results.paths.map((pt) => {
        const d = pt.latencyMs
        return [pt.path, `${pt.received}/${pt.sent}`, ms(d?.min), ms(d?.p50), ms(d?.p95), ms(d?.p99), ms(d?.max), ms(d?.mean)]
      }),
      ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r']
    ),
    '',
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
