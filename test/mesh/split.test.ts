import { createRequire } from 'node:module'
import { describe, expect, it } from 'vitest'
import { MDNS_MAX_PACKET_BYTES, recordBytes, splitResponse, type DnsRecord, type DnsResponse } from '../../mesh/discovery/index.js'

// dns-packet (multicast-dns's codec) encodes the real messages, to check our size bound.
const dnsPacket = createRequire(import.meta.url)('dns-packet') as { encode: (packet: object) => Buffer }
const encoded = (message: DnsResponse): number => dnsPacket.encode({ type: 'response', flags: 0x400, ...message }).length

/** What bonjour-service answers to a browse: one PTR per instance, its SRV/TXT/A as additionals. */
function browseAnswer (instances: number): DnsResponse {
  const answers: DnsRecord[] = []
  const additionals: DnsRecord[] = []
  for (let i = 0; i < instances; i++) {
    const fqdn = `device-${i}._iotmesh._tcp.local`
    const host = `iotmesh-${String(i).padStart(26, 'a')}.local`
    answers.push({ name: '_iotmesh._tcp.local', type: 'PTR', ttl: 28800, data: fqdn })
    additionals.push(
      { name: fqdn, type: 'SRV', ttl: 120, data: { port: 7000 + i, target: host } },
      { name: fqdn, type: 'TXT', ttl: 4500, data: [Buffer.from('txtvers=1'), Buffer.from(`id=${'a'.repeat(26)}`), Buffer.from(`pk=${'b'.repeat(43)}`), Buffer.from('v=1'), Buffer.from('fleet=default')] },
      { name: host, type: 'A', ttl: 120, data: `10.0.${i >> 8}.${i & 255}` })
  }
  return { answers, additionals }
}

describe('response splitting (RFC 6762 §17)', () => {
  it('leaves a small response whole', () => {
    const response = browseAnswer(2)
    expect(splitResponse(response).messages).toEqual([response])
  })

  it.each([20, 100, 250])('splits a browse answer for %i instances into MTU-sized messages', (n) => {
    const response = browseAnswer(n)
    const { messages, dropped } = splitResponse(response, 1440)
    expect(dropped).toEqual([])
    expect(messages.flatMap((m) => m.answers)).toEqual(response.answers) // each answer once, in order
    for (const message of messages) {
      expect(encoded(message)).toBeLessThanOrEqual(1440)
      // RFC 6763 §12.1: each PTR travels with its instance's SRV and TXT, and the SRV with its address.
      for (const ptr of message.answers) {
        const srv = message.additionals.find((r) => r.type === 'SRV' && r.name === ptr.data)
        expect(srv).toBeDefined()
        expect(message.additionals.some((r) => r.type === 'TXT' && r.name === ptr.data)).toBe(true)
        expect(message.additionals.some((r) => r.type === 'A' && r.name === (srv?.data as { target: string }).target)).toBe(true)
      }
    }
    if (n >= 100) expect(encoded(response)).toBeGreaterThan(MDNS_MAX_PACKET_BYTES) // what bonjour-service alone would send
  })

  it('bounds each record from above (name compression only shrinks it)', () => {
    for (const record of [...browseAnswer(3).answers, ...browseAnswer(3).additionals]) {
      const alone = dnsPacket.encode({ type: 'response', answers: [record] }).length - 12
      expect(recordBytes(record)).toBeGreaterThanOrEqual(alone)
    }
  })

  it('sends a group too large for the MTU alone, and drops only what exceeds 9000 bytes', () => {
    const big = (n: number): DnsRecord => ({ name: `big${n}.local`, type: 'TXT', ttl: 120, data: Array.from({ length: n }, () => Buffer.alloc(250, 120)) })
    const { messages, dropped } = splitResponse({ answers: [big(8), big(40)], additionals: [] }, 1440)
    expect(messages).toHaveLength(1)
    expect(encoded(messages[0] as DnsResponse)).toBeLessThanOrEqual(MDNS_MAX_PACKET_BYTES - 28)
    expect(dropped.map((r) => r.name)).toEqual(['big40.local'])
  })
})
