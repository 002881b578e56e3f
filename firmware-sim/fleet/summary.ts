import type { FleetStats } from './fleet.js'

/** One line for the live terminal summary. */
export function statusLine (s: FleetStats, durationS?: number): string {
  const pct = (s.deliveryRatio * 100).toFixed(1)
  const time = durationS === undefined ? `${s.elapsedS.toFixed(0)} s` : `${s.elapsedS.toFixed(0)}/${durationS} s`
  const flags = [s.brokerUp ? '' : 'BROKER DOWN', s.partitioned ? 'PARTITIONED' : ''].filter((f) => f !== '').join(' ')
  return `${time}  devices ${s.devicesUp}/${s.devices} up  ${s.readingsPerS.toFixed(1)} readings/s  at gateway ${pct} % (${s.missing} of ${s.settled} missing)  links ${s.links}  rejects ${s.rejects}${flags === '' ? '' : `  ${flags}`}`
}

/** The summary a fleet prints when it stops: devices up, readings published and delivered, links. */
export function finalSummary (s: FleetStats): string {
  return [
    `devices        ${s.devicesUp}/${s.devices} up at the end`,
    `readings       ${s.published} published in ${s.elapsedS.toFixed(1)} s (${s.readingsPerS.toFixed(1)}/s)`,
    `at the gateway ${s.atGateway} distinct readings; of those published 2 s before the end or earlier, ${(s.deliveryRatio * 100).toFixed(2)} % (${s.missing} missing)`,
    `mesh links     ${s.links}`,
    `rejects        ${s.rejects}`,
    ...(s.sharedChecks === undefined ? [] : [`verification   shared between devices: ${s.sharedChecks.shared} checks answered from memory, ${s.sharedChecks.checked} done (CPU below a real fleet's)`])
  ].join('\n')
}
