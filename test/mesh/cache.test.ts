import { describe, expect, it } from 'vitest'
import { ServiceCache, SERVICE_DOMAIN, type DnsRecord } from '../../mesh/discovery/index.js'
import { fixedRandom } from '../helpers/random.js'

// The record cache is pure: time is a number we pass in, so TTL logic is tested without waiting.
const fqdn = `dev._iotmesh._tcp.local`
const txt = [Buffer.from('txtvers=1')]
const announce = (ttl = { ptr: 4500, srv: 120, txt: 4500, a: 120 }, address = '10.0.0.7'): { answers: DnsRecord[], additionals: DnsRecord[] } => ({
  answers: [{ name: SERVICE_DOMAIN, type: 'PTR', ttl: ttl.ptr, data: fqdn }],
  additionals: [
    { name: fqdn, type: 'SRV', ttl: ttl.srv, data: { port: 7000, target: 'dev-host.local' } },
    { name: fqdn, type: 'TXT', ttl: ttl.txt, data: txt },
    { name: 'dev-host.local', type: 'A', ttl: ttl.a, data: address }
  ]
})
const cache = (): ServiceCache => new ServiceCache({ serviceDomain: SERVICE_DOMAIN, random: fixedRandom(0) })

describe('DNS-SD record cache (RFC 6762 §10)', () => {
  it('assembles an instance from PTR, SRV, TXT and the target address', () => {
    const c = cache()
    const { touched } = c.ingest(announce(), '10.0.0.99', 0)
    expect([...touched]).toEqual([fqdn])
    expect(c.view(fqdn)).toEqual({ fqdn, name: 'dev', host: 'dev-host.local', port: 7000, txt, addresses: ['10.0.0.7'], from: '10.0.0.99' })
  })

  it('assembles it from records arriving in separate packets, in any order', () => {
    const c = cache()
    const { answers, additionals } = announce()
    c.ingest({ additionals: additionals.slice(1, 2) }, '10.0.0.99', 0)
    c.ingest({ answers }, '10.0.0.99', 1)
    expect(c.view(fqdn)).toBeUndefined() // no SRV yet
    c.ingest({ additionals: additionals.slice(0, 1) }, '10.0.0.99', 2)
    expect(c.view(fqdn)?.addresses).toEqual(['10.0.0.99']) // no A record: the packet's source
    c.ingest({ additionals: additionals.slice(2) }, '10.0.0.99', 3)
    expect(c.view(fqdn)?.addresses).toEqual(['10.0.0.7'])
  })

  it('ignores address records of hosts that no instance names', () => {
    const c = cache()
    c.ingest(announce(), '10.0.0.99', 0)
    c.ingest({ answers: [{ name: 'other.local', type: 'A', ttl: 120, data: '10.9.9.9' }] }, '10.9.9.9', 1)
    expect(c.view(fqdn)?.addresses).toEqual(['10.0.0.7'])
  })

  it('drops an instance when its SRV record expires, not before', () => {
    const c = cache()
    c.ingest(announce(), '10.0.0.99', 0)
    expect(c.nextDeadline()).toBe(96_000) // the SRV's first refresh point, 80 % of 120 s
    expect([...c.expire(119_999)]).toEqual([])
    expect(c.view(fqdn)).toBeDefined()
    expect([...c.expire(120_000)]).toEqual([fqdn])
    expect(c.view(fqdn)).toBeUndefined()
  })

  it('asks for refresh queries at 80, 85, 90 and 95 % of a TTL (RFC 6762 §5.2)', () => {
    const c = cache()
    c.ingest(announce({ ptr: 100, srv: 100, txt: 100, a: 100 }), '10.0.0.99', 0)
    const due = [79_000, 80_000, 84_000, 85_000, 90_000, 95_000, 99_000].map((t) => c.refreshDue(t))
    expect(due).toEqual([false, true, false, true, true, true, false])
    expect(c.nextDeadline()).toBe(100_000) // only expiry is left
  })

  it('keeps an instance whose records are refreshed in time', () => {
    const c = cache()
    c.ingest(announce(), '10.0.0.99', 0)
    c.ingest(announce(), '10.0.0.99', 100_000)
    expect([...c.expire(150_000)]).toEqual([])
    expect(c.view(fqdn)).toBeDefined()
  })

  it('turns a goodbye (TTL 0) into expiry one second later (RFC 6762 §10.1)', () => {
    const c = cache()
    c.ingest(announce(), '10.0.0.99', 0)
    c.ingest(announce({ ptr: 0, srv: 0, txt: 0, a: 0 }), '10.0.0.99', 5_000)
    expect(c.view(fqdn)).toBeDefined()
    expect(c.nextDeadline()).toBe(6_000)
    expect([...c.expire(6_000)]).toEqual([fqdn])
    expect(c.view(fqdn)).toBeUndefined()
    expect(c.size).toBe(0)
  })

  it('survives a goodbye that is promptly re-announced', () => {
    const c = cache()
    c.ingest(announce({ ptr: 0, srv: 0, txt: 0, a: 0 }), '10.0.0.99', 0) // goodbye for what we never saw
    expect(c.size).toBe(0)
    c.ingest(announce(), '10.0.0.99', 0)
    c.ingest(announce({ ptr: 0, srv: 0, txt: 0, a: 0 }), '10.0.0.99', 10)
    c.ingest(announce(), '10.0.0.99', 500)
    expect([...c.expire(2_000)]).toEqual([])
    expect(c.view(fqdn)).toBeDefined()
  })

  it('lets a cache-flush address record supersede older ones (RFC 6762 §10.2)', () => {
    const c = cache()
    c.ingest(announce(), '10.0.0.99', 0)
    c.ingest({ answers: [{ name: 'dev-host.local', type: 'A', ttl: 120, data: '10.0.0.8', flush: true }] }, '10.0.0.8', 5_000)
    expect(c.view(fqdn)?.addresses).toEqual(['10.0.0.7', '10.0.0.8'])
    c.expire(6_000)
    expect(c.view(fqdn)?.addresses).toEqual(['10.0.0.8'])
  })

  it('stores no more than maxInstances and reports the rest', () => {
    const c = new ServiceCache({ serviceDomain: SERVICE_DOMAIN, maxInstances: 2 })
    const answers = ['a', 'b', 'c'].map((n) => ({ name: SERVICE_DOMAIN, type: 'PTR', ttl: 120, data: `${n}.${SERVICE_DOMAIN}` }))
    const { overflow } = c.ingest({ answers }, '10.0.0.1', 0)
    expect(overflow).toEqual([`c.${SERVICE_DOMAIN}`])
    expect(c.size).toBe(2)
  })

  // Issue 15: a fleet of hundreds of devices in one process hands every mDNS packet to every device's
  // browser, and each answer to a query repeats every instance. A repeat must cost no more than its records.
  it('touches nothing for a record that only renews its TTL, and still keeps the instance for the new TTL', () => {
    const c = cache()
    c.ingest(announce(), '10.0.0.99', 0)
    expect([...c.ingest(announce(), '10.0.0.99', 100_000).touched]).toEqual([])
    expect([...c.expire(150_000)]).toEqual([])
    expect(c.view(fqdn)).toBeDefined()
    expect([...c.expire(220_000)]).toEqual([fqdn])
  })

  it('touches an instance whose port, target, TXT, source or addresses changed, or that said goodbye', () => {
    const c = cache()
    c.ingest(announce(), '10.0.0.99', 0)
    const srv = (data: { port: number, target: string }, ttl = 120): { additionals: DnsRecord[] } => ({ additionals: [{ name: fqdn, type: 'SRV', ttl, data }] })
    expect([...c.ingest(srv({ port: 7001, target: 'dev-host.local' }), '10.0.0.99', 1).touched]).toEqual([fqdn])
    expect([...c.ingest(srv({ port: 7001, target: 'dev-host.local' }), '10.0.0.98', 2).touched]).toEqual([fqdn]) // another source
    expect([...c.ingest({ additionals: [{ name: fqdn, type: 'TXT', ttl: 4500, data: [Buffer.from('txtvers=2')] }] }, '10.0.0.98', 3).touched]).toEqual([fqdn])
    expect([...c.ingest({ additionals: [{ name: 'dev-host.local', type: 'A', ttl: 120, data: '10.0.0.8' }] }, '10.0.0.98', 4).touched]).toEqual([fqdn])
    expect([...c.ingest({ additionals: [{ name: 'dev-host.local', type: 'A', ttl: 120, data: '10.0.0.8' }] }, '10.0.0.98', 5).touched]).toEqual([])
    // A new target: its address records count, the old host's no longer do.
    expect([...c.ingest(srv({ port: 7001, target: 'new-host.local' }), '10.0.0.98', 6).touched]).toEqual([fqdn])
    c.ingest({ additionals: [{ name: 'new-host.local', type: 'A', ttl: 120, data: '10.0.0.9' }, { name: 'dev-host.local', type: 'A', ttl: 120, data: '10.0.0.10' }] }, '10.0.0.98', 7)
    expect(c.view(fqdn)?.addresses).toEqual(['10.0.0.9'])
    expect([...c.ingest(srv({ port: 7001, target: 'new-host.local' }, 0), '10.0.0.98', 8).touched]).toEqual([fqdn]) // goodbye
  })

  it('gives a deadline no later than the next one after records were renewed, and the exact one after expire()', () => {
    const c = cache()
    c.ingest(announce(), '10.0.0.99', 0)
    expect(c.nextDeadline()).toBe(96_000)
    c.ingest(announce(), '10.0.0.99', 50_000) // renewed: the true next deadline is 146 s
    expect(c.nextDeadline()).toBeLessThanOrEqual(146_000)
    c.expire(96_000)
    expect(c.nextDeadline()).toBe(146_000)
  })

  it('ignores other service types and records of odd shapes', () => {
    const c = cache()
    const junk = [
      { name: '_http._tcp.local', type: 'PTR', ttl: 120, data: 'web._http._tcp.local' },
      { name: SERVICE_DOMAIN, type: 'PTR', ttl: 120, data: 'elsewhere.local' },
      { name: SERVICE_DOMAIN, type: 'PTR', ttl: 120, data: { not: 'a name' } },
      { name: fqdn, type: 'SRV', ttl: 120, data: 'not an SRV' },
      { name: fqdn, type: 'SRV', ttl: -5 },
      null
    ] as unknown as DnsRecord[]
    expect(() => c.ingest({ answers: junk }, '10.0.0.1', 0)).not.toThrow()
    expect(c.views()).toEqual([])
  })
})
