import { MeshNode, type Delivery } from '../../mesh/index.js'
import { DEFAULT_FLEET, decodeFrame, decryptFrame, generateKeyPair, isMeshError, meshError, resolvePack, validateFilter, type ReaderKey } from '../../shared/index.js'
import { readKeyFlag, readRosterFlag } from '../roster-flags.js'
import { readReaderKeyFlag } from '../reader-key.js'
import { clientLinks, intFlag, write, type Command } from '../cli.js'

export const watch: Command = {
  name: 'watch',
  summary: 'Join the mesh as a listener and print verified readings live',
  usage: 'iotmesh watch [FILTER] [--json] [--fleet F] [--peers HOST:PORT,…] [--no-mdns] [--count N] [--history] [--roster FILE --key FILE] [--reader-key FILE]',
  help: [
    ['FILTER', 'an MQTT-style topic filter over iotmesh/<fleet>/<device>/<topic> (default #)'],
    ['--fleet F', 'the fleet to join (default "default")'],
    ['--peers LIST', 'comma-separated host:port of devices to link to (networks without multicast)'],
    ['--no-mdns', 'do not use mDNS/DNS-SD: link to the --peers given, and to no peer they name'],
    ['--count N', 'exit after N readings (signed frames; history too with --history)'],
    ['--history', 'also show readings sampled before the watch began that the mesh replays to a new listener (catch-up from its neighbours\' histories), marked "history"; default: live readings only'],
    ['--json', 'one JSON object per reading: device, name, topic, seq, sensor, value, unit, time, hops, latencyMs (and history: true for a replayed one)'],
    // Closed mode (WP 11-D)
    ['--roster FILE', 'closed mode: link to, and show frames from, only the keys in this JSON roster (iotmesh keygen --json entries)'],
    ['--key FILE', 'the listener\'s key file (iotmesh keygen); in closed mode its key must be in the rosters of the nodes it links to. Default: a new key each run'],
    ['--reader-key FILE', 'a reader key (iotmesh keygen --reader): encrypted readings granted to it are shown; others are reported as encrypted']
  ],
  options: {
    json: { type: 'boolean' }, fleet: { type: 'string' }, peers: { type: 'string' }, 'no-mdns': { type: 'boolean' }, count: { type: 'string' }, history: { type: 'boolean' },
    roster: { type: 'string' }, key: { type: 'string' }, 'reader-key': { type: 'string' }
  },
  allowPositionals: 1,
  async run ({ values, positionals }, io) {
    const filter = positionals[0] ?? '#'
    validateFilter(filter)
    const count = intFlag(values, 'count', 0, 0)
    const peers = typeof values.peers === 'string' ? values.peers.split(',').map((p) => p.trim()).filter((p) => p.length > 0) : []
    // A listener needs an identity to link, not a lasting one, unless rostered nodes must know it.
    const keys = typeof values.key === 'string' ? await readKeyFlag(values.key) : generateKeyPair()
    const roster = typeof values.roster === 'string' ? await readRosterFlag(values.roster) : undefined
    const reader = await readReaderKeyFlag(values['reader-key'])
    const node = new MeshNode({
      name: `iotmesh-watch-${keys.id.slice(0, 6)}`,
      fleet: (values.fleet as string | undefined) ?? DEFAULT_FLEET,
      ...clientLinks(values, peers),
      announceLinks: 0,
      ...(roster === undefined ? {} : { roster })
    }, { keys })
    await node.start()
    if (values.json !== true) write(io.stderr, `watching ${filter} on fleet "${node.fleet}" as ${node.id}${roster === undefined ? '' : `, closed mode (${roster.length} keys)`} (Ctrl-C to stop)`)
    if (roster !== undefined && node.keyOf(node.id) === undefined) {
      write(io.stderr, `iotmesh watch: warning: this listener's key (${node.id}) is not in the roster: nodes in closed mode will not link to it.${values.key === undefined ? ' Pass --key with a key that is.' : ''}`)
    }
    let seen = 0
    const since = Date.now()
    try {
      for await (const d of node.subscribe(filter, { signal: io.signal })) {
        // Catch-up replays what neighbours held before this listener came: history, shown only when asked for.
        const history = d.caughtUp === true && d.time * 1000 < since
        if (history && values.history !== true) continue
        // Nothing a frame holds may stop the listener: decodeFrame already refuses what does not
        // resolve (RFC 8428 §4.5.1), and anything that still throws here skips this reading only.
        let lines: string[]
        try {
          lines = readingLines(opened(d, reader), new Map(node.peers().map((p) => [p.id, p.name])), values.json === true, history)
        } catch (err) {
          write(io.stderr, `iotmesh watch: skipped ${d.origin}#${d.seq}: ${isMeshError(err) ? `${err.code}: ` : ''}${err instanceof Error ? err.message : String(err)}`)
          continue
        }
        for (const line of lines) write(io.stdout, line)
        if (count > 0 && ++seen >= count) break
      }
    } finally {
      await node.stop()
    }
    return 0
  }
}

/**
 * The delivery with its readings: decrypted when the frame is encrypted and `reader` may read it.
 * Throws ERR_NOT_A_READER (no key, or not granted) or ERR_DECRYPT: the caller reports it and goes on.
 */
function opened (d: Delivery, reader: ReaderKey | undefined): Delivery {
  if (d.records.length > 0) return d // a plain frame: an encrypted one has no readings until decrypted
  const frame = decodeFrame(d.frame)
  if (frame.encrypted === undefined) return d
  if (reader === undefined) throw meshError('ERR_NOT_A_READER', 'encrypted to the fleet\'s readers; pass --reader-key with a granted reader key to read it')
  return { ...d, records: decryptFrame(frame, reader).records }
}

/** One line per resolved record of a delivery: JSON, or a row for people. Throws what resolvePack throws. */
function readingLines (d: Delivery, names: ReadonlyMap<string, string | undefined>, json: boolean, history: boolean): string[] {
  const latencyMs = Math.round((d.receivedAt - d.time * 1000) * 10) / 10
  return resolvePack(d.records, d.time).map((r) => {
    const value = r.value ?? r.stringValue ?? r.boolValue ?? r.sum ?? (r.dataValue === undefined ? null : `${r.dataValue.length} bytes`)
    if (json) {
      return JSON.stringify({ device: d.origin, name: names.get(d.origin) ?? null, topic: d.topic, seq: d.seq, sensor: r.name, value, unit: r.unit ?? null, time: r.time, hops: d.hops, latencyMs, ...(history ? { history: true } : {}) })
    }
    const device = names.get(d.origin) ?? d.origin.slice(0, 10)
    return `${new Date(r.time * 1000).toISOString().slice(11, 23)}  ${device.padEnd(16)} ${r.name.padEnd(16)} ${String(value).padStart(10)} ${(r.unit ?? '').padEnd(4)} hops ${d.hops}  ${history ? 'history' : `${latencyMs} ms`}`
  })
}
