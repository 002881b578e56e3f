import { setTimeout as sleep } from 'node:timers/promises'
import { meshError } from '../../../shared/index.js'
import { quantize } from '../../random.js'
import type { Sensor } from '../types.js'
import {
  CALIB1_LENGTH, CALIB1_START, CALIB2_LENGTH, CALIB2_START, DATA_LENGTH, DATA_START, SKIPPED_16BIT, SKIPPED_20BIT,
  compensate, parseCalibration, parseRaw, type Bme280Calibration
} from './bme280-compensation.js'
import { openI2cBus, type I2cBus, type OpenI2cBus } from './i2c.js'
import { SensorAbsent, hardwareSensor, type LinuxComponents } from './presence.js'

/** Registers (datasheet BST-BME280-DS002 §5.3, Table 18). */
export const BME280_REG = {
  CHIP_ID: 0xd0,
  RESET: 0xe0,
  CTRL_HUM: 0xf2,
  STATUS: 0xf3,
  CTRL_MEAS: 0xf4,
  CONFIG: 0xf5
} as const
export const BME280_CHIP_ID = 0x60
/** §5.4.2: writing 0xB6 to `reset` resets the device. */
const RESET_WORD = 0xb6
/** §5.4.4 status: bit 3 measuring, bit 0 im_update (NVM data being copied). */
const STATUS_MEASURING = 0x08
const STATUS_IM_UPDATE = 0x01
/** §5.4.3 / §5.4.5: oversampling ×1 for humidity, temperature and pressure; mode 01 = forced. */
const CTRL_HUM_X1 = 0x01
const CTRL_MEAS_FORCED_X1 = (0b001 << 5) | (0b001 << 2) | 0b01
/** §9.1: the longest measurement with ×1 oversampling of all three is 9.3 ms. */
const MEASURE_MS = 10
const POLL_MS = 2
const POLLS = 10
/** SDO to GND: 0x76; SDO to VDDIO: 0x77 (§6.2). */
export const BME280_ADDRESSES = [0x76, 0x77] as const

export interface Bme280Init {
  /** The I²C bus number: /dev/i2c-N; default 1 (the Raspberry Pi's header pins 3 and 5). */
  bus?: number
  /** 0x76 or 0x77; default: whichever answers, 0x76 first. */
  address?: number
}

export interface Bme280Components extends LinuxComponents {
  /** Opens a bus; default i2c-bus, loaded on first use. */
  openI2c?: OpenI2cBus
  /** Waits while the chip measures; default a timer (tests pass one that resolves at once). */
  delay?: (ms: number) => Promise<void>
}

const hex = (n: number): string => `0x${n.toString(16).padStart(2, '0')}`

/**
 * `temperature` (Cel, 0.01), `pressure` (Pa, 1) and `humidity` (%RH, 0.1) from a Bosch BME280 on
 * I²C, in forced mode: each read triggers one measurement, and the chip sleeps between reads
 * (§3.3.3, the mode for weather monitoring). Absent (reported once, then not probed again) when
 * i2c-bus is not installed, the bus does not exist, or no BME280 answers.
 */
export function createBme280Sensor (init: Bme280Init = {}, components: Bme280Components = {}): Sensor {
  const busNumber = init.bus ?? 1
  if (!Number.isSafeInteger(busNumber) || busNumber < 0) throw meshError('ERR_BAD_ARGUMENT', `bme280 bus must be a bus number (/dev/i2c-N), got ${busNumber}`)
  if (init.address !== undefined && !BME280_ADDRESSES.includes(init.address as 0x76 | 0x77)) {
    throw meshError('ERR_BAD_ARGUMENT', `bme280 address must be 0x76 or 0x77, got ${hex(init.address)}`)
  }
  const open = components.openI2c ?? openI2cBus
  const delay = components.delay ?? ((ms: number) => sleep(ms))
  let chip: { bus: I2cBus, address: number, calibration: Bme280Calibration } | undefined

  const waitWhile = async (bus: I2cBus, address: number, mask: number, first: number): Promise<void> => {
    await delay(first)
    for (let i = 0; i < POLLS; i++) {
      const [status] = await bus.readI2cBlock(address, BME280_REG.STATUS, 1)
      if (((status ?? 0) & mask) === 0) return
      await delay(POLL_MS)
    }
    throw meshError('ERR_BAD_INPUT', `BME280 at ${hex(address)} is still busy (status ${hex(mask)}) after ${first + POLLS * POLL_MS} ms`)
  }

  const attach = async (): Promise<NonNullable<typeof chip>> => {
    const bus = await open(busNumber)
    try {
      const seen: string[] = []
      for (const address of init.address === undefined ? BME280_ADDRESSES : [init.address]) {
        let id: number | undefined
        try {
          id = (await bus.readI2cBlock(address, BME280_REG.CHIP_ID, 1))[0]
        } catch {
          seen.push(`nothing at ${hex(address)}`)
          continue
        }
        if (id !== BME280_CHIP_ID) {
          const what = id === 0x58 || id === 0x56 || id === 0x57 ? 'a BMP280, which has no humidity sensor' : 'not a BME280'
          seen.push(`chip id ${hex(id ?? 0)} at ${hex(address)} (${what})`)
          continue
        }
        await bus.writeByte(address, BME280_REG.RESET, RESET_WORD)
        await waitWhile(bus, address, STATUS_IM_UPDATE, POLL_MS) // §5.4.4: trimming data copied after reset
        const calibration = parseCalibration(
          await bus.readI2cBlock(address, CALIB1_START, CALIB1_LENGTH),
          await bus.readI2cBlock(address, CALIB2_START, CALIB2_LENGTH)
        )
        await bus.writeByte(address, BME280_REG.CONFIG, 0x00) // filter off, SPI 3-wire off (written in sleep mode, §5.4.6)
        return { bus, address, calibration }
      }
      throw new SensorAbsent(`no BME280 (chip id ${hex(BME280_CHIP_ID)}) on /dev/i2c-${busNumber}: ${seen.join('; ')}`, 'ENODEV')
    } catch (err) {
      await bus.close().catch(() => {})
      throw err
    }
  }

  return hardwareSensor({
    name: 'bme280',
    fields: ['temperature', 'pressure', 'humidity'],
    logger: components.logger,
    permanent: true,
    probe: async () => {
      chip ??= await attach()
      const { bus, address, calibration } = chip
      // §5.4.3: ctrl_hum takes effect only after a write to ctrl_meas, which also starts the forced measurement.
      await bus.writeByte(address, BME280_REG.CTRL_HUM, CTRL_HUM_X1)
      await bus.writeByte(address, BME280_REG.CTRL_MEAS, CTRL_MEAS_FORCED_X1)
      await waitWhile(bus, address, STATUS_MEASURING, MEASURE_MS)
      const raw = parseRaw(await bus.readI2cBlock(address, DATA_START, DATA_LENGTH))
      if (raw.adcT === SKIPPED_20BIT || raw.adcP === SKIPPED_20BIT || raw.adcH === SKIPPED_16BIT) {
        throw meshError('ERR_BAD_INPUT', `BME280 at ${hex(address)} returned a skipped measurement (0x80000): it was not triggered`)
      }
      const v = compensate(calibration, raw)
      return [
        { n: 'temperature', u: 'Cel', v: quantize(v.temperature, 0.01) },
        { n: 'pressure', u: 'Pa', v: quantize(v.pressure, 1) },
        { n: 'humidity', u: '%RH', v: quantize(v.humidity, 0.1) }
      ]
    },
    close: async () => {
      const held = chip
      chip = undefined
      await held?.bus.close()
    }
  })
}
