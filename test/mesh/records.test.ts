import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { DEFAULT_FLEET, generateKeyPair, isMeshError, toBase64url } from '../../shared/index.js'
import {
  MAX_TXT_BYTES, PROTOCOL_VERSION, browseRow, encodeTxt, hostNameFor, instanceName, parseTxt, txtStrings, type InvalidReason
} from '../../mesh/discovery/index.js'
import { renamed } from '../../mesh/discovery/records.js'

// Seeded keys: the same run every time (STYLE.md, deterministic tests).
const alice = generateKeyPair(new Uint8Array(32).fill(1))
const bob = generateKeyPair(new Uint8Array(32).fill(2))
const enc = (text: string): Uint8Array => new TextEncoder().encode(text)
const good = (): Record<string, string> => encodeTxt({ id: alice.id, publicKey: alice.publicKey, fleet: 'barn' })
const strings = (txt: Record<string, string | undefined>): Uint8Array[] =>
  Object.entries(txt).filter(([, v]) => v !== undefined).map(([k, v]) => enc(`${k}=${v as string}`))

describe('TXT record of a device (RFC 6763 §6)', () => {
  it('announces txtvers first, then id, pk (base64url, no padding), v and fleet', () => {
    const txt = encodeTxt({ id: alice.id, publicKey: alice.publicKey })
    expect(Object.keys(txt)).toEqual(['txtvers', 'id', 'pk', 'v', 'fleet'])
    expect(txt).toEqual({ txtvers: '1', id: alice.id, pk: toBase64url(alice.publicKey), v: String(PROTOCOL_VERSION), fleet: DEFAULT_FLEET })
    expect(txt.pk).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(PROTOCOL_VERSION).toBe(1)
  })

  it('parses what it announces', () => {
    const result = parseTxt(txtStrings(good()))
    expect(result).toEqual({ ok: true, value: { id: alice.id, publicKey: alice.publicKey, version: 1, fleet: 'barn' } })
  })

  it('takes the default fleet when none is announced', () => {
    const { fleet: _fleet, ...rest } = good()
    expect(parseTxt(txtStrings(rest))).toMatchObject({ ok: true, value: { fleet: DEFAULT_FLEET } })
  })

  it('compares keys case-insensitively and keeps the first of a repeated key (§6.4)', () => {
    const txt = [enc('TXTVERS=1'), enc(`ID=${alice.id}`), enc(`id=${bob.id}`), enc(`Pk=${toBase64url(alice.publicKey)}`), enc('v=1')]
    expect(parseTxt(txt)).toMatchObject({ ok: true, value: { id: alice.id } })
  })

  it('ignores empty strings and strings with an empty key (§6.1, §6.4)', () => {
    expect(parseTxt([new Uint8Array(0), enc('=junk'), ...txtStrings(good())])).toMatchObject({ ok: true })
  })

  const cases: Array<[string, Uint8Array[], InvalidReason]> = [
    ['txtvers missing', strings({ ...good(), txtvers: undefined }), 'txtvers'],
    ['txtvers 2', strings({ ...good(), txtvers: '2' }), 'txtvers'],
    ['id missing', strings({ ...good(), id: undefined }), 'missing-key'],
    ['pk missing', strings({ ...good(), pk: undefined }), 'missing-key'],
    ['v missing', strings({ ...good(), v: undefined }), 'missing-key'],
    ['id without a value', [...strings({ ...good(), id: undefined }).slice(0, 1), enc('id'), ...strings({ ...good(), id: undefined }).slice(1)], 'missing-key'],
    ['id empty', strings({ ...good(), id: '' }), 'missing-key'],
    ['id in upper case', strings({ ...good(), id: alice.id.toUpperCase() }), 'bad-id'],
    ['id too short', strings({ ...good(), id: alice.id.slice(1) }), 'bad-id'],
    ['pk not base64', strings({ ...good(), pk: '!!not base64!!' }), 'bad-pk'],
    ['pk padded standard base64', strings({ ...good(), pk: Buffer.from(alice.publicKey).toString('base64') }), 'bad-pk'],
    ['pk of 31 bytes', strings({ ...good(), pk: toBase64url(alice.publicKey.subarray(1)) }), 'bad-pk'],
    ['pk of another device', strings({ ...good(), pk: toBase64url(bob.publicKey) }), 'key-mismatch'],
    ['v not a number', strings({ ...good(), v: 'one' }), 'bad-version'],
    ['v negative', strings({ ...good(), v: '-1' }), 'bad-version'],
    ['v fractional', strings({ ...good(), v: '1.5' }), 'bad-version'],
    ['fleet empty', strings({ ...good(), fleet: '' }), 'bad-fleet'],
    ['fleet of 64 bytes', strings({ ...good(), fleet: 'f'.repeat(64) }), 'bad-fleet'],
    ['a string of 256 bytes', [...txtStrings(good()), enc(`x=${'a'.repeat(254)}`)], 'oversized'],
    [`a record over ${MAX_TXT_BYTES} bytes`, [...txtStrings(good()), ...Array.from({ length: 6 }, (_, i) => enc(`x${i}=${'a'.repeat(240)}`))], 'oversized'],
    ['a string that is not UTF-8', [...txtStrings(good()), Uint8Array.of(0x6b, 0x3d, 0xff, 0xfe)], 'malformed'],
    ['a key with a control character', [enc('\x01id=x'), ...txtStrings(good())], 'malformed']
  ]
  it.each(cases)('refuses %s', (_name, txt, reason) => {
    const result = parseTxt(txt)
    expect(result.ok).toBe(false)
    if (!result.ok) {
      expect(result.reason).toBe(reason)
      expect(result.detail.length).toBeGreaterThan(0)
    }
  })

  it('never throws on arbitrary strings', () => {
    fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 12 }), (txt) => {
      const result = parseTxt(txt)
      expect(typeof result.ok).toBe('boolean')
    }), { seed: 6763, numRuns: 500 })
  })
})

describe('names', () => {
  it('checks instance names (RFC 6763 §4.1.1)', () => {
    expect(instanceName('Barn sensor')).toBe('Barn sensor')
    expect(instanceName('barn.sensor')).toBe('barn-sensor') // as bonjour-service would send it
    expect(instanceName('é'.repeat(31))).toBe('é'.repeat(31)) // 62 bytes
    for (const bad of ['', 'é'.repeat(32), 'a'.repeat(64), 'tab\there']) {
      expect(() => instanceName(bad)).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }))
    }
    try { instanceName('') } catch (err) { expect(isMeshError(err, 'ERR_BAD_ARGUMENT')).toBe(true) }
  })

  it('renames after a conflict as "name (2)", within 63 bytes (RFC 6762 §9)', () => {
    expect(renamed('dev', 1)).toBe('dev (2)')
    expect(renamed('dev (2)', 2)).toBe('dev (3)')
    const long = renamed('x'.repeat(63), 1)
    expect(long).toBe(`${'x'.repeat(59)} (2)`)
  })

  it('gives every device its own SRV target host, a valid DNS label', () => {
    const host = hostNameFor(alice.id)
    expect(host).toBe(`iotmesh-${alice.id}.local`)
    expect(host).not.toBe(hostNameFor(bob.id))
    expect(host.split('.')[0]).toMatch(/^[a-z0-9-]{1,63}$/)
  })
})

describe('browse rows (iotmesh peers)', () => {
  const view = (txt: Uint8Array[]): Parameters<typeof browseRow>[0] =>
    ({ fqdn: 'dev._iotmesh._tcp.local', name: 'dev', host: 'h.local', port: 7000, txt, addresses: ['10.0.0.1'], from: '10.0.0.1' })

  it('shows a valid device with keyMatches', () => {
    expect(browseRow(view(txtStrings(good())))).toEqual({
      name: 'dev', id: alice.id, publicKey: toBase64url(alice.publicKey), fleet: 'barn', version: 1,
      addresses: ['10.0.0.1'], port: 7000, host: 'h.local', keyMatches: true, valid: true
    })
  })

  it('flags a pk that does not derive to the id', () => {
    const row = browseRow(view(strings({ ...good(), pk: toBase64url(bob.publicKey) })))
    expect(row).toMatchObject({ id: alice.id, keyMatches: false, valid: false, reason: 'key-mismatch' })
  })

  it('shows an invalid record whose key still matches, with the reason', () => {
    expect(browseRow(view(strings({ ...good(), v: 'x' })))).toMatchObject({ keyMatches: true, valid: false, reason: 'bad-version' })
    expect(browseRow(view([Uint8Array.of(0xff)]))).toMatchObject({ keyMatches: false, valid: false, reason: 'malformed' })
  })
})
