import { browsePeers, type BrowseRow } from '../../mesh/index.js'
import { meshError } from '../../shared/index.js'
import { deadline, numberFlag, write, type Command } from '../cli.js'

/** What a gateway knows of one device (GET /api/peers and /api/devices), as `--gateway` adds it to a row. */
interface GatewayView {
  /** The gateway's score of the device, when it is (or was lately) its neighbour. */
  score?: number
  /** Kept out by the gateway now: its score fell below the threshold. */
  banned?: boolean
  /** The gateway saw two different frames signed for one of its sequence numbers. */
  cloned?: boolean
}

/** A DNS-SD row, with what the command found out beside it. */
type PeerRow = BrowseRow & {
  /** Another instance announces the same device id: two boards with one key (or a stale announcement of a renamed device). */
  clone?: 'ERR_CLONED_IDENTITY'
  gateway?: GatewayView
}

export const peers: Command = {
  name: 'peers',
  summary: 'List the iotmesh devices DNS-SD shows on the local network',
  usage: 'iotmesh peers [--json] [--timeout S] [--fleet F] [--all] [--gateway URL]',
  help: [
    ['--timeout S', 'how long to listen, in seconds (default 3)'],
    ['--fleet F', 'only devices of this fleet (default: every fleet)'],
    ['--json', 'print one JSON array of rows'],
    ['--all', "also list instances whose TXT record is invalid (they are always in --json)"],
    ['--gateway URL', "add a gateway's view (its HTTP API, e.g. http://gw:8080/?token=… as it printed, or the token in IOTMESH_HTTP_TOKEN): its score of each neighbour, bans, cloned identities"]
  ],
  options: { json: { type: 'boolean' }, timeout: { type: 'string', short: 't' }, fleet: { type: 'string' }, all: { type: 'boolean' }, gateway: { type: 'string' } },
  async run ({ values }, io) {
    const timeoutMs = Math.round(numberFlag(values, 'timeout', 3, 0.1, 3600) * 1000)
    const gatewayUrl = values.gateway === undefined ? undefined : gatewayBase(values.gateway as string)
    const browsed = await browsePeers({ timeoutMs, signal: io.signal, ...(values.fleet === undefined ? {} : { fleet: values.fleet as string }) })
    const view = gatewayUrl === undefined ? undefined : await gatewayView(gatewayUrl, io.signal)
    const rows = markClones(browsed).map((row) => withGateway(row, view))
    rows.sort((a, b) => a.name.localeCompare(b.name))
    if (values.json === true) {
      write(io.stdout, JSON.stringify(rows))
      return 0
    }
    const shown = values.all === true ? rows : rows.filter((r) => r.valid)
    if (shown.length === 0) {
      write(io.stdout, `no iotmesh devices seen in ${timeoutMs / 1000} s${rows.length > shown.length ? ` (${rows.length - shown.length} invalid announcement(s): use --all)` : ''}`)
      return 0
    }
    const head = ['NAME', 'ID', 'ADDRESSES', 'PORT', 'FLEET', 'KEY', ...(view === undefined ? [] : ['SCORE'])]
    const table = [head, ...shown.map((r) => [
      r.name, r.id ?? '-', r.addresses.join(',') || '-', String(r.port), r.fleet ?? '-', keyColumn(r),
      ...(view === undefined ? [] : [scoreColumn(r.gateway)])
    ])]
    const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)))
    write(io.stdout, table.map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n'))
    const invalid = rows.length - rows.filter((r) => r.valid).length
    if (invalid > 0 && values.all !== true) write(io.stderr, `${invalid} invalid announcement(s) not shown (use --all or --json)`)
    const clones = new Set(shown.filter((r) => r.clone !== undefined || r.gateway?.cloned === true).map((r) => r.id))
    if (clones.size > 0) {
      write(io.stderr, `ERR_CLONED_IDENTITY: ${[...clones].join(', ')}: two devices use one key (one SD-card image on two boards?). ` +
        'Give each board its own key; the mesh keeps the first copy of each reading and refuses the second.')
    }
    return 0
  }
}

/** Rows whose device id another valid row announces too: the same key on two boards (ERR_CLONED_IDENTITY). */
export function markClones (rows: BrowseRow[]): PeerRow[] {
  const count = new Map<string, number>()
  for (const r of rows) if (r.valid && r.id !== undefined) count.set(r.id, (count.get(r.id) ?? 0) + 1)
  return rows.map((r) => r.valid && r.id !== undefined && (count.get(r.id) ?? 0) > 1 ? { ...r, clone: 'ERR_CLONED_IDENTITY' as const } : r)
}

function keyColumn (r: PeerRow): string {
  if (!r.keyMatches) return `MISMATCH${r.reason === undefined ? '' : ` (${r.reason})`}`
  return r.clone !== undefined || r.gateway?.cloned === true ? 'CLONE' : 'ok'
}

function scoreColumn (view: GatewayView | undefined): string {
  if (view?.score === undefined) return '-'
  return `${view.score.toFixed(1)}${view.banned === true ? ' BANNED' : ''}`
}

function withGateway (row: PeerRow, view: Map<string, GatewayView> | undefined): PeerRow {
  const seen = row.id === undefined ? undefined : view?.get(row.id)
  return seen === undefined ? row : { ...row, gateway: seen }
}

function gatewayBase (text: string): URL {
  try {
    const url = new URL(text)
    if (url.protocol === 'http:' || url.protocol === 'https:') return url
  } catch { /* below */ }
  throw meshError('ERR_BAD_ARGUMENT', `--gateway must be the URL of a gateway's HTTP API, like http://gw.local:8080, got ${JSON.stringify(text)}`)
}

/** The gateway's mesh peers (with its scores) and its device registry (cloned identities), by device id. */
async function gatewayView (base: URL, signal: AbortSignal): Promise<Map<string, GatewayView>> {
  const get = async (path: string): Promise<unknown> => {
    const url = new URL(path, base)
    let res: Response
    try {
      // The gateway's access token (gateway/access.ts): from the URL it printed (?token=…), sent as a Bearer header.
      const token = base.searchParams.get('token') ?? process.env.IOTMESH_HTTP_TOKEN
      const timeout = deadline(signal, 10_000)
      try {
        res = await fetch(url, { signal: timeout.signal, ...(token === undefined || token === '' ? {} : { headers: { authorization: `Bearer ${token}` } }) })
      } finally {
        timeout.clear()
      }
    } catch (err) {
      throw meshError('ERR_BAD_ARGUMENT', `--gateway: ${url.href} did not answer: ${(err as Error).message}`, { cause: err })
    }
    if (res.status === 404) return undefined // a gateway without a mesh has no /api/peers
    if (!res.ok) throw meshError('ERR_BAD_ARGUMENT', `--gateway: ${url.href} answered ${res.status}`)
    return await res.json()
  }
  const [peersBody, devicesBody] = await Promise.all([get('/api/peers'), get('/api/devices')])
  const view = new Map<string, GatewayView>()
  const entry = (id: string): GatewayView => { let v = view.get(id); if (v === undefined) view.set(id, v = {}); return v }
  for (const p of (peersBody as { peers?: Array<{ id?: unknown, score?: { score?: unknown, bannedUntil?: unknown } }> } | undefined)?.peers ?? []) {
    if (typeof p.id !== 'string' || typeof p.score?.score !== 'number') continue
    const v = entry(p.id)
    v.score = p.score.score
    if (p.score.bannedUntil !== undefined) v.banned = true
  }
  for (const d of (devicesBody as { devices?: Array<{ id?: unknown, clone?: unknown }> } | undefined)?.devices ?? []) {
    if (typeof d.id === 'string' && d.clone !== undefined) entry(d.id).cloned = true
  }
  return view
}
