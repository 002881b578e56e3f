import { onTestFinished } from 'vitest'
import { generateKeyPair, type KeyPair } from '../../shared/index.js'
import { MeshNode, type Delivery, type Link, type LinkOptions, type MeshNodeInit } from '../../mesh/index.js'
import type { MemoryNetwork } from '../../mesh/testing.js'
import { decodeMessage, type RoutingMessage } from '../../mesh/routing/messages.js'

/** Nodes on an in-memory network for routing tests: no mDNS, static peers, fast keepalive and sync. */

export const LINK = { keepaliveInterval: 50, keepaliveTimeout: 200 }
export const ROUTING = { syncInterval: 100, graftDelay: 30, wantRetry: 200 }

export function seededKeys (n: number): KeyPair {
  return generateKeyPair(Uint8Array.from({ length: 32 }, (_, i) => (i * 7 + n * 31) & 0xff))
}

export async function startNode (network: MemoryNetwork, name: string, keys: KeyPair, peers: string[] = [], extra: Partial<MeshNodeInit> = {}): Promise<MeshNode> {
  const node = new MeshNode({
    name, host: name, mdns: false, peers, dialTarget: 0, announceLinks: 0, link: LINK, ...extra, routing: { ...ROUTING, ...extra.routing }
  }, { keys, transport: network.createTransport(LINK, { keys }) })
  onTestFinished(async () => { await node.stop() })
  await node.start()
  return node
}

export const addr = (node: MeshNode): string => `${node.address?.host}:${node.address?.port}`

/** Resolves once `node` has a link to each of `ids`. */
export async function linked (node: MeshNode, ...ids: string[]): Promise<void> {
  while (!ids.every((id) => node.links.has(id))) await node.next('link:open', { signal: AbortSignal.timeout(5000) })
}

/** Polls `check` every 5 ms for up to `ms`. */
export async function until (check: () => boolean, what: string, ms = 5000): Promise<void> {
  const t0 = Date.now()
  while (!check()) {
    if (Date.now() - t0 > ms) throw new Error(`not within ${ms} ms: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/** Resolves once `from` has a route to `to`'s subscription (INTEREST has propagated). */
export async function routed (from: MeshNode, to: MeshNode): Promise<void> {
  await until(() => from.routeTo(to.id) !== undefined, `a route from ${from.name} to ${to.name}`)
}

/** A subscription kept for the whole test. */
export class Inbox {
  readonly got: Delivery[] = []
  constructor (readonly node: MeshNode, filter = 'iotmesh/#') {
    const sub = node.subscribe(filter, { buffer: 100_000 })
    onTestFinished(() => sub.close())
    void (async () => { for await (const d of sub) this.got.push(d) })()
  }

  /** Readings of `origin` received so far. */
  from (origin: string): Delivery[] { return this.got.filter((d) => d.origin === origin) }

  async waitFor (origin: string, n: number, ms = 5000): Promise<void> {
    await until(() => this.from(origin).length >= n, `${n} readings of ${origin} at ${this.node.name}`, ms)
  }
}

/** Every routing message a raw link receives, decoded. */
export function recorder (link: Link): RoutingMessage[] {
  const messages: RoutingMessage[] = []
  link.on('message', (bytes: Uint8Array) => {
    try { messages.push(decodeMessage(bytes)) } catch { /* not ours to judge */ }
  })
  return messages
}

/**
 * Samples how late a 5 ms timer fires while `work` runs and for `settle` ms after: the longest
 * the event loop was held. A message that does unbounded work shows here.
 */
export async function worstTimerDelay (work: () => void | Promise<void>, settle = 100): Promise<number> {
  let worst = 0
  let last = performance.now()
  const timer = setInterval(() => {
    const now = performance.now()
    worst = Math.max(worst, now - last - 5)
    last = now
  }, 5)
  try {
    await work()
    await new Promise((resolve) => setTimeout(resolve, settle))
  } finally {
    clearInterval(timer)
  }
  return Math.max(worst, performance.now() - last - 5)
}

/** A neighbour's raw link to `node` (its own valid key), and every routing message it hears. */
export async function rawLink (network: MemoryNetwork, keys: KeyPair, node: MeshNode, options: LinkOptions = LINK): Promise<{ link: Link, heard: RoutingMessage[] }> {
  const transport = network.createTransport(options, { keys })
  onTestFinished(async () => { await transport.close() })
  const link = await transport.dial(node.address!)
  const heard = recorder(link)
  await until(() => node.links.has(keys.id), 'the neighbour linked')
  return { link, heard }
}

/**
 * Sends `bytes` as fast as the link takes them: a full send queue (ERR_BACKPRESSURE, when the node
 * reads at its own pace) waits a moment; a closed link ends it.
 */
export async function push (link: Link, bytes: Uint8Array): Promise<void> {
  while (link.open) {
    try {
      link.send(bytes)
      return
    } catch (err) {
      if ((err as { code?: string }).code !== 'ERR_BACKPRESSURE') throw err
      await new Promise((resolve) => setTimeout(resolve, 2))
    }
  }
}
