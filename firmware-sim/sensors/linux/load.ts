import { loadavg } from 'node:os'
import type { Sensor } from '../types.js'
import { SensorAbsent, hardwareSensor, parseNumber, readSysFile, type LinuxComponents, type LinuxInit } from './presence.js'

/**
 * `load1`, `load5`, `load15`: the run-queue load averages over 1, 5 and 15 minutes (proc(5),
 * /proc/loadavg; no SenML unit, they are counts of tasks). Where there is no /proc and the root is
 * the real one (not Linux), os.loadavg() stands in.
 */
export function createLoadSensor (init: LinuxInit = {}, components: LinuxComponents = {}): Sensor {
  const root = init.root ?? '/'
  return hardwareSensor({
    name: 'load',
    fields: ['load1', 'load5', 'load15'],
    logger: components.logger,
    probe: async () => {
      let values: number[]
      try {
        const fields = (await readSysFile(root, '/proc/loadavg', 'load averages')).trim().split(/\s+/)
        values = [0, 1, 2].map((i) => parseNumber(fields[i], '/proc/loadavg'))
      } catch (err) {
        if (!(err instanceof SensorAbsent) || root !== '/' || process.platform === 'linux') throw err
        values = loadavg()
      }
      return [
        { n: 'load1', v: values[0] as number },
        { n: 'load5', v: values[1] as number },
        { n: 'load15', v: values[2] as number }
      ]
    }
  })
}
