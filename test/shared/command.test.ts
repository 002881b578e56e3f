import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import {
  COMMAND_CONTENT_TYPE, HEADER_ALG, HEADER_CONTENT_TYPE, HEADER_KID, MeshError, ALG_ED25519, decodeCommand, decodeFrame, decodeResult, deviceIdToBytes,
  encodeCbor, encodeCommand, encodeFrame, encodeResult, signSign1, verifySigned
} from '../../shared/index.js'
import { codeOf, seededKeys } from './support.js'

/** The command and result envelope (shared/command.ts): COSE_Sign1 (RFC 9052 §4.2) beside the telemetry frame. */

const issuer = seededKeys(1)
const target = seededKeys(40)
const T = 1_800_000_000

const command = (over: Partial<Parameters<typeof encodeCommand>[0]> = {}): Uint8Array =>
  encodeCommand({ keys: issuer, target: target.id, action: 'relay/set', args: { on: true }, id: 7, issuedAt: T, ...over })

/** A command-shaped COSE_Sign1 with `payload` as its payload map, signed by the issuer (what a hostile encoder may write). */
const raw = (payload: unknown, contentType: unknown = COMMAND_CONTENT_TYPE): Uint8Array => signSign1({
  protectedHeader: new Map<number, unknown>([[HEADER_ALG, ALG_ED25519], [HEADER_CONTENT_TYPE, contentType], [HEADER_KID, deviceIdToBytes(issuer.id)]]),
  payload: encodeCbor(payload),
  secretKey: issuer.secretKey
})

describe('commands and results: the signed envelope', () => {
  it('a command carries its issuer, target, action, arguments, id and lifetime under the issuer\'s signature', () => {
    const c = decodeCommand(command())
    expect(c).toMatchObject({ issuer: issuer.id, target: target.id, action: 'relay/set', id: 7, issuedAt: T, expiresAt: T + 5 })
    expect(c.args).toEqual(new Map([['on', true]]))
    verifySigned(c, issuer.id, issuer.publicKey)
    expect(codeOf(() => verifySigned(c, issuer.id, target.publicKey))).toBe('ERR_WRONG_KEY')
    // One bit of the payload changed: the signature no longer holds.
    const bytes = command()
    const flipped = bytes.slice()
    const at = Buffer.from(bytes).indexOf(Buffer.from('relay/set')) + 1
    flipped[at] = flipped[at] as number ^ 0x01
    expect(codeOf(() => verifySigned(decodeCommand(flipped), issuer.id, issuer.publicKey))).toBe('ERR_BAD_SIGNATURE')
  })

  it('the README\'s annotated command, byte for byte (Ed25519 signatures are deterministic, RFC 8032 §5.1.6)', () => {
    expect(Buffer.from(encodeCommand({ keys: issuer, target: target.id, action: 'relay/set', args: { on: true }, id: 7, issuedAt: 1_800_000_000, ttl: 5 })).toString('hex')).toBe(
      'd2845819a301320319fdea045065b60673d6ed884bf01c2c222d82ada0a05832a60150ec6f70e0eb090929559bfcfa70e4d598026972656c61792f73657403a1626f6ef50407051a6b49d2' +
      '00061a6b49d20558405c3e92a8b4ea488b9f9da872a25c61b3ae4cd2601658a9c95c7eb71f18e6c1abcbe35a9a742c1f88e4bd200cf4489d7584bc389ea7ece3f3d6e2ccb985d6a302')
    expect([issuer.id, target.id]).toEqual(['mw3am46w5weex4a4fqrc3avnua', '5rxxbyhlbeessvm37t5hbzgvta'])
  })

  it('a result carries the command id, a status and the state, signed by the target', () => {
    const r = decodeResult(encodeResult({ keys: target, issuer: issuer.id, id: 7, status: 'ok', state: { relay: true, 'light/level': 40 }, time: T + 0.01 }))
    expect(r).toMatchObject({ target: target.id, issuer: issuer.id, id: 7, status: 'ok', time: T + 0.01 })
    expect(Object.fromEntries(r.state ?? [])).toEqual({ relay: true, 'light/level': 40 })
    verifySigned(r, target.id, target.publicKey)
    expect(decodeResult(encodeResult({ keys: target, issuer: issuer.id, id: 8, status: 'ERR_EXPIRED', time: T })).status).toBe('ERR_EXPIRED')
    expect(codeOf(() => encodeResult({ keys: target, issuer: issuer.id, id: 8, status: 'fine', time: T }))).toBe('ERR_BAD_COMMAND')
  })

  it('commands, results and readings cannot be read as one another (the content type, RFC 9052 §3.1, is signed)', () => {
    const reading = encodeFrame({ keys: issuer, seq: 1, time: T, records: [{ n: 'temp', v: 21 }] })
    const result = encodeResult({ keys: target, issuer: issuer.id, id: 7, status: 'ok', time: T })
    expect(codeOf(() => decodeCommand(reading))).toBe('ERR_BAD_COMMAND')
    expect(codeOf(() => decodeCommand(result))).toBe('ERR_BAD_COMMAND')
    expect(codeOf(() => decodeResult(command()))).toBe('ERR_BAD_COMMAND')
    expect(codeOf(() => decodeFrame(command()))).toBe('ERR_BAD_SENML')
  })

  it('lifetimes are bounded: more than 0 and at most 60 s; arguments at most 1 KiB; actions of plain levels', () => {
    expect(codeOf(() => command({ ttl: 0 }))).toBe('ERR_BAD_COMMAND')
    expect(codeOf(() => command({ ttl: 61 }))).toBe('ERR_BAD_COMMAND')
    expect(decodeCommand(command({ ttl: 60 })).expiresAt).toBe(T + 60)
    expect(codeOf(() => command({ args: { blob: new Uint8Array(1100) } }))).toBe('ERR_BAD_COMMAND')
    for (const action of ['', 'Relay/set', 'relay/+', 'relay//set', 'relay/#', 'a'.repeat(65)]) expect(codeOf(() => command({ action })), action).toBe('ERR_BAD_COMMAND')
    // What a hostile encoder may sign: a lifetime of a year, an unknown key, a target that is not a device id.
    const base = new Map<number, unknown>([[1, deviceIdToBytes(target.id)], [2, 'relay/set'], [4, 1], [5, T], [6, T + 5]])
    expect(decodeCommand(raw(base)).id).toBe(1)
    expect(codeOf(() => decodeCommand(raw(new Map(base).set(6, T + 365 * 86400))))).toBe('ERR_BAD_COMMAND')
    expect(codeOf(() => decodeCommand(raw(new Map(base).set(9, 'x'))))).toBe('ERR_BAD_COMMAND')
    expect(codeOf(() => decodeCommand(raw(new Map(base).set(1, new Uint8Array(15)))))).toBe('ERR_BAD_COMMAND')
    expect(codeOf(() => decodeCommand(raw(new Map(base).set(4, -1))))).toBe('ERR_BAD_COMMAND')
    expect(codeOf(() => decodeCommand(raw(base, 'application/cbor')))).toBe('ERR_BAD_COMMAND')
    expect(codeOf(() => decodeCommand(raw([1, 2, 3])))).toBe('ERR_BAD_COMMAND')
  })

  it('any bytes decode to a command or to a MeshError, never anything else (fast-check)', () => {
    const good = command()
    fc.assert(fc.property(fc.oneof(
      fc.uint8Array({ maxLength: 300 }),
      fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 1, max: 255 })).map(([i, x]) => { const b = good.slice(); b[i] = (b[i] as number) ^ x; return b })
    ), (bytes) => {
      try { decodeCommand(bytes) } catch (err) { if (!(err instanceof MeshError)) throw err }
      try { decodeResult(bytes) } catch (err) { if (!(err instanceof MeshError)) throw err }
    }), { numRuns: 5000, seed: 12 })
  })
})
