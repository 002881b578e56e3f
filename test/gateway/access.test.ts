import type { Client } from 'aedes'
import { describe, expect, it } from 'vitest'
import { manualClock, signDeviceToken } from '../../shared/index.js'
import { BrokerAccess, type AccessInit } from '../../gateway/auth.js'
import type { DropReason } from '../../gateway/index.js'
import { seededKeys } from './support.js'

/** BrokerAccess without a broker: fake clients, a manual clock, the refusals it reports. */
function access (init: AccessInit = {}, closed?: Set<string>): { gate: BrokerAccess, clock: ReturnType<typeof manualClock>, refused: Array<[DropReason, string | undefined]> } {
  const clock = manualClock({ wallStart: 1_767_225_600_000 })
  const refused: Array<[DropReason, string | undefined]> = []
  const gate = new BrokerAccess(init, {
    fleet: 'default',
    ...(closed === undefined ? {} : { inRoster: (id: string) => closed.has(id) }),
    refuse: (reason, _message, _info, code) => { refused.push([reason, code]) }
  }, { clock })
  return { gate, clock, refused }
}

const client = (id: string, address = '10.0.0.1'): Client => ({ id, conn: { remoteAddress: address } }) as unknown as Client

function preConnect (gate: BrokerAccess, c: Client, username?: string, password?: string): boolean {
  let ok = false
  gate.hooks.preConnect?.(c, { cmd: 'connect', username, password: password === undefined ? undefined : Buffer.from(password) } as never, (_err, success) => { ok = success })
  return ok
}

function authenticate (gate: BrokerAccess, c: Client, username?: string, password?: string): number {
  let code = -1
  gate.hooks.authenticate?.(c, username as string, password === undefined ? undefined as unknown as Buffer : Buffer.from(password), (err, success) => {
    code = success === true ? 0 : (err as { returnCode?: number } | null)?.returnCode ?? 5
  })
  return code
}

describe('BrokerAccess (gateway/auth.ts)', () => {
  it('CONNECT attempts per address: a token bucket, refilled with time; other addresses unaffected', () => {
    const { gate, clock, refused } = access({ connectRate: { burst: 2, perSecond: 1 } })
    expect([1, 2, 3].map(() => preConnect(gate, client('a')))).toEqual([true, true, false])
    expect(preConnect(gate, client('b', '10.0.0.2'))).toBe(true)
    clock.advance(999)
    expect(preConnect(gate, client('a'))).toBe(false)
    clock.advance(2)
    expect(preConnect(gate, client('a'))).toBe(true)
    expect(refused).toEqual([['connect_rate', undefined], ['connect_rate', undefined]])
  })

  it('the address table is bounded: the oldest address is forgotten first', () => {
    const { gate } = access({ connectRate: { burst: 1, perSecond: 0.001, maxAddresses: 2 } })
    expect(preConnect(gate, client('a', '10.0.0.1'))).toBe(true)
    expect(preConnect(gate, client('b', '10.0.0.2'))).toBe(true)
    expect(preConnect(gate, client('c', '10.0.0.3'))).toBe(true) // 10.0.0.1 forgotten
    expect(preConnect(gate, client('b', '10.0.0.2'))).toBe(false)
    expect(preConnect(gate, client('a', '10.0.0.1'))).toBe(true)
  })

  it('a token is good for one CONNECT; its id is forgotten once it expired', () => {
    const { gate, clock, refused } = access()
    const alice = seededKeys(71)
    const cti = Uint8Array.of(9, 9, 9, 9, 9, 9, 9, 9)
    const token = signDeviceToken({ keys: alice, clientId: 'c', fleet: 'default', now: clock.wall(), cti, lifetimeSeconds: 60 })
    expect(authenticate(gate, client('c'), alice.id, token)).toBe(0)
    expect(gate.principalOf(client('c'))).toBeUndefined() // another object: principals are per connection
    expect(gate.usesToken(alice.id)).toBe(true)
    expect(authenticate(gate, client('c'), alice.id, token)).toBe(4)
    expect(refused).toEqual([['bad_token', 'ERR_REPLAY']])
    clock.advance(61_000)
    expect(authenticate(gate, client('c'), alice.id, token)).toBe(4) // expired (a bad password), not replayed
    expect(refused.at(-1)).toEqual(['token_time', 'ERR_TOKEN_EXPIRED'])
  })

  it('users, anonymous, and the roster', () => {
    const alice = seededKeys(72)
    const bob = seededKeys(73)
    const { gate, clock, refused } = access({ credentials: { ops: 'pw' } }, new Set([alice.id]))
    expect(authenticate(gate, client('u'), 'ops', 'pw')).toBe(0)
    expect(authenticate(gate, client('u'), 'ops', 'pW')).toBe(4)
    expect(authenticate(gate, client('u'), 'ops')).toBe(4)
    expect(authenticate(gate, client('x'))).toBe(5)
    const tok = (keys: typeof alice): string => signDeviceToken({ keys, clientId: 'd', fleet: 'default', now: clock.wall(), cti: crypto.getRandomValues(new Uint8Array(8)) })
    expect(authenticate(gate, client('d'), alice.id, tok(alice))).toBe(0)
    expect(authenticate(gate, client('d'), bob.id, tok(bob))).toBe(5)
    expect(refused.map(([r]) => r)).toEqual(['bad_credentials', 'bad_credentials', 'anonymous', 'not_in_roster'])
    const open = access({ allowAnonymous: true })
    const anon = client('anon')
    expect(authenticate(open.gate, anon)).toBe(0)
    expect(open.gate.principalOf(anon)).toEqual({ kind: 'anonymous' })
  })
})
