import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import {
  decodeResult, deviceRoot, encodeCommand, isMeshError, meshError, parseCommanders,
  type Clock, type Commanders, type CommandResult, type DeviceId, type Ed25519, type KeyPair, type SenmlRecord
} from '../../shared/index.js'
import type { MeshNode, Subscription } from '../../mesh/index.js'
import { createActuator, driveGpio, type Actuator, type ActuatorName, type ActuatorSpec, type ActuatorState } from '../commands/actuators.js'
import { CommandExecutor, type ExecutorCounters, type Outcome } from '../commands/executor.js'
import { memoryJournal, openJournal } from '../commands/journal.js'
import { RuleEngine, type Firing } from '../rules/engine.js'
import { parseRules, type RuleSet } from '../rules/rules.js'

/**
 * What a device does with commands and rules (issue 12), beside its sampling:
 *
 *   - executes commands for itself (`commanders`, `actuators`): through a CommandExecutor whose
 *     journal lives in `<dataDir>/commands/` (what ran survives SIGKILL), for commands that arrive
 *     over the mesh (MeshNode.serveCommands) and over MQTT (device/paths/broker.ts) alike: one
 *     journal, so a command that comes both ways in hybrid mode runs once;
 *   - reports its actuators' state as telemetry (SenML `vb`/`v`, RFC 8428 §4.2) at once after
 *     each change (`onState`) and with every sample (`records`);
 *   - runs rules (`rules`): it subscribes through the mesh to the devices its conditions watch,
 *     and sends the commands a rule fires straight to their targets over the mesh, signed with its
 *     own key: no broker, no gateway.
 */

export interface DeviceCommandsInit {
  /** A commanders file (shared/commanders.ts), or the parsed list. */
  commanders?: string | Commanders
  actuators?: ReadonlyArray<ActuatorName | ActuatorSpec>
  /** A rule file (JSON or YAML, firmware-sim/rules/), or the parsed set. */
  rules?: string | RuleSet
  /** Where the journal of executed commands lives (`<dataDir>/commands`); none: in memory. */
  dataDir?: string
  fleet: string
  /** Commands per second one issuer may have executed (default 5, burst 20). */
  rate?: { rate: number, burst: number }
  /**
   * An enrolled device's owner-signed grants (device/grants.ts): given the commanders file (if any),
   * the commanders the executor asks instead. A device given it always serves commands.
   */
  grants?: (file: Commanders | undefined) => Commanders
}

export interface DeviceCommandsComponents {
  keys: KeyPair
  clock: Clock
  ed25519?: Ed25519
  /** The actuators' state changed (a command ran): publish it now. */
  onState: (records: SenmlRecord[]) => void
  onWarning: (error: Error) => void
  /** Every command judged, with its verdict (the lab's action truth: lab/runners/automation.ts). */
  onOutcome?: (outcome: Outcome) => void
}

export interface RuleCounters {
  /** Rules fired, commands they sent, and how those ended (by status, or ERR_TIMEOUT / ERR_NO_ROUTE). */
  fired: number
  sent: number
  results: Partial<Record<string, number>>
}

export interface DeviceCommandCounters extends ExecutorCounters {
  rules: RuleCounters
}

/** Loads what a device needs for commands and rules; undefined when it takes none and runs none. */
export async function openDeviceCommands (init: DeviceCommandsInit, components: DeviceCommandsComponents): Promise<DeviceCommands | undefined> {
  const serving = init.commanders !== undefined || (init.actuators?.length ?? 0) > 0 || init.grants !== undefined
  if (!serving && init.rules === undefined) return undefined
  const file = typeof init.commanders === 'string' ? parseCommanders(await readJson(init.commanders), init.commanders) : init.commanders
  const commanders = init.grants === undefined ? file : init.grants(file)
  const rules = typeof init.rules === 'string' ? parseRules(await readText(init.rules), init.rules) : init.rules
  return new DeviceCommands({ fleet: init.fleet, commanders, rules, actuators: init.actuators, dataDir: init.dataDir, rate: init.rate }, components)
}

export class DeviceCommands {
  readonly executor: CommandExecutor | undefined
  readonly rules: RuleSet | undefined
  readonly #components: DeviceCommandsComponents
  readonly #fleet: string
  readonly #ruleCounts: RuleCounters = { fired: 0, sent: 0, results: {} }
  #actuators: Actuator[] = []
  #engine: RuleEngine | undefined
  #subscriptions: Subscription[] = []
  #lastId = 0
  #stopped = false

  constructor (init: { fleet: string, commanders?: Commanders | undefined, rules?: RuleSet | undefined, actuators?: ReadonlyArray<ActuatorName | ActuatorSpec> | undefined, dataDir?: string | undefined, rate?: { rate: number, burst: number } | undefined }, components: DeviceCommandsComponents) {
    this.#components = components
    this.#fleet = init.fleet
    this.rules = init.rules
    if (init.commanders !== undefined || (init.actuators?.length ?? 0) > 0) {
      this.executor = new CommandExecutor({ ...(init.rate === undefined ? {} : { rate: init.rate }) }, {
        keys: components.keys,
        ...(init.commanders === undefined ? {} : { commanders: init.commanders }),
        journal: init.dataDir === undefined ? memoryJournal() : openJournal(join(init.dataDir, 'commands')),
        actuators: this.#actuators = (init.actuators ?? []).map((spec) => {
          const actuator = createActuator(spec)
          return typeof spec === 'string' || spec.gpio === undefined ? actuator : driveGpio(actuator, spec.gpio, { onWarning: components.onWarning })
        }),
        clock: components.clock,
        ...(components.ed25519 === undefined ? {} : { ed25519: components.ed25519 })
      })
    }
  }

  get counters (): DeviceCommandCounters {
    const base = this.executor?.counters ?? { executed: 0, repeated: 0, refused: {} }
    return { ...base, refused: { ...base.refused }, rules: { ...this.#ruleCounts, results: { ...this.#ruleCounts.results } } }
  }

  /** The actuators' state as SenML records (`vb` for on/off, `v` for numbers). */
  records (): SenmlRecord[] {
    return stateRecords(this.executor?.state() ?? {})
  }

  /** Judges one command (from the mesh or MQTT); returns the signed result to send back, if one is owed. Never throws. */
  handle (signed: Uint8Array): Uint8Array | undefined {
    if (this.executor === undefined) return undefined
    const outcome = this.executor.handle(signed)
    try { this.#components.onOutcome?.(outcome) } catch (err) { this.#components.onWarning(err as Error) }
    if (outcome.verdict === 'executed' && Object.keys(outcome.state).length > 0 && outcome.command.action !== 'state/get') {
      try { this.#components.onState(stateRecords(outcome.state)) } catch (err) { this.#components.onWarning(err as Error) }
    }
    return outcome.result
  }

  /** Starts the rules on the mesh node: subscribes to what they watch, sends what they fire. */
  startRules (node: MeshNode): void {
    const rules = this.rules
    if (rules === undefined || this.#engine !== undefined) return
    const engine = this.#engine = new RuleEngine(rules, { clock: this.#components.clock })
    engine.on('fire', (firing) => { this.#fire(node, firing) })
    const devices = new Set(engine.watched().map((w) => w.device))
    for (const device of devices) {
      const sub = node.subscribe(`${deviceRoot(this.#fleet, device)}/#`, { buffer: 1024 })
      this.#subscriptions.push(sub)
      void (async () => {
        for await (const delivery of sub) {
          engine.observeReading(delivery.origin, delivery.records, delivery.time)
        }
      })()
    }
  }

  /** Stops the rules and releases the actuators' GPIO lines. */
  async stop (): Promise<void> {
    await Promise.all(this.#actuators.map(async (a) => { await a.close?.() }))
    this.#stopped = true
    this.#engine?.stop()
    for (const sub of this.#subscriptions) sub.close()
    this.#subscriptions = []
  }

  #fire (node: MeshNode, firing: Firing): void {
    this.#ruleCounts.fired++
    for (const action of firing.actions) {
      let signed: Uint8Array
      try {
        signed = encodeCommand({
          keys: this.#components.keys, target: action.device, action: action.action, id: this.#nextId(), ttl: action.ttl,
          issuedAt: this.#components.clock.wall() / 1000,
          ...(action.args === undefined ? {} : { args: action.args }),
          ...(this.#components.ed25519 === undefined ? {} : { ed25519: this.#components.ed25519 })
        })
      } catch (err) {
        this.#components.onWarning(err as Error)
        continue
      }
      this.#ruleCounts.sent++
      void node.command(signed).then(
        (result: CommandResult) => { this.#count(result.status) },
        (err: unknown) => { if (!this.#stopped) this.#count(isMeshError(err) ? err.code : 'ERR_TIMEOUT') }
      )
    }
  }

  #count (status: string): void {
    this.#ruleCounts.results[status] = (this.#ruleCounts.results[status] ?? 0) + 1
  }

  /** Command ids: the wall clock in µs, strictly increasing (shared/command.ts: unique per issuer). */
  #nextId (): number {
    this.#lastId = Math.max(this.#lastId + 1, Math.floor(this.#components.clock.wall() * 1000))
    return this.#lastId
  }
}

/** The issuer a signed result answers (for its MQTT topic); undefined when it is not one. */
export function resultIssuer (signed: Uint8Array): DeviceId | undefined {
  try { return decodeResult(signed).issuer } catch { return undefined }
}

function stateRecords (state: ActuatorState): SenmlRecord[] {
  return Object.entries(state).map(([n, value]) => typeof value === 'boolean' ? { n, vb: value } : { n, v: value })
}

async function readText (file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    throw meshError('ERR_BAD_ARGUMENT', `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err })
  }
}

async function readJson (file: string): Promise<unknown> {
  const text = await readText(file)
  try {
    return JSON.parse(text)
  } catch (err) {
    throw meshError('ERR_BAD_ARGUMENT', `${file} is not valid JSON: ${(err as Error).message}`, { cause: err })
  }
}

