import { fromBase64, toBase64url } from './bytes.js'
import { meshError } from './errors.js'

/**
 * SenML (RFC 8428). Records as plain objects with the JSON field names (§4.1, §5); on the wire
 * they are CBOR maps with the integer labels of §6 Table 6.
 */

export interface SenmlRecord {
  bver?: number
  bn?: string
  bt?: number
  bu?: string
  bv?: number
  bs?: number
  n?: string
  u?: string
  v?: number
  vs?: string
  vb?: boolean
  vd?: Uint8Array
  s?: number
  t?: number
  ut?: number
  /** iotmesh extension (RFC 8428 §4.4): the frame's per-origin sequence number, in the first record. */
  seq?: number
}

export type SenmlPack = SenmlRecord[]

/** RFC 8428 §6 Table 6 (plus `seq`, which has no registered CBOR label and so is a text label). */
export const SENML_LABELS = {
  bver: -1, bn: -2, bt: -3, bu: -4, bv: -5, bs: -6,
  n: 0, u: 1, v: 2, vs: 3, vb: 4, s: 5, t: 6, ut: 7, vd: 8,
  seq: 'seq'
} as const satisfies Record<keyof SenmlRecord, number | string>

type Field = keyof SenmlRecord
const FIELD_BY_LABEL = new Map<number | string, Field>(Object.entries(SENML_LABELS).map(([f, l]) => [l, f as Field]))
const FIELD_ORDER = Object.keys(SENML_LABELS) as Field[]

const TEXT_FIELDS = new Set<Field>(['bn', 'bu', 'n', 'u', 'vs'])
const NUMBER_FIELDS = new Set<Field>(['bt', 'bv', 'bs', 'v', 's', 't', 'ut'])
const VALUE_FIELDS: Field[] = ['v', 'vs', 'vb', 'vd']
/** With the u flag a surrogate pair is one code point, so this matches only unpaired halves. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u

/** Some units from the SenML registry (RFC 8428 §12.1, RFC 8798). Others are accepted as they are. */
export const SENML_UNITS = {
  Cel: 'degrees Celsius', '%RH': 'relative humidity, percent', Pa: 'pascal',
  V: 'volt', A: 'ampere', W: 'watt', '%EL': 'remaining battery energy level, percent',
  '%': 'percent', s: 'second', m: 'metre', lx: 'lux', dBm: 'decibel-milliwatt', B: 'byte',
  '/': 'ratio (count per count)', count: 'counter value', EL: 'seconds of remaining battery'
} as const

/** RFC 8428 §4.5.1: a resolved name starts with a letter or digit; then letters, digits, ":./_-". */
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9:./_-]*$/

/** Validates one decoded CBOR map as a SenML record; throws ERR_BAD_SENML. */
export function recordFromCbor (map: unknown, index: number): SenmlRecord {
  if (!(map instanceof Map)) throw meshError('ERR_BAD_SENML', `SenML record ${index} is not a CBOR map`)
  const record: Record<string, unknown> = {}
  for (const [label, value] of map as Map<unknown, unknown>) {
    const field = FIELD_BY_LABEL.get(label as number | string)
    if (field === undefined) {
      // RFC 8428 §4.4: labels ending in "_" must be understood; others may be ignored.
      if (typeof label === 'string' && label.endsWith('_')) throw meshError('ERR_BAD_SENML', `SenML record ${index} has the must-understand label ${JSON.stringify(label)}`)
      if (typeof label !== 'string' && typeof label !== 'number') throw meshError('ERR_BAD_SENML', `SenML record ${index} has a label that is neither integer nor text`)
      continue
    }
    record[field] = checkField(field, value, index)
  }
  return checkRecord(record as SenmlRecord, index)
}

/**
 * `recordFromCbor(recordToCbor(record), index)` without the Map, for a record about to be signed:
 * the same checks in the same order (the defined fields in label order), and the record as a
 * receiver will decode it (a new object; `vd` copied; -0 as 0, which CBOR writes as the integer 0).
 */
export function checkedRecord (record: SenmlRecord, index: number): SenmlRecord {
  const out: Record<string, unknown> = {}
  for (const field of FIELD_ORDER) {
    const value = record[field]
    if (value === undefined) continue
    const checked = checkField(field, value, index)
    out[field] = checked === 0 ? 0 : checked
  }
  return checkRecord(out as SenmlRecord, index)
}

function checkField (field: Field, value: unknown, index: number): unknown {
  const bad = (want: string): never => { throw meshError('ERR_BAD_SENML', `SenML record ${index}: ${field} must be ${want}`) }
  if (TEXT_FIELDS.has(field)) return typeof value === 'string' && !LONE_SURROGATE.test(value) ? value : bad('text (well-formed Unicode: UTF-8 cannot carry a lone surrogate)')
  if (NUMBER_FIELDS.has(field)) return typeof value === 'number' && Number.isFinite(value) ? value : bad('a finite number')
  if (field === 'vb') return typeof value === 'boolean' ? value : bad('true or false')
  if (field === 'vd') return value instanceof Uint8Array ? new Uint8Array(value) : bad('a byte string')
  // bver and seq
  return Number.isSafeInteger(value) && (value as number) >= 0 ? value : bad('a non-negative integer')
}

function checkRecord (record: SenmlRecord, index: number): SenmlRecord {
  const values = VALUE_FIELDS.filter((f) => record[f] !== undefined).length
  if (values > 1) throw meshError('ERR_BAD_SENML', `SenML record ${index} has ${values} values; a record holds at most one of v, vs, vb, vd (RFC 8428 §4.2)`)
  return record
}

/** One SenML record as the CBOR map of RFC 8428 §6, with its integer labels. */
export function recordToCbor (record: SenmlRecord): Map<number | string, unknown> {
  const map = new Map<number | string, unknown>()
  for (const field of FIELD_ORDER) {
    const value = record[field]
    if (value !== undefined) map.set(SENML_LABELS[field], value)
  }
  return map
}

export interface ResolvedRecord {
  name: string
  unit?: string
  value?: number
  stringValue?: string
  boolValue?: boolean
  dataValue?: Uint8Array
  sum?: number
  /** Absolute time, seconds since the Unix epoch (RFC 8428 §4.5.3). */
  time: number
  updateTime?: number
}

/**
 * The range of a JavaScript Date, in seconds (ECMA-262 §21.4.1.22: ±8.64e15 ms). A time beyond it
 * has no calendar date: `new Date(t * 1000).toISOString()` throws on it.
 */
export const MAX_TIME_SECONDS = 8.64e12

/**
 * RFC 8428 §4.6 resolution: base fields carry forward until the next record that sets them;
 * names are bn + n, times bt + t (relative times resolved against `now`), values bv + v.
 * Throws ERR_BAD_SENML for a name that is not valid once resolved (§4.5.1), a time outside
 * ±MAX_TIME_SECONDS, or a value or sum that is no longer finite once the base is added.
 */
export function resolvePack (pack: SenmlPack, now: number = Date.now() / 1000): ResolvedRecord[] {
  const out: ResolvedRecord[] = []
  resolve(pack, now, out)
  return out
}

/**
 * Checks that `resolvePack(pack, now)` would succeed, without building the readings: what a
 * decoder runs so that no frame it accepts makes a consumer throw. Throws ERR_BAD_SENML.
 */
export function checkPack (pack: SenmlPack, now: number): void {
  resolve(pack, now, undefined)
}

function resolve (pack: SenmlPack, now: number, out: ResolvedRecord[] | undefined): void {
  let bn = ''
  let bt = 0
  let bu: string | undefined
  let bv = 0
  let bs = 0
  for (let index = 0; index < pack.length; index++) {
    const record = pack[index] as SenmlRecord
    if (record.bn !== undefined) bn = record.bn
    if (record.bt !== undefined) bt = checkTime(record.bt, index, 'bt')
    if (record.bu !== undefined) bu = record.bu
    if (record.bv !== undefined) bv = record.bv
    if (record.bs !== undefined) bs = record.bs
    const hasValue = record.v !== undefined || record.vs !== undefined || record.vb !== undefined || record.vd !== undefined || record.s !== undefined
    if (!hasValue) continue // a record of base fields only
    const name = bn + (record.n ?? '')
    if (!NAME_PATTERN.test(name)) throw meshError('ERR_BAD_SENML', `SenML record ${index}: ${JSON.stringify(name)} is not a valid name (RFC 8428 §4.5.1)`)
    let time = bt + (record.t ?? 0)
    if (time < 2 ** 28) time += now // §4.5.3: values below 2^28 are relative to now
    checkTime(time, index, 'time')
    const value = record.v === undefined ? undefined : finite(bv + record.v, index, 'bv + v')
    const sum = record.s === undefined ? undefined : finite(bs + record.s, index, 'bs + s')
    if (out === undefined) continue
    const resolved: ResolvedRecord = { name, time }
    const unit = record.u ?? bu
    if (unit !== undefined) resolved.unit = unit
    if (value !== undefined) resolved.value = value
    if (record.vs !== undefined) resolved.stringValue = record.vs
    if (record.vb !== undefined) resolved.boolValue = record.vb
    if (record.vd !== undefined) resolved.dataValue = record.vd
    if (sum !== undefined) resolved.sum = sum
    if (record.ut !== undefined) resolved.updateTime = record.ut
    out.push(resolved)
  }
}

function checkTime (time: number, index: number, what: string): number {
  if (Math.abs(time) <= MAX_TIME_SECONDS) return time // false for NaN too
  throw meshError('ERR_BAD_SENML', `SenML record ${index}: the ${what} ${time} s is not a date (beyond ±${MAX_TIME_SECONDS} s, ECMA-262 §21.4.1.22)`)
}

function finite (value: number, index: number, what: string): number {
  if (Number.isFinite(value)) return value
  throw meshError('ERR_BAD_SENML', `SenML record ${index}: ${what} is ${value}, not a finite number`)
}

/** SenML JSON (RFC 8428 §5): vd is base64url (§5), everything else as it is. */
export function packToJson (pack: SenmlPack): Array<Record<string, unknown>> {
  return pack.map((record) => {
    const out: Record<string, unknown> = {}
    for (const field of FIELD_ORDER) {
      const value = record[field]
      if (value !== undefined) out[field] = value instanceof Uint8Array ? toBase64url(value) : value
    }
    return out
  })
}

/** Reads SenML JSON (RFC 8428 §5) as written by people and tools; throws ERR_BAD_SENML. */
export function packFromJson (json: unknown): SenmlPack {
  const list = Array.isArray(json) ? json : [json]
  return list.map((item, index) => {
    if (item === null || typeof item !== 'object' || Array.isArray(item)) throw meshError('ERR_BAD_SENML', `SenML record ${index} is not a JSON object`)
    const map = new Map<number | string, unknown>()
    for (const [key, value] of Object.entries(item as Record<string, unknown>)) {
      const label = Object.hasOwn(SENML_LABELS, key) ? SENML_LABELS[key as Field] : undefined // not "toString", "constructor"…
      if (label === undefined) {
        if (key.endsWith('_')) throw meshError('ERR_BAD_SENML', `SenML record ${index} has the must-understand field ${JSON.stringify(key)}`)
        continue
      }
      map.set(label, key === 'vd' && typeof value === 'string' ? dataValue(value, index) : value)
    }
    return recordFromCbor(map, index)
  })
}

/** RFC 8428 §5: vd in SenML JSON is base64url (standard base64 and padding are tolerated). */
function dataValue (text: string, index: number): Uint8Array {
  const bytes = fromBase64(text)
  if (bytes === undefined) throw meshError('ERR_BAD_SENML', `SenML record ${index}: vd ${JSON.stringify(text.slice(0, 40))} is not base64url (RFC 8428 §5)`)
  return bytes
}
