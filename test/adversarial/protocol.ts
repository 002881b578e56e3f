/**
 * What the adversarial suite's child programs say over IPC (node-child.ts, attacker-child.ts) and
 * what the test side (test/helpers/adversary.ts) reads. Both children speak the protocol of
 * lab/children/mesh-child.ts, so test/helpers/mesh-proc.ts drives them: `{ev:'ready', id}` once
 * started; `{cmd, id, ...}` answered by `{id, ok, res}`; other `{ev}` messages are events.
 * Every time is wall-clock ms (Date.now()): the test compares events of several processes.
 */

/** How an honest node child runs (its one argument, as JSON). */
export interface NodeChildConfig {
  /** device: the firmware-sim device runtime (sampling, outbox, mesh path); subscriber: a MeshNode subscribed to `filter`. */
  role: 'device' | 'subscriber'
  /** Address links listen on (the namespace host's own). */
  host: string
  fleet: string
  name: string
  /** Announce and browse with mDNS/DNS-SD (default true). */
  mdns?: boolean
  /** Static peers (`host:port`), kept linked. */
  peers?: string[]
  /** Device: sampling interval, ms (default 100). */
  interval?: number
  /** Device: where the key, sequence file and outbox live (default: all in memory). */
  dataDir?: string
  /** Device: seed of its simulated temperature sensor. */
  seed?: number
  /** Device: relay frames before verifying them (routing `relayBeforeVerify`, `iotmesh device --relay-before-verify`). */
  relayBeforeVerify?: boolean
  /** How often the node re-declares its interest, ms (routing `interestRefresh`; default the node's, 10 s): routes expire after three periods. */
  interestRefresh?: number
  /** Subscriber: the topic filter (default '#'). */
  filter?: string
  /** How often health is reported, ms (default 250). */
  healthMs?: number
  /** Individual `drop` events sent at most (later drops are only counted in `health`); default 500. */
  maxDropEvents?: number
}

/** Delays (ms) at which a health report counts the samples delayed more. */
export const DELAY_THRESHOLDS_MS = [1, 2, 5, 10, 15, 20, 30, 40, 50, 100, 200, 500, 1000] as const

/**
 * Event-loop delay over one health period, ms beyond the monitor's resolution
 * (perf_hooks.monitorEventLoopDelay): percentiles, the number of samples, and `over[i]`, how many
 * of them were delayed more than DELAY_THRESHOLDS_MS[i] (so periods merge into a phase's p99).
 */
export interface LoopDelay { p50: number, p99: number, max: number, count: number, over: number[] }

export interface HealthEvent {
  ev: 'health'
  /** Wall-clock ms. */
  t: number
  delay: LoopDelay
  rss: number
  heapUsed: number
  /** Open file descriptors (/proc/self/fd). */
  fds: number
  /** CPU time used since start, µs. */
  cpuUs: number
  /** Open mesh links, and the ids at the other end. */
  links: string[]
  /** The node's refusals so far, by code (router counters). */
  rejected: Record<string, number>
}

/** Device role: one sampling interval done; the sequence numbers, first values and sampling times (ms) of the frames it signed. */
export interface TickEvent { ev: 'tick', t: number, seqs: number[], values: Array<number | undefined>, times: number[] }

/** A verified reading of a tracked origin (`track` command): its sampling time (ms), and `t` when it arrived (wall ms). */
export interface ReadingEvent {
  ev: 'reading'
  origin: string
  seq: number
  time: number
  hops: number
  from?: string
  t: number
  records: Array<{ n?: string, v?: number }>
}

export interface LinkEvent { ev: 'link', peer: string, up: boolean, t: number }
export interface DropEvent { ev: 'drop', code: string, origin?: string, seq?: number, from?: string, t: number }
/** Any other event of the node's (MeshNode emits it): its name, and its arguments as JSON. */
export interface NodeEvent { ev: 'event', name: string, data: string, t: number }

/** What the attacker child reports of its own links. */
export interface AttackerLinkEvent { ev: 'alink', self: string, peer: string, up: boolean, t: number, reason?: string, error?: string }
