import { setImmediate as turn } from 'node:timers/promises'
import { frameToSenmlJsonText } from '../../gateway/json.js'
import { MeshNode, type DropInfo, type Link, type Transport } from '../../mesh/index.js'
import { dispatch } from '../../mesh/routing/handlers/index.js'
import type { LinkState } from '../../mesh/routing/context.js'
import { decodeMessage, type RoutingMessage } from '../../mesh/routing/messages.js'
import { Router } from '../../mesh/routing/router.js'
import type { Delivery } from '../../mesh/routing/subscription.js'
import { createMemoryNetwork, type MemoryNetwork } from '../../mesh/testing.js'
import {
  ERROR_CODES, MeshError, Verifier, decodeFrame, decodeSign1, decryptFrame, keyPairFromSecret, mulberry32, packToJson, resolvePack,
  type KeyPair, type SenmlPack, type TelemetryFrame
} from '../../shared/index.js'
import { FUZZ_FLEET, FUZZ_READER, type Corpus } from './corpus.js'
import { Inputs, type InputKind } from './generate.js'

/**
 * What the fuzzer feeds: the decoders (decodeSign1, decodeFrame, decodeMessage), the one Verifier,
 * every routing message handler (a Router whose handlers are called directly on a link from a
 * peer, so a non-MeshError cannot hide behind the router's catch), and a whole MeshNode that gets
 * each input as a real link message (decoding, dispatch, peer exchange, replies).
 *
 * The invariants: nothing escapes a decoder or a handler but a MeshError with a code in
 * ERROR_CODES; the verifier and the nodes never throw; and whatever is accepted, delivered or
 * relayed can be read by every consumer of the project (readings resolve, times are dates, the
 * SenML JSON the gateway publishes serializes): the property behind `iotmesh watch` and the gateway
 * surviving any frame.
 */

export class FuzzFailure extends Error {
  constructor (readonly target: string, message: string, cause?: unknown) {
    super(`${target}: ${message}`, { cause })
  }
}

/** The code of a thrown error, or a FuzzFailure when it is anything but a MeshError with a known code. */
export function codeOf (target: string, err: unknown): string {
  if (err instanceof MeshError && Object.hasOwn(ERROR_CODES, err.code)) return err.code
  if (err instanceof FuzzFailure) throw err
  throw new FuzzFailure(target, `threw ${err instanceof MeshError ? `a MeshError with the unknown code ${String(err.code)}` : `a non-MeshError: ${String(err)}`}`, err)
}

/** Every consumer of a frame can read it: throws FuzzFailure naming what failed. */
export function readable (target: string, records: SenmlPack, time: number, origin?: string): void {
  try {
    for (const r of resolvePack(records, time)) {
      new Date(r.time * 1000).toISOString() // what `iotmesh watch` and `inspect` print
      if (r.value !== undefined && !Number.isFinite(r.value)) throw new Error(`value ${r.value}`)
      if (r.sum !== undefined && !Number.isFinite(r.sum)) throw new Error(`sum ${r.sum}`)
    }
    new Date(time * 1000).toISOString()
    JSON.stringify(packToJson(records))
    if (origin !== undefined) frameToSenmlJsonText({ origin: origin as TelemetryFrame['origin'], records }) // the gateway's …/json
  } catch (err) {
    throw new FuzzFailure(target, `accepted a frame a consumer cannot read: ${String(err)}`, err)
  }
}

export interface Target {
  readonly name: string
  readonly kinds: readonly InputKind[]
  /** Keeps no state between inputs: a slow input may be timed again. */
  readonly stateless?: boolean
  /** Runs one input; returns its outcome ('ok', a verdict, or an error code). Throws FuzzFailure. */
  run: (bytes: Uint8Array, kind: InputKind) => string | Promise<string>
  close?: () => Promise<void>
  /** Figures of its own for the summary. */
  details?: () => Record<string, unknown>
}

const FRAME_KINDS: readonly InputKind[] = ['frame', 'raw']
const ALL_KINDS: readonly InputKind[] = ['frame', 'message', 'raw']

function decoderTargets (): Target[] {
  return [
    {
      name: 'decodeSign1',
      stateless: true,
      kinds: FRAME_KINDS,
      run: (bytes) => {
        try { decodeSign1(bytes); return 'ok' } catch (err) { return codeOf('decodeSign1', err) }
      }
    },
    {
      name: 'decodeFrame',
      stateless: true,
      kinds: FRAME_KINDS,
      run: (bytes) => {
        let frame: TelemetryFrame
        try { frame = decodeFrame(bytes) } catch (err) { return codeOf('decodeFrame', err) }
        readable('decodeFrame', frame.records, frame.time, frame.origin)
        if (frame.encrypted === undefined) return 'ok'
        // An encrypted frame (not verified here: hostile ciphertext reaches the decryption): a reader reads it, or gets a code.
        try { frame = decryptFrame(frame, FUZZ_READER) } catch (err) { return `encrypted:${codeOf('decodeFrame', err)}` }
        readable('decodeFrame', frame.records, frame.time, frame.origin)
        return 'ok:decrypted'
      }
    },
    {
      name: 'decodeMessage',
      stateless: true,
      kinds: ['message', 'raw'],
      run: (bytes) => {
        try { decodeMessage(bytes); return 'ok' } catch (err) { return codeOf('decodeMessage', err) }
      }
    }
  ]
}

function verifierTarget (corpus: Corpus): Target {
  const verifier = new Verifier()
  for (const s of corpus.signers) verifier.learnKey(s.publicKey)
  return {
    name: 'verifier',
    kinds: FRAME_KINDS,
    run: (bytes) => {
      let outcome: string
      try {
        const decoded = verifier.decode(bytes)
        if (!decoded.ok) return codeOf('verifier', new MeshError(decoded.refusal.code, decoded.refusal.message))
        const admission = verifier.admit(decoded.frame)
        if (admission.verdict === 'refused') return codeOf('verifier', new MeshError(admission.code, admission.message))
        if (admission.verdict === 'accepted') readable('verifier', admission.frame.records, admission.frame.time, admission.frame.origin)
        outcome = admission.verdict
      } catch (err) {
        if (err instanceof FuzzFailure) throw err
        throw new FuzzFailure('verifier', `threw (it never should): ${String(err)}`, err)
      }
      return outcome
    }
  }
}

const keysFor = (seed: number): KeyPair => {
  const random = mulberry32(seed)
  return keyPairFromSecret(Uint8Array.from({ length: 32 }, () => Math.floor(random() * 256)))
}
const LINK_OPTIONS = { keepaliveInterval: 600_000, keepaliveTimeout: 1_200_000 }

/**
 * The fuzzer's neighbour. A node that scores its peers disconnects one that sends garbage and
 * keeps it out for a while, as it should; to keep feeding the target, the fuzzer then comes back
 * under a new identity (a Sybil: a fresh key and transport) and counts how often it had to.
 */
class FuzzPeer {
  identities = 0
  keys: KeyPair
  #transport: Transport | undefined
  constructor (readonly network: MemoryNetwork, readonly seed: number) {
    this.keys = keysFor(seed)
  }

  /** Dials `address` under a new identity (the first dial keeps the first one). */
  async dial (address: { host: string, port: number }): Promise<Link> {
    if (this.#transport !== undefined) {
      await this.#transport.close()
      this.keys = keysFor(this.seed * 1_000_003 + this.identities)
    }
    this.identities++
    this.#transport = this.network.createTransport(LINK_OPTIONS, { keys: this.keys })
    return await this.#transport.dial(address)
  }

  async close (): Promise<void> {
    await this.#transport?.close()
  }
}

/** Watches a router's or node's events: a drop with an unknown code, or a delivery nobody can read, is a failure. */
class Events {
  failure: FuzzFailure | undefined
  constructor (readonly target: string) {}
  onDrop = (info: DropInfo): void => {
    if (!Object.hasOwn(ERROR_CODES, info.code)) this.failure ??= new FuzzFailure(this.target, `dropped with the unknown code ${info.code}`)
  }

  onDelivery = (d: Delivery): void => {
    try {
      readable(this.target, d.records, d.time, d.origin)
    } catch (err) {
      this.failure ??= err as FuzzFailure
    }
  }

  check (): void {
    const failure = this.failure
    this.failure = undefined
    if (failure !== undefined) throw failure
  }
}

/**
 * A Router with one neighbour (the fuzzer's peer) over an in-memory link. Each input is decoded
 * and handed to the handler of its kind directly (handlers/index.ts dispatch), as the router's own
 * #onMessage does, but without its catch-all, so any throw is judged; then the turn's microtasks
 * run (coalesced adverts, digests, link flushes) before the input counts as done.
 */
async function routerTarget (corpus: Corpus): Promise<Target> {
  const network = createMemoryNetwork({ seed: 11 })
  const keys = keysFor(1)
  const router = new Router({ fleet: FUZZ_FLEET, syncInterval: 500, graftDelay: 20, wantRetry: 100, interestRefresh: 2000, keyWait: 500 }, { keys })
  for (const s of corpus.signers) router.learnKey(s.publicKey)
  const events = new Events('router')
  router.on('drop', events.onDrop)
  router.on('delivery', events.onDelivery)
  router.start()
  const ours = network.createTransport(LINK_OPTIONS, { keys })
  ours.on('link', (link) => { router.addLink(link) })
  await ours.listen()
  const peer = new FuzzPeer(network, 2)
  let state: LinkState | undefined
  const connect = async (): Promise<LinkState> => {
    await peer.dial(ours.address as { host: string, port: number })
    for (let i = 0; i < 100 && router.links.get(peer.keys.id)?.link.open !== true; i++) await turn()
    const s = router.links.get(peer.keys.id)
    if (s === undefined) throw new FuzzFailure('router', 'the fuzzer\'s peer could not link')
    return s
  }
  state = await connect()
  const handlerMaxMs: Record<number, number> = {}
  let slowestHandler = { ms: 0, kind: -1, bytes: 0, hex: '' }
  return {
    name: 'router',
    details: () => ({
      peerIdentities: peer.identities,
      handlerMaxMsByKind: Object.fromEntries(Object.entries(handlerMaxMs).map(([k, ms]) => [k, Math.round(ms * 1000) / 1000])),
      slowestHandler: { ...slowestHandler, ms: Math.round(slowestHandler.ms * 1000) / 1000 }
    }),
    kinds: ALL_KINDS,
    run: async (input, kind) => {
      if (state === undefined || router.links.get(peer.keys.id) !== state || !state.link.open) state = await connect()
      const bytes = kind === 'frame' ? Inputs.asData(input, 1) : input
      let message: RoutingMessage
      try {
        message = decodeMessage(bytes)
      } catch (err) {
        return codeOf('router', err)
      }
      let outcome = `ok:${message.kind}`
      // The handler's own work, timed apart from the turn after it (where timers and GC also run).
      const started = process.cpuUsage()
      try {
        dispatch(router, state, message, (key) => { router.learnKey(key) })
      } catch (err) {
        outcome = `${codeOf('router', err)}:${message.kind}`
      }
      const used = process.cpuUsage(started)
      const ms = (used.user + used.system) / 1000
      const perKind = handlerMaxMs[message.kind] ?? 0
      if (ms > perKind) handlerMaxMs[message.kind] = ms
      if (ms > slowestHandler.ms) slowestHandler = { ms, kind: message.kind, bytes: bytes.length, hex: Buffer.from(bytes.subarray(0, 4096)).toString('hex') }
      await turn()
      events.check()
      return outcome
    },
    close: async () => {
      router.stop()
      await Promise.all([ours.close(), peer.close()])
    }
  }
}

/**
 * A whole MeshNode (memory transport, no discovery) with the fuzzer's peer linked to it: each
 * input is a real link message, so this is the path a hostile neighbour takes, peer exchange
 * (HELLO, PEERS) and replies included. Nothing may escape: the node counts and drops.
 */
async function nodeTarget (corpus: Corpus): Promise<Target> {
  const network: MemoryNetwork = createMemoryNetwork({ seed: 12 })
  const keys = keysFor(3)
  const transport: Transport = network.createTransport(LINK_OPTIONS, { keys })
  const node = new MeshNode({ name: 'fuzz-node', fleet: FUZZ_FLEET, mdns: false, announceLinks: 0, rotateInterval: 0 }, { keys, transport })
  for (const s of corpus.signers) node.learnKey(s.publicKey)
  const events = new Events('node')
  node.on('drop', events.onDrop)
  node.on('delivery', events.onDelivery)
  await node.start()
  const sub = node.subscribe('#', { buffer: 16 })
  const peer = new FuzzPeer(network, 4)
  let link: Link | undefined
  const connect = async (): Promise<Link> => {
    const l = await peer.dial(node.address as { host: string, port: number })
    for (let i = 0; i < 100 && node.links.get(peer.keys.id)?.open !== true; i++) await turn()
    return l
  }
  link = await connect()
  return {
    name: 'node',
    details: () => ({ peerIdentities: peer.identities }),
    kinds: ALL_KINDS,
    run: async (input, kind) => {
      if (link === undefined || !link.open) link = await connect()
      try {
        link.send(kind === 'frame' ? Inputs.asData(input, 1) : input)
      } catch (err) {
        return `not sent: ${codeOf('node', err)}` // too large for a link, or backpressure: the link layer refused it
      }
      await turn()
      events.check()
      return 'sent'
    },
    close: async () => {
      sub.close()
      await node.stop()
      await peer.close()
    }
  }
}

export async function createTargets (corpus: Corpus, only?: readonly string[]): Promise<Target[]> {
  const all: Array<Target | (() => Promise<Target>)> = [
    ...decoderTargets(),
    verifierTarget(corpus),
    async () => await routerTarget(corpus),
    async () => await nodeTarget(corpus)
  ]
  const out: Target[] = []
  for (const t of all) {
    const target = typeof t === 'function' ? await t() : t
    if (only === undefined || only.includes(target.name)) out.push(target)
    else await target.close?.()
  }
  return out
}
