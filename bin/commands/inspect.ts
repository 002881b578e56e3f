import { readFile } from 'node:fs/promises'
import {
  ALG_ED25519, decodeFrame, describeHeader, frameReadings, fromBase64, fromHex, isMeshError, meshError, packToJson,
  verifyFrame, type ResolvedRecord, type TelemetryFrame
} from '../../shared/index.js'
import { EXIT_INVALID, onFileArgument, readAll, write, type Command } from '../cli.js'
import { parsePublicKey } from './keys.js'

/** Raw CBOR (starts with tag 18, 0xd2), else hex, else base64/base64url. */
export function parseFrameInput (input: Uint8Array): Uint8Array {
  if (input[0] === 0xd2) return input
  const text = Buffer.from(input).toString('utf8').trim()
  const bytes = fromHex(text) ?? fromBase64(text)
  if (bytes === undefined || bytes.length === 0) throw meshError('ERR_BAD_INPUT', 'the input is neither a raw frame (starting 0xd2), hex nor base64')
  return bytes
}

function valueText (r: ResolvedRecord): string {
  if (r.value !== undefined) return String(r.value)
  if (r.stringValue !== undefined) return JSON.stringify(r.stringValue)
  if (r.boolValue !== undefined) return String(r.boolValue)
  if (r.dataValue !== undefined) return `${r.dataValue.length} bytes`
  return `sum ${String(r.sum)}`
}

function describe (frame: TelemetryFrame, readings: ResolvedRecord[], signature: string): string {
  const width = Math.max(4, ...readings.map((r) => r.name.length))
  const lines = [
    `frame      ${frame.bytes.length} bytes, COSE_Sign1 (CBOR tag 18, RFC 9052 §4.2)`,
    `alg        ${frame.alg} (${frame.alg === ALG_ED25519 ? 'Ed25519, RFC 9864' : 'EdDSA, RFC 9053'})`,
    `origin     ${frame.origin} (kid)`,
    `seq        ${frame.seq}`,
    `sampled    ${new Date(frame.time * 1000).toISOString()}`,
    `records    ${readings.length}`,
    ...readings.map((r) => `  ${r.name.padEnd(width)}  ${valueText(r)}${r.unit === undefined ? '' : ` ${r.unit}`}  @ ${new Date(r.time * 1000).toISOString()}`),
    `signature  ${signature}`
  ]
  return lines.join('\n')
}

export const inspect: Command = {
  name: 'inspect',
  summary: 'Decode a telemetry frame (raw, hex or base64) and check its signature',
  usage: 'iotmesh inspect [FILE|-] [--key PUBKEY] [--json]',
  help: [
    ['FILE|-', 'the frame: raw bytes, hex or base64 (default: standard input)'],
    ['--key PUBKEY', "the signer's public key (base64url or hex), or its key file; without it the signature is not checked. Write --key=PUBKEY when the key starts with \"-\""],
    ['--json', 'print the result as JSON: {ok, error?, frame?}']
  ],
  options: { key: { type: 'string', short: 'k' }, json: { type: 'boolean' } },
  allowPositionals: 1,
  async run ({ values, positionals }, io) {
    const source = positionals[0]
    const input = source === undefined || source === '-' ? await readAll(io.stdin) : new Uint8Array(await onFileArgument(source, 'FILE', () => readFile(source)))
    const key = values.key === undefined ? undefined : await parsePublicKey(values.key as string)
    let frame: TelemetryFrame | undefined
    let readings: ResolvedRecord[] = []
    let error: { code: string, message: string } | undefined
    try {
      const decoded = decodeFrame(parseFrameInput(input))
      readings = frameReadings(decoded) // inside the try: a pack whose names do not resolve is ERR_BAD_SENML, reported like any other
      frame = decoded
      if (key !== undefined) verifyFrame(frame, key)
    } catch (err) {
      if (!isMeshError(err)) throw err
      error = { code: err.code, message: err.message }
    }
    const signature = frame === undefined ? 'not checked' : key === undefined ? 'not checked (no --key given)' : error === undefined ? 'valid' : `INVALID (${error.code})`
    if (values.json === true) {
      write(io.stdout, JSON.stringify({
        ok: error === undefined,
        ...(error === undefined ? {} : { error }),
        signature: frame === undefined || key === undefined ? 'unchecked' : error === undefined ? 'valid' : 'invalid',
        ...(frame === undefined
          ? {}
          : { frame: { size: frame.bytes.length, alg: frame.alg, protected: describeHeader(frame.protectedHeader), origin: frame.origin, seq: frame.seq, time: frame.time, senml: packToJson(frame.records), readings } })
      }))
    } else {
      if (frame !== undefined) write(io.stdout, describe(frame, readings, signature))
      if (error !== undefined) write(io.stderr, `iotmesh inspect: ${error.code}: ${error.message}`)
    }
    return error === undefined ? 0 : EXIT_INVALID
  }
}
