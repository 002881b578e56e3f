import { createHash } from 'node:crypto'

/**
 * Canonical JSON, so that a fingerprint depends on content alone: object keys sorted by code
 * unit (as RFC 8785 JCS sorts them), no whitespace, `undefined` members left out, numbers as
 * `JSON.stringify` writes them (ECMAScript's shortest round-trip form, which JCS also uses).
 * Non-finite numbers have no JSON form and are refused.
 */
export function canonicalJson (value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new RangeError(`canonicalJson: ${value} has no JSON form`)
    return JSON.stringify(value)
  }
  if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item ?? null)).join(',')}]`
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
  }
  throw new TypeError(`canonicalJson: a ${typeof value} has no JSON form`)
}

/** `sha256:` and the hex SHA-256 of the canonical JSON of `value`. */
export function fingerprintOf (value: unknown): string {
  return `sha256:${createHash('sha256').update(canonicalJson(value)).digest('hex')}`
}
