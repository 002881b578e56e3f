import { LATENCY_PATHS, MODES, RESOURCE_ROLES } from '../observations.js'
import { FAULT_KINDS, PHASE_NAMES } from '../plan/timeline.js'
import { AUTOMATION_WAYS } from '../metrics/automation.js'
import { REVOCATION_PATHS } from '../metrics/revocation.js'
import type { JsonSchema } from './validate.js'

/**
 * RESULTS_SCHEMA: the JSON Schema (draft 2020-12) of results.json, the documented form of the
 * types in results/types.ts. `writeReport` checks every results object against it before writing and
 * writes it beside results.json as results.schema.json. Every object is closed
 * (additionalProperties: false), so a field added to the types without a place here fails the
 * schema test rather than slipping through undocumented.
 */

const d = (description: string, schema: JsonSchema): JsonSchema => ({ description, ...schema })
const ref = (name: string): JsonSchema => ({ $ref: `#/$defs/${name}` })
const orNull = (schema: JsonSchema): JsonSchema => ({ anyOf: [schema, { type: 'null' }] })
const num: JsonSchema = { type: 'number' }
const count: JsonSchema = { type: 'integer', minimum: 0 }
const fraction: JsonSchema = { type: 'number', minimum: 0, maximum: 1 }
const str: JsonSchema = { type: 'string' }
const listOf = (items: JsonSchema): JsonSchema => ({ type: 'array', items })
const oneOfValues = (values: readonly string[]): JsonSchema => ({ enum: [...values] })

/** A closed object; every property is required except those named in `optional`. */
function object (properties: Record<string, JsonSchema>, optional: readonly string[] = []): JsonSchema {
  return {
    type: 'object',
    additionalProperties: false,
    required: Object.keys(properties).filter((k) => !optional.includes(k)),
    properties
  }
}

const percentiles = {
  count,
  min: num,
  p50: num,
  p95: num,
  p99: num,
  max: num,
  mean: num
}

const targetDelivery = object({
  delivered: d('readings of the phase that arrived by the end of observation', count),
  deliveredDuring: d('of those, arrived before the phase ended', count),
  ratio: d('delivered / published', orNull(fraction)),
  ratioDuring: d('deliveredDuring / published', orNull(fraction)),
  deliveredOnTime: d('of those, arrived within the gap tolerance (parameters.gapToleranceS) of their publication; absent in results made before it was recorded', count),
  ratioOnTime: d('deliveredOnTime / published', orNull(fraction))
}, ['deliveredOnTime', 'ratioOnTime'])

const resume = d('time until delivery resumed after a fault (metrics/resume.ts resumeAfter)', object({
  affected: d('devices the fault concerned', count),
  resumed: d('devices with a reading published after the fault that arrived', count),
  maxMs: d('the slowest affected device; null when some never resumed', orNull(num)),
  medianMs: orNull(num)
}))

const roleRates = object({ cpuPercent: num, rssBytes: count, bytesPerS: num, framesPerS: num })

const base: Record<string, JsonSchema> = {
  $schema: d('a pointer to results.schema.json, for editors', str),
  format: { const: 'iotmesh-experiment' },
  version: { const: 1 },
  startedAt: d('ISO 8601, UTC', { type: 'string', format: 'date-time', pattern: '^\\d{4}-\\d\\d-\\d\\dT' }),
  finishedAt: { type: 'string', format: 'date-time', pattern: '^\\d{4}-\\d\\d-\\d\\dT' },
  seed: d('the seed of the fleet and the fault timeline', { type: 'integer', minimum: 0, maximum: 4294967295 }),
  machine: ref('machine'),
  software: ref('software'),
  provenance: d('how the run was made: command, git commit, load average before and after', object({
    command: orNull(str),
    commit: orNull(str),
    dirty: orNull({ type: 'boolean' }),
    loadBefore: { type: 'array', items: num, minItems: 3, maxItems: 3 },
    loadAfter: orNull({ type: 'array', items: num, minItems: 3, maxItems: 3 })
  })),
  checks: d('the expected shape, evaluated against the data', listOf(ref('check'))),
  notes: d('remarks from the runner', listOf(str))
}
const baseOptional = ['$schema', 'notes', 'provenance']

const counts = d('a share only: each run\'s readings (or probes) behind its value, x of n', listOf(orNull(object({ x: count, n: count }))))
const pooled = d('a share only: the runs\' readings (or probes) pooled, Σx of Σn, with the 95 % Wilson interval of the pooled share', object({ x: count, n: count, share: orNull(fraction), low: fraction, high: fraction }))

/** `--repeat N`: every figure over the runs (keyed by `who`: a mode or a way, a phase, a metric), its mean and 95 % interval. */
function repetitions (who: Record<string, JsonSchema>, metrics: readonly string[], optional: Record<string, JsonSchema> = {}): JsonSchema {
  return d('with --repeat N: every figure over the runs, its mean and 95 % interval; the checks are judged on the intervals', object({
    count: { type: 'integer', minimum: 2 },
    seeds: listOf({ type: 'integer', minimum: 0, maximum: 4294967295 }),
    interval: str,
    figures: listOf(object({ ...who, metric: oneOfValues([...metrics]), values: listOf(orNull(num)), mean: orNull(num), low: orNull(num), high: orNull(num), ...optional }, Object.keys(optional))),
    runChecks: listOf(object({ id: str, statuses: listOf(oneOfValues(['pass', 'fail', 'not-run', 'undecided'])) }))
  }))
}

/** The JSON Schema (draft 2020-12) of results.json, written beside it as results.schema.json. */
export const RESULTS_SCHEMA: JsonSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'https://iotmesh.dev/schemas/experiment-results-1.json',
  title: 'iotmesh experiment results',
  description: 'What `iotmesh experiment failover|scale|latency|automation|revocation` measured: parameters, seed, machine, software versions and every figure. Times in ms (…Ms) or s (…S); ratios are fractions 0..1; null means not computable.',
  oneOf: [
    object({
      ...base,
      experiment: { const: 'failover' },
      parameters: ref('failoverParameters'),
      timeline: ref('timeline'),
      modes: listOf(ref('modeSummary')),
      repetitions: repetitions({ mode: ref('mode'), phase: str }, ['delivered-during', 'delivered-on-time', 'delivered', 'peer-during', 'latency-p50-ms', 'longest-gap-ms', 'lost', 'duplicates'], {
        counts: d('a share only: each run\'s readings behind its value, x of n (absent in results saved before they were recorded)', listOf(orNull(object({ x: count, n: count })))),
        pooled: d('a share only: the runs\' readings pooled, Σx of Σn, with the 95 % Wilson interval of the pooled share', object({ x: count, n: count, share: orNull(fraction), low: fraction, high: fraction }))
      })
    }, [...baseOptional, 'repetitions']),
    object({
      ...base,
      experiment: { const: 'scale' },
      parameters: object({
        sizes: listOf({ type: 'integer', minimum: 1 }),
        modes: listOf(ref('mode')),
        intervalS: d('seconds between two readings of a device', num),
        durationS: d('measured window per fleet', num),
        warmupS: d('settling before the window', num)
      }),
      points: listOf(ref('scalePoint')),
      repetitions: repetitions({ mode: ref('mode'), devices: d('the fleet size; for growth, the larger fleet', { type: 'integer', minimum: 1 }) },
        ['delivery', 'bytes-per-s', 'frames-per-s', 'cpu-percent', 'latency-p50-ms', 'latency-p99-ms', 'growth'],
        { from: d('growth only: the smaller fleet of the ratio', { type: 'integer', minimum: 1 }), counts, pooled })
    }, [...baseOptional, 'repetitions']),
    object({
      ...base,
      experiment: { const: 'latency' },
      parameters: object({ rounds: count, paths: listOf(ref('latencyPath')), intervalMs: num }),
      paths: listOf(ref('pathSummary')),
      differences: d('path a minus path b, round by round (a sign test): the median and its 95 % interval', listOf(ref('pairedDifference'))),
      repetitions: repetitions({ path: ref('latencyPath') }, ['p50-ms', 'p95-ms', 'p99-ms', 'received', 'difference-ms'],
        { versus: d('difference-ms only: the path subtracted', ref('latencyPath')), counts, pooled })
    }, [...baseOptional, 'differences', 'repetitions']),
    object({
      ...base,
      experiment: { const: 'automation' },
      parameters: ref('automationParameters'),
      plan: d('the plan every way ran: the fault timeline, the parts of the devices, the rules', object({
        fingerprint: str,
        timelineFingerprint: str,
        roles: object({ motion: count, light: count, thermometer: count, heater: count }),
        phases: listOf(object({ name: oneOfValues(PHASE_NAMES), startS: num, endS: num })),
        endS: num,
        rules: d('the rule file in words', listOf(str))
      })),
      ways: listOf(ref('automationWay')),
      repetitions: repetitions({ way: oneOfValues(AUTOMATION_WAYS), phase: str }, ['not-on-time', 'latency-p50-ms', 'twice'])
    }, [...baseOptional, 'repetitions']),
    object({
      ...base,
      experiment: { const: 'revocation' },
      parameters: object({
        seed: count,
        devices: { type: 'integer', minimum: 3 },
        topology: d('the mesh path\'s fixed links (firmware-sim/fleet/topology.ts)', oneOfValues(['grid', 'line'])),
        intervalMs: d('sampling interval of every other device', num),
        victimIntervalMs: d('sampling interval of the revoked device', num),
        beforeS: d('normal traffic before the revocation', num),
        afterS: d('observation after the revocation', num),
        settleS: d('longest wait for a fleet to settle', num),
        linkDelayMs: d('delay every mesh link adds to each message, ms', num),
        transport: d('the mesh path\'s links: in memory, or each node\'s own TCP transport (credentials at every handshake); absent: memory', oneOfValues(['memory', 'tcp'])),
        repeat: { type: 'integer', minimum: 1 },
        paths: listOf(oneOfValues(REVOCATION_PATHS))
      }, ['transport']),
      interval: d('how the intervals over the runs were made', str),
      runs: d('one per seed', listOf(object({ seed: count, paths: listOf(ref('revocationPath')) }))),
      figures: d('every figure over the runs: each run\'s value, the mean and its 95 % interval (null with one run)', listOf(object({
        path: oneOfValues(REVOCATION_PATHS),
        metric: oneOfValues(['refusal-p50-ms', 'refusal-p99-ms', 'refusal-max-ms', 'refusing', 'accepted-after', 'last-accepted-ms', 'cut-ms']),
        values: listOf(orNull(num)),
        mean: orNull(num),
        low: orNull(num),
        high: orNull(num)
      })))
    }, baseOptional),
  ],
  $defs: {
    revocationPath: d('one path of one run (lab/metrics/revocation.ts); times from the issue of the revocation, ms', object({
      path: oneOfValues(REVOCATION_PATHS),
      nodes: d('nodes observed: every device but the revoked one and the gateway (mesh); the broker (broker)', count),
      refusing: d('of them, those that refused the device within the window', count),
      refusalMs: d('issue to each node\'s refusal (it took the revocation; the broker: it closed the session)', orNull(ref('percentiles'))),
      acceptedAfter: d('frames of the device accepted after the issue, over every node', count),
      nodesAccepting: count,
      acceptedAfterRefusal: d('frames a node accepted after it had begun to refuse: 0 unless refusal leaks', count),
      lastAcceptedMs: orNull(num),
      cutMs: d('issue to the device\'s cut-off: its last mesh link closed, or its broker session closed', orNull(num)),
      refusedConnects: d('its link handshakes (mesh) or CONNECTs (broker) refused with ERR_REVOKED', count),
      refusedFrames: d('its frames refused by relays with ERR_REVOKED', count),
      publishedAfter: d('readings it published after the issue', count),
      perNode: listOf(object({ index: { type: 'integer', minimum: -1 }, hops: orNull(count), refusalMs: orNull(num), acceptedAfter: count }))
    })),
    automationParameters: object({
      seed: count, devices: count, steadyS: num, brokerDownS: num, crashCount: count, crashS: num, partitionS: num, gapS: num, drainS: num,
      visitGapS: { type: 'array', items: num, minItems: 2, maxItems: 2 },
      holdS: num, lightOffS: num, coldC: num, warmC: num, coldForS: num, roomTauS: num, ambientC: num, heaterGainC: num,
      ttlS: d('lifetime of every command, s: a trigger acted on later is late', num),
      intervalS: num,
      ways: listOf(oneOfValues(AUTOMATION_WAYS))
    }),
    automationPhase: object({
      name: oneOfValues([...PHASE_NAMES, 'all']),
      triggers: d('times a rule\'s condition became true in the simulated world', count),
      onTime: d('first execution of the action within ttlS', count),
      late: d('first execution after ttlS', count),
      missed: d('no execution before the rule\'s next trigger or the end of observation', count),
      notOnTimeShare: orNull(fraction),
      twice: d('triggers followed by two or more executions', count),
      executions: d('commands executed in the phase by the targets', count),
      afterExpiry: d('of those, executed after the command\'s expiry', count),
      afterExpiryMaxMs: d('the latest of those past its expiry, ms', orNull(num)),
      latencyMs: d('trigger to first execution, on-time and late triggers', orNull(ref('percentiles')))
    }),
    automationWay: object({
      way: oneOfValues(AUTOMATION_WAYS),
      mode: ref('mode'),
      phases: listOf(ref('automationPhase')),
      total: ref('automationPhase'),
      rules: listOf(object({ rule: str, triggers: count, onTime: count, late: count, missed: count, twice: count })),
      faults: listOf(object({ kind: oneOfValues(FAULT_KINDS), plannedS: num, atS: num })),
      commands: object({
        sent: count,
        unanswered: d('commands that got no result: ERR_TIMEOUT, ERR_NO_ROUTE, ERR_ABORTED', count),
        outcomes: d('how the rules\' commands ended, by result status or error code', { type: 'object', additionalProperties: count }),
        refused: d('commands the targets refused, by code', { type: 'object', additionalProperties: count })
      }),
      triggers: listOf(object({
        rule: str,
        atS: num,
        phase: str,
        outcome: oneOfValues(['on-time', 'late', 'missed']),
        latencyMs: orNull(num),
        executions: count
      }))
    }),
    mode: oneOfValues(MODES),
    latencyPath: oneOfValues(LATENCY_PATHS),
    machine: object({
      platform: str, release: str, arch: str, cpus: count, cpuModel: str, memoryBytes: count
    }),
    software: d('versions from package.json files; null when not installed', object({
      node: str,
      iotmesh: orNull(str),
      aedes: orNull(str),
      mqtt: orNull(str),
      'bonjour-service': orNull(str),
      'cbor-x': orNull(str)
    })),
    check: object({
      id: { type: 'string', pattern: '^[a-z0-9-]+$' },
      statement: str,
      status: oneOfValues(['pass', 'fail', 'not-run', 'undecided']),
      observed: str
    }),
    percentiles: d('nearest-rank percentiles', object(percentiles)),
    distribution: d('percentiles and the 101 quantiles at p = 0..100 %', object({
      ...percentiles,
      quantiles: { type: 'array', items: num, minItems: 101, maxItems: 101 }
    })),
    faultEvent: object({
      atS: num,
      kind: oneOfValues(FAULT_KINDS),
      devices: listOf(count),
      groups: d('groups[0] keeps the gateway and the broker', listOf(listOf(count)))
    }, ['devices', 'groups']),
    failoverParameters: object({
      seed: { type: 'integer', minimum: 0, maximum: 4294967295 },
      devices: { type: 'integer', minimum: 2 },
      steadyS: num,
      brokerDownS: num,
      crashCount: count,
      crashS: num,
      partitionS: num,
      gapS: num,
      drainS: num,
      intervalS: num,
      modes: listOf(ref('mode')),
      gapToleranceS: num
    }),
    timeline: d('the fault timeline (plan/timeline.ts), the same for every mode', object({
      format: { const: 'iotmesh-timeline' },
      version: { const: 1 },
      params: object({
        seed: { type: 'integer', minimum: 0, maximum: 4294967295 },
        devices: { type: 'integer', minimum: 2 },
        steadyS: num,
        brokerDownS: num,
        crashCount: count,
        crashS: num,
        partitionS: num,
        gapS: num,
        drainS: num
      }),
      peer: d('the fleet member subscribing as the peer', count),
      phases: listOf(object({
        name: oneOfValues(PHASE_NAMES),
        startS: num,
        endS: num,
        faults: listOf(ref('faultEvent'))
      })),
      endS: num,
      fingerprint: d('sha256 of the canonical JSON of the other fields', { type: 'string', pattern: '^sha256:[0-9a-f]{64}$' })
    })),
    phaseSummary: object({
      name: oneOfValues([...PHASE_NAMES, 'all']),
      startS: num,
      endS: num,
      published: count,
      gateway: targetDelivery,
      peer: orNull(targetDelivery),
      longestGapMs: d('the longest silence at the gateway within the phase, over every device, ms', orNull(num)),
      longestGapOrigin: orNull(str),
      medianGapMs: orNull(num),
      lostForGood: count,
      duplicates: count,
      resume: orNull(resume),
      latencyMs: object({ gateway: orNull(ref('percentiles')), peer: orNull(ref('percentiles')) })
    }),
    modeSummary: object({
      mode: ref('mode'),
      devices: count,
      readings: count,
      sequenceHoles: count,
      durationS: num,
      phases: listOf(ref('phaseSummary')),
      total: ref('phaseSummary'),
      faults: listOf(object({
        kind: oneOfValues(FAULT_KINDS),
        plannedS: num,
        atS: num,
        devices: listOf(count),
        gateway: resume,
        peer: orNull(resume)
      })),
      gaps: listOf(object({ index: count, origin: str, longestGapMs: num })),
      series: d('counts per second of timeline', object({
        bucketS: { const: 1 },
        published: listOf(count),
        gateway: listOf(count),
        peer: orNull(listOf(count))
      })),
      latency: object({ gateway: orNull(ref('distribution')), peer: orNull(ref('distribution')) }),
      resources: listOf(object({
        role: oneOfValues(RESOURCE_ROLES),
        seconds: num,
        cpuPercent: num,
        rssBytes: count,
        bytesPerS: num,
        framesPerS: num
      }))
    }),
    scalePoint: object({
      mode: ref('mode'),
      devices: { type: 'integer', minimum: 1 },
      transport: d('how the devices were linked: a change is a change of method (separate series)', oneOfValues(['tcp', 'memory'])),
      seconds: num,
      readings: count,
      delivered: d('readings of the window that reached the gateway', count),
      delivery: orNull(fraction),
      latencyMs: orNull(ref('percentiles')),
      perDevice: orNull(roleRates),
      broker: orNull(roleRates),
      gateway: orNull(roleRates)
    }, ['transport', 'delivered']),
    pathSummary: object({
      path: ref('latencyPath'),
      sent: count,
      received: count,
      rounds: count,
      latencyMs: orNull(ref('distribution')),
      p50Ci95: d('95 % interval of the median, from order statistics', orNull(listOf(num)))
    }, ['p50Ci95']),
    pairedDifference: object({
      a: ref('latencyPath'),
      b: ref('latencyPath'),
      rounds: count,
      aFaster: count,
      medianMs: orNull(num),
      ci95: orNull(listOf(num))
    })
  }
}
