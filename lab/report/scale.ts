import type { RoleRates, ScaleResults } from '../results/types.js'
import { scaleDelivered, wilson } from '../results/checks.js'
import { bytes, checksSection, environmentSection, ms, notesSection, parametersTable, pct, runLine, seedLine, table } from './format.js'
import { scaleRepetitionsSection } from './repeat.js'

/** report.md for `iotmesh experiment scale`. */
export function scaleMarkdown (results: ScaleResults, files: { traffic: string }): string {
  const p = results.parameters
  const rates = (r: RoleRates | null, what: keyof RoleRates): string => {
    if (r === null) return '—'
    if (what === 'rssBytes') return bytes(r.rssBytes)
    if (what === 'cpuPercent') return `${r.cpuPercent.toFixed(2)} %`
    return r[what].toFixed(1)
  }
  return [
    '# Broker versus mesh, measured: scale',
    '',
    `Fleets of ${p.sizes.join(', ')} devices in ${p.modes.join(' and ')} mode, one reading every ${p.intervalS} s per device, ` +
      `each measured for ${p.durationS} s after ${p.warmupS} s of settling.`,
    runLine(results),
    seedLine(results),
    '',
    ...checksSection(results),
    '',
    ...scaleRepetitionsSection(results),
    '## Per device',
    '',
    'One device\'s share (one mesh node in mesh mode, relaying included): the devices\' rates divided by the fleet size.',
    'Traffic is bytes and frames received plus sent; CPU is a share of one core.',
    '',
    table(
      ['mode', 'devices', 'links', 'bytes / s', 'frames / s', 'cpu', 'memory', 'delivery', 'delivery, 95 % interval', 'latency p50', 'latency p99'],
      results.points.map((pt) => [
        pt.mode, String(pt.devices), pt.transport === undefined ? '—' : pt.mode === 'broker' ? 'MQTT/TCP' : pt.transport === 'tcp' ? 'TCP' : 'in memory', rates(pt.perDevice, 'bytesPerS'), rates(pt.perDevice, 'framesPerS'), rates(pt.perDevice, 'cpuPercent'),
        rates(pt.perDevice, 'rssBytes'), pct(pt.delivery), deliveryInterval(pt), ms(pt.latencyMs?.p50), ms(pt.latencyMs?.p99)
      ]),
      ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r']
    ),
    '',
    'Delivery: of the readings published in the window, the share that reached the gateway, with its 95 % Wilson interval',
    `(${'`'}scale-delivery${'`'} judges each fleet on it; a window of fewer than 381 readings cannot show 99 %). Rows whose links`,
    'differ are separate series: the chart draws no line across a change of transport.',
    '',
    '## The broker and the gateway, whole',
    '',
    table(
      ['mode', 'devices', 'broker bytes / s', 'broker cpu', 'broker memory', 'gateway bytes / s', 'gateway cpu', 'gateway memory'],
      results.points.map((pt) => [
        pt.mode, String(pt.devices), rates(pt.broker, 'bytesPerS'), rates(pt.broker, 'cpuPercent'), rates(pt.broker, 'rssBytes'),
        rates(pt.gateway, 'bytesPerS'), rates(pt.gateway, 'cpuPercent'), rates(pt.gateway, 'rssBytes')
      ]),
      ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r']
    ),
    '',
    '## Chart',
    '',
    `![Traffic per node against fleet size](${files.traffic})`,
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
    `The same seed gives the same fleets (identities, sensors, links chosen). Traffic per reading depends on the code alone;`,
    'CPU, memory and latency vary with the machine and its load.',
    '',
    '## Files',
    '',
    '- `results.json`: every figure; its JSON Schema (draft 2020-12) is `results.schema.json`.',
    `- \`${files.traffic}\`: the chart.`,
    ''
  ].join('\n')
}

function deliveryInterval (pt: ScaleResults['points'][number]): string {
  if (pt.readings === 0) return '—'
  const [lo, hi] = wilson(scaleDelivered(pt), pt.readings)
  return `[${(lo * 100).toFixed(1)}, ${(hi * 100).toFixed(1)}] %`
}
