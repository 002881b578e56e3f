import type { AutomationFigure, AutomationFigureMetric, AutomationResults } from '../results/types.js'
import { checksSection, environmentSection, ms, notesSection, parametersTable, pct, runLine, table } from './format.js'

/** report.md for `iotmesh experiment automation`. */
export function automationMarkdown (results: AutomationResults, files: { triggers: string, notOnTime: string }): string {
  const p = results.parameters
  const plan = results.plan
  return [
    '# Automation when the centre fails: rules on the devices, at the gateway, or both',
    '',
    `${p.devices} devices, one reading every ${p.intervalS} s, the same rules run three ways through the failover experiment's fault timeline: ${p.ways.join(', ')}.`,
    runLine(results),
    `Seed **${results.seed}**; plan fingerprint \`${plan.fingerprint}\` (timeline \`${plan.timelineFingerprint}\`).`,
    '',
    ...checksSection(results),
    '',
    '## How it was measured',
    '',
    '- **device**: devices in mesh mode; the rules run on two of the devices (the light holds the heating rules, the heater the hall\'s),',
    '  which subscribe to the sensors through the mesh and send signed commands to the other device over the mesh. No broker, no gateway.',
    '- **central**: devices in broker mode; the same rules run at the gateway on the readings it accepts, commands signed with the',
    '  gateway\'s key and sent through the broker, as a home automation server runs them.',
    '- **hybrid**: devices in hybrid mode (mesh and broker); the rules run on the devices and at the gateway both, each sending its own',
    '  commands: what a user gets who keeps the central rules beside the devices\' own.',
    '- **Trigger truth** comes from the simulated world, after the run: a visit to the hall begins (seeded visits), the motion has',
    '  been over for `lightOffS`, the living room fell below `coldC` and stayed there `coldForS`, it rose above `warmC` (the room',
    '  warms and cools by Newton\'s law, as a pure function of its heater\'s switchings: firmware-sim/sensors/sim/room.ts).',
    '- **Action truth** is what the targets executed: every command the light and the heater executed (their `command` event, the',
    '  executor\'s verdict), stamped as it happened. A trigger owns the executions of its rule\'s action from its instant to the rule\'s',
    `  next trigger. **On time**: the first came within the command lifetime (${p.ttlS} s); **late**: after it; **missed**: none came;`,
    '  **twice**: two or more came (both issuers in hybrid; a rule fired again on a backlog replayed after a fault);',
    '  **after expiry**: an execution later than its own command\'s expiry (a device allows its clock tolerance, 2 s, by design).',
    '- A sustained condition (`for`) is judged on the readings\' arrival at the rule: readings held up by a fault and delivered',
    '  together can hide a quiet spell from it (a missed light-off), and a backlog replayed after a fault can fire a rule again.',
    '- Latency is trigger to first execution: it includes sampling (one reading every',
    `  ${p.intervalS} s), the rule's own \`for\`, the way to the rule and the command's way to its target.`,
    '',
    '## Headline',
    '',
    'Per way and phase: the triggers, how many were acted on in time, late, or missed, those followed by two or more executions,',
    'executions after expiry, and the latency from trigger to first execution.',
    '',
    table(
      ['way', 'phase', 'triggers', 'on time', 'late', 'missed', 'not on time', 'twice', 'executions', 'after expiry', 'p50', 'p95', 'p99'],
      results.ways.flatMap((w) => [...w.phases, w.total].map((ph) => [
        w.way, ph.name, String(ph.triggers), String(ph.onTime), String(ph.late), String(ph.missed), pct(ph.notOnTimeShare), String(ph.twice),
        String(ph.executions), ph.afterExpiryMaxMs === null ? String(ph.afterExpiry) : `${ph.afterExpiry} (≤ ${ms(ph.afterExpiryMaxMs)} past)`,
        ms(ph.latencyMs?.p50), ms(ph.latencyMs?.p95), ms(ph.latencyMs?.p99)
      ])),
      ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r']
    ),
    '',
    ...repetitionsSection(results),
    '## Charts',
    '',
    `![Every trigger on the timeline, per way, marked by its fate, with the fault windows shaded](${files.triggers})`,
    '',
    `![The share of triggers not acted on in time, per phase and way](${files.notOnTime})`,
    '',
    '## Per rule',
    '',
    table(['way', 'rule', 'triggers', 'on time', 'late', 'missed', 'twice'],
      results.ways.flatMap((w) => w.rules.map((r) => [w.way, r.rule, String(r.triggers), String(r.onTime), String(r.late), String(r.missed), String(r.twice)])),
      ['l', 'l', 'r', 'r', 'r', 'r', 'r']),
    '',
    '## Commands',
    '',
    table(['way', 'sent by the rules', 'how they ended', 'no result', 'refused by the targets'], results.ways.map((w) => [
      w.way, String(w.commands.sent), Object.entries(w.commands.outcomes).map(([s, n]) => `${s} ${n}`).join(', ') || '—', String(w.commands.unanswered),
      Object.entries(w.commands.refused).map(([code, n]) => `${code} ${n}`).join(', ') || 'none'
    ]), ['l', 'r', 'l', 'r', 'l']),
    '',
    '## The rules',
    '',
    ...plan.rules.map((r) => `- ${r}`),
    '',
    `The motion sensor is fleet member ${plan.roles.motion}, the hall light ${plan.roles.light}, the thermometer ${plan.roles.thermometer}, the heater ${plan.roles.heater}.`,
    '',
    '## Parameters',
    '',
    parametersTable({ ...p }),
    '',
    '## Timeline',
    '',
    table(['phase', 'from', 'to'], plan.phases.map((ph) => [ph.name, `${ph.startS} s`, `${ph.endS} s`])),
    '',
    `Drain: ${p.drainS} s after ${plan.endS} s: executions still on their way count; triggers after ${plan.endS} s do not.`,
    '',
    ...environmentSection(results),
    '',
    ...notesSection(results),
    '## Reproducibility',
    '',
    'The same seed and parameters give the same plan (the same faults, parts, visits and rules: the fingerprint above). The',
    'world then follows the commands that were executed, which depend on timing: the triggers of the heating rules differ',
    'from run to run, the visits to the hall do not.',
    ''
  ].join('\n')
}

/** With --repeat N: per way and phase, each figure's mean over the runs with its 95 % interval, and each run's own verdicts. */
function repetitionsSection (results: AutomationResults): string[] {
  const rep = results.repetitions
  if (rep === undefined) return []
  const fig = (way: string, phase: string, metric: AutomationFigureMetric): AutomationFigure | undefined =>
    rep.figures.find((f) => f.way === way && f.phase === phase && f.metric === metric)
  const cell = (f: AutomationFigure | undefined, show: (x: number) => string): string =>
    f === undefined || f.mean === null ? 'n/a' : f.low === null || f.high === null ? show(f.mean) : `${show(f.mean)} [${show(f.low)}, ${show(f.high)}]`
  const phases = [...results.plan.phases.map((p) => p.name as string), 'all']
  const rows = results.ways.flatMap((w) => phases.flatMap((phase) => fig(w.way, phase, 'not-on-time') === undefined
    ? []
    : [[w.way, phase === 'all' ? '**all**' : phase, cell(fig(w.way, phase, 'not-on-time'), (x) => pct(x)), cell(fig(w.way, phase, 'twice'), (x) => pct(x)),
        cell(fig(w.way, phase, 'latency-p50-ms'), (x) => ms(x))]]))
  const mark = { pass: '✔', fail: '✘', undecided: '?', 'not-run': '–' } as const
  return [
    `## Repetitions: ${rep.count} runs`,
    '',
    `Seeds ${rep.seeds.join(', ')}, every way per run. Figures: ${rep.interval}. The checks above are judged on these intervals,`,
    'the run being the unit (the triggers of one run share its faults, so they are not pooled); the tables, charts and timeline',
    'elsewhere in this report are the first run\'s.',
    '',
    table(['way', 'phase', 'not acted on in time', 'executed twice', 'latency p50'], rows, ['l', 'l', 'r', 'r', 'r']),
    '',
    'Each run judged alone (✔ holds, ✘ fails, ? undecided, – not run):',
    '',
    table(['check', ...rep.seeds.map((s) => `seed ${s}`)], rep.runChecks.map((c) => [c.id, ...c.statuses.map((s) => mark[s])])),
    ''
  ]
}
