import { meshError, type Random } from '../../shared/index.js'
import { SERVICE_DOMAIN, renamed } from './records.js'
import type { DnsRecord } from './split.js'
import type { Clock } from './types.js'

/**
 * RFC 6762 §8.1 probing, so two devices never announce the same instance name: wait 0–250 ms,
 * send three `ANY` queries for the name 250 ms apart, and treat any answer naming it as a
 * conflict (§9), which renames the instance `name (2)`, `name (3)`… (RFC 6763 Appendix D).
 * Simultaneous-probe tie-breaking (§8.2) is not done: the loser of a tie renames on its next start.
 */

interface ProbeTransport {
  subscribe (listener: { response?: (packet: { answers?: DnsRecord[], additionals?: DnsRecord[] }) => void }): () => void
  query (questions: Array<{ name: string, type: string }>): void
}

export interface ProbeOptions {
  signal: AbortSignal
  clock: Clock
  random: Random
  maxRenames: number
}

const PROBE_WAIT_MS = 250

/** The first name free on the link, starting from `name`. */
export async function probe (transport: ProbeTransport, registry: Record<string, DnsRecord[]>, name: string, options: ProbeOptions): Promise<string> {
  let candidate = name
  for (let attempt = 1; attempt <= options.maxRenames; attempt++) {
    const fqdn = `${candidate}.${SERVICE_DOMAIN}`.toLowerCase()
    const local = (registry.SRV ?? []).some((r) => r.name.toLowerCase() === fqdn)
    if (!local && !await conflicts(transport, fqdn, options)) return candidate
    candidate = renamed(name, attempt)
  }
  throw meshError('ERR_NAME_CONFLICT', `DNS-SD instance names ${JSON.stringify(name)} to ${JSON.stringify(candidate)} are all taken on this network; choose another device name`)
}

async function conflicts (transport: ProbeTransport, fqdn: string, { signal, clock, random }: ProbeOptions): Promise<boolean> {
  return await new Promise<boolean>((resolve, reject) => {
    let timer: unknown
    let sent = 0
    const finish = (conflict: boolean | Error): void => {
      unsubscribe()
      clock.clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
      if (conflict instanceof Error) reject(conflict)
      else resolve(conflict)
    }
    const onAbort = (): void => { finish(meshError('ERR_ABORTED', 'probing was aborted', { cause: signal.reason })) }
    const unsubscribe = transport.subscribe({
      response: (packet) => {
        const records = [...(packet.answers ?? []), ...(packet.additionals ?? [])]
        if (records.some((r) => (r.ttl ?? 1) > 0 && r.name.toLowerCase() === fqdn)) finish(true)
      }
    })
    const send = (): void => {
      if (sent === 3) { finish(false); return }
      transport.query([{ name: fqdn, type: 'ANY' }])
      sent++
      timer = clock.setTimeout(send, PROBE_WAIT_MS)
    }
    if (signal.aborted) { onAbort(); return }
    signal.addEventListener('abort', onAbort)
    timer = clock.setTimeout(send, Math.floor(random.float() * PROBE_WAIT_MS))
  })
}
