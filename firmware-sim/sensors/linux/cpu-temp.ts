import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { quantize } from '../../random.js'
import type { Sensor } from '../types.js'
import { SensorAbsent, hardwareSensor, parseNumber, readSysFile, type LinuxComponents, type LinuxInit } from './presence.js'

export interface CpuTempInit extends LinuxInit {
  /** A thermal zone to read (`thermal_zone2`); default the first whose type names the CPU or SoC, else the lowest. */
  zone?: string
}

const THERMAL = '/sys/class/thermal'
/** Types the kernel gives the CPU's zone: `cpu-thermal` (Raspberry Pi), `x86_pkg_temp`, `soc_thermal`, `cpu0-thermal`. */
const CPU_ZONE = /cpu|soc|pkg/i

/** `cpu-temp` in Cel from the kernel's thermal zones (sysfs-class-thermal: `temp` in millidegrees Celsius). */
export function createCpuTempSensor (init: CpuTempInit = {}, components: LinuxComponents = {}): Sensor {
  const root = init.root ?? '/'
  let zone = init.zone
  const findZone = async (): Promise<string> => {
    let entries: string[]
    try {
      entries = await readdir(join(root, THERMAL))
    } catch (err) {
      throw new SensorAbsent(`no thermal zones: cannot list ${join(root, THERMAL)} (${(err as NodeJS.ErrnoException).code ?? 'error'})`, (err as NodeJS.ErrnoException).code)
    }
    const zones = entries.filter((e) => /^thermal_zone\d+$/.test(e)).sort((a, b) => Number(a.slice(12)) - Number(b.slice(12)))
    if (zones.length === 0) throw new SensorAbsent(`no thermal_zone* in ${join(root, THERMAL)}`, 'ENOENT')
    for (const candidate of zones) {
      const type = await readSysFile(root, `${THERMAL}/${candidate}/type`, 'thermal zone type').catch(() => '')
      if (CPU_ZONE.test(type)) return candidate
    }
    return zones[0] as string
  }
  return hardwareSensor({
    name: 'cpu-temp',
    fields: ['cpu-temp'],
    logger: components.logger,
    probe: async () => {
      zone ??= await findZone()
      const milli = parseNumber(await readSysFile(root, `${THERMAL}/${zone}/temp`, `thermal zone ${zone}`), `${THERMAL}/${zone}/temp`)
      return [{ n: 'cpu-temp', u: 'Cel', v: quantize(milli / 1000, 0.1) }]
    }
  })
}
