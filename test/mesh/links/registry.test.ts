import { describe, expect, it } from 'vitest'
import { LinkRegistry } from '../../../mesh/links/registry.js'
import type { BaseLink } from '../../../mesh/links/base-link.js'

/**
 * The responder's verdict on an inbound link to a device it is already linked to
 * (mesh/links/registry.ts): a restart replaces, a race keeps one, and one key linked from two
 * addresses whose first link still answers is a clone. The links here stand in for the part of a
 * link the registry reads (open, remote address, ping); the same decision over real TCP, on
 * namespace hosts, is test/adversarial/identity.test.ts.
 */

const LOCAL = 'a'.repeat(26)
const REMOTE = 'b'.repeat(26)

function link (remoteAddress: string, answers: boolean): BaseLink {
  return {
    open: true,
    remoteAddress,
    remote: { id: REMOTE },
    ping: async ({ signal }: { signal?: AbortSignal } = {}) => await new Promise<number>((resolve, reject) => {
      if (answers) setTimeout(() => resolve(1), 5)
      signal?.addEventListener('abort', () => reject(new Error('aborted')), { once: true })
    }),
    once: () => {},
    replace: () => {}
  } as unknown as BaseLink
}

describe('link registry: one link per pair, and clones', () => {
  it('the same device dialing again from another address while its first link answers: a clone', async () => {
    const r = new LinkRegistry(LOCAL)
    r.adopt(link('10.0.0.1', true), { initiatorId: REMOTE, seq: 1 })
    expect(await r.decideInbound(REMOTE, { initiatorId: REMOTE, seq: 2 }, '10.0.0.2', 200)).toBe('clone')
  })

  it('the first link no longer answers (the device moved or restarted elsewhere): the newcomer replaces it', async () => {
    const r = new LinkRegistry(LOCAL)
    r.adopt(link('10.0.0.1', false), { initiatorId: REMOTE, seq: 1 })
    const t0 = Date.now()
    expect(await r.decideInbound(REMOTE, { initiatorId: REMOTE, seq: 2 }, '10.0.0.2', 200)).toBe('accept')
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190) // it waited for the probe
  })

  it('a restart from the same address replaces the stale link without a probe', async () => {
    const r = new LinkRegistry(LOCAL)
    r.adopt(link('10.0.0.1', true), { initiatorId: REMOTE, seq: 1 })
    expect(await r.decideInbound(REMOTE, { initiatorId: REMOTE, seq: 2 }, '10.0.0.1', 200)).toBe('accept')
  })

  it('both ends dialing at once (links of different initiators) is never a clone, whatever the addresses', async () => {
    const r = new LinkRegistry(LOCAL)
    // Our own dial to the peer, to an address it announced; its dial to us comes from another of its addresses.
    r.adopt(link('10.0.0.1', true), { initiatorId: LOCAL, seq: 5 })
    expect(await r.decideInbound(REMOTE, { initiatorId: REMOTE, seq: 9 }, 'fe80::2', 200)).toBe('duplicate') // ours wins: smaller id
    const r2 = new LinkRegistry('c'.repeat(26)) // now the peer's id is the smaller: its link wins
    r2.adopt(link('10.0.0.1', true), { initiatorId: 'c'.repeat(26), seq: 5 })
    expect(await r2.decideInbound(REMOTE, { initiatorId: REMOTE, seq: 9 }, 'fe80::2', 200)).toBe('accept')
  })

  it('an older dial of the same device loses to the link it has (a duplicate), as before', async () => {
    const r = new LinkRegistry(LOCAL)
    r.adopt(link('10.0.0.1', true), { initiatorId: REMOTE, seq: 7 })
    expect(await r.decideInbound(REMOTE, { initiatorId: REMOTE, seq: 3 }, '10.0.0.2', 200)).toBe('duplicate')
  })
})
