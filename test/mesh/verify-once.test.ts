import { randomBytes } from 'node:crypto'
import { expect, it, onTestFinished } from 'vitest'
import { defaultEd25519, encodeFrame, generateKeyPair, toHex, type Ed25519, type KeyPair } from '../../shared/index.js'
import { MeshNode } from '../../mesh/index.js'
import { createMemoryNetwork } from '../../mesh/testing.js'
import { describeNet } from '../helpers/netns.js'

/**
 * Verify once per process (issue 15, shared/verified.ts), at a device's own node: the frame its
 * device just signed in this process with the node's key is injected without a second signature
 * check; anything else is checked: a copy, bytes changed after signing, a frame signed by a
 * caller's backend or with a key pair whose halves do not match.
 */

const keysOf = (seed: number): KeyPair => generateKeyPair(new Uint8Array(32).fill(seed))
const frameOf = (keys: KeyPair, seq: number, ed25519?: Ed25519): Uint8Array =>
  encodeFrame({ keys, seq, time: 1_767_225_600 + seq, records: [{ n: 'temp', v: seq }], ...(ed25519 === undefined ? {} : { ed25519 }) })

describeNet('verify once at a device\'s own node', () => {
  it('its own fresh frame is taken without a check; a copy, a changed frame, a caller\'s backend and a mismatched key pair are checked', async () => {
    const keys = keysOf(31)
    let checks = 0
    const counting: Ed25519 = { ...defaultEd25519, verify: (s, m, k) => { checks++; return defaultEd25519.verify(s, m, k) } }
    const net = createMemoryNetwork()
    const node = new MeshNode({ name: 'd', host: 'd', mdns: false, dialTarget: 0, announceLinks: 0 }, { keys, transport: net.createTransport({}, { keys }), ed25519: counting })
    onTestFinished(async () => { await node.stop() })
    await node.start()
    const delivered: string[] = []
    node.on('delivery', (d) => delivered.push(toHex(d.frame)))

    const fresh = frameOf(keys, 1)
    expect(node.inject(fresh)).toEqual({ verdict: 'accepted' })
    expect(checks).toBe(0) // before issue 15: 1

    expect(node.inject(Uint8Array.from(frameOf(keys, 2)))).toEqual({ verdict: 'accepted' }) // a copy: no mark
    expect(checks).toBe(1)

    const changed = frameOf(keys, 3)
    changed[changed.length - 1] = (changed[changed.length - 1] as number) ^ 1 // written to after signing: the mark no longer holds
    expect(node.inject(changed)).toEqual({ verdict: 'refused', code: 'ERR_BAD_SIGNATURE' })
    expect(checks).toBe(2)

    const forger: Ed25519 = { ...defaultEd25519, sign: () => randomBytes(64) } // a caller's backend: its signatures are not taken on trust
    expect(node.inject(frameOf(keys, 4, forger))).toEqual({ verdict: 'refused', code: 'ERR_BAD_SIGNATURE' })
    expect(checks).toBe(3)

    const mismatched: KeyPair = { id: keys.id, publicKey: keys.publicKey, secretKey: keysOf(32).secretKey } // halves of two key pairs
    expect(node.inject(frameOf(mismatched, 5))).toEqual({ verdict: 'refused', code: 'ERR_BAD_SIGNATURE' })
    expect(checks).toBe(4)

    expect(node.inject(fresh)).toEqual({ verdict: 'duplicate' })
    expect(delivered).toHaveLength(2)
  })
})
