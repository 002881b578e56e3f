import { describe, expect, it, onTestFinished } from 'vitest'
import {
  MAX_CREDENTIAL_BYTES, cosign, credentialId, enroll, isMeshError, onlineStatus, parseFleetPolicy, parseStatus, seededRandom, toBase64url,
  type Clock, type Ed25519, type KeyPair
} from '../../shared/index.js'
import { nodeEd25519 } from '../../shared/node.js'
import { CredentialCheck } from '../../mesh/index.js'
import { encodeTxt, parseTxt, txtStrings } from '../../mesh/discovery/records.js'
import { createTcpTransport, type TcpTransportInit, type Transport } from '../../mesh/links/index.js'
import { InitiatorHandshake, ResponderHandshake, type HandshakeConfig } from '../../mesh/links/handshake.js'
import { testKeys } from '../helpers/keys.js'
import { describeNet } from '../helpers/netns.js'

/**
 * Closed fleets by credential (issue 13): a device shows its owner-signed credential in the link
 * handshake (extension type 1 of HELLO and REPLY, links/handshake.ts), and a node with the fleet
 * file decides on it once per link (mesh/credentials.ts), cheapest check first, with a stable code
 * for every refusal that the refused side is told.
 */

const alice = testKeys(41)
const bob = testKeys(42)
const mallory = testKeys(43)
const policy = parseFleetPolicy({ fleet: 'home', threshold: 2, owners: [alice, bob].map((o: KeyPair) => ({ key: toBase64url(o.publicKey) })) })
const NOW = 1_800_000_000
const device = testKeys(51)
const other = testKeys(52)
const stranger = testKeys(53)

let ctiSeed = 0
function credentialOf (keys: KeyPair, options: { owners?: KeyPair[], issuedAt?: number, lifetime?: number, fleet?: typeof policy } = {}): Uint8Array {
  const p = options.fleet ?? policy
  const cti = Uint8Array.from([++ctiSeed, 1, 2, 3, 4, 5, 6, 7])
  const [first, ...rest] = options.owners ?? [alice, bob]
  let bytes = enroll({ policy: p, publicKey: keys.publicKey, name: 'pi', cti, owners: [first as KeyPair], issuedAt: options.issuedAt ?? NOW - 10, lifetime: options.lifetime ?? 3600 })
  for (const owner of rest) bytes = cosign(bytes, p, owner)
  return bytes
}

/** nodeEd25519, counting what it is asked to do. */
function counting (): Ed25519 & { signs: number, verifies: number } {
  const ed = {
    name: 'node' as const,
    signs: 0,
    verifies: 0,
    getPublicKey: nodeEd25519.getPublicKey,
    sign (message: Uint8Array, secretKey: Uint8Array) { ed.signs++; return nodeEd25519.sign(message, secretKey) },
    verify (signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array) { ed.verifies++; return nodeEd25519.verify(signature, message, publicKey) }
  }
  return ed
}

const clockAt = (seconds: number): Clock => ({ now: () => 0, wall: () => seconds * 1000, setTimeout: () => 0, clearTimeout: () => {} })

function codeOf (fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return isMeshError(err) ? err.code : `not a MeshError: ${String(err)}`
  }
  return undefined
}

describe('CredentialCheck: once per link, cheapest first', () => {
  const revokedIds = new Set([other.id])
  function check (init: { required?: boolean } = {}, ed = counting()) {
    return { ed, check: new CredentialCheck({ policy, ...init }, { revoked: (id) => revokedIds.has(id), clock: clockAt(NOW), ed25519: ed }) }
  }

  it('takes a valid credential once, then from its cache (no signature checked), and gives every refusal its code', () => {
    const { check: c, ed } = check()
    const good = credentialOf(device)
    expect(c.check({ id: device.id, publicKey: device.publicKey, credential: good })?.device).toBe(device.id)
    expect(ed.verifies).toBe(2) // one per owner, threshold 2
    expect(c.check({ id: device.id, publicKey: device.publicKey, credential: good })?.name).toBe('pi')
    expect(ed.verifies).toBe(2)
    expect(c.counters).toMatchObject({ verified: 1, cached: 1 })

    const refusals: Array<[string, () => unknown]> = [
      ['ERR_REVOKED', () => c.check({ id: other.id, publicKey: other.publicKey, credential: credentialOf(other) })],
      ['ERR_NO_CREDENTIAL', () => c.check({ id: stranger.id, publicKey: stranger.publicKey })],
      ['ERR_CREDENTIAL_EXPIRED', () => c.check({ id: stranger.id, publicKey: stranger.publicKey, credential: credentialOf(stranger, { issuedAt: NOW - 7200 }) })],
      ['ERR_CREDENTIAL_MISMATCH', () => c.check({ id: stranger.id, publicKey: stranger.publicKey, credential: good })],
      ['ERR_BAD_CREDENTIAL', () => c.check({ id: stranger.id, publicKey: stranger.publicKey, credential: Uint8Array.of(0xd8, 0x62, 0x80) })],
      ['ERR_UNKNOWN_FLEET', () => c.check({ id: stranger.id, publicKey: stranger.publicKey, credential: credentialOf(stranger, { fleet: { ...policy, fleet: 'barn' } }) })]
    ]
    const before = ed.verifies
    for (const [code, fn] of refusals) expect(codeOf(fn), code).toBe(code)
    expect(ed.verifies).toBe(before) // none of these spent a signature check
    const malloryPolicy = parseFleetPolicy({ fleet: 'home', owners: [{ key: toBase64url(mallory.publicKey) }] })
    expect(codeOf(() => c.check({ id: stranger.id, publicKey: stranger.publicKey, credential: credentialOf(stranger, { fleet: malloryPolicy, owners: [mallory] }) }))).toBe('ERR_NOT_OWNER')
    expect(codeOf(() => c.check({ id: stranger.id, publicKey: stranger.publicKey, credential: credentialOf(stranger, { owners: [alice] }) }))).toBe('ERR_TOO_FEW_OWNERS')
    expect(c.counters.refused).toEqual({
      ERR_REVOKED: 1, ERR_NO_CREDENTIAL: 1, ERR_CREDENTIAL_EXPIRED: 1, ERR_CREDENTIAL_MISMATCH: 1, ERR_BAD_CREDENTIAL: 1, ERR_UNKNOWN_FLEET: 1, ERR_NOT_OWNER: 1, ERR_TOO_FEW_OWNERS: 1
    })
  })

  it('never takes a credential on its cti alone: other bytes under a cached cti are verified in full', () => {
    const { check: c, ed } = check()
    const good = credentialOf(device)
    c.check({ id: device.id, publicKey: device.publicKey, credential: good })
    const forged = new Uint8Array(good)
    forged[forged.length - 1] = (forged[forged.length - 1] ?? 0) ^ 1 // the last owner signature
    expect(codeOf(() => c.check({ id: device.id, publicKey: device.publicKey, credential: forged }))).toBe('ERR_TOO_FEW_OWNERS')
    expect(ed.verifies).toBe(4)
  })

  it('checks expiry again on every use of a cached credential, and revocation before anything', () => {
    const revoked = new Set<string>()
    let seconds = NOW
    const c = new CredentialCheck({ policy }, { revoked: (id) => revoked.has(id), clock: { ...clockAt(0), wall: () => seconds * 1000 } })
    const good = credentialOf(device, { lifetime: 60 })
    expect(c.check({ id: device.id, publicKey: device.publicKey, credential: good })?.device).toBe(device.id)
    seconds += 60
    expect(codeOf(() => c.check({ id: device.id, publicKey: device.publicKey, credential: good }))).toBe('ERR_CREDENTIAL_EXPIRED')
    revoked.add(device.id)
    expect(codeOf(() => c.check({ id: device.id, publicKey: device.publicKey, credential: good }))).toBe('ERR_REVOKED')
  })

  it('in an open fleet (required: false) lets a peer without credential through, and still checks one that shows one', () => {
    const { check: c } = check({ required: false })
    expect(c.check({ id: stranger.id, publicKey: stranger.publicKey })).toBeUndefined()
    expect(codeOf(() => c.check({ id: stranger.id, publicKey: stranger.publicKey, credential: credentialOf(device) }))).toBe('ERR_CREDENTIAL_MISMATCH')
    expect(codeOf(() => c.check({ id: other.id, publicKey: other.publicKey }))).toBe('ERR_REVOKED')
  })
})

describe('credentials in the link handshake (pure)', () => {
  function config (keys: KeyPair, seed: number, extra: Partial<HandshakeConfig> = {}): HandshakeConfig {
    return { keys, ed25519: nodeEd25519, random: seededRandom(seed), ...extra }
  }

  it('carries each side\'s credential to the other, covered by the signatures; without one the messages are as before', () => {
    const mine = credentialOf(device)
    const theirs = credentialOf(other)
    const seen: Array<Uint8Array | undefined> = []
    const initiator = new InitiatorHandshake(config(device, 1, { credential: mine, admit: (p) => { seen.push(p.credential) } }))
    const responder = new ResponderHandshake(config(other, 2, { credential: theirs, admit: (p) => { seen.push(p.credential) } }))
    const hello = initiator.hello(1)
    expect(hello.length).toBe(106 + 3 + mine.length)
    const { claimed } = responder.readHello(hello)
    expect(Buffer.from(claimed.credential ?? [])).toEqual(Buffer.from(mine))
    const reply = responder.reply()
    expect(reply.length).toBe(162 + 3 + theirs.length)
    expect(Buffer.from(initiator.readReply(reply).credential ?? [])).toEqual(Buffer.from(theirs))
    expect(responder.readAuth(initiator.auth()).credential).toBeDefined()
    initiator.readFinish(responder.finish('accept').message)
    expect(seen.map((c) => c?.length)).toEqual([mine.length, theirs.length])

    const plain = new InitiatorHandshake(config(device, 1))
    expect(plain.hello(1).length).toBe(106)
  })

  it('a credential altered on the way fails the handshake (it is in the signed transcript)', () => {
    for (const which of ['hello', 'reply'] as const) {
      const initiator = new InitiatorHandshake(config(device, 3, { credential: credentialOf(device) }))
      const responder = new ResponderHandshake(config(other, 4, { credential: credentialOf(other) }))
      const hello = new Uint8Array(initiator.hello(1)) // a copy: the initiator keeps what it sent
      if (which === 'hello') hello[hello.length - 1] = (hello.at(-1) ?? 0) ^ 1
      responder.readHello(hello)
      const reply = new Uint8Array(responder.reply())
      if (which === 'reply') reply[reply.length - 1] = (reply.at(-1) ?? 0) ^ 1
      expect(codeOf(() => { initiator.readReply(reply); responder.readAuth(initiator.auth()) }), which).toBe('ERR_HANDSHAKE')
    }
  })

  it('the responder refuses before it signs anything, and malformed extensions are refused', () => {
    const ed = counting()
    const check = new CredentialCheck({ policy }, { revoked: () => false, ed25519: ed })
    const responder = new ResponderHandshake(config(other, 5, { ed25519: ed, admit: (p) => { check.check(p) } }))
    responder.readHello(new InitiatorHandshake(config(stranger, 6)).hello(1))
    expect(codeOf(() => responder.reply())).toBe('ERR_NO_CREDENTIAL')
    expect(ed.signs + ed.verifies).toBe(0)
    const hello = new InitiatorHandshake(config(stranger, 7)).hello(1)
    for (const tail of [[1], [1, 0, 9, 0], [1, 0, 0], [7, 0, 1, 0, 7, 0, 1, 0]]) {
      expect(codeOf(() => new ResponderHandshake(config(other, 8)).readHello(Uint8Array.from([...hello, ...tail]))), String(tail)).toBe('ERR_HANDSHAKE')
    }
    // an unknown extension type is skipped
    expect(new ResponderHandshake(config(other, 9)).readHello(Uint8Array.from([...hello, 9, 0, 1, 0])).claimed.id).toBe(stranger.id)
  })
})

describeNet('closed fleets by credential over TCP', () => {
  async function transport (keys: KeyPair, init: TcpTransportInit = {}): Promise<Transport> {
    const t = createTcpTransport(init, { keys })
    onTestFinished(async () => { await t.close() })
    await t.listen({ host: '127.0.0.1', port: 0 })
    return t
  }

  it('links enrolled devices and refuses the rest with a code both sides see; the refused cost no signed REPLY', async () => {
    const now = Math.floor(Date.now() / 1000)
    const revoked = new Set([other.id])
    const check = new CredentialCheck({ policy }, { revoked: (id) => revoked.has(id) })
    const admit = (p: Parameters<CredentialCheck['check']>[0]): void => { check.check(p) }
    const gate = await transport(testKeys(60), { credential: credentialOf(testKeys(60)), admit })

    const member = await transport(device, { credential: credentialOf(device) })
    const link = await member.dial(gate.address!)
    expect(link.remote.credential).toBeDefined()
    await expect.poll(() => gate.links.get(device.id)?.remote.credential?.length).toBe(credentialOf(device).length)

    const cases: Array<[KeyPair, Uint8Array | undefined, string]> = [
      [stranger, undefined, 'ERR_NO_CREDENTIAL'],
      [other, credentialOf(other), 'ERR_REVOKED'],
      [testKeys(54), credentialOf(testKeys(54), { issuedAt: now - 7200, lifetime: 60 }), 'ERR_CREDENTIAL_EXPIRED'],
      [testKeys(55), credentialOf(testKeys(55), { owners: [alice] }), 'ERR_TOO_FEW_OWNERS']
    ]
    const repliesBefore = gate.counters.replies
    for (const [keys, credential, code] of cases) {
      const t = await transport(keys, credential === undefined ? {} : { credential })
      const refused = gate.next('refused')
      await expect(t.dial(gate.address!), code).rejects.toSatisfy((err: unknown) => isMeshError(err) && err.code === code)
      expect((await refused)[0].code).toBe(code)
    }
    expect(gate.counters.replies).toBe(repliesBefore) // nothing signed for any of them
    expect(link.open).toBe(true)

    // The other way round: a gate that dials a revoked device refuses it and tells it why.
    const told = (await transport(other, { credential: credentialOf(other) }))
    const heard = told.next('refused')
    await expect(gate.dial(told.address!)).rejects.toSatisfy((err: unknown) => isMeshError(err) && err.code === 'ERR_REVOKED')
    expect((await heard)[0].code).toBe('ERR_REVOKED')
  })
})

describe('the credential in the retained status (shared/status.ts "cred")', () => {
  it('round-trips, is left out without one (the JSON of before), and a malformed or oversized one is a bad status', () => {
    const cred = credentialOf(device)
    const json = onlineStatus({ publicKey: device.publicKey, name: 'pi', credential: cred })
    const parsed = parseStatus(Buffer.from(json), device.id)
    expect(parsed.ok && parsed.status?.state === 'online' ? Buffer.from(parsed.status.credential ?? []) : undefined).toEqual(Buffer.from(cred))
    expect(JSON.parse(onlineStatus({ publicKey: device.publicKey, name: 'pi' }))).toEqual({ state: 'online', pk: toBase64url(device.publicKey), name: 'pi' })
    const withCred = (value: unknown): string => JSON.stringify({ state: 'online', pk: toBase64url(device.publicKey), cred: value })
    for (const bad of ['not base64!', '', 42, 'A'.repeat(Math.ceil((MAX_CREDENTIAL_BYTES + 1) * 4 / 3))]) {
      expect(parseStatus(Buffer.from(withCred(bad)), device.id), String(bad).slice(0, 20)).toMatchObject({ ok: false, reason: 'bad_status' })
    }
  })
})

describe('the credential id in DNS-SD TXT (mesh/discovery/records.ts "cti")', () => {
  it('announces the cti (11 characters), never the credential, which would not fit in one TXT string (RFC 6763 §6.1)', () => {
    const cred = credentialOf(device)
    expect(cred.length).toBeGreaterThan(255)
    const cti = credentialId(cred)
    expect(cti?.length).toBe(8)
    const txt = encodeTxt({ id: device.id, publicKey: device.publicKey, cti })
    expect(txt.cti).toHaveLength(11)
    const strings = txtStrings(txt)
    expect(Math.max(...strings.map((x) => x.length))).toBeLessThanOrEqual(255)
    const parsed = parseTxt(strings)
    expect(parsed.ok && Buffer.from(parsed.value.cti ?? [])).toEqual(Buffer.from(cti ?? []))
    expect(encodeTxt({ id: device.id, publicKey: device.publicKey })).not.toHaveProperty('cti')
    expect(credentialId(Uint8Array.of(1, 2, 3))).toBeUndefined()
  })
})
