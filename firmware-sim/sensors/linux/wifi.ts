import type { Sensor } from '../types.js'
import { SensorAbsent, hardwareSensor, readSysFile, type LinuxComponents, type LinuxInit } from './presence.js'

export interface WifiInit extends LinuxInit {
  /** Interface to report (`wlan0`); default the first listed. */
  interface?: string
}

export interface WirelessRow {
  interface: string
  /** Link quality as the driver reports it (often out of 70). */
  quality: number
  /** Signal level, dBm. */
  level: number
  noise: number
}

/**
 * Rows of /proc/net/wireless (Linux Wireless Extensions): two header lines, then
 * `wlan0: 0000   54.  -56.  -256 ...` (status, link quality, level, noise; a trailing "." marks
 * a value that was updated). Drivers that report the level as an unsigned byte give 200 for
 * -56 dBm: values above 0 are taken as such (level − 256), as iwconfig does.
 */
export function parseWireless (text: string): WirelessRow[] {
  const rows: WirelessRow[] = []
  for (const line of text.split('\n').slice(2)) {
    const m = /^\s*([^:\s]+):\s*\S+\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)/.exec(line)
    if (m === null) continue
    const num = (s: string): number => Number.parseFloat(s)
    let level = num(m[3] as string)
    if (level > 0) level -= 256
    rows.push({ interface: m[1] as string, quality: num(m[2] as string), level, noise: num(m[4] as string) })
  }
  return rows
}

/** `wifi` in dBm: the signal level of a Wi-Fi interface. Absent without /proc/net/wireless or without a wireless interface. */
export function createWifiSensor (init: WifiInit = {}, components: LinuxComponents = {}): Sensor {
  const root = init.root ?? '/'
  return hardwareSensor({
    name: 'wifi',
    fields: ['wifi'],
    logger: components.logger,
    probe: async () => {
      const rows = parseWireless(await readSysFile(root, '/proc/net/wireless', 'Wi-Fi statistics'))
      const row = init.interface === undefined ? rows[0] : rows.find((r) => r.interface === init.interface)
      if (row === undefined) {
        throw new SensorAbsent(init.interface === undefined
          ? 'no wireless interface in /proc/net/wireless (Wi-Fi off, or not associated)'
          : `no wireless interface ${init.interface} in /proc/net/wireless (present: ${rows.map((r) => r.interface).join(', ') || 'none'})`, 'ENODEV')
      }
      return [{ n: 'wifi', u: 'dBm', v: row.level }]
    }
  })
}
