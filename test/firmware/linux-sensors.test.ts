import { describe, expect, it } from 'vitest'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import {
  createCpuTempSensor, createDiskSensor, createLoadSensor, createMemorySensor, createSensors, createWifiSensor,
  parseMeminfo, parseWireless, readSensors
} from '../../firmware-sim/index.js'
import { fakeTree, recordingLogger, tempDir } from './support.js'

const MEMINFO = `MemTotal:        3884096 kB
MemFree:          311520 kB
MemAvailable:    2913024 kB
Buffers:          112340 kB
Cached:          2300000 kB
HugePages_Total:       0
`

// Header lines as the kernel prints them (net/wireless/wext-proc.c).
const WIRELESS = `Inter-| sta-|   Quality        |   Discarded packets               | Missed | WE
 face | tus | link level noise |  nwid  crypt   frag  retry   misc | beacon | 22
 wlan0: 0000   54.  -56.  -256        0      0      0      0     47        0
`

describe('Linux sensors read a fake /sys and /proc', () => {
  it('cpu-temp: the CPU thermal zone, millidegrees to Cel', async () => {
    const root = await tempDir()
    await fakeTree(root, {
      '/sys/class/thermal/thermal_zone0/type': 'acpitz\n',
      '/sys/class/thermal/thermal_zone0/temp': '27800\n',
      '/sys/class/thermal/thermal_zone1/type': 'x86_pkg_temp\n',
      '/sys/class/thermal/thermal_zone1/temp': '48312\n'
    })
    expect(await createCpuTempSensor({ root }).read(0)).toEqual([{ n: 'cpu-temp', u: 'Cel', v: 48.3 }])
    expect(await createCpuTempSensor({ root, zone: 'thermal_zone0' }).read(0)).toEqual([{ n: 'cpu-temp', u: 'Cel', v: 27.8 }])
  })

  it('cpu-temp: a Raspberry Pi with one zone named cpu-thermal', async () => {
    const root = await tempDir()
    await fakeTree(root, { '/sys/class/thermal/thermal_zone0/type': 'cpu-thermal\n', '/sys/class/thermal/thermal_zone0/temp': '51540\n' })
    expect(await createCpuTempSensor({ root }).read(0)).toEqual([{ n: 'cpu-temp', u: 'Cel', v: 51.5 }])
  })

  it('load: the three averages of /proc/loadavg', async () => {
    const root = await tempDir()
    await fakeTree(root, { '/proc/loadavg': '0.52 0.58 1.59 1/467 12345\n' })
    expect(await createLoadSensor({ root }).read(0)).toEqual([{ n: 'load1', v: 0.52 }, { n: 'load5', v: 0.58 }, { n: 'load15', v: 1.59 }])
  })

  it('memory: used % from MemAvailable, or from MemFree + Buffers + Cached on old kernels', async () => {
    const root = await tempDir()
    await fakeTree(root, { '/proc/meminfo': MEMINFO })
    expect(await createMemorySensor({ root }).read(0)).toEqual([
      { n: 'memory', u: '%', v: 25 },
      { n: 'memory-available', u: 'B', v: 2913024 * 1024 }
    ])
    await fakeTree(root, { '/proc/meminfo': MEMINFO.replace(/MemAvailable.*\n/, '') })
    const old = await createMemorySensor({ root }).read(0)
    expect(old?.[0]?.v).toBe(Number((100 * (3884096 - 311520 - 112340 - 2300000) / 3884096).toFixed(1)))
    expect(parseMeminfo(MEMINFO).get('HugePages_Total')).toBe(0)
  })

  it('disk: use% and free bytes as df computes them, from statfs', async () => {
    const logger = recordingLogger()
    const sensor = createDiskSensor({ root: '/fake', path: '/data' }, {
      logger,
      statfs: async (path) => {
        expect(path).toBe('/fake/data')
        return { bsize: 4096, blocks: 1000, bfree: 300, bavail: 250 }
      }
    })
    // used 700, usable 700 + 250: 73.7 %
    expect(await sensor.read(0)).toEqual([{ n: 'disk', u: '%', v: 73.7 }, { n: 'disk-free', u: 'B', v: 250 * 4096 }])
  })

  it('disk: a real statfs on a temporary root', async () => {
    const root = await tempDir()
    const records = await createDiskSensor({ root }).read(0)
    expect(records?.[0]?.v).toBeGreaterThanOrEqual(0)
    expect(records?.[0]?.v).toBeLessThanOrEqual(100)
    expect(records?.[1]?.v).toBeGreaterThan(0)
  })

  it('wifi: the signal level in dBm, of the first or the named interface', async () => {
    const root = await tempDir()
    await fakeTree(root, { '/proc/net/wireless': `${WIRELESS} wlan1: 0000   30.  200.  -256        0      0      0      0     47        0\n` })
    expect(await createWifiSensor({ root }).read(0)).toEqual([{ n: 'wifi', u: 'dBm', v: -56 }])
    expect(await createWifiSensor({ root, interface: 'wlan1' }).read(0)).toEqual([{ n: 'wifi', u: 'dBm', v: -56 }]) // unsigned 200 = -56 dBm
    expect(parseWireless(WIRELESS)).toEqual([{ interface: 'wlan0', quality: 54, level: -56, noise: -256 }])
  })
})

describe('absent sensors', () => {
  it('are reported once, with the sensor name and why, and yield nothing', async () => {
    const root = await tempDir() // an empty tree: no /sys, no /proc
    const logger = recordingLogger()
    const sensors = createSensors('cpu-temp,load,memory,wifi', { root }, { logger })
    for (let i = 0; i < 3; i++) expect(await readSensors(sensors, i, logger)).toEqual([])
    // read concurrently: notices come in any order, one per sensor
    expect(logger.notices.map((n) => [n.sensor, n.event]).sort()).toEqual([
      ['cpu-temp', 'absent'], ['load', 'absent'], ['memory', 'absent'], ['wifi', 'absent']
    ])
    expect(logger.notices.map((n) => n.code)).toEqual(['ENOENT', 'ENOENT', 'ENOENT', 'ENOENT'])
    for (const notice of logger.notices) expect(notice.reason).toContain(root) // names the path it looked at
  })

  it('a Wi-Fi file without interfaces is absent too; coming back is reported once', async () => {
    const root = await tempDir()
    const logger = recordingLogger()
    await fakeTree(root, { '/proc/net/wireless': WIRELESS.split('\n').slice(0, 2).join('\n') })
    const sensor = createWifiSensor({ root }, { logger })
    expect(await sensor.read(0)).toBeUndefined()
    expect(await sensor.read(1)).toBeUndefined()
    await writeFile(join(root, '/proc/net/wireless'), WIRELESS)
    expect(await sensor.read(2)).toEqual([{ n: 'wifi', u: 'dBm', v: -56 }])
    expect(await sensor.read(3)).toEqual([{ n: 'wifi', u: 'dBm', v: -56 }])
    await rm(join(root, '/proc/net/wireless'))
    expect(await sensor.read(4)).toBeUndefined()
    expect(logger.notices.map((n) => [n.event, n.code])).toEqual([['absent', 'ENODEV'], ['present', undefined], ['absent', 'ENOENT']])
  })

  it('a file with garbage is an error, reported once per cause, and the device runs on', async () => {
    const root = await tempDir()
    const logger = recordingLogger()
    await fakeTree(root, { '/proc/loadavg': 'not numbers\n', '/proc/meminfo': MEMINFO })
    const sensors = createSensors('load,memory', { root }, { logger })
    const first = await readSensors(sensors, 0, logger)
    const second = await readSensors(sensors, 1, logger)
    expect(first.map((o) => o.sensor)).toEqual(['memory'])
    expect(second.map((o) => o.sensor)).toEqual(['memory'])
    expect(logger.notices).toMatchObject([{ sensor: 'load', event: 'error', code: 'ERR_BAD_INPUT' }])
  })

  it('statfs failing makes disk absent', async () => {
    const logger = recordingLogger()
    const sensor = createDiskSensor({ root: '/nowhere' }, { logger })
    expect(await sensor.read(0)).toBeUndefined()
    expect(await sensor.read(1)).toBeUndefined()
    expect(logger.notices).toMatchObject([{ sensor: 'disk', event: 'absent', code: 'ENOENT' }])
  })
})
