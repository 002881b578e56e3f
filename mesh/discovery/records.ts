import {
  DEFAULT_FLEET, FLEET_NAME_RULE, PUBLIC_KEY_LENGTH, fromBase64, isDeviceId, isFleetName, keyMatchesId, meshError,
  toBase64url, type DeviceId, type PublicKey
} from '../../shared/index.js'
import type { InvalidReason } from './types.js'

/**
 * DNS-SD records of an iotmesh device, as pure functions (no sockets): what we put in our TXT
 * record, and how an announced TXT record becomes a peer, or a counted reason to ignore it.
 *
 *     _iotmesh._tcp.local      PTR  <name>._iotmesh._tcp.local            RFC 6763 §4.1
 *     <name>._iotmesh._tcp...  SRV  0 0 <link port> iotmesh-<id>.local    RFC 6763 §5
 *     <name>._iotmesh._tcp...  TXT  txtvers=1 id=<id> pk=<b64url> v=1 fleet=<fleet> [cti=<b64url>]   RFC 6763 §6
 *
 * `cti` (issue 13) is the id of the device's enrollment credential (CWT claim 7, 8 bytes: 11
 * characters), not the credential: one of 1 owner is about 300 bytes, more than a TXT string's 255
 * (RFC 6763 §6.1), and the whole record should stay small (§6.2). It tells a browser the device is
 * enrolled, and which credential it will show in the link handshake, where it is checked.
 *     iotmesh-<id>.local       A    <the device's own address>
 */

/** The link/discovery protocol version announced in TXT `v`. */
export const PROTOCOL_VERSION = 1
/** RFC 6763 §6.7: the version of the TXT record format itself. */
export const TXT_VERSION = 1
export const SERVICE_TYPE = '_iotmesh._tcp'
export const SERVICE_DOMAIN = `${SERVICE_TYPE}.local`

/**
 * RFC 6762 §10: "the recommended TTL value for Multicast DNS resource records with a host name as
 * the resource record's name (e.g., A, AAAA, HINFO) or a host name contained within the resource
 * record's rdata (e.g., SRV, reverse mapping PTR record) SHOULD be 120 seconds. The recommended
 * TTL value for other Multicast DNS resource records is 75 minutes."
 */
export const HOST_RECORD_TTL = 120
export const OTHER_RECORD_TTL = 75 * 60

/**
 * The TTL (seconds) we announce a record with: 120 s for A, AAAA and SRV (bound to a host name),
 * and 120 s for the service PTR too, although §10 would allow 75 minutes for it. Standard
 * browsers (Avahi, mDNSResponder, python-zeroconf) list an instance for as long as its PTR lives:
 * bonjour-service's 28,800 s kept a device that lost power listed for up to 8 hours; at 120 s it
 * leaves within about two minutes (python-zeroconf raises PTR TTLs under 1,125 s to that, so
 * about 19 minutes there). The price is one refresh query per browser every ~100 s
 * (RFC 6762 §5.2, at 80–95 % of the TTL), answered once for all of them and mostly suppressed by
 * known answers (§7.1). Anything else (TXT) is capped at 75 minutes; a goodbye (TTL 0, §10.1)
 * stays 0.
 */
export function recordTtl (type: string, ttl: number): number {
  if (ttl <= 0) return 0
  switch (type) {
    case 'A': case 'AAAA': case 'SRV': case 'PTR': return Math.min(ttl, HOST_RECORD_TTL)
    default: return Math.min(ttl, OTHER_RECORD_TTL)
  }
}

/** RFC 6763 §6.2: TXT records over 1300 bytes are NOT RECOMMENDED; we refuse them. */
export const MAX_TXT_BYTES = 1300
/** RFC 6763 §4.1.1 / RFC 1035 §2.3.4: a DNS label (an instance name) is at most 63 bytes. */
export const MAX_LABEL_BYTES = 63
const MAX_VALUE_BYTES = 255 // one TXT string, RFC 6763 §6.1

export interface TxtFields {
  readonly id: DeviceId
  readonly publicKey: PublicKey
  readonly version: number
  readonly fleet: string
  /** The id of the enrollment credential it announces (a hint: the credential is checked in the handshake). */
  readonly cti?: Uint8Array
}

export type TxtResult =
  | { readonly ok: true, readonly value: TxtFields }
  | { readonly ok: false, readonly reason: InvalidReason, readonly detail: string }

/** Our TXT record as bonjour-service takes it (insertion order: txtvers first, RFC 6763 §6.7). */
export function encodeTxt (fields: { id: DeviceId, publicKey: PublicKey, fleet?: string, version?: number, cti?: Uint8Array }): Record<string, string> {
  const txt: Record<string, string> = {
    txtvers: String(TXT_VERSION),
    id: fields.id,
    pk: toBase64url(fields.publicKey),
    v: String(fields.version ?? PROTOCOL_VERSION),
    fleet: fields.fleet ?? DEFAULT_FLEET
  }
  if (fields.cti !== undefined && fields.cti.length > 0 && fields.cti.length <= 32) txt.cti = toBase64url(fields.cti)
  return txt
}

/** The TXT record as DNS character-strings (RFC 6763 §6.1), e.g. for a raw responder. */
export function txtStrings (txt: Record<string, string>): Uint8Array[] {
  return Object.entries(txt).map(([key, value]) => new TextEncoder().encode(`${key}=${value}`))
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * RFC 6763 §6.3–§6.5: each string is `key=value` (or a bare `key`, a boolean attribute); keys are
 * printable US-ASCII without `=`, compared case-insensitively; a string with an empty key is
 * ignored, and of a repeated key only the first occurrence counts. Values here must be UTF-8.
 */
export function parseTxtStrings (strings: readonly Uint8Array[]): { ok: true, value: Map<string, string | true> } | { ok: false, reason: InvalidReason, detail: string } {
  let total = 0
  for (const s of strings) total += s.length + 1
  if (total > MAX_TXT_BYTES) return { ok: false, reason: 'oversized', detail: `TXT record is ${total} bytes; the limit is ${MAX_TXT_BYTES} (RFC 6763 §6.2)` }
  const map = new Map<string, string | true>()
  for (const bytes of strings) {
    if (bytes.length === 0) continue // RFC 6763 §6.1: an empty string is allowed and means nothing
    if (bytes.length > MAX_VALUE_BYTES) return { ok: false, reason: 'oversized', detail: `a TXT string is ${bytes.length} bytes; the limit is ${MAX_VALUE_BYTES}` }
    let text: string
    try {
      text = utf8.decode(bytes)
    } catch {
      return { ok: false, reason: 'malformed', detail: 'a TXT string is not UTF-8' }
    }
    const eq = text.indexOf('=')
    const key = (eq < 0 ? text : text.slice(0, eq)).toLowerCase()
    if (key === '') continue // RFC 6763 §6.4: silently ignored
    if (!/^[\x20-\x3c\x3e-\x7e]+$/.test(key)) return { ok: false, reason: 'malformed', detail: `TXT key ${JSON.stringify(key)} is not printable US-ASCII (RFC 6763 §6.4)` }
    if (map.has(key)) continue // RFC 6763 §6.4: all but the first occurrence are ignored
    map.set(key, eq < 0 ? true : text.slice(eq + 1))
  }
  return { ok: true, value: map }
}

function text (map: Map<string, string | true>, key: string): string | undefined {
  const value = map.get(key)
  return typeof value === 'string' ? value : undefined
}

/** An announced TXT record as our fields, or the reason it is not a valid iotmesh announcement. */
export function parseTxt (strings: readonly Uint8Array[]): TxtResult {
  const parsed = parseTxtStrings(strings)
  if (!parsed.ok) return parsed
  const map = parsed.value
  const txtvers = text(map, 'txtvers')
  if (txtvers !== String(TXT_VERSION)) return { ok: false, reason: 'txtvers', detail: `txtvers is ${JSON.stringify(txtvers ?? null)}; expected "${TXT_VERSION}" (RFC 6763 §6.7)` }
  const id = text(map, 'id')
  const pk = text(map, 'pk')
  const v = text(map, 'v')
  for (const [key, value] of [['id', id], ['pk', pk], ['v', v]] as const) {
    if (value === undefined || value === '') return { ok: false, reason: 'missing-key', detail: `TXT key ${key} is missing or has no value` }
  }
  if (!isDeviceId(id)) return { ok: false, reason: 'bad-id', detail: `id ${JSON.stringify(id)} is not a device id (26 characters a-z, 2-7)` }
  const publicKey = /^[A-Za-z0-9_-]+$/.test(pk as string) ? fromBase64(pk as string) : undefined
  if (publicKey === undefined || publicKey.length !== PUBLIC_KEY_LENGTH) return { ok: false, reason: 'bad-pk', detail: `pk is not base64url of a ${PUBLIC_KEY_LENGTH}-byte Ed25519 key` }
  if (!keyMatchesId(publicKey, id)) return { ok: false, reason: 'key-mismatch', detail: `pk does not derive to id ${id}` }
  if (!/^\d{1,9}$/.test(v as string)) return { ok: false, reason: 'bad-version', detail: `v ${JSON.stringify(v)} is not a non-negative integer` }
  const fleet = map.has('fleet') ? text(map, 'fleet') : DEFAULT_FLEET
  if (fleet === undefined || fleet === '' || new TextEncoder().encode(fleet).length > MAX_LABEL_BYTES) {
    return { ok: false, reason: 'bad-fleet', detail: `fleet must be 1 to ${MAX_LABEL_BYTES} bytes` }
  }
  const cti = text(map, 'cti')
  const ctiBytes = cti !== undefined && /^[A-Za-z0-9_-]{1,43}$/.test(cti) ? fromBase64(cti) : undefined // an unreadable cti is ignored: it is a hint
  return { ok: true, value: ctiBytes === undefined ? { id, publicKey, version: Number(v), fleet } : { id, publicKey, version: Number(v), fleet, cti: ctiBytes } }
}

/**
 * Checks our own instance name (RFC 6763 §4.1.1: UTF-8, at most 63 bytes, no control characters).
 * Dots become dashes, as bonjour-service would do silently, so the name we probe is the name sent.
 */
export function instanceName (name: string): string {
  const clean = name.split('.').join('-')
  const bytes = new TextEncoder().encode(clean).length
  if (bytes === 0 || bytes > MAX_LABEL_BYTES || [...clean].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) {
    throw meshError('ERR_BAD_ARGUMENT', `device name ${JSON.stringify(name)} is not a DNS-SD instance name: use 1 to ${MAX_LABEL_BYTES} bytes of UTF-8 without control characters (RFC 6763 §4.1.1)`)
  }
  return clean
}

/** Checks a fleet name we announce. */
export function fleetName (fleet: string): string {
  if (!isFleetName(fleet)) throw meshError('ERR_BAD_ARGUMENT', `fleet ${JSON.stringify(fleet)} must be ${FLEET_NAME_RULE}`)
  return fleet
}

/**
 * The SRV target host of a device (NETWORK.md trap): bonjour-service would use os.hostname(),
 * which every device of a simulated fleet, and every namespace host, shares; then a browser
 * merges everyone's A records under every device. Derived from the id, so it is unique.
 */
export function hostNameFor (id: DeviceId): string {
  return `iotmesh-${id}.local`
}

/** `Name (2)`, `Name (3)`…: the name to try after a conflict (RFC 6762 §9, RFC 6763 Appendix D). */
export function renamed (name: string, attempt: number): string {
  const suffix = ` (${attempt + 1})`
  let base = name.replace(/ \(\d+\)$/, '')
  while (new TextEncoder().encode(base + suffix).length > MAX_LABEL_BYTES) base = base.slice(0, -1)
  return base + suffix
}
