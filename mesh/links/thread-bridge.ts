import { ERROR_CODES, deviceIdFromPublicKey, isMeshError, meshError, type Clock, type DeviceId, type ErrorCode, type KeyPair, type TimerHandle } from '../../shared/index.js'
import { checkAuthorized, checkExpected, checkNotSelf } from './checks.js'
import type { BlockedFn, MemoryLinkOptions } from './memory-link.js'
import { PortLink } from './port-link.js'
import type { LinkPort, Trunk } from './trunk.js'
import type { Admit, Authorize, DialOptions, Link, RemotePeer, TransportAddress, TransportCounters } from './types.js'

/**
 * Memory networks in several threads of one process, joined (a fleet split over worker threads:
 * firmware-sim/fleet/workers.ts). Each thread has its own memory network; a dial to an address
 * no local transport listens on goes to the thread that `route` names, on a new channel of the
 * trunk to that thread (trunk.ts: one MessagePort per pair of threads), which then carries the link.
 *
 *   dialer                               listener's thread
 *   dial {to, from, host, window}        ─►  hello {peer, window} | refuse {code}
 *   (checks the peer, as a memory dial)
 *   open                                 ─►  (admit, authorize) ready | refuse {code}
 *
 * Identities are taken as the threads state them, as a memory network takes its transports'
 * (one process, one program): what the link then carries is bytes from a peer, verified as any.
 * Everything a thread receives is checked for shape; handshakes waiting are bounded.
 */
export interface ThreadBridge {
  /** The trunk to the thread that serves `address`; undefined when it is this thread's. */
  route (address: TransportAddress): Trunk | undefined
  /** Trunks on which other threads dial this one. */
  readonly trunks: readonly Trunk[]
}

/** Handshakes from other threads waiting for their `open`, per network, at most. */
export const MAX_PENDING_ACROSS = 1024
/** A dial across threads that has no answer after this long fails (ERR_HANDSHAKE). */
export const DIAL_ACROSS_TIMEOUT_MS = 10_000

/** What a bridge needs of a memory transport. */
export interface BridgeEnd {
  readonly localId: DeviceId
  readonly keys: KeyPair
  readonly authorize: Authorize | undefined
  readonly admit: Admit | undefined
  readonly credential: Uint8Array | undefined
  readonly options: MemoryLinkOptions
  readonly clock: Clock
  readonly counters: TransportCounters
  readonly links: ReadonlyMap<DeviceId, Link>
  readonly address: TransportAddress | undefined
  readonly closed: boolean
  adopt (link: Link): Link
  refused (err: ReturnType<typeof meshError>): void
}

interface WirePeer { id: string, publicKey: Uint8Array, credential?: Uint8Array }

function wirePeer (end: BridgeEnd): WirePeer {
  return { id: end.localId, publicKey: end.keys.publicKey, ...(end.credential === undefined ? {} : { credential: end.credential }) }
}

/** A peer as another thread states it: its id must be its key's. */
function readPeer (raw: unknown): RemotePeer | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined
  const { id, publicKey, credential } = raw as Partial<WirePeer>
  if (typeof id !== 'string' || !(publicKey instanceof Uint8Array) || publicKey.length !== 32) return undefined
  if (credential !== undefined && (!(credential instanceof Uint8Array) || credential.length > 4096)) return undefined
  if (deviceIdFromPublicKey(publicKey) !== id) return undefined
  return { id: id as DeviceId, publicKey, ...(credential === undefined ? {} : { credential }) }
}

function readWindow (raw: unknown): number | undefined {
  return Number.isSafeInteger(raw) && (raw as number) > 0 && (raw as number) <= 2 ** 30 ? raw as number : undefined
}

function refusal (msg: { code?: unknown }): ErrorCode {
  return typeof msg.code === 'string' && Object.hasOwn(ERROR_CODES, msg.code) ? msg.code as ErrorCode : 'ERR_LINK_CLOSED'
}

/** Dials `address` in another thread over `trunk`: the link, as a memory dial gives it. */
export async function dialAcross (end: BridgeEnd, trunk: Trunk, address: TransportAddress, options: DialOptions, blocked: BlockedFn): Promise<Link> {
  const peer = `${address.host}:${address.port}`
  const port = trunk.open()
  port.postMessage({ k: 'dial', to: peer, from: wirePeer(end), host: end.address?.host, window: end.options.maxBufferedBytes })
  return await new Promise<Link>((resolve, reject) => {
    let step: 'hello' | 'ready' = 'hello'
    let remote: RemotePeer | undefined
    let window = 0
    const abandon = (tell: boolean): void => {
      cleanup()
      if (tell) port.postMessage({ k: 'abort' })
      port.close()
    }
    const fail = (err: unknown, tell = true): void => { abandon(tell); reject(err) }
    const onAbort = (): void => { fail(meshError('ERR_ABORTED', 'the dial was aborted', { cause: options.signal?.reason })) }
    const onClose = (): void => { fail(meshError('ERR_LINK_CLOSED', `could not connect to ${peer}: its thread closed the port`, { details: { peer } }), false) }
    const cleanup = (): void => {
      port.off('message', onMessage)
      port.off('close', onClose)
      options.signal?.removeEventListener('abort', onAbort)
      end.clock.clearTimeout(timer)
    }
    const onMessage = (msg: unknown): void => {
      const m = (typeof msg === 'object' && msg !== null ? msg : {}) as { k?: unknown, peer?: unknown, window?: unknown, code?: unknown }
      try {
        if (end.closed) throw meshError('ERR_LINK_CLOSED', `the transport of ${end.localId} is closed; create a new one`)
        if (m.k === 'refuse') {
          const code = refusal(m)
          fail(step === 'hello' && code === 'ERR_LINK_CLOSED'
            ? meshError(code, `could not connect to ${peer}: nothing listens there, or unreachable`, { details: { peer } })
            : meshError(code, `the peer refused the link: ${code}`, { details: { remote: true } }), false)
          return
        }
        if (step === 'hello' && m.k === 'hello') {
          remote = readPeer(m.peer)
          const w = readWindow(m.window)
          if (remote === undefined || w === undefined) throw meshError('ERR_HANDSHAKE', `the thread serving ${peer} answered with a malformed hello`)
          window = w
          if (blocked(end.localId, remote.id)) throw meshError('ERR_LINK_CLOSED', `could not connect to ${peer}: unreachable (partitioned)`, { details: { peer, partitioned: true } })
          checkNotSelf(remote, end.keys.publicKey)
          checkExpected(remote, options)
          checkAuthorized(remote, end.authorize)
          end.admit?.(remote)
          const existing = end.links.get(remote.id)
          if (existing?.open === true) { abandon(true); resolve(existing); return }
          step = 'ready'
          port.postMessage({ k: 'open' })
          return
        }
        if (step === 'ready' && m.k === 'ready' && remote !== undefined) {
          cleanup()
          // Made in this callback, so it listens on the port before the next message is dispatched.
          resolve(end.adopt(new PortLink(end.localId, remote, true, end.options, end.clock, blocked, port, window, address.host)))
          return
        }
        throw meshError('ERR_HANDSHAKE', `the thread serving ${peer} answered out of turn`)
      } catch (err) {
        fail(err)
      }
    }
    port.on('message', onMessage)
    port.once('close', onClose)
    options.signal?.addEventListener('abort', onAbort, { once: true })
    const timer: TimerHandle = end.clock.setTimeout(() => { fail(meshError('ERR_HANDSHAKE', `no answer from the thread serving ${peer} in ${DIAL_ACROSS_TIMEOUT_MS} ms`)) }, DIAL_ACROSS_TIMEOUT_MS)
  })
}

/** Listens on a network's trunks for dials from other threads; `find` gives the transport listening on an address. */
export function acceptAcross (bridge: ThreadBridge, find: (key: string) => BridgeEnd | undefined, blocked: BlockedFn): () => void {
  let pending = 0
  const onDial = (port: LinkPort, msg: unknown): void => {
    const m = (typeof msg === 'object' && msg !== null ? msg : {}) as { k?: unknown, to?: unknown, from?: unknown, host?: unknown, window?: unknown }
    const local = readPeer(m.from)
    const window = readWindow(m.window)
    const refuse = (code: ErrorCode): void => { port.postMessage({ k: 'refuse', code }); port.close() }
    if (m.k !== 'dial' || typeof m.to !== 'string' || m.to.length > 300 || local === undefined || window === undefined) { refuse('ERR_HANDSHAKE'); return }
    const host = typeof m.host === 'string' && m.host.length <= 300 ? m.host : undefined
    const target = find(m.to)
    if (target === undefined || target.closed || blocked(local.id, target.localId)) { refuse('ERR_LINK_CLOSED'); return }
    if (pending >= MAX_PENDING_ACROSS) { refuse('ERR_BUSY'); return }
    pending++
    let done = false
    const finish = (): void => {
      if (done) return
      done = true
      pending--
      port.off('message', onMessage)
      port.off('close', finish)
    }
    const onMessage = (reply: unknown): void => {
      finish()
      if ((reply as { k?: unknown } | null)?.k !== 'open' || target.closed) { port.close(); return }
      try {
        target.admit?.(local)
        checkAuthorized(local, target.authorize)
      } catch (err) {
        if (isMeshError(err)) target.refused(err)
        refuse(isMeshError(err) ? err.code : 'ERR_NOT_IN_ROSTER')
        return
      }
      target.counters.connections++
      target.counters.handshakes++
      target.adopt(new PortLink(target.localId, local, false, target.options, target.clock, blocked, port, window, host))
      port.postMessage({ k: 'ready' })
    }
    port.on('message', onMessage)
    port.once('close', finish)
    port.postMessage({ k: 'hello', peer: wirePeer(target), window: target.options.maxBufferedBytes })
  }
  for (const trunk of bridge.trunks) trunk.onOpen = onDial
  return () => { for (const trunk of bridge.trunks) trunk.onOpen = undefined }
}
