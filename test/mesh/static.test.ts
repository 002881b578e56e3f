import { describe, expect, it, onTestFinished } from 'vitest'
import { generateKeyPair, toBase64url } from '../../shared/index.js'
import { createStaticDiscovery, parseStaticPeer, type InvalidEvent, type PeerInfo } from '../../mesh/discovery/index.js'

const alice = generateKeyPair(new Uint8Array(32).fill(1))
const bob = generateKeyPair(new Uint8Array(32).fill(2))

describe('static peer addresses', () => {
  it.each([
    ['10.0.0.5:7000', '10.0.0.5:7000', '10.0.0.5', 7000],
    [' gateway.local:7000 ', 'gateway.local:7000', 'gateway.local', 7000],
    ['Gateway.LOCAL:1', 'gateway.local:1', 'gateway.local', 1],
    ['[fe80::1]:65535', '[fe80::1]:65535', 'fe80::1', 65535]
  ])('parses %j', (text, key, host, port) => {
    expect(parseStaticPeer(text)).toEqual({ ok: true, peer: { source: 'static', key, addresses: [host], port } })
  })

  it.each([
    ['10.0.0.5', 'bad-address'],
    ['fe80::1:7000', 'bad-address'],
    ['host name:7000', 'bad-address'],
    ['-bad-.local:7000', 'bad-address'],
    ['10.0.0.5:0', 'bad-port'],
    ['10.0.0.5:65536', 'bad-port']
  ])('refuses %j (%s)', (text, reason) => {
    expect(parseStaticPeer(text)).toMatchObject({ ok: false, reason })
  })

  it('pins an id and key only when the key derives to the id', () => {
    expect(parseStaticPeer({ host: '10.0.0.5', port: 7000, id: alice.id, publicKey: toBase64url(alice.publicKey) }))
      .toMatchObject({ ok: true, peer: { id: alice.id, publicKey: alice.publicKey } })
    expect(parseStaticPeer({ host: '10.0.0.5', port: 7000, id: alice.id, publicKey: bob.publicKey })).toMatchObject({ ok: false, reason: 'key-mismatch' })
    expect(parseStaticPeer({ host: '10.0.0.5', port: 7000, id: alice.id })).toMatchObject({ ok: false, reason: 'bad-pk' })
    expect(parseStaticPeer({ host: '10.0.0.5', port: 7000, id: 'nope', publicKey: alice.publicKey })).toMatchObject({ ok: false, reason: 'bad-id' })
    expect(parseStaticPeer({ host: '[::1]', port: 7000 })).toMatchObject({ ok: true, peer: { key: '[::1]:7000' } })
  })
})

describe('static discovery', () => {
  it('refuses a bad configured peer with ERR_BAD_ARGUMENT', () => {
    expect(() => createStaticDiscovery({ peers: ['nope'] })).toThrow(expect.objectContaining({ code: 'ERR_BAD_ARGUMENT' }))
  })

  it('reports configured and bootstrap peers on start, without id or key unless pinned', async () => {
    const discovery = createStaticDiscovery({
      peers: ['10.0.0.5:7000', { host: '10.0.0.6', port: 7000, id: alice.id, publicKey: alice.publicKey }],
      bootstrap: ['seed.example.org:7000']
    })
    onTestFinished(async () => { await discovery.stop() })
    const seen: PeerInfo[] = []
    discovery.on('peer', (peer) => seen.push(peer))
    await discovery.start()
    expect(seen.map((p) => [p.key, p.source === 'static' && p.bootstrap, p.id])).toEqual([
      ['10.0.0.5:7000', false, undefined],
      ['10.0.0.6:7000', false, alice.id],
      ['seed.example.org:7000', true, undefined]
    ])
    expect(discovery.peers()).toEqual(seen)
    expect(discovery.counters.found).toBe(3)
  })

  it('takes addresses learned from bootstrap peers, and counts bad ones without throwing', async () => {
    const discovery = createStaticDiscovery({ bootstrap: ['10.0.0.1:7000'] })
    onTestFinished(async () => { await discovery.stop() })
    const invalid: InvalidEvent[] = []
    discovery.on('invalid', (event) => invalid.push(event))
    await discovery.start()
    const next = discovery.next('peer', { signal: AbortSignal.timeout(1000) })
    expect(discovery.add('10.0.0.2:7000')).toMatchObject({ key: '10.0.0.2:7000', bootstrap: false })
    expect((await next)[0].key).toBe('10.0.0.2:7000')
    expect(discovery.add('10.0.0.2:99999')).toBeUndefined()
    expect(discovery.add({ host: '10.0.0.3', port: 7000, id: alice.id, publicKey: bob.publicKey })).toBeUndefined()
    expect(invalid.map((e) => [e.reason, e.source])).toEqual([['bad-port', 'static'], ['key-mismatch', 'static']])
    expect(discovery.counters.invalid).toMatchObject({ 'bad-port': 1, 'key-mismatch': 1 })
  })

  it('updates a peer once its key is known, and emits nothing when nothing changed', async () => {
    const discovery = createStaticDiscovery({ peers: ['10.0.0.5:7000'] })
    onTestFinished(async () => { await discovery.stop() })
    await discovery.start()
    const seen: PeerInfo[] = []
    discovery.on('peer', (peer) => seen.push(peer))
    discovery.add('10.0.0.5:7000')
    expect(seen).toEqual([])
    discovery.add({ host: '10.0.0.5', port: 7000, id: alice.id, publicKey: alice.publicKey })
    discovery.add('10.0.0.5:7000') // no key given: keeps the one known
    expect(seen.map((p) => p.id)).toEqual([alice.id])
    expect(discovery.counters.found).toBe(1)
  })

  it('removes a peer by address, and keeps peers added while stopped for the next start', async () => {
    const discovery = createStaticDiscovery({ peers: ['10.0.0.5:7000'] })
    onTestFinished(async () => { await discovery.stop() })
    const events: string[] = []
    discovery.on('peer', (p) => events.push(`peer ${p.key}`))
    discovery.on('peer:lost', (key) => events.push(`lost ${key}`))
    discovery.add('10.0.0.9:7000')
    expect(events).toEqual([])
    await discovery.start()
    expect(discovery.remove('10.0.0.5:7000')).toBe(true)
    expect(discovery.remove('10.0.0.5:7000')).toBe(false)
    expect(events).toEqual(['peer 10.0.0.5:7000', 'peer 10.0.0.9:7000', 'lost 10.0.0.5:7000'])
    expect(discovery.counters).toMatchObject({ found: 2, lost: 1 })
  })
})
