import { describe, expect, it } from 'vitest'
import { TCP_DEVICES_PER_THREAD, workersHint } from '../../bin/commands/sim.js'
import { parseFaultSpec, type FleetInit } from '../../firmware-sim/index.js'

/** `iotmesh sim` suggests --workers auto where one thread may not carry a TCP fleet, and only there. */
describe('iotmesh sim: the --workers hint', () => {
  const big: FleetInit = { devices: 300, mode: 'mesh', transport: 'tcp' }

  it('is given for a TCP fleet above one thread\'s size on a machine of more than one core', () => {
    expect(workersHint(big, [], 2)).toBe(`hint: 300 TCP devices in one thread may fall behind their schedule above about ${TCP_DEVICES_PER_THREAD}; --workers auto spreads them over this machine's 2 cores`)
    expect(workersHint({ ...big, mode: 'hybrid' }, parseFaultSpec('broker-stop@5,broker-start@10'), 4)).toContain('--workers auto')
  })

  it('is not given where --workers would not apply or not help', () => {
    expect(workersHint({ ...big, devices: TCP_DEVICES_PER_THREAD }, [], 2)).toBeUndefined()
    expect(workersHint(big, [], 1)).toBeUndefined()
    expect(workersHint({ ...big, workers: 2 }, [], 2)).toBeUndefined()
    expect(workersHint({ ...big, transport: 'memory' }, [], 2)).toBeUndefined()
    expect(workersHint({ ...big, mode: 'broker' }, [], 2)).toBeUndefined()
    expect(workersHint({ ...big, mdns: false }, [], 2)).toBeUndefined() // over TCP, workers need DNS-SD
    expect(workersHint(big, parseFaultSpec('crash:0@5'), 2)).toBeUndefined() // --workers refuses it
  })
})
