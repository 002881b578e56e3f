import { quantize } from '../../random.js'
import { meshError } from '../../../shared/index.js'
import type { Sensor } from '../types.js'
import { hardwareSensor, readSysFile, type LinuxComponents, type LinuxInit } from './presence.js'

/** Fields of /proc/meminfo (proc(5)), in bytes. */
export function parseMeminfo (text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    const m = /^(\w+(?:\(\w+\))?):\s+(\d+)(?:\s+kB)?\s*$/.exec(line)
    if (m !== null) out.set(m[1] as string, Number(m[2]) * (line.trimEnd().endsWith('kB') ? 1024 : 1))
  }
  return out
}

/**
 * `memory` in % used and `memory-available` in B, from /proc/meminfo: used = total − MemAvailable
 * (the kernel's estimate of what can be allocated without swapping, Linux 3.14+; before it,
 * MemFree + Buffers + Cached).
 */
export function createMemorySensor (init: LinuxInit = {}, components: LinuxComponents = {}): Sensor {
  const root = init.root ?? '/'
  return hardwareSensor({
    name: 'memory',
    fields: ['memory', 'memory-available'],
    logger: components.logger,
    probe: async () => {
      const info = parseMeminfo(await readSysFile(root, '/proc/meminfo', 'memory statistics'))
      const total = info.get('MemTotal')
      const available = info.get('MemAvailable') ?? sum(info, ['MemFree', 'Buffers', 'Cached'])
      if (total === undefined || total === 0 || available === undefined) throw meshError('ERR_BAD_INPUT', '/proc/meminfo has no MemTotal, or neither MemAvailable nor MemFree')
      return [
        { n: 'memory', u: '%', v: quantize(100 * (total - available) / total, 0.1) },
        { n: 'memory-available', u: 'B', v: available }
      ]
    }
  })
}

function sum (info: Map<string, number>, keys: string[]): number | undefined {
  if (!info.has(keys[0] as string)) return undefined
  return keys.reduce((acc, key) => acc + (info.get(key) ?? 0), 0)
}
