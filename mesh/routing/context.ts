import type {
  Clock, Command, CommandResult, DeviceId, Ed25519, ErrorCode, RevocationSet, ConfigBook, FleetFileChain, FleetPolicy, HoldPen, KeySource, LearnResult, PublicKey,
  TelemetryFrame, TimerHandle, Verifier
} from '../../shared/index.js'
import type { CredentialCheck } from '../credentials.js'
import type { FleetInfo } from './handlers/fleet.js'
import type { Ack } from './ack.js'
import type { ConfigInfo } from './handlers/config.js'
import type { AckState } from './acks.js'
import type { CommandRoutes } from './commands.js'
import type { Link, SendOptions } from '../links/types.js'
import type { EarlyRelay } from './early.js'
import type { LinkBudget, OriginBudgets } from './budget.js'
import type { RouterCounters } from './counters.js'
import type { History } from './history.js'
import type { InterestTable } from './interest.js'
import type { InterestIntake } from './intake.js'
import type { PeerEntry, RoutingMessage } from './messages.js'
import type { Waiting } from './backlog.js'
import type { PeerScores, ScoreEvent } from './score.js'
import type { RouteRequests } from './route-requests.js'

/**
 * What the message handlers (handlers/*.ts) see of the router: its state and the few actions
 * every handler needs. The router (router.ts) is the only implementation; handlers are plain
 * functions of (context, link, message), as aedes's lib/handlers are of (client, packet).
 */

/** One neighbour, as the router sees it. */
export interface LinkState {
  readonly link: Link
  readonly peer: DeviceId
  /** Origins whose key this neighbour has been sent (or knows). */
  readonly told: Set<DeviceId>
  /** Origins whose eager push to this neighbour failed (backpressure): announce in the next DIGEST. */
  readonly missed: Set<DeviceId>
  /** Frames refused by the full link, sent when it drains (backlog.ts); insertion-ordered. */
  readonly backlog: Map<string, Waiting>
  /**
   * A REVOKE or CONFIG for this neighbour found its link full (or closing): the next sync tick
   * sends it every revocation and configuration held again. DIGEST/WANT repairs frames, not these.
   */
  gossipDue: boolean
  readonly detach: () => void
  /** What this neighbour may make us read (budget.ts). */
  readonly budget: LinkBudget
  /** Frames of this neighbour's waiting in the holding pen for their signer's key. */
  held: number
  /** WANTs sent to this neighbour and not answered yet (score.ts: broken promises). */
  readonly promises: WantPromise[]
  /**
   * WANTs to this neighbour past their deadline (at most 16, for `LATE_PROMISE_MS`): a frame they
   * asked for that arrives now is a late answer, not a duplicate flood (issue 11), once per frame asked.
   */
  readonly late: WantPromise[]
}

/**
 * A WANT sent: the ranges asked for, by origin, and when it counts as broken; `kept` once a frame
 * it asked for arrived (it stays until its deadline: what it asked for is exempt from the origin
 * rate). Past its deadline (`LinkState.late`): `left`, how many frames it asked for may still come
 * as late answers, and `broken`, counted as a broken promise (forgiven by its first late answer).
 */
export interface WantPromise { ranges: Map<DeviceId, Array<[number, number]>>, deadline: number, kept: boolean, left: number, broken?: boolean }

/** How long past its deadline a WANT's answers are still taken as late answers, not duplicates (issue 11: TCP queues held by a cut). */
export const LATE_PROMISE_MS = 60_000

/** A frame from an unknown signer, held while its key is asked for (`via`: the link it came by). */
export interface HeldFrame { bytes: Uint8Array, hops: number, from: DeviceId | undefined, via?: LinkState }

/**
 * A cloned identity seen here: a second, different, validly signed frame for an (origin, seq), or
 * at a link handshake a second live instance of one key (mesh/clones.ts: `instance`, no `seq`).
 */
export interface CloneInfo {
  origin: DeviceId
  /** The sequence number signed twice (undefined: found at a link handshake). */
  seq?: number
  /** The refused instance id, hex (found at a link handshake). */
  instance?: string
  code: 'ERR_CLONED_IDENTITY'
  /** The neighbour it came from (undefined: injected). */
  from?: DeviceId
  /** True when the key is this node's own: another device signs with it. */
  self: boolean
}

export interface DropInfo { code: ErrorCode, origin?: DeviceId, seq?: number, from?: DeviceId }

export interface RouterOptions {
  readonly fleet: string
  readonly hopLimit: number
  /** Relay frames before verifying them, with the safeguards of handlers/data.ts `relayEarly`. */
  readonly relayBeforeVerify: boolean
  readonly syncInterval: number
  readonly graftDelay: number
  readonly wantRetry: number
  readonly interestRefresh: number
  /** Most frames one WANT may make this node send. */
  readonly wantBudget: number
  /** Most origins whose last WANT time is remembered (wantRetry). */
  readonly maxWanted: number
  /** Most frames of one neighbour's in the holding pen at once. */
  readonly maxHeldPerPeer: number
  /** The link port announced in HELLO: asked at each HELLO, since a node listening on port 0 learns its port after the router is made. */
  readonly port: () => number
  readonly addresses: () => string[]
}

export interface RouterContext {
  readonly id: DeviceId
  readonly options: RouterOptions
  readonly clock: Clock
  readonly counters: RouterCounters
  readonly verifier: Verifier<HeldFrame>
  readonly history: History
  readonly interest: InterestTable
  /** INTEREST claims waiting to be checked, a bounded amount of work per turn (intake.ts). */
  readonly intake: InterestIntake
  /** Route requests asked, passed on, and our own new versions made for them (route-requests.ts, handlers/route-request.ts). */
  readonly routeRequests: RouteRequests
  readonly links: ReadonlyMap<DeviceId, LinkState>
  /** Neighbours owed a full DIGEST (a link formed, or a route moved to it). */
  readonly digestDue: Set<DeviceId>
  /** Origins with new frames since the last sync. */
  readonly changed: Set<DeviceId>
  /** When each origin was last asked for (WANT). */
  readonly wantedAt: Map<DeviceId, number>
  /** Frames accepted per origin from neighbours (budget.ts OriginBudgets). */
  readonly origins: OriginBudgets
  readonly running: boolean
  /** End-to-end acknowledgements: reverse paths, acks forwarded, acks owed (acks.ts). */
  readonly acks: AckState
  /** Paths of commands on their way and of their results back (commands.ts). */
  readonly commands: CommandRoutes
  /** Revocations held (with a fleet file; handlers/revoke.ts), else undefined. */
  readonly revocations: RevocationSet | undefined
  /** Configurations held (with a fleet file; handlers/config.ts), else undefined. */
  readonly configs: ConfigBook | undefined
  /** Signed fleet files held (with a fleet file; handlers/fleet.ts), else undefined. */
  readonly fleetFiles: FleetFileChain | undefined
  /** Credentials verified here, at handshakes and by gossip (with a fleet file: mesh/credentials.ts; handlers/credential.ts). */
  readonly credentials: CredentialCheck | undefined
  /** Refuse relayed frames of origins whose credential is not held (a node that checks its neighbours' credentials). */
  readonly checkOrigins: boolean
  /** Frames waiting for their origin's credential (handlers/credential.ts). */
  readonly credentialWait: HoldPen<HeldFrame>
  readonly ed25519: Ed25519 | undefined

  /** Encodes and sends one control message; false when the link refused it. */
  send: (state: LinkState, message: RoutingMessage) => boolean
  /** Sends encoded bytes (`control`: in the link's control lane, messages.ts CONTROL_KINDS); false on backpressure or a closed link (the DIGEST/WANT exchange repairs it). */
  sendRaw: (state: LinkState, bytes: Uint8Array, options?: SendOptions) => boolean
  /** Counts and reports a refused frame or message. */
  drop: (info: DropInfo) => void
  /** Neighbours' scores (score.ts). */
  readonly scores: PeerScores
  /** What bounds relaying before verifying (early.ts). */
  readonly early: EarlyRelay
  /** Counts `n` events of a kind against a neighbour (nothing for undefined: injected frames); disconnects it below the threshold. */
  observe: (peer: DeviceId | undefined, event: ScoreEvent, n?: number) => void
  /** Counts and reports a cloned identity. */
  clone: (info: CloneInfo) => void
  /** Offers a verified frame to local subscribers. */
  deliver: (frame: TelemetryFrame, bytes: Uint8Array, hops: number, from: DeviceId | undefined, caughtUp?: boolean) => void
  /** Sends a verified frame towards the subscribers it interests. */
  forward: (frame: TelemetryFrame, bytes: Uint8Array, hops: number, from: DeviceId | undefined, early?: boolean) => boolean
  /** Re-advertises our distance to these subscribers (coalesced per turn of the event loop). */
  advertise: (subscribers: DeviceId[]) => void
  /** Sends a neighbour the key of `origin` before its first frame (KEY). */
  tellKey: (state: LinkState, origin: DeviceId) => void
  /** Runs `fn` after `ms` unless the router stopped. */
  later: (ms: number, fn: () => void) => TimerHandle
  /** Learns a key (a credential's: 'pin'), admitting frames that waited for it. */
  learnKey: (publicKey: PublicKey, id?: DeviceId, source?: KeySource) => LearnResult
  /** Admits frames that waited (for a credential) again, in arrival order. */
  readmit: (frames: HeldFrame[]) => void
  /** A new fleet file is in force: revocations, configurations and credentials are judged by it from now on. */
  adoptPolicy: (policy: FleetPolicy) => void
  emitFleet: (info: FleetInfo) => void
  /** Events for the node. */
  emitHello: (info: { peer: DeviceId, fleet: string, port: number, addresses: string[] }) => void
  emitPeers: (peers: PeerEntry[], from: DeviceId) => void
  closeLink: (state: LinkState) => void
  /** A verified ack addressed to this node (its origin is this node). */
  emitAck: (ack: Ack) => void
  /** A command for this node (not verified yet: the executor does that), to execute and answer. */
  takeCommand: (command: Command, signed: Uint8Array) => void
  /** A result of one of this node's commands (not verified yet: the issuer does that). */
  emitResult: (result: CommandResult, signed: Uint8Array) => void
  /** A new revocation was taken. */
  emitRevoked: (device: DeviceId, reason: string, bytes: Uint8Array) => void
  /** A configuration was taken (a new highest version), or a lower one than held arrived. */
  emitConfig: (info: ConfigInfo) => void
}
