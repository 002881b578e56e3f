import { describe, expect, it } from 'vitest'
import {
  BME280_REG, compensate, createBme280Sensor, parseCalibration, parseRaw, type Bme280Calibration, type I2cBus
} from '../../firmware-sim/index.js'
import { codeOf, recordingLogger } from './support.js'

/**
 * Known values. The BME280's temperature and pressure formulas are the BMP280's, whose datasheet
 * (BST-BMP280-DS001, §3.12, "Calculating pressure and temperature") works one example through:
 * with these trimming values and adc_T = 519888, adc_P = 415148 it gets t_fine = 128422,
 * T = 25.08 °C and p = 100653.27 Pa. The BME280 datasheet gives no worked humidity example, so the
 * humidity values below come from its integer formula (BST-BME280-DS002 §4.2.3,
 * bme280_compensate_H_int32, result / 1024), evaluated independently of the code under test;
 * the double formula (§8.1) that the driver uses agrees with it to 0.01 %RH.
 */
const DATASHEET: Bme280Calibration = {
  T1: 27504, T2: 26435, T3: -1000,
  P1: 36477, P2: -10685, P3: 3024, P4: 2855, P5: 140, P6: -7, P7: 15500, P8: -14600, P9: 6000,
  // humidity trimming of a real BME280 (typical values)
  H1: 75, H2: 362, H3: 0, H4: 313, H5: 50, H6: 30
}

/** The inverse of parseCalibration: register bytes 0x88–0xA1 and 0xE1–0xE7 for a calibration. */
function calibrationBytes (c: Bme280Calibration): { block1: Uint8Array, block2: Uint8Array } {
  const block1 = new Uint8Array(26)
  const a = new DataView(block1.buffer)
  ;[c.T1, c.T2, c.T3, c.P1, c.P2, c.P3, c.P4, c.P5, c.P6, c.P7, c.P8, c.P9].forEach((v, i) => {
    if (i === 0 || i === 3) a.setUint16(i * 2, v, true)
    else a.setInt16(i * 2, v, true)
  })
  block1[25] = c.H1
  const block2 = new Uint8Array(7)
  const b = new DataView(block2.buffer)
  b.setInt16(0, c.H2, true)
  block2[2] = c.H3
  block2[3] = (c.H4 >> 4) & 0xff
  block2[4] = ((c.H5 & 0x0f) << 4) | (c.H4 & 0x0f)
  block2[5] = (c.H5 >> 4) & 0xff
  b.setInt8(6, c.H6)
  return { block1, block2 }
}

function rawBytes (adcP: number, adcT: number, adcH: number): Uint8Array {
  return Uint8Array.from([adcP >> 12, (adcP >> 4) & 0xff, (adcP & 0x0f) << 4, adcT >> 12, (adcT >> 4) & 0xff, (adcT & 0x0f) << 4, adcH >> 8, adcH & 0xff])
}

describe('BME280 compensation (datasheet formulas)', () => {
  it('matches the datasheet example for temperature and pressure', () => {
    const v = compensate(DATASHEET, { adcT: 519888, adcP: 415148, adcH: 27000 })
    expect(v.tFine).toBe(128422)
    expect(v.temperature).toBeCloseTo(25.08, 2)
    expect(v.pressure).toBeCloseTo(100653.27, 1)
  })

  it.each([
    // [t_fine's adc_T, adc_H, %RH by the datasheet's int32 formula (value / 1024)]
    [519888, 27000, 39190 / 1024],
    [519888, 30000, 56317 / 1024],
    [519888, 36000, 90319 / 1024],
    [519888, 20000, 0] // below the range: clamped to 0
  ])('humidity at adc_T %i, adc_H %i is %f %RH', (adcT, adcH, expected) => {
    expect(Math.abs(compensate(DATASHEET, { adcT, adcP: 415148, adcH }).humidity - expected)).toBeLessThan(0.01)
  })

  it('humidity with other trimming values (int32 formula: 23.0088 and 55.5518 %RH)', () => {
    const other: Bme280Calibration = { ...DATASHEET, T1: 28417, T2: 26721, T3: 50, H1: 75, H2: 360, H3: 0, H4: 325, H5: 50, H6: 30 }
    const at = (adcH: number): number => compensate(other, { adcT: 500000, adcP: 415148, adcH }).humidity
    expect(Math.abs(compensate(other, { adcT: 500000, adcP: 415148, adcH: 0 }).tFine - 73931)).toBeLessThanOrEqual(1) // int32: 73931
    expect(Math.abs(at(25000) - 23561 / 1024)).toBeLessThan(0.01)
    expect(Math.abs(at(31000) - 56885 / 1024)).toBeLessThan(0.01)
    expect(at(65535)).toBe(100) // clamped
  })

  it('parses the trimming registers, including the split 12-bit H4/H5 and negative values', () => {
    for (const c of [DATASHEET, { ...DATASHEET, H4: -300, H5: -7, H6: -5, H2: -12 }, { ...DATASHEET, H4: 2047, H5: -2048 }]) {
      const { block1, block2 } = calibrationBytes(c)
      expect(parseCalibration(block1, block2)).toEqual(c)
    }
    expect(codeOf(() => parseCalibration(new Uint8Array(25), new Uint8Array(7)))).toBe('ERR_BAD_INPUT')
  })

  it('assembles the 20-bit and 16-bit ADC values (§4: msb, lsb, xlsb[7:4])', () => {
    expect(parseRaw(rawBytes(415148, 519888, 27000))).toEqual({ adcP: 415148, adcT: 519888, adcH: 27000 })
    expect(codeOf(() => parseRaw(new Uint8Array(7)))).toBe('ERR_BAD_INPUT')
  })
})

/** A BME280 on a fake bus: a register file per address, a measurement that takes `busyPolls` status reads. */
function fakeBus (chips: Record<number, { id: number, calibration?: Bme280Calibration, raw?: Uint8Array }>, busyPolls = 1): I2cBus & { writes: Array<[number, number, number]>, closed: number } {
  const regs = new Map<number, Uint8Array>()
  let busy = 0
  for (const [address, chip] of Object.entries(chips)) {
    const r = new Uint8Array(256)
    r[BME280_REG.CHIP_ID] = chip.id
    const { block1, block2 } = calibrationBytes(chip.calibration ?? DATASHEET)
    r.set(block1, 0x88)
    r.set(block2, 0xe1)
    r.set(chip.raw ?? rawBytes(0x80000, 0x80000, 0x8000), 0xf7) // skipped until measured
    regs.set(Number(address), r)
  }
  const bus = {
    writes: [] as Array<[number, number, number]>,
    closed: 0,
    async readI2cBlock (address: number, register: number, length: number) {
      const r = regs.get(address)
      if (r === undefined) throw Object.assign(new Error('Remote I/O error'), { code: 'EREMOTEIO' })
      if (register === BME280_REG.STATUS) {
        const status = busy > 0 ? 0x08 : 0
        if (busy > 0) busy--
        return Uint8Array.of(status)
      }
      return r.slice(register, register + length)
    },
    async writeByte (address: number, register: number, value: number) {
      bus.writes.push([address, register, value])
      if (register === BME280_REG.CTRL_MEAS && (value & 0x03) === 0x01) busy = busyPolls
    },
    async close () { bus.closed++ }
  }
  return bus
}

const noDelay = async (): Promise<void> => {}

describe('BME280 driver on a fake bus', () => {
  it('finds the chip, reads calibration, measures in forced mode and compensates', async () => {
    const bus = fakeBus({ 0x77: { id: 0x60, raw: rawBytes(415148, 519888, 27000) } }, 2)
    const delays: number[] = []
    const sensor = createBme280Sensor({}, { openI2c: async (n) => { expect(n).toBe(1); return bus }, delay: async (ms) => { delays.push(ms) } })
    expect(await sensor.read(0)).toEqual([
      { n: 'temperature', u: 'Cel', v: 25.08 },
      { n: 'pressure', u: 'Pa', v: 100653 },
      { n: 'humidity', u: '%RH', v: 38.3 }
    ])
    // §5.4.2 reset, §5.4.6 config in sleep mode, §5.4.3 ctrl_hum before ctrl_meas (×1, forced)
    expect(bus.writes).toEqual([[0x77, 0xe0, 0xb6], [0x77, 0xf5, 0x00], [0x77, 0xf2, 0x01], [0x77, 0xf4, 0x25]])
    expect(delays).toEqual([2, 10, 2, 2]) // waited for the NVM copy, then the measurement (9.3 ms max), polled twice
    await sensor.read(1)
    expect(bus.writes.length).toBe(6) // one trigger per read, no second reset
    await sensor.close()
    await sensor.close()
    expect(bus.closed).toBe(1)
  })

  it('uses the configured address and bus only', async () => {
    const bus = fakeBus({ 0x76: { id: 0x60, raw: rawBytes(415148, 519888, 27000) }, 0x77: { id: 0x60 } })
    const sensor = createBme280Sensor({ bus: 3, address: 0x76 }, { openI2c: async (n) => { expect(n).toBe(3); return bus }, delay: noDelay })
    expect(await sensor.read(0)).toHaveLength(3)
    expect(new Set(bus.writes.map(([a]) => a))).toEqual(new Set([0x76]))
    expect(codeOf(() => createBme280Sensor({ address: 0x42 }))).toBe('ERR_BAD_ARGUMENT')
  })

  it('no chip, or a BMP280, is absent: reported once, bus closed, not probed again', async () => {
    const cases: Array<Record<number, { id: number }>> = [{}, { 0x76: { id: 0x58 } }]
    for (const chips of cases) {
      const bus = fakeBus(chips)
      let opened = 0
      const logger = recordingLogger()
      const sensor = createBme280Sensor({}, { logger, openI2c: async () => { opened++; return bus }, delay: noDelay })
      expect(await sensor.read(0)).toBeUndefined()
      expect(await sensor.read(1)).toBeUndefined()
      expect(opened).toBe(1)
      expect(bus.closed).toBe(1)
      expect(logger.notices).toMatchObject([{ sensor: 'bme280', event: 'absent', code: 'ENODEV' }])
    }
  })

  it('without an I²C bus (or without i2c-bus) the real opener reports it absent', async () => {
    const logger = recordingLogger()
    const sensor = createBme280Sensor({ bus: 99 }, { logger, delay: noDelay }) // no /dev/i2c-99 here
    expect(await sensor.read(0)).toBeUndefined()
    expect(await sensor.read(1)).toBeUndefined()
    expect(logger.notices).toHaveLength(1)
    expect(logger.notices[0]).toMatchObject({ sensor: 'bme280', event: 'absent' })
    expect(['ENOENT', 'ERR_MODULE_NOT_FOUND']).toContain(logger.notices[0]?.code)
  })

  it('a chip that never finishes, or returns a skipped measurement, is an error, and the next read tries again', async () => {
    const logger = recordingLogger()
    const stuck = fakeBus({ 0x76: { id: 0x60, raw: rawBytes(415148, 519888, 27000) } }, 1000)
    const sensor = createBme280Sensor({}, { logger, openI2c: async () => stuck, delay: noDelay })
    expect(await sensor.read(0)).toBeUndefined()
    expect(logger.notices).toMatchObject([{ sensor: 'bme280', event: 'error', code: 'ERR_BAD_INPUT' }])
    const skipped = fakeBus({ 0x76: { id: 0x60 } })
    const other = createBme280Sensor({}, { logger, openI2c: async () => skipped, delay: noDelay })
    expect(await other.read(0)).toBeUndefined()
    expect(await other.read(1)).toBeUndefined()
    expect(skipped.writes.filter(([, reg]) => reg === BME280_REG.CTRL_MEAS)).toHaveLength(2)
    expect(logger.notices.slice(1)).toMatchObject([{ sensor: 'bme280', event: 'error', code: 'ERR_BAD_INPUT' }])
  })
})
