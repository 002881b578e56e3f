import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import fc from 'fast-check'
import { describe, expect, it, onTestFinished } from 'vitest'
import { isMeshError, meshError, nobleEd25519, seededRandom, type KeyPair } from '../../shared/index.js'
import { nodeEd25519 } from '../../shared/node.js'
import { createTcpTransport, type TcpTransportInit, type Transport } from '../../mesh/links/index.js'
import { InitiatorHandshake, PROTOCOL_VERSION, ResponderHandshake, refusalFor, type HandshakeConfig } from '../../mesh/links/handshake.js'
import { FrameDecoder, encodeFrame } from '../../mesh/links/framing.js'
import { ManualClock } from '../helpers/clock.js'
import { testKeys } from '../helpers/keys.js'
import { describeNet } from '../helpers/netns.js'
import { startProxy, type Direction } from '../helpers/tcp-proxy.js'

const alice = testKeys(11)
const bob = testKeys(12)
const carol = testKeys(13)
/** Claims Alice's identity (her public key) but holds only its own secret key. */
const impostor: KeyPair = { id: alice.id, publicKey: alice.publicKey, secretKey: testKeys(14).secretKey }

function config (keys: KeyPair, seed: number, extra: Partial<HandshakeConfig> = {}): HandshakeConfig {
  return { keys, ed25519: nodeEd25519, random: seededRandom(seed), ...extra }
}

function codeOf (fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return isMeshError(err) ? err.code : `not a MeshError: ${String(err)}`
  }
  return undefined
}

/** Runs a whole handshake in memory; `tamper(i, msg)` may alter message i (0 HELLO … 3 FINISH). */
function exchange (i: HandshakeConfig, r: HandshakeConfig, tamper: (index: number, msg: Uint8Array) => Uint8Array = (_i, m) => m) {
  const initiator = new InitiatorHandshake(i)
  const responder = new ResponderHandshake(r)
  const messages: Uint8Array[] = []
  const pass = (msg: Uint8Array): Uint8Array => {
    const out = tamper(messages.length, msg)
    messages.push(msg)
    return out
  }
  const { seq } = responder.readHello(pass(initiator.hello(42)))
  initiator.readReply(pass(responder.reply()))
  const proven = responder.readAuth(pass(initiator.auth()))
  const finish = responder.finish('accept')
  const done = initiator.readFinish(pass(finish.message))
  return { seq, proven, done, responderSecrets: finish.secrets, messages }
}

describe('handshake state machine (pure)', () => {
  it('proves both identities and agrees on per-direction keys', () => {
    const { seq, proven, done, responderSecrets } = exchange(config(alice, 1), config(bob, 2))
    expect(seq).toBe(42)
    expect(proven.id).toBe(alice.id)
    expect(done.remote.id).toBe(bob.id)
    expect(done.verdict).toBe('accept')
    expect(Buffer.from(done.secrets.send)).toEqual(Buffer.from(responderSecrets.receive))
    expect(Buffer.from(done.secrets.receive)).toEqual(Buffer.from(responderSecrets.send))
    expect(Buffer.from(done.secrets.send)).not.toEqual(Buffer.from(done.secrets.receive))
  })

  it('reproduces golden bytes with seeded randomness (known-answer)', () => {
    const { messages, done } = exchange(config(alice, 1), config(bob, 2))
    expect(messages.map((m) => m.length)).toEqual([106, 162, 67, 35])
    expect(Buffer.from(messages[0]!.subarray(0, 10)).toString('hex')).toBe('0101000000000000002a')
    const transcript = createHash('sha256').update(Buffer.concat(messages)).digest('hex')
    const keys = createHash('sha256').update(done.secrets.send).update(done.secrets.receive).digest('hex')
    expect(transcript).toBe('39bdee8c054d1b6256f2e2353c8178127b652affb3b791869b9bada1c073d595')
    expect(keys).toBe('2bc7e8a17d77d51351077c7a037a6dbb1d41b74ba36fc14ba85857bdae74aead')
    // The same bytes when signing with the pure-JS implementation.
    const noble = exchange({ ...config(alice, 1), ed25519: nobleEd25519 }, { ...config(bob, 2), ed25519: nobleEd25519 })
    expect(createHash('sha256').update(Buffer.concat(noble.messages)).digest('hex')).toBe(transcript)
  })

  it('fails on any single flipped bit in any message', () => {
    const sizes = [106, 162, 67, 35]
    let cases = 0
    for (let index = 0; index < 4; index++) {
      for (let byte = 0; byte < sizes[index]!; byte++) {
        const code = codeOf(() => exchange(config(alice, 3), config(bob, 4), (at, msg) => {
          if (at !== index) return msg
          const copy = new Uint8Array(msg)
          copy[byte]! ^= 0x10
          return copy
        }))
        expect(code, `message ${index} byte ${byte}`).toMatch(/^ERR_(HANDSHAKE|PROTOCOL_VERSION)$/)
        cases++
      }
    }
    expect(cases).toBe(370)
  })

  it('refuses messages spliced in from another session (replay)', () => {
    const recorded = exchange(config(alice, 5), config(bob, 6)).messages
    // A fresh responder fed a recorded HELLO and AUTH: its own nonce and key differ, so AUTH fails.
    const responder = new ResponderHandshake(config(bob, 7))
    responder.readHello(recorded[0]!)
    responder.reply()
    expect(codeOf(() => responder.readAuth(recorded[2]!))).toBe('ERR_HANDSHAKE')
    // A fresh initiator fed a recorded REPLY: it signed another HELLO.
    const initiator = new InitiatorHandshake(config(alice, 8))
    initiator.hello(1)
    expect(codeOf(() => initiator.readReply(recorded[1]!))).toBe('ERR_HANDSHAKE')
  })

  it('refuses an impostor, a mismatched key, an unauthorized peer and itself', () => {
    expect(codeOf(() => exchange(config(alice, 1), config(impostor, 2)))).toBe('ERR_HANDSHAKE')
    expect(codeOf(() => exchange(config(impostor, 1), config(bob, 2)))).toBe('ERR_HANDSHAKE')
    expect(codeOf(() => exchange(config(alice, 1, { expectedId: carol.id }), config(bob, 2)))).toBe('ERR_PEER_KEY_MISMATCH')
    expect(codeOf(() => exchange(config(alice, 1, { expectedPublicKey: carol.publicKey }), config(bob, 2)))).toBe('ERR_PEER_KEY_MISMATCH')
    expect(codeOf(() => exchange(config(alice, 1), config(bob, 2, { authorize: () => false })))).toBe('ERR_NOT_IN_ROSTER')
    expect(codeOf(() => exchange(config(alice, 1, { authorize: () => false }), config(bob, 2)))).toBe('ERR_NOT_IN_ROSTER')
    expect(codeOf(() => exchange(config(alice, 1), config(alice, 2)))).toBe('ERR_HANDSHAKE')
  })

  it('refuses another protocol version, and tells the peer so', () => {
    const hello = new InitiatorHandshake(config(alice, 1)).hello(1)
    hello[1] = PROTOCOL_VERSION + 1
    const responder = new ResponderHandshake(config(bob, 2))
    let refusal: unknown
    try {
      responder.readHello(hello)
    } catch (err) {
      refusal = err
    }
    expect(isMeshError(refusal, 'ERR_PROTOCOL_VERSION')).toBe(true)
    const told = refusalFor(refusal)!
    const initiator = new InitiatorHandshake(config(alice, 1))
    initiator.hello(1)
    let heard: unknown
    try {
      initiator.readReply(told)
    } catch (err) {
      heard = err
    }
    expect(isMeshError(heard, 'ERR_PROTOCOL_VERSION')).toBe(true)
    expect(refusalFor(heard)).toBeUndefined() // never echoes what the peer said
    expect(refusalFor(meshError('ERR_DECRYPT', 'x'))).toBeUndefined()
  })

  it('never crashes on arbitrary bytes: only MeshErrors', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      const responder = new ResponderHandshake(config(bob, 9))
      const initiator = new InitiatorHandshake(config(alice, 10))
      initiator.hello(1)
      for (const step of [() => responder.readHello(bytes), () => initiator.readReply(bytes)]) {
        const code = codeOf(step)
        if (code !== undefined) expect(code).toMatch(/^ERR_/)
      }
    }), { numRuns: 300 })
  })
})

describeNet('handshake over TCP', () => {
  async function transport (keys: KeyPair, init: TcpTransportInit = {}, clock?: ManualClock): Promise<Transport> {
    const t = createTcpTransport(init, clock === undefined ? { keys } : { keys, clock })
    onTestFinished(async () => { await t.close() })
    await t.listen({ host: '127.0.0.1', port: 0 })
    return t
  }

  async function expectCode (promise: Promise<unknown>, code: string): Promise<void> {
    await expect(promise).rejects.toSatisfy((err: unknown) => isMeshError(err) && err.code === code)
  }

  /** A raw client socket and a reader of whole frames from it. */
  async function rawClient (port: number): Promise<{ socket: Socket, frame: () => Promise<Buffer> }> {
    const socket = connect({ host: '127.0.0.1', port })
    onTestFinished(() => { socket.destroy() })
    socket.on('error', () => {})
    await once(socket, 'connect')
    const frames: Buffer[] = []
    const waiters: Array<(frame: Buffer) => void> = []
    const decoder = new FrameDecoder(4096, (body) => {
      const waiter = waiters.shift()
      if (waiter === undefined) frames.push(Buffer.from(body))
      else waiter(Buffer.from(body))
    })
    socket.on('data', (chunk: Buffer) => { decoder.push(chunk) })
    return { socket, frame: async () => frames.shift() ?? await new Promise<Buffer>((resolve) => waiters.push(resolve)) }
  }

  it('refuses an impostor that announces another id with its own key', async () => {
    const mallory = await transport(testKeys(14))
    const dialer = await transport(bob)
    // Discovery said "alice is at mallory's address": mallory proves its own key, not alice's.
    await expectCode(dialer.dial(mallory.address!, { expectedId: alice.id }), 'ERR_PEER_KEY_MISMATCH')
    await expectCode(dialer.dial(mallory.address!, { expectedPublicKey: alice.publicKey }), 'ERR_PEER_KEY_MISMATCH')
    expect(dialer.links.size).toBe(0)
    expect(mallory.links.size).toBe(0)
  })

  it('refuses an impostor that presents another device\'s key without its secret, either way', async () => {
    const fake = await transport(impostor)
    const honest = await transport(bob)
    await expectCode(honest.dial(fake.address!, { expectedId: alice.id }), 'ERR_HANDSHAKE')
    const refused = honest.next('refused')
    await expectCode(fake.dial(honest.address!), 'ERR_HANDSHAKE')
    expect((await refused)[0].code).toBe('ERR_HANDSHAKE')
    expect(honest.links.size).toBe(0)
  })

  it('refuses a key other than the one discovery announced', async () => {
    const target = await transport(bob)
    const dialer = await transport(alice)
    await expectCode(dialer.dial(target.address!, { expectedId: bob.id, expectedPublicKey: carol.publicKey }), 'ERR_PEER_KEY_MISMATCH')
  })

  it('answers a HELLO of another version with a plaintext REFUSE, then closes', async () => {
    const target = await transport(bob)
    const refused = target.next('refused')
    const { socket, frame } = await rawClient(target.address!.port)
    const hello = new InitiatorHandshake(config(alice, 1)).hello(1)
    hello[1] = 9
    socket.write(encodeFrame(hello))
    const answer = await frame()
    expect(answer[0]).toBe(0x7f)
    expect(answer.subarray(3).toString('latin1')).toBe('ERR_PROTOCOL_VERSION')
    expect((await refused)[0].code).toBe('ERR_PROTOCOL_VERSION')
    await once(socket, 'close')
  })

  it('refuses a responder that speaks another version', async () => {
    const server = createServer((socket) => {
      socket.on('error', () => {})
      const decoder = new FrameDecoder(4096, (body) => {
        decoder.stop() // answer the HELLO only
        const reply = new ResponderHandshake(config(bob, 2))
        reply.readHello(body)
        const msg = reply.reply()
        msg[1] = 2 // a version-2 node would sign its own layout; the version byte is checked first
        socket.write(encodeFrame(msg))
      })
      socket.on('data', (chunk: Buffer) => { decoder.push(chunk) })
    })
    onTestFinished(() => { server.close() })
    await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
    const dialer = await transport(alice)
    await expectCode(dialer.dial({ host: '127.0.0.1', port: (server.address() as AddressInfo).port }), 'ERR_PROTOCOL_VERSION')
  })

  it.each([
    ['HELLO nonce', 'up', 20], ['HELLO ephemeral key', 'up', 4 + 50], ['HELLO identity key', 'up', 4 + 80],
    ['REPLY nonce', 'down', 4 + 5], ['REPLY identity key', 'down', 4 + 70], ['REPLY signature', 'down', 4 + 120],
    ['AUTH signature', 'up', 110 + 4 + 10], ['FINISH MAC', 'down', 166 + 4 + 10]
  ] as Array<[string, Direction, number]>)('refuses a handshake whose %s was altered in flight', async (_what, direction, at) => {
    const target = await transport(bob)
    const dialer = await transport(alice)
    const proxy = await startProxy(target.address!, (chunk, dir, offset) => {
      if (dir === direction && at >= offset && at < offset + chunk.length) chunk[at - offset]! ^= 0x01
      return chunk
    })
    onTestFinished(async () => { await proxy.close() })
    await expectCode(dialer.dial(proxy.address, { expectedId: bob.id }), 'ERR_HANDSHAKE')
    expect(dialer.links.size).toBe(0)
    // Only a forged FINISH gets past the responder, whose link then dies on the first bad frame.
    const survivor = target.links.get(alice.id)
    if (survivor !== undefined) {
      expect(direction === 'down' && at > 166).toBe(true)
      const [info] = await survivor.next('close')
      expect(info.reason).toBe('error')
    }
    expect(target.links.size).toBe(0)
  })

  it('refuses a device outside the roster, on either side, and tells it why', async () => {
    const strict = await transport(bob, { authorize: (remote) => remote.id === carol.id })
    const outsider = await transport(alice)
    const refused = strict.next('refused')
    await expectCode(outsider.dial(strict.address!), 'ERR_NOT_IN_ROSTER')
    expect((await refused)[0].code).toBe('ERR_NOT_IN_ROSTER')
    const picky = await transport(carol, { authorize: () => false })
    const told = outsider.next('refused')
    await expectCode(picky.dial(outsider.address!), 'ERR_NOT_IN_ROSTER')
    expect((await told)[0].code).toBe('ERR_NOT_IN_ROSTER')
  })

  it('abandons a silent handshake after the timeout', async () => {
    const clock = new ManualClock()
    const target = await transport(bob, { handshakeTimeout: 5000 }, clock)
    const refused = target.next('refused')
    const armed = clock.nextTimer() // the server arms the handshake timer when it accepts
    const { socket } = await rawClient(target.address!.port)
    expect(await armed).toBe(5000)
    clock.advance(4999)
    expect(socket.destroyed).toBe(false)
    clock.advance(1)
    const [err] = await refused
    expect(err.code).toBe('ERR_HANDSHAKE')
    expect(err.details?.timeout).toBe(5000)
    await once(socket, 'close')
  })

  it('gives up on a silent responder: on timeout, or when the dial is aborted', async () => {
    const server = createServer((socket) => { socket.on('error', () => {}) }) // accepts, never answers
    onTestFinished(() => { server.close() })
    await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
    const silent = { host: '127.0.0.1', port: (server.address() as AddressInfo).port }
    const clock = new ManualClock()
    const dialer = await transport(alice, { handshakeTimeout: 2000 }, clock)
    const armed = clock.nextTimer()
    const timedOut = dialer.dial(silent)
    expect(await armed).toBe(2000)
    clock.advance(2000)
    await expectCode(timedOut, 'ERR_HANDSHAKE')
    const controller = new AbortController()
    const accepted = once(server, 'connection')
    const aborted = dialer.dial(silent, { signal: controller.signal })
    await accepted
    controller.abort()
    await expectCode(aborted, 'ERR_ABORTED')
    expect(dialer.links.size).toBe(0)
  })

  it('refuses an oversized frame before the handshake without allocating it', async () => {
    const target = await transport(bob)
    const refused = target.next('refused')
    const { socket } = await rawClient(target.address!.port)
    socket.write(Buffer.from([0xff, 0xff, 0xff, 0xf0]))
    expect((await refused)[0].code).toBe('ERR_FRAME_TOO_LARGE')
    await once(socket, 'close')
  })

  it('refuses to link to itself', async () => {
    const self = await transport(alice)
    await expectCode(self.dial(self.address!), 'ERR_HANDSHAKE')
  })
})
