import { describe, expect, it, onTestFinished } from 'vitest'
import { generateKeyPair } from '../../shared/index.js'
import { createMdnsDiscovery, createStaticDiscovery, type Discovery, type StaticDiscovery } from '../../mesh/discovery/index.js'
import { describeNet } from '../helpers/netns.js'
import { uniqueFleet, waitForLoss, waitForPeers } from '../helpers/mdns.js'

/**
 * The Discovery contract (libp2p interface-compliance-tests style), run against every
 * implementation: idempotent start/stop, stop-before-start, no events after stop, a peer found
 * and lost. Each harness knows how to make a peer appear to some observers and vanish again.
 */
interface Harness {
  readonly name: string
  readonly network: boolean
  /** A discovery under test (not started). */
  create (): Discovery
  /** Makes one peer appear to `observers`; returns its key and how to make it vanish. */
  appear (observers: Discovery[]): Promise<{ key: string, vanish: () => Promise<void> }>
}

function mdnsHarness (): Harness {
  const fleet = uniqueFleet('compliance')
  let port = 7000
  return {
    name: 'mdns',
    network: true,
    create: () => createMdnsDiscovery({ identity: generateKeyPair(), port: port++, fleet }),
    appear: async () => {
      const identity = generateKeyPair()
      const peer = createMdnsDiscovery({ identity, port: port++, fleet, browse: false })
      onTestFinished(async () => { await peer.stop() })
      await peer.start()
      return { key: identity.id, vanish: async () => { await peer.stop() } }
    }
  }
}

function staticHarness (): Harness {
  let port = 7000
  return {
    name: 'static',
    network: false,
    create: () => createStaticDiscovery({}),
    appear: async (observers) => {
      const address = `127.0.0.1:${port++}`
      for (const o of observers) (o as StaticDiscovery).add(address)
      return { key: address, vanish: async () => { for (const o of observers) (o as StaticDiscovery).remove(address) } }
    }
  }
}

for (const make of [mdnsHarness, staticHarness]) {
  const harness = make()
  const suite = harness.network ? describeNet : describe
  suite(`Discovery compliance: ${harness.name}`, () => {
    const create = (): Discovery => {
      const discovery = harness.create()
      onTestFinished(async () => { await discovery.stop() })
      return discovery
    }

    it('starts and stops idempotently', async () => {
      const discovery = create()
      expect(discovery.started).toBe(false)
      await Promise.all([discovery.start(), discovery.start()])
      await discovery.start()
      expect(discovery.started).toBe(true)
      await Promise.all([discovery.stop(), discovery.stop()])
      await discovery.stop()
      expect(discovery.started).toBe(false)
      expect(discovery.peers()).toEqual([])
    })

    it('treats stop before start as a no-op, and can start again after a stop', async () => {
      const discovery = create()
      await discovery.stop()
      expect(discovery.started).toBe(false)
      await discovery.start()
      await discovery.stop()
      await discovery.start()
      expect(discovery.started).toBe(true)
      await discovery[Symbol.asyncDispose]()
      expect(discovery.started).toBe(false)
    })

    it('refuses to start with an aborted signal', async () => {
      const discovery = create()
      await expect(discovery.start({ signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ERR_ABORTED' })
      expect(discovery.started).toBe(false)
    })

    it('finds a peer, then loses it', async () => {
      const discovery = create()
      await discovery.start()
      const signal = AbortSignal.timeout(10_000)
      const peer = await harness.appear([discovery])
      const [found] = await waitForPeers(discovery, [peer.key], signal)
      expect(found).toMatchObject({ key: peer.key, source: harness.name })
      expect(discovery.counters.found).toBeGreaterThanOrEqual(1)
      const lost = waitForLoss(discovery, peer.key, signal)
      await peer.vanish()
      await lost
      expect(discovery.peers().some((p) => p.key === peer.key)).toBe(false)
      expect(discovery.counters.lost).toBeGreaterThanOrEqual(1)
    })

    it('emits nothing after stop', async () => {
      const [stopped, witness] = [create(), create()]
      await Promise.all([stopped.start(), witness.start()])
      const events: string[] = []
      await stopped.stop()
      stopped.on('peer', (p) => events.push(`peer ${p.key}`))
      stopped.on('peer:lost', (key) => events.push(`lost ${key}`))
      stopped.on('invalid', (e) => events.push(`invalid ${e.reason}`))
      const signal = AbortSignal.timeout(10_000)
      const peer = await harness.appear([stopped, witness])
      await waitForPeers(witness, [peer.key], signal) // the peer really was announced...
      const lost = waitForLoss(witness, peer.key, signal)
      await peer.vanish()
      await lost // ...and really went away
      expect(events).toEqual([])
      expect(stopped.peers()).toEqual([])
    })
  })
}
