import { meshError } from '../../shared/index.js'
import type { Fleet } from './fleet.js'

/**
 * Faults on the command line (`iotmesh sim --faults …`): a comma-separated list of `kind[:args]@seconds`.
 *
 *   crash:0-2@10     crash devices 0, 1 and 2 ten seconds in   (restart:0-2@20 brings them back)
 *   broker-stop@30   broker-start@45                            stop and restart the broker
 *   partition:2@50   heal@60                                    split the fleet in 2 groups, heal it
 *   loss:0.05@0  delay:5-20@0  dup:0.01@0                      seeded faults on every link from then on
 *   skew:3:-5000@5                                             device 3's clock 5 s behind
 */
export interface ScheduledFault { atS: number, kind: string, args: string[] }

const KINDS = new Set(['crash', 'restart', 'broker-stop', 'broker-start', 'partition', 'heal', 'loss', 'delay', 'dup', 'skew'])

/** Scheduled faults from a `--faults` text (`kind[:args]@seconds`, comma-separated); throws ERR_BAD_ARGUMENT naming the faulty item. */
export function parseFaultSpec (spec: string): ScheduledFault[] {
  if (spec.trim() === '') return []
  return spec.split(',').map((item) => {
    const m = /^([a-z-]+)((?::[^@:]+)*)@(\d+(?:\.\d+)?)$/.exec(item.trim())
    if (m === null || !KINDS.has(m[1] as string)) {
      throw meshError('ERR_BAD_ARGUMENT', `--faults: ${JSON.stringify(item)} is not kind[:args]@seconds with kind one of ${[...KINDS].join(', ')}`)
    }
    return { kind: m[1] as string, args: (m[2] ?? '').split(':').filter((a) => a !== ''), atS: Number(m[3]) }
  }).sort((a, b) => a.atS - b.atS)
}

function range (text: string | undefined, devices: number): number[] {
  const m = /^(\d+)(?:-(\d+))?$/.exec(text ?? '')
  if (m === null) throw meshError('ERR_BAD_ARGUMENT', `--faults: ${JSON.stringify(text)} is not a device index or range (e.g. 3 or 0-4)`)
  const from = Number(m[1])
  const to = Number(m[2] ?? m[1])
  if (to >= devices || from > to) throw meshError('ERR_BAD_ARGUMENT', `--faults: devices ${text} are outside 0..${devices - 1}`)
  return Array.from({ length: to - from + 1 }, (_, i) => from + i)
}

function num (text: string | undefined, what: string): number {
  const n = Number(text)
  if (text === undefined || !Number.isFinite(n)) throw meshError('ERR_BAD_ARGUMENT', `--faults: ${what} must be a number, got ${JSON.stringify(text)}`)
  return n
}

/** A link delay in ms: `5` or a range `5-20`. */
function delay (text: string | undefined): number | [number, number] {
  const m = /^(\d+(?:\.\d+)?)(?:-(\d+(?:\.\d+)?))?$/.exec(text ?? '')
  if (m === null || (m[2] !== undefined && Number(m[2]) < Number(m[1]))) {
    throw meshError('ERR_BAD_ARGUMENT', `--faults: delay must be ms or a range of ms (e.g. 10 or 5-20), got ${JSON.stringify(text)}`)
  }
  return m[2] === undefined ? Number(m[1]) : [Number(m[1]), Number(m[2])]
}

/** Checks every event against the fleet size before anything runs. */
export function checkFaultSpec (events: ScheduledFault[], devices: number): void {
  for (const e of events) {
    if (e.kind === 'crash' || e.kind === 'restart') range(e.args[0], devices)
    if (e.kind === 'partition' && (num(e.args[0] ?? '2', 'groups') < 2 || num(e.args[0] ?? '2', 'groups') > devices)) throw meshError('ERR_BAD_ARGUMENT', `--faults: partition into 2..${devices} groups`)
    if (e.kind === 'loss' || e.kind === 'dup') { const p = num(e.args[0], e.kind); if (p < 0 || p > 1) throw meshError('ERR_BAD_ARGUMENT', `--faults: ${e.kind} is a probability 0..1`) }
    if (e.kind === 'delay') delay(e.args[0])
    if (e.kind === 'skew') { range(e.args[0], devices); num(e.args[1], 'skew ms') }
  }
}

/** Carries out one event on the fleet. */
export async function applyFault (fleet: Fleet, event: ScheduledFault): Promise<void> {
  const n = fleet.devices.length
  switch (event.kind) {
    case 'crash': for (const i of range(event.args[0], n)) await fleet.crash(i); break
    case 'restart': for (const i of range(event.args[0], n)) await fleet.restart(i); break
    case 'broker-stop': await fleet.stopBroker(); break
    case 'broker-start': await fleet.startBroker(); break
    case 'partition': {
      const groups = Math.round(num(event.args[0] ?? '2', 'groups'))
      fleet.partition(Array.from({ length: groups }, (_, g) => fleet.devices.filter((d) => d.index % groups === g).map((d) => d.index)))
      break
    }
    case 'heal': fleet.heal(); break
    case 'loss': fleet.linkFaults({ loss: num(event.args[0], 'loss') }); break
    case 'dup': fleet.linkFaults({ duplicate: num(event.args[0], 'dup') }); break
    case 'delay': fleet.linkFaults({ delay: delay(event.args[0]) }); break
    case 'skew': for (const i of range(event.args[0], n)) fleet.skew(i, num(event.args[1], 'skew ms')); break
  }
}
