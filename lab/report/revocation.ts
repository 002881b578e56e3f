import type { RevocationFigure, RevocationFigureMetric, RevocationResults } from '../results/types.js'
import { REFUSAL_BOUND_MS } from '../results/revocation.js'
import { checksSection, environmentSection, ms, notesSection, parametersTable, pct, runLine, table } from './format.js'

/** report.md for `iotmesh experiment revocation`. */
export function revocationMarkdown (results: RevocationResults, files: { refusal: string }): string {
  const p = results.parameters
  const seeds = results.runs.map((r) => r.seed)
  return [
    '# Revocation: how fast a revoked device is refused everywhere, mesh and broker',
    '',
    `${p.devices} devices closed by credential (two owners, threshold 2); one device revoked by both owners; ${seeds.length} run${seeds.length === 1 ? '' : 's'} (seeds ${seeds.join(', ')}) of each path: ${p.paths.join(', ')}.`,
    runLine(results),
    '',
    ...checksSection(results),
    '',
    '## How it was measured',
    '',
    `- Every device and the gateway carry an owner-signed credential (CWT, RFC 8392, with a \`cnf\` key, RFC 8747, in a COSE_Sign, RFC 9052 §4.1) and the fleet file; the device farthest from the gateway (fleet index ${p.devices - 1}) publishes every ${p.victimIntervalMs} ms, the others every ${p.intervalMs} ms.`,
    `- After the fleet settled and ${p.beforeS} s of normal traffic, both owners sign a revocation of that device and it is handed to the gateway (its mesh node, or its broker); the device goes on publishing, as a thief's would. Observation lasts ${p.afterS} s after the issue.`,
    `- **mesh**: devices in mesh mode on ${p.transport === 'tcp' ? 'TCP links (127.0.0.1, each node its own transport)' : 'in-memory links'} in a fixed ${p.topology}; the gateway hangs off device 0, so the revocation spreads by gossip over every relay (mesh/routing/handlers/revoke.ts). Every device subscribes to the revoked device's readings, so every node is a place where its frames can be accepted. A node **refuses** from the moment it holds the revocation: its links, frames and commands are refused with ERR_REVOKED from then on.`,
    '- **broker**: devices in broker mode, each with its own MQTT session at the gateway\'s embedded broker. The broker **refuses** when it closes the revoked device\'s session (gateway/revocations.ts); its reconnections are then refused at CONNECT (CONNACK 5, ERR_REVOKED). Frames count as accepted when the gateway\'s ingest (the broker\'s subscriber) accepts them.',
    '- **Accepted after the issue**: frames of the revoked device accepted by any node after the revocation was issued (in the mesh, the nodes it had not reached yet). A frame accepted by a node after that node began to refuse would be a leak (the check `nothing-accepted-after-refusal`).',
    p.transport === 'tcp'
      ? '- Mesh links are TCP connections on loopback, authenticated and encrypted (mesh/links/secure.ts), each node with its own transport: every handshake shows the node\'s credential and the peer checks it (mesh/credentials.ts), and every node checks the credential of each relayed frame\'s origin (CRED, routing/handlers/credential.ts). The times include that work, but no network delay: a floor for a real LAN.'
      : `- Mesh links are in memory and ${p.linkDelayMs === 0 ? 'add no delay of their own: the times are what the nodes take to verify and pass on the revocation under this machine\'s load, a floor for a real network' : `each adds ${p.linkDelayMs} ms to every message`}; the in-memory handshakes show no credentials (the fleet is closed by the revocations at the mesh layer only).`,
    `- Times are taken on one monotonic clock with sub-millisecond resolution. A run is the unit: ${results.interval}.`,
    '',
    '## Headline',
    '',
    'Per path, each figure over the runs: mean [95 % interval].',
    '',
    table(['path', 'refusal p50', 'refusal p99', 'last node refuses', 'nodes refusing', 'cut off', 'accepted after issue', 'last accepted'],
      p.paths.map((path) => [
        path,
        fig(results.figures, path, 'refusal-p50-ms', ms), fig(results.figures, path, 'refusal-p99-ms', ms), fig(results.figures, path, 'refusal-max-ms', ms),
        fig(results.figures, path, 'refusing', pct), fig(results.figures, path, 'cut-ms', ms), fig(results.figures, path, 'accepted-after', count), fig(results.figures, path, 'last-accepted-ms', ms)
      ]), ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r']),
    '',
    `![time to refusal](${files.refusal})`,
    '',
    `The bound of the checks is ${REFUSAL_BOUND_MS / 1000} s ("within seconds", issue 13).`,
    '',
    '## Every run',
    '',
    table(['seed', 'path', 'nodes refusing', 'p50', 'p99', 'max', 'cut off', 'accepted after issue', 'at nodes', 'after refusal', 'last accepted', 'refused connects', 'refused frames', 'published after'],
      results.runs.flatMap((r) => r.paths.map((x) => [
        String(r.seed), x.path, `${x.refusing}/${x.nodes}`, ms(x.refusalMs?.p50), ms(x.refusalMs?.p99), ms(x.refusalMs?.max), ms(x.cutMs),
        String(x.acceptedAfter), String(x.nodesAccepting), String(x.acceptedAfterRefusal), ms(x.lastAcceptedMs), String(x.refusedConnects), String(x.refusedFrames), String(x.publishedAfter)
      ])), ['r', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r']),
    '',
    ...hopsSection(results),
    '## Parameters',
    '',
    parametersTable({ ...p }),
    '',
    ...notesSection(results),
    ...environmentSection(results),
    ''
  ].join('\n')
}

const count = (x: number | null): string => x === null ? '—' : Number.isInteger(x) ? String(x) : x.toFixed(1)

function fig (figures: readonly RevocationFigure[], path: string, metric: RevocationFigureMetric, show: (x: number | null) => string): string {
  const f = figures.find((x) => x.path === path && x.metric === metric)
  if (f === undefined || f.mean === null) return '—'
  return f.low === null || f.high === null ? show(f.mean) : `${show(f.mean)} [${show(f.low)}, ${show(f.high)}]`
}

/** Mesh: time to refusal by hops from the gateway, over the nodes of every run. */
function hopsSection (results: RevocationResults): string[] {
  const byHops = new Map<number, number[]>()
  for (const r of results.runs) {
    for (const x of r.paths) {
      if (x.path !== 'mesh') continue
      for (const n of x.perNode) if (n.hops !== null && n.refusalMs !== null) byHops.set(n.hops, [...(byHops.get(n.hops) ?? []), n.refusalMs])
    }
  }
  if (byHops.size === 0) return []
  const rows = [...byHops.entries()].sort((a, b) => a[0] - b[0]).map(([hops, v]) => {
    const sorted = [...v].sort((a, b) => a - b)
    return [String(hops), String(v.length), ms(sorted[Math.floor((sorted.length - 1) / 2)]), ms(sorted.at(-1))]
  })
  return ['## Mesh: time to refusal by distance', '', 'Hops from the gateway (where the revocation entered the mesh), the nodes of every run pooled.', '', table(['hops', 'nodes', 'median', 'max'], rows, ['r', 'r', 'r', 'r']), '']
}
