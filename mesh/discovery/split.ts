/**
 * RFC 6762 §17: "a Multicast DNS packet, including IP and UDP headers, MUST NOT exceed 9000
 * bytes", and responders should stay within the interface MTU. bonjour-service answers a browse
 * with every instance it publishes in one datagram (NETWORK.md: 100 instances → 28 KB, and past
 * about 230 the send fails with EMSGSIZE). This module splits a response into several messages,
 * each answer travelling with its own additional records (RFC 6763 §12: SRV, TXT and address
 * records beside a PTR), sized by an upper bound that ignores name compression.
 */

export interface DnsRecord {
  name: string
  type: string
  ttl?: number
  class?: string
  flush?: boolean
  data?: unknown
}

export interface DnsResponse {
  answers: DnsRecord[]
  additionals: DnsRecord[]
}

/** RFC 6762 §17, including the 20-byte IPv4 and 8-byte UDP headers. */
export const MDNS_MAX_PACKET_BYTES = 9000
export const MDNS_MAX_PAYLOAD_BYTES = MDNS_MAX_PACKET_BYTES - 20 - 8
/** A 1500-byte Ethernet MTU less IP and UDP headers, with slack for IP options (as ciao uses). */
export const DEFAULT_MAX_PAYLOAD_BYTES = 1440

const HEADER_BYTES = 12 // RFC 1035 §4.1.1
const FIXED_RR_BYTES = 10 // type, class, TTL, RDLENGTH (RFC 1035 §4.1.3)

/** Uncompressed wire length of a name: each label with its length byte, plus the root. */
export function nameBytes (name: string): number {
  const trimmed = name.replace(/^\.|\.$/g, '')
  if (trimmed === '') return 1
  let bytes = 1
  for (const label of trimmed.split('.')) bytes += Buffer.byteLength(label) + 1
  return bytes
}

function rdataBytes (record: DnsRecord): number {
  const data = record.data
  switch (record.type) {
    case 'A': return 4
    case 'AAAA': return 16
    case 'PTR': case 'CNAME': return nameBytes(String(data))
    case 'SRV': return 6 + nameBytes(String((data as { target?: unknown } | undefined)?.target ?? ''))
    case 'TXT': {
      const strings: unknown[] = Array.isArray(data) ? data : [data]
      let bytes = 0
      for (const s of strings) bytes += 1 + (typeof s === 'string' ? Buffer.byteLength(s) : s instanceof Uint8Array ? s.length : 0)
      return Math.max(bytes, 1)
    }
    default: {
      // Unknown to us: a generous bound from the serialised data.
      const text = JSON.stringify(data ?? null) ?? ''
      return Buffer.byteLength(text) + 64
    }
  }
}

/** An upper bound of a record's encoded size (compression only makes it smaller). */
export function recordBytes (record: DnsRecord): number {
  return nameBytes(record.name) + FIXED_RR_BYTES + rdataBytes(record)
}

/** Same type, name (case-insensitively, RFC 6762 §16) and data. */
export function sameRecord (a: DnsRecord, b: DnsRecord): boolean {
  return a === b || (a.type === b.type && a.name.toLowerCase() === b.name.toLowerCase() && JSON.stringify(a.data) === JSON.stringify(b.data))
}

/** The additional records by lower-case name, in their order (an answer with hundreds of instances looks up each). */
function byName (additionals: readonly DnsRecord[]): Map<string, DnsRecord[]> {
  const map = new Map<string, DnsRecord[]>()
  for (const r of additionals) {
    const key = r.name.toLowerCase()
    const same = map.get(key)
    if (same === undefined) map.set(key, [r])
    else same.push(r)
  }
  return map
}

/** The additional records that belong with an answer (RFC 6763 §12.1, §12.2). */
function relatedTo (answer: DnsRecord, additionals: ReadonlyMap<string, readonly DnsRecord[]>): DnsRecord[] {
  const out: DnsRecord[] = []
  const named = (name: string, types: readonly string[]): DnsRecord[] =>
    (additionals.get(name.toLowerCase()) ?? []).filter((r) => types.includes(r.type))
  const targets: string[] = []
  if (answer.type === 'PTR') {
    for (const r of named(String(answer.data), ['SRV', 'TXT'])) {
      out.push(r)
      if (r.type === 'SRV') targets.push(String((r.data as { target?: unknown }).target))
    }
  } else if (answer.type === 'SRV') {
    targets.push(String((answer.data as { target?: unknown }).target))
  }
  for (const target of targets) out.push(...named(target, ['A', 'AAAA']))
  return out
}

export interface SplitResult {
  messages: DnsResponse[]
  /** Records that alone exceed RFC 6762 §17's limit, and so cannot be sent at all. */
  dropped: DnsRecord[]
}

/**
 * Packs a response into messages of at most `maxPayload` bytes: greedily, an answer with its
 * related additionals at a time. A group larger than `maxPayload` goes alone if it fits the
 * 9000-byte limit (RFC 6762 §17 allows fragmenting one large record), else record by record.
 */
export function splitResponse (response: DnsResponse, maxPayload = DEFAULT_MAX_PAYLOAD_BYTES): SplitResult {
  const limit = Math.min(Math.max(maxPayload, 512), MDNS_MAX_PAYLOAD_BYTES)
  const messages: DnsResponse[] = []
  const dropped: DnsRecord[] = []
  let current: DnsResponse = { answers: [], additionals: [] }
  let size = HEADER_BYTES
  const used = new Set<DnsRecord>()

  const flush = (): void => {
    if (current.answers.length + current.additionals.length > 0) messages.push(current)
    current = { answers: [], additionals: [] }
    size = HEADER_BYTES
  }
  const add = (answers: DnsRecord[], additionals: DnsRecord[]): void => {
    const fresh = additionals.filter((r) => !current.additionals.some((c) => sameRecord(c, r)) && !current.answers.some((c) => sameRecord(c, r)))
    const bytes = [...answers, ...fresh].reduce((n, r) => n + recordBytes(r), 0)
    if (size + bytes > limit && size > HEADER_BYTES) {
      flush()
      add(answers, additionals)
      return
    }
    if (HEADER_BYTES + bytes > limit) {
      // Too large even alone for the MTU: alone, up to RFC 6762 §17's limit, else record by record.
      if (HEADER_BYTES + bytes <= MDNS_MAX_PAYLOAD_BYTES) {
        messages.push({ answers, additionals: fresh })
      } else {
        for (const r of [...answers, ...fresh]) {
          if (HEADER_BYTES + recordBytes(r) > MDNS_MAX_PAYLOAD_BYTES) dropped.push(r)
          else messages.push(answers.includes(r) ? { answers: [r], additionals: [] } : { answers: [], additionals: [r] })
        }
      }
      return
    }
    current.answers.push(...answers)
    current.additionals.push(...fresh)
    size += bytes
  }

  const additionals = byName(response.additionals)
  for (const answer of response.answers) {
    const related = relatedTo(answer, additionals)
    for (const r of related) used.add(r)
    add([answer], related)
  }
  for (const extra of response.additionals) {
    if (!used.has(extra)) add([], [extra])
  }
  flush()
  return { messages, dropped }
}
