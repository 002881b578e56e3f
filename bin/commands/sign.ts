import { createWriteStream } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { finished } from 'node:stream/promises'
import { encodeFrame, meshError, packFromJson, toBase64url, toHex } from '../../shared/index.js'
import { loadKeyFile, openSequenceFile } from '../../shared/node.js'
import { intFlag, onFileArgument, readAll, write, type Command } from '../cli.js'
import { defaultKeyPath } from './keys.js'

export const sign: Command = {
  name: 'sign',
  summary: 'Sign SenML JSON records (RFC 8428 §5) into an iotmesh telemetry frame (COSE_Sign1)',
  usage: 'iotmesh sign [--key FILE] [--in FILE|-] [--seq N] [--out FILE] [--hex|--base64]',
  help: [
    ['--key FILE', 'the device key file (default $IOTMESH_HOME/device.key or ~/.iotmesh/device.key)'],
    ['--in FILE|-', 'SenML JSON: one record or an array (default: standard input)'],
    ['--seq N', 'sequence number; default: the next from FILE.seq beside the key, persisted so it never repeats'],
    ['--out FILE', 'write the frame here (default: standard output)'],
    ['--hex', 'write hex instead of raw bytes'],
    ['--base64', 'write base64url instead of raw bytes']
  ],
  options: { key: { type: 'string', short: 'k' }, in: { type: 'string', short: 'i' }, seq: { type: 'string' }, out: { type: 'string', short: 'o' }, hex: { type: 'boolean' }, base64: { type: 'boolean' } },
  async run ({ values }, io) {
    if (values.hex === true && values.base64 === true) throw meshError('ERR_BAD_ARGUMENT', 'choose one of --hex and --base64')
    const keyPath = (values.key as string | undefined) ?? defaultKeyPath(io.env)
    const keys = await loadKeyFile(keyPath)
    const source = values.in as string | undefined
    const text = Buffer.from(source === undefined || source === '-' ? await readAll(io.stdin) : await onFileArgument(source, '--in', () => readFile(source))).toString('utf8')
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch (err) {
      throw meshError('ERR_BAD_INPUT', `the input is not JSON: ${(err as Error).message}`, { cause: err })
    }
    const records = packFromJson(json)
    const seq = values.seq === undefined ? openSequenceFile(`${keyPath}.seq`, { block: 1 }).next() : intFlag(values, 'seq', 0)
    const frame = encodeFrame({ keys, seq, records })
    const out = values.hex === true ? `${toHex(frame)}\n` : values.base64 === true ? `${toBase64url(frame)}\n` : frame
    if (values.out !== undefined) {
      await onFileArgument(values.out as string, '--out', async () => {
        const file = createWriteStream(values.out as string)
        file.end(out)
        await finished(file)
      })
      write(io.stderr, `signed ${records.length} record(s) as ${keys.id}#${seq}: ${frame.length} bytes to ${String(values.out)}`)
    } else if (typeof out !== 'string' && io.stdout.isTTY === true) {
      write(io.stdout, toHex(frame)) // raw bytes would garble a terminal
    } else {
      io.stdout.write(out)
    }
    return 0
  }
}
