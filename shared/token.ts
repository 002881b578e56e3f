import { fromBase64, toBase64url } from './bytes.js'
import { DEFAULT_CBOR_LIMITS, decodeCbor, encodeCbor } from './cbor.js'
import { ALG_ED25519, decodeSign1, signSign1, verifySign1, HEADER_ALG, type Sign1 } from './cose.js'
import type { Ed25519, PublicKey } from './crypto/ed25519.js'
import { PUBLIC_KEY_LENGTH } from './crypto/ed25519.js'
import { isMeshError, type ErrorCode } from './errors.js'
import { deviceIdFromPublicKey, type DeviceId, type KeyPair } from './identity.js'

/**
 * The device token: how a device proves its identity to an MQTT broker with its own key, in the
 * MQTT 3.1.1 CONNECT alone (§3.1.3.4 user name, §3.1.3.5 password; no challenge round trip).
 *
 *   user name = the device id
 *   password  = base64url (RFC 4648 §5, no padding) of a CWT (RFC 8392): a COSE_Sign1 (RFC 9052
 *               §4.2, tag 18, alg Ed25519 -19 in the protected header) signed by the device key over
 *               the claims map
 *     1 iss  text   the device id (the device issues its own token: RFC 8392 §3.1.1)
 *     2 sub  text   the device id (§3.1.2)
 *     3 aud  text   "iotmesh:<fleet>": the fleet whose gateway may accept it (§3.1.3)
 *     4 exp  int    expiry, seconds since the epoch (§3.1.4)
 *     6 iat  int    issued at, seconds since the epoch (§3.1.6)
 *     7 cti  bstr   8 random bytes, the token's id: a token is accepted once (§3.1.7)
 *     8 cnf  map    {1: COSE_Key} (RFC 8747 §3.1), the device's public key as an OKP key:
 *                   {1 kty: 1 OKP, -1 crv: 6 Ed25519, -2 x: 32 bytes} (RFC 9053 §7.2)
 *     "cid" text   the MQTT client id the token is for (a private claim, RFC 8392 §4)
 *
 * The key travels in the token, so a gateway that never saw the device can check it (the device
 * id is the hash of that key: a token cannot name another device's id). Time is the gateway's:
 * iat must lie within ±maxSkew of the gateway clock, exp after it, and exp − iat at most
 * maxLifetime (defaults below). A token is a few hundred bytes (≈ 260 characters).
 */

export const TOKEN_DEFAULTS = {
  /** How long a token the device makes is valid, seconds. */
  lifetimeSeconds: 300,
  /** How far the device clock may be from the gateway clock, seconds (either way). */
  maxSkewSeconds: 300,
  /** The longest validity a gateway accepts (exp − iat), seconds. */
  maxLifetimeSeconds: 3600,
  /** The largest password that is read as a token, characters. */
  maxChars: 1024
} as const

const CLAIM = { iss: 1, sub: 2, aud: 3, exp: 4, iat: 6, cti: 7, cnf: 8, cid: 'cid' } as const
const CTI_BYTES = 8

export interface DeviceToken {
  deviceId: DeviceId
  publicKey: PublicKey
  clientId: string
  fleet: string
  /** Seconds since the epoch. */
  issuedAt: number
  expiresAt: number
  /** The token id (hex-free bytes, 8 of them). */
  cti: Uint8Array
}

export interface SignTokenInput {
  keys: KeyPair
  clientId: string
  fleet: string
  /** The device's wall clock, ms since the epoch. */
  now: number
  /** 8 random bytes: the token's id. */
  cti: Uint8Array
  lifetimeSeconds?: number
  ed25519?: Ed25519
}

/** The audience claim of a fleet's gateway. */
export function tokenAudience (fleet: string): string {
  return `iotmesh:${fleet}`
}

/** Makes a device token: the MQTT password (base64url). */
export function signDeviceToken (input: SignTokenInput): string {
  const iat = Math.floor(input.now / 1000)
  const id = input.keys.id
  const claims = new Map<number | string, unknown>([
    [CLAIM.iss, id],
    [CLAIM.sub, id],
    [CLAIM.aud, tokenAudience(input.fleet)],
    [CLAIM.exp, iat + (input.lifetimeSeconds ?? TOKEN_DEFAULTS.lifetimeSeconds)],
    [CLAIM.iat, iat],
    [CLAIM.cti, input.cti.subarray(0, CTI_BYTES)],
    [CLAIM.cnf, new Map([[1, new Map<number, unknown>([[1, 1], [-1, 6], [-2, input.keys.publicKey]])]])],
    [CLAIM.cid, input.clientId]
  ])
  const bytes = signSign1({
    protectedHeader: new Map([[HEADER_ALG, ALG_ED25519]]),
    payload: encodeCbor(claims),
    secretKey: input.keys.secretKey,
    ...(input.ed25519 === undefined ? {} : { ed25519: input.ed25519 })
  })
  return toBase64url(bytes)
}

export type TokenRead =
  | { ok: true, token: DeviceToken, sign1: Sign1 }
  | { ok: false, code: ErrorCode, message: string }

/** Parses a password as a device token, without verifying it. Never throws. */
export function readDeviceToken (password: string): TokenRead {
  const bad = (message: string): TokenRead => ({ ok: false, code: 'ERR_BAD_TOKEN', message })
  if (password.length > TOKEN_DEFAULTS.maxChars) return bad(`the token is ${password.length} characters, over the ${TOKEN_DEFAULTS.maxChars}-character limit`)
  const bytes = fromBase64(password)
  if (bytes === undefined || bytes.length === 0) return bad('the password is not base64url: a device token is base64url of a CWT (COSE_Sign1)')
  let sign1: Sign1
  let claims: unknown
  const limits = { ...DEFAULT_CBOR_LIMITS, maxBytes: TOKEN_DEFAULTS.maxChars }
  try {
    sign1 = decodeSign1(bytes, limits)
    claims = decodeCbor(sign1.payload, limits)
  } catch (err) {
    return bad(`the token is not a CWT COSE_Sign1: ${isMeshError(err) ? `${err.code}: ${err.message}` : String(err)}`)
  }
  if (!(claims instanceof Map)) return bad('the CWT claims are not a CBOR map (RFC 8392 §7.1)')
  const sub = claims.get(CLAIM.sub)
  const iss = claims.get(CLAIM.iss)
  const aud = claims.get(CLAIM.aud)
  const exp = claims.get(CLAIM.exp)
  const iat = claims.get(CLAIM.iat)
  const cti = claims.get(CLAIM.cti)
  const cid = claims.get(CLAIM.cid)
  const cnf = claims.get(CLAIM.cnf)
  const key = cnf instanceof Map ? cnf.get(1) : undefined
  const x = key instanceof Map && key.get(1) === 1 && key.get(-1) === 6 ? key.get(-2) : undefined
  if (typeof sub !== 'string' || iss !== sub) return bad('the token has no sub, or its iss is not its sub (a device issues its own token)')
  if (typeof aud !== 'string' || !aud.startsWith('iotmesh:')) return bad('the token has no aud "iotmesh:<fleet>"')
  if (!Number.isSafeInteger(exp) || !Number.isSafeInteger(iat)) return bad('the token has no integer iat and exp (RFC 8392 §2 NumericDate, seconds)')
  if (!(cti instanceof Uint8Array) || cti.length !== CTI_BYTES) return bad(`the token has no cti of ${CTI_BYTES} bytes`)
  if (typeof cid !== 'string') return bad('the token names no MQTT client id ("cid")')
  if (!(x instanceof Uint8Array) || x.length !== PUBLIC_KEY_LENGTH) return bad('the token has no cnf Ed25519 COSE_Key (RFC 8747 §3.1, RFC 9053 §7.2)')
  if (deviceIdFromPublicKey(x) !== sub) return { ok: false, code: 'ERR_WRONG_KEY', message: `the token's key derives to ${deviceIdFromPublicKey(x)}, not to its sub ${sub}` }
  return {
    ok: true,
    sign1,
    token: { deviceId: sub, publicKey: x, clientId: cid, fleet: aud.slice('iotmesh:'.length), issuedAt: iat as number, expiresAt: exp as number, cti }
  }
}

export interface TokenExpectations {
  /** The MQTT user name presented with the token. */
  username: string
  clientId: string
  fleet: string
  /** The gateway's wall clock, ms since the epoch. */
  now: number
  maxSkewSeconds?: number
  maxLifetimeSeconds?: number
}

/** Checks a parsed token's binding and times against the CONNECT and the gateway's clock (no signature). */
export function checkDeviceToken (token: DeviceToken, expect: TokenExpectations): { code: ErrorCode, message: string } | undefined {
  const skew = expect.maxSkewSeconds ?? TOKEN_DEFAULTS.maxSkewSeconds
  const lifetime = expect.maxLifetimeSeconds ?? TOKEN_DEFAULTS.maxLifetimeSeconds
  const now = Math.floor(expect.now / 1000)
  if (token.deviceId !== expect.username) return { code: 'ERR_BAD_TOKEN', message: `the token is for ${token.deviceId}, presented with the user name ${JSON.stringify(expect.username)}` }
  if (token.clientId !== expect.clientId) return { code: 'ERR_BAD_TOKEN', message: `the token is for the client id ${JSON.stringify(token.clientId)}, presented by ${JSON.stringify(expect.clientId)}` }
  if (token.fleet !== expect.fleet) return { code: 'ERR_UNKNOWN_FLEET', message: `the token is for fleet ${token.fleet}; this gateway serves ${expect.fleet}` }
  if (Math.abs(token.issuedAt - now) > skew) {
    return {
      code: 'ERR_CLOCK_SKEW',
      message: `the token was issued at ${isoSeconds(token.issuedAt)} by the device's clock; the gateway's clock reads ${isoSeconds(now)} (allowed: ±${skew} s). Set the device's clock (NTP)`
    }
  }
  if (token.expiresAt - token.issuedAt > lifetime) return { code: 'ERR_BAD_TOKEN', message: `the token is valid for ${token.expiresAt - token.issuedAt} s, over the ${lifetime} s limit` }
  if (token.expiresAt <= now) return { code: 'ERR_TOKEN_EXPIRED', message: `the token expired at ${isoSeconds(token.expiresAt)}; the gateway's clock reads ${isoSeconds(now)}` }
  return undefined
}

/** True when the token's signature holds with the key it carries. Never throws. */
export function verifyDeviceToken (read: Extract<TokenRead, { ok: true }>, ed?: Ed25519): boolean {
  return verifySign1(read.sign1, read.token.publicKey, ed)
}


function isoSeconds (seconds: number): string {
  const ms = seconds * 1000
  return Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString().replace('.000Z', 'Z') : `${seconds} s`
}
