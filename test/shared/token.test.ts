import { describe, expect, it } from 'vitest'
import {
  TOKEN_DEFAULTS, checkDeviceToken, decodeCbor, decodeSign1, fromBase64, readDeviceToken, signDeviceToken, toBase64url, verifyDeviceToken
} from '../../shared/index.js'
import { seededKeys } from './support.js'

const keys = seededKeys(7)
const other = seededKeys(8)
const NOW = 1_767_225_600_000 // 2026-01-01T00:00:00Z
const cti = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8)
const token = (over: Partial<Parameters<typeof signDeviceToken>[0]> = {}): string => signDeviceToken({ keys, clientId: 'iotmesh-dev', fleet: 'default', now: NOW, cti, ...over })
const expect0 = { username: keys.id, clientId: 'iotmesh-dev', fleet: 'default', now: NOW }

describe('device tokens (CWT, RFC 8392, in a COSE_Sign1)', () => {
  it('carries the claims of its layout, and reads back and verifies', () => {
    const text = token()
    expect(text).toMatch(/^[A-Za-z0-9_-]+$/) // base64url, no padding (RFC 4648 §5)
    expect(text.length).toBeLessThan(400)
    const sign1 = decodeSign1(fromBase64(text) as Uint8Array)
    expect(sign1.protectedHeader.get(1)).toBe(-19)
    const claims = decodeCbor(sign1.payload) as Map<unknown, unknown>
    expect(claims.get(1)).toBe(keys.id) // iss
    expect(claims.get(2)).toBe(keys.id) // sub
    expect(claims.get(3)).toBe('iotmesh:default') // aud
    expect(claims.get(6)).toBe(NOW / 1000) // iat
    expect(claims.get(4)).toBe(NOW / 1000 + TOKEN_DEFAULTS.lifetimeSeconds) // exp
    expect(claims.get(7)).toEqual(cti)
    expect(claims.get('cid')).toBe('iotmesh-dev')
    const read = readDeviceToken(text)
    if (!read.ok) throw new Error(read.message)
    expect(read.token.publicKey).toEqual(keys.publicKey)
    expect(verifyDeviceToken(read)).toBe(true)
    expect(checkDeviceToken(read.token, expect0)).toBeUndefined()
  })

  it('flipping any byte makes it unreadable or unverifiable', () => {
    const bytes = fromBase64(token()) as Uint8Array
    for (let i = 0; i < bytes.length; i++) {
      const bad = bytes.slice()
      bad[i] = (bad[i] as number) ^ 0x01
      const read = readDeviceToken(toBase64url(bad))
      expect(read.ok && verifyDeviceToken(read), `byte ${i}`).toBe(false)
    }
  })

  it('binds the user name, the client id and the fleet', () => {
    const read = readDeviceToken(token())
    if (!read.ok) throw new Error(read.message)
    expect(checkDeviceToken(read.token, { ...expect0, username: other.id })?.code).toBe('ERR_BAD_TOKEN')
    expect(checkDeviceToken(read.token, { ...expect0, clientId: 'thief' })?.code).toBe('ERR_BAD_TOKEN')
    expect(checkDeviceToken(read.token, { ...expect0, fleet: 'lab' })?.code).toBe('ERR_UNKNOWN_FLEET')
  })

  it('time is the gateway\'s: ±300 s of skew, then ERR_CLOCK_SKEW; past exp ERR_TOKEN_EXPIRED; a long lifetime ERR_BAD_TOKEN', () => {
    const read = (t: string): ReturnType<typeof readDeviceToken> & { ok: true } => {
      const r = readDeviceToken(t)
      if (!r.ok) throw new Error(r.message)
      return r
    }
    const ok = read(token()).token
    expect(checkDeviceToken(ok, { ...expect0, now: NOW + 299_000 })).toBeUndefined()
    expect(checkDeviceToken(ok, { ...expect0, now: NOW - 300_000 })).toBeUndefined()
    expect(checkDeviceToken(ok, { ...expect0, now: NOW + 301_000 })?.code).toBe('ERR_CLOCK_SKEW')
    // A Raspberry Pi without a real-time clock, booted at the epoch: a stable code naming both clocks.
    const pi = checkDeviceToken(read(token({ now: 5_000 })).token, expect0)
    expect(pi?.code).toBe('ERR_CLOCK_SKEW')
    expect(pi?.message).toContain('1970-01-01T00:00:05Z')
    const short = read(token({ lifetimeSeconds: 60 })).token
    expect(checkDeviceToken(short, { ...expect0, now: NOW + 60_000 })?.code).toBe('ERR_TOKEN_EXPIRED')
    expect(checkDeviceToken(read(token({ lifetimeSeconds: 86_400 })).token, expect0)?.code).toBe('ERR_BAD_TOKEN')
  })

  it('refuses what is not a token with a stable code, never a throw', () => {
    for (const text of ['', 'secret', 'x'.repeat(2000), toBase64url(Uint8Array.of(0xd2, 0x84)), toBase64url(new TextEncoder().encode('{"a":1}'))]) {
      const read = readDeviceToken(text)
      expect(read.ok).toBe(false)
      if (!read.ok) expect(read.code).toBe('ERR_BAD_TOKEN')
    }
  })
})
