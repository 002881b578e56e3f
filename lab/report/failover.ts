import type { FailoverResults, ModeSummary } from '../results/types.js'
import type { TimelineFault } from '../plan/timeline.js'
import { repetitionsSection } from './repeat.js'
import { bytes, checksSection, environmentSection, ms, notesSection, parametersTable, pct, resumeCell, runLine, table } from './format.js'

/** report.md for `iotmesh experiment failover`. */
export function failoverMarkdown (results: FailoverResults, files: { delivery: string, latency: string, readings?: string }): string {
  const p = results.parameters
  const t = results.timeline
  return [
    '# Broker versus mesh, measured: failover',
    '',
    `${p.devices} devices, one reading every ${p.intervalS} s, run through the same fault timeline in each mode: ${p.modes.join(', ')}.`,
    runLine(results),
    `Seed **${results.seed}**; timeline fingerprint \`${t.fingerprint}\`.`,
    '',
    ...checksSection(results),
    '',
    '## Headline',
    '',
    'Per mode and phase, for the readings published in the phase: the share that reached the gateway in the end,',
    `before the phase ended, and on time (within ${p.gapToleranceS.toFixed(1)} s of publication), the longest silence of any device at the`,
    'gateway, readings lost for good, duplicates delivered, the time until delivery resumed after the phase\'s fault',
    '(the slowest device concerned), and latency.',
    '',
    headline(results.modes),
    '',
    ...repetitionsSection(results),
    '## Charts',
    '',
    `![Delivery over time, per mode, with the fault windows shaded](${files.delivery})`,
    '',
    `![Latency distributions per mode and receiver](${files.latency})`,
    '',
    '## Faults and recovery',
    '',
    'Time until delivery to the gateway resumed after each fault event: the slowest device concerned (the median in brackets).',
    '',
    faultsTable(results),
    '',
    ...peerSection(results.modes),
    ...resourcesSection(results.modes),
    '## Parameters',
    '',
    parametersTable({ ...p }),
    '',
    '## Timeline',
    '',
    `The peer subscriber is fleet member ${t.peer}; the partition's first group keeps the gateway and the broker.`,
    '',
    table(['phase', 'from', 'to', 'events at its start'], t.phases.map((ph) => [ph.name, `${ph.startS} s`, `${ph.endS} s`, ph.faults.map(describeEvent).join('; ') || '—'])),
    '',
    `Drain: ${t.params.drainS} s after ${t.endS} s, with no new readings. Fingerprint: \`${t.fingerprint}\`.`,
    '',
    ...environmentSection(results),
    '',
    ...notesSection(results),
    '## Reproducibility',
    '',
    `The same seed and parameters give the same fault timeline: the same devices crash, the fleet splits the same way,`,
    `the same member subscribes as the peer, and \`planFailover(parameters)\` returns the fingerprint above. Run it again`,
    `with seed ${results.seed} and the parameters above and compare fingerprints. The readings' timing varies with the`,
    'machine and its load, so delivery, gaps and latencies vary from run to run; the checks say whether the shape held.',
    '',
    '## How the figures are computed',
    '',
    '- A reading belongs to the phase in which it was published. "To gateway" counts those that arrived by the end of',
    '  observation (the drain included), "during" those that arrived before the phase ended, "on time" those that arrived',
    '  within the gap tolerance of their publication, wherever the phase ended (a reading published in the phase\'s last',
    '  moments can be on time, not "during"). The checks of delivery in a phase use "on time"; "broker-only delivers',
    '  nothing while the broker is down" uses "during".',
    '- Longest gap: the longest time within the phase during which the gateway received nothing from a device (a',
    '  silence spanning two phases is cut at the boundary); the largest over all devices. A crashed device is silent too.',
    '- Lost for good: readings of the phase that never reached the gateway, plus sequence numbers missing from a',
    '  device\'s reports within one lifetime (a jump across a restart is a reserved block, not a loss).',
    '- Time to resume: from the moment a fault took effect until the first reading published after it arrived, per',
    '  device concerned (everyone up for the broker, the named devices for a crash, the cut-off side for a partition);',
    '  it includes the wait for the next reading. "never" means some device concerned never delivered again.',
    '- Latency: first arrival minus publication, nearest-rank percentiles; during an outage it includes the time the',
    '  reading waited in its device\'s outbox.',
    '',
    '## Files',
    '',
    '- `results.json`: every figure; its JSON Schema (draft 2020-12) is `results.schema.json`.',
    ...(files.readings === undefined ? [] : [`- \`${files.readings}\`: the fate of every reading (times in ms from the start of the timeline).`]),
    `- \`${files.delivery}\`, \`${files.latency}\`: the charts.`,
    ''
  ].join('\n')
}

function headline (modes: readonly ModeSummary[]): string {
  const rows = modes.flatMap((m) => [...m.phases, m.total].map((ph) => [
    m.mode,
    ph.name === 'all' ? '**all**' : ph.name,
    `${ph.startS}–${ph.endS} s`,
    String(ph.published),
    pct(ph.gateway.ratio),
    pct(ph.gateway.ratioDuring),
    pct(ph.gateway.ratioOnTime ?? null),
    ms(ph.longestGapMs),
    String(ph.lostForGood),
    String(ph.duplicates),
    resumeCell(ph.resume),
    ms(ph.latencyMs.gateway?.p50),
    ms(ph.latencyMs.gateway?.p99)
  ]))
  return table(
    ['mode', 'phase', 'time', 'published', 'to gateway', 'during phase', 'on time', 'longest gap', 'lost for good', 'duplicates', 'time to resume', 'latency p50', 'latency p99'],
    rows,
    ['l', 'l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r']
  )
}

function describeEvent (e: TimelineFault): string {
  if (e.devices !== undefined) return `${e.kind} devices ${e.devices.join(', ')}`
  if (e.groups !== undefined) return `${e.kind} into ${e.groups.map((g) => `{${g.join(', ')}}`).join(' and ')}`
  return e.kind
}

function faultsTable (results: FailoverResults): string {
  const events = results.timeline.phases.flatMap((ph) => ph.faults)
  return table(
    ['at', 'event', ...results.modes.map((m) => m.mode)],
    events.map((e, i) => [
      `${e.atS} s`,
      describeEvent(e),
      ...results.modes.map((m) => {
        const f = m.faults[i]
        if (f === undefined) return '—'
        const cell = resumeCell(f.gateway)
        return f.gateway.medianMs === null || f.gateway.maxMs === null ? cell : `${cell} (${ms(f.gateway.medianMs)})`
      })
    ]),
    ['r', 'l', ...results.modes.map(() => 'r' as const)]
  )
}

function peerSection (modes: readonly ModeSummary[]): string[] {
  if (modes.every((m) => m.total.peer === null)) return []
  return [
    '## Delivery to the peer subscriber',
    '',
    'The same readings as seen by a device subscribing to the whole fleet (its own readings left out).',
    '',
    table(
      ['mode', 'phase', 'to peer', 'during phase', 'latency p50', 'latency p99'],
      modes.flatMap((m) => [...m.phases, m.total].map((ph) => [
        m.mode, ph.name === 'all' ? '**all**' : ph.name, pct(ph.peer?.ratio ?? null), pct(ph.peer?.ratioDuring ?? null),
        ms(ph.latencyMs.peer?.p50), ms(ph.latencyMs.peer?.p99)
      ])),
      ['l', 'l', 'r', 'r', 'r', 'r']
    ),
    ''
  ]
}

function resourcesSection (modes: readonly ModeSummary[]): string[] {
  const rows = modes.flatMap((m) => m.resources.map((r) => [
    m.mode, r.role, `${r.cpuPercent.toFixed(1)} %`, bytes(r.rssBytes), `${r.bytesPerS.toFixed(0)} B/s`, `${r.framesPerS.toFixed(1)} /s`
  ]))
  if (rows.length === 0) return []
  return [
    '## Resources',
    '',
    'Each role\'s processes together, over the whole run: CPU as a share of one core, mean resident memory, traffic in + out.',
    '',
    table(['mode', 'role', 'cpu', 'memory', 'traffic', 'frames'], rows, ['l', 'l', 'r', 'r', 'r', 'r']),
    ''
  ]
}
