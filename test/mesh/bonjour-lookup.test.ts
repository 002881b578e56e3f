import { createRequire } from 'node:module'
import { describe, expect, it } from 'vitest'
import { indexedLookup } from '../../mesh/discovery/bonjour.js'
import type { DnsRecord } from '../../mesh/discovery/index.js'

/**
 * bonjour-service answers a query by looking up records with `recordsFor(name, type)`, a scan of
 * its whole registry (quadratic in the instances one responder publishes, issue 15). bonjour.ts
 * replaces it with an index: the same records in the same order, checked here against the
 * library's own function on the same registry.
 */

type RecordsFor = (this: { registry: Record<string, DnsRecord[]> }, name: string, type: string) => DnsRecord[]
const { Server } = createRequire(import.meta.url)('bonjour-service/dist/lib/mdns-server.js') as { Server: { prototype: { recordsFor: RecordsFor } } }

function instance (i: number, host: string): DnsRecord[] {
  const fqdn = `Dev-${i}._iotmesh._tcp.local`
  return [
    { name: '_iotmesh._tcp.local', type: 'PTR', ttl: 120, data: fqdn },
    { name: '_services._dns-sd._udp.local', type: 'PTR', ttl: 120, data: '_iotmesh._tcp.local' },
    { name: fqdn, type: 'SRV', ttl: 120, data: { port: 7000 + i, target: host } },
    { name: fqdn, type: 'TXT', ttl: 4500, data: [Buffer.from(`n=${i}`)] },
    { name: host, type: 'A', ttl: 120, data: `10.0.0.${i}` }
  ]
}

function register (registry: Record<string, DnsRecord[]>, records: DnsRecord[]): void {
  for (const r of records) (registry[r.type] ??= []).push(r)
}

describe('bonjour-service record lookup, indexed', () => {
  it('finds what the library finds, in its order, as the registry grows and shrinks', () => {
    const server = { registry: {} as Record<string, DnsRecord[]> }
    const lookup = indexedLookup(server)
    const original = (name: string, type: string): DnsRecord[] => Server.prototype.recordsFor.call(server, name, type)
    const questions: Array<[string, string]> = [
      ['_iotmesh._tcp.local', 'PTR'], ['_IOTMESH._tcp.LOCAL', 'PTR'], ['_services._dns-sd._udp.local', 'PTR'],
      ['dev-1._iotmesh._tcp.local', 'SRV'], ['DEV-2._iotmesh._tcp.local', 'TXT'], ['dev-3._iotmesh._tcp.local', 'SRV'],
      ['shared.local', 'A'], ['host-2.local', 'A'], ['Dev-1', 'SRV'], ['dev-2', 'TXT'], ['shared', 'A'], ['_iotmesh', 'PTR'],
      ['nothing.local', 'SRV'], ['dev-1._iotmesh._tcp.local', 'AAAA'], ['dev-1._iotmesh._tcp.local', 'constructor'], ['dev-1._iotmesh._tcp.local', '__proto__']
    ]
    const check = (): void => {
      for (const [name, type] of questions) {
        const expected = Object.hasOwn(server.registry, type) ? original(name, type) : []
        expect(lookup(name, type), `${type} ${name}`).toEqual(expected)
      }
    }
    check()
    register(server.registry, instance(1, 'shared.local'))
    check()
    register(server.registry, instance(2, 'host-2.local'))
    register(server.registry, instance(3, 'shared.local'))
    check()
    // Unregistering replaces a type's list (bonjour.ts unregister filters into a new array).
    for (const type of Object.keys(server.registry)) server.registry[type] = (server.registry[type] ?? []).filter((r) => !JSON.stringify(r).includes('Dev-2'))
    check()
    expect(lookup('dev-2._iotmesh._tcp.local', 'SRV')).toEqual([])
    // A caller may change the array it gets without changing the index.
    lookup('_iotmesh._tcp.local', 'PTR').length = 0
    check()
  })
})
