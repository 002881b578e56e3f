import { RESOURCE_ROLES, type ResourceSample } from '../observations.js'
import type { ResourceSummary, RoleRates } from '../results/types.js'
import { round } from './stats.js'

/**
 * Rates of each sampled role between its first and last sample inside [from, to]: CPU (percent
 * of one core) from the CPU time used, traffic from the counters' increase, memory as the mean
 * resident set over the samples. A role with fewer than two samples in the window is left out.
 */
export function summarizeResources (samples: readonly ResourceSample[], from: number, to: number): ResourceSummary[] {
  const out: ResourceSummary[] = []
  for (const role of RESOURCE_ROLES) {
    const mine = samples.filter((s) => s.role === role && s.at >= from && s.at <= to).sort((a, b) => a.at - b.at)
    const first = mine[0]
    const last = mine.at(-1)
    if (first === undefined || last === undefined || last.at <= first.at) continue
    const ms = last.at - first.at
    out.push({
      role,
      seconds: round(ms / 1000, 3),
      cpuPercent: round(((last.cpuMs - first.cpuMs) / ms) * 100, 2),
      rssBytes: Math.round(mine.reduce((a, s) => a + s.rssBytes, 0) / mine.length),
      bytesPerS: round(((last.bytesIn + last.bytesOut) - (first.bytesIn + first.bytesOut)) / (ms / 1000), 1),
      framesPerS: round(((last.framesIn + last.framesOut) - (first.framesIn + first.framesOut)) / (ms / 1000), 2)
    })
  }
  return out
}

/** A role's rates divided by `count` (one device of a fleet). */
export function perMember (summary: ResourceSummary | undefined, count: number): RoleRates | null {
  if (summary === undefined || count <= 0) return null
  return {
    cpuPercent: round(summary.cpuPercent / count, 3),
    rssBytes: Math.round(summary.rssBytes / count),
    bytesPerS: round(summary.bytesPerS / count, 1),
    framesPerS: round(summary.framesPerS / count, 3)
  }
}
