import type { ReadingObservation, Receiver } from '../observations.js'
import type { Resume } from '../results/types.js'
import { median, round } from './stats.js'
import { faultEvents, type TimelineFault, type Timeline } from '../plan/timeline.js'

/**
 * Time to resume after a fault event at time F (when it took effect), for one receiver:
 *
 *   resume(device) = min over the device's readings r with r.publishedAt ≥ F that reached the
 *                    receiver of (arrival of r − F)
 *
 * the time from the fault until the first reading the device published after it arrives. It
 * includes the wait for the device's next reading (up to one interval). The fault's figure is the
 * slowest of the devices it concerns (`maxMs`, null when any of them never resumed) with the
 * median alongside. The devices concerned: broker-stop and broker-start, every device that is
 * up (not crashed); crash and restart, the devices named; partition and heal, the devices cut off
 * from the gateway (groups after the first). The peer subscriber is left out for its own receiver.
 */
export function resumeAfter (readingsOf: (origin: string) => readonly ReadingObservation[], origins: readonly string[], at: number, target: Receiver): Resume {
  const times: number[] = []
  for (const origin of origins) {
    let best: number | undefined
    for (const r of readingsOf(origin)) {
      const arrival = r.receivedAt?.[target]
      if (r.publishedAt >= at && arrival !== undefined && (best === undefined || arrival - at < best)) best = arrival - at
    }
    if (best !== undefined) times.push(best)
  }
  return {
    affected: origins.length,
    resumed: times.length,
    maxMs: origins.length === 0 || times.length < origins.length ? null : round(Math.max(...times)),
    medianMs: times.length === 0 ? null : round(median(times) as number)
  }
}

export function combineResumes (list: Resume[]): Resume {
  const affected = list.reduce((a, r) => a + r.affected, 0)
  const resumed = list.reduce((a, r) => a + r.resumed, 0)
  const maxes = list.map((r) => r.maxMs)
  return {
    affected,
    resumed,
    maxMs: maxes.some((m) => m === null) ? null : Math.max(...(maxes as number[])),
    medianMs: list.length === 1 ? (list[0] as Resume).medianMs : median(list.map((r) => r.medianMs).filter((m): m is number => m !== null))
  }
}

export function concernedDevices (timeline: Timeline, event: TimelineFault): number[] {
  if (event.kind === 'crash' || event.kind === 'restart') return event.devices ?? []
  const events = faultEvents(timeline).filter((e) => e.atS <= event.atS)
  if (event.kind === 'partition' || event.kind === 'heal') {
    const partition = events.filter((e) => e.kind === 'partition').at(-1)
    return (partition?.groups ?? []).slice(1).flat().sort((a, b) => a - b)
  }
  const down = new Set<number>()
  for (const e of events) {
    if (e.kind === 'crash') for (const d of e.devices ?? []) down.add(d)
    if (e.kind === 'restart' && e.atS < event.atS) for (const d of e.devices ?? []) down.delete(d)
  }
  return Array.from({ length: timeline.params.devices }, (_, i) => i).filter((d) => !down.has(d))
}
