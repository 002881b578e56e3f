import { browsePeers } from '../../mesh/index.js'
import { numberFlag, write, type Command } from '../cli.js'

export const peers: Command = {
  name: 'peers',
  summary: 'List the iotmesh devices DNS-SD shows on the local network',
  usage: 'iotmesh peers [--json] [--timeout S] [--fleet F] [--all]',
  help: [
    ['--timeout S', 'how long to listen, in seconds (default 3)'],
    ['--fleet F', 'only devices of this fleet (default: every fleet)'],
    ['--json', 'print one JSON array of rows'],
    ['--all', "also list instances whose TXT record is invalid (they are always in --json)"]
  ],
  options: { json: { type: 'boolean' }, timeout: { type: 'string', short: 't' }, fleet: { type: 'string' }, all: { type: 'boolean' } },
  async run ({ values }, io) {
    const timeoutMs = Math.round(numberFlag(values, 'timeout', 3, 0.1, 3600) * 1000)
    const rows = await browsePeers({ timeoutMs, signal: io.signal, ...(values.fleet === undefined ? {} : { fleet: values.fleet as string }) })
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
    const table = [['NAME', 'ID', 'ADDRESSES', 'PORT', 'FLEET', 'KEY'], ...shown.map((r) => [
      r.name, r.id ?? '-', r.addresses.join(',') || '-', String(r.port), r.fleet ?? '-',
      r.keyMatches ? 'ok' : `MISMATCH${r.reason === undefined ? '' : ` (${r.reason})`}`
    ])]
    const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)))
    write(io.stdout, table.map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n'))
    const invalid = rows.length - rows.filter((r) => r.valid).length
    if (invalid > 0 && values.all !== true) write(io.stderr, `${invalid} invalid announcement(s) not shown (use --all or --json)`)
    return 0
  }
}
