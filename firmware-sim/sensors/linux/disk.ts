import { statfs as fsStatfs } from 'node:fs/promises'
import { join } from 'node:path'
import { quantize } from '../../random.js'
import type { Sensor } from '../types.js'
import { SensorAbsent, hardwareSensor, type LinuxComponents, type LinuxInit } from './presence.js'

export interface DiskInit extends LinuxInit {
  /** The mount point to measure, below `root`; default `/`. */
  path?: string
}

/** What statfs(2) says about a file system (the fields of node's StatsFs that df uses). */
export interface StatFs {
  bsize: number
  blocks: number
  bfree: number
  bavail: number
}

export interface DiskComponents extends LinuxComponents {
  statfs?: (path: string) => Promise<StatFs>
}

/**
 * `disk` in % used and `disk-free` in B, as df(1) computes them: used = blocks − bfree,
 * use% = used / (used + bavail) (blocks reserved for root are not counted as available),
 * free = bavail × bsize.
 */
export function createDiskSensor (init: DiskInit = {}, components: DiskComponents = {}): Sensor {
  const path = join(init.root ?? '/', init.path ?? '/')
  const statfs = components.statfs ?? fsStatfs
  return hardwareSensor({
    name: 'disk',
    fields: ['disk', 'disk-free'],
    logger: components.logger,
    probe: async () => {
      let s: StatFs
      try {
        s = await statfs(path)
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        throw new SensorAbsent(`cannot statfs ${path} (${code ?? (err as Error).message})`, code)
      }
      const used = s.blocks - s.bfree
      const usable = used + s.bavail
      return [
        { n: 'disk', u: '%', v: usable === 0 ? 0 : quantize(100 * used / usable, 0.1) },
        { n: 'disk-free', u: 'B', v: s.bavail * s.bsize }
      ]
    }
  })
}
