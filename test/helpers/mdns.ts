import { randomBytes } from 'node:crypto'
import dgram from 'node:dgram'
import { createRequire } from 'node:module'
import type { Discovery, PeerInfo } from '../../mesh/discovery/index.js'

/** Test helpers for DNS-SD: a raw multicast-dns peer, a datagram sniffer, waiting on peers. */

export interface RawRecord { name: string, type: string, ttl?: number, data?: unknown, flush?: boolean }
export interface RawPacket { type: string, questions?: Array<{ name: string, type: string }>, answers?: RawRecord[], additionals?: RawRecord[] }

/** The multicast-dns API (bonjour-service's dependency; it ships no types). */
export interface RawMdns {
  on (event: 'query' | 'response', listener: (packet: RawPacket, rinfo: { address: string, port: number }) => void): void
  on (event: 'warning' | 'error' | 'ready', listener: (err?: Error) => void): void
  once (event: 'ready', listener: () => void): void
  respond (response: { answers: RawRecord[], additionals?: RawRecord[] }, cb?: (err?: Error | null) => void): void
  query (query: { questions: Array<{ name: string, type: string }> }, cb?: (err?: Error | null) => void): void
  destroy (cb?: () => void): void
}

const load = createRequire(import.meta.url)

/** A bare multicast-dns socket, for peers that misbehave on purpose. */
export async function rawMdns (): Promise<RawMdns> {
  const make = load('multicast-dns') as (options?: Record<string, unknown>) => RawMdns
  const mdns = make()
  mdns.on('warning', () => {})
  await new Promise<void>((resolve) => { mdns.once('ready', resolve) })
  return mdns
}

export async function closeRaw (mdns: RawMdns): Promise<void> {
  await new Promise<void>((resolve) => { mdns.destroy(resolve) })
}

/** Joins 224.0.0.251:5353 on loopback and records the size of every datagram seen. */
export async function sniff (): Promise<{ sizes: number[], close: () => Promise<void> }> {
  const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true })
  const sizes: number[] = []
  socket.on('message', (message) => { sizes.push(message.length) })
  await new Promise<void>((resolve) => { socket.bind(5353, resolve) })
  socket.addMembership('224.0.0.251', '127.0.0.1')
  return { sizes, close: async () => { await new Promise<void>((resolve) => { socket.close(() => { resolve() }) }) } }
}

/** A fleet name no other test file uses: test files run in parallel in one namespace. */
export function uniqueFleet (label: string): string {
  return `${label}-${randomBytes(4).toString('hex')}`
}

/** Resolves when `discovery` knows every key (checked on each `peer` event), or rejects on the signal. */
export async function waitForPeers (discovery: Discovery, keys: readonly string[], signal: AbortSignal, accept: (peer: PeerInfo) => boolean = () => true): Promise<PeerInfo[]> {
  const ready = (): PeerInfo[] | undefined => {
    const peers = discovery.peers().filter(accept)
    const found = keys.map((key) => peers.find((p) => p.key === key))
    return found.every((p) => p !== undefined) ? found as PeerInfo[] : undefined
  }
  return await new Promise<PeerInfo[]>((resolve, reject) => {
    const check = (): void => {
      const found = ready()
      if (found === undefined) return
      done()
      resolve(found)
    }
    const onAbort = (): void => { done(); reject(new Error(`timed out waiting for peers ${keys.filter((k) => !discovery.peers().some((p) => p.key === k)).join(', ')}`, { cause: signal.reason })) }
    const done = (): void => { discovery.off('peer', check); signal.removeEventListener('abort', onAbort) }
    discovery.on('peer', check)
    signal.addEventListener('abort', onAbort, { once: true })
    check()
  })
}

/** Resolves with the time at which `key` is lost. */
export async function waitForLoss (discovery: Discovery, key: string, signal: AbortSignal): Promise<number> {
  if (!discovery.peers().some((p) => p.key === key)) return performance.now()
  return await new Promise<number>((resolve, reject) => {
    const onLost = (lost: string): void => { if (lost === key) { done(); resolve(performance.now()) } }
    const onAbort = (): void => { done(); reject(new Error(`timed out waiting for ${key} to be lost`, { cause: signal.reason })) }
    const done = (): void => { discovery.off('peer:lost', onLost); signal.removeEventListener('abort', onAbort) }
    discovery.on('peer:lost', onLost)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

/** The suite's manual clock (STYLE.md: inject the clock); timers fire in order. */
export { ManualClock } from './clock.js'
