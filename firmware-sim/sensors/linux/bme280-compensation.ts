import { meshError } from '../../../shared/index.js'

/**
 * Bosch BME280 (datasheet BST-BME280-DS002): trimming parameters and the compensation formulas.
 * Pure functions of register bytes, so they are tested against known values without hardware.
 */

/** Trimming parameters, datasheet §4.2.2 Table 16. */
export interface Bme280Calibration {
  T1: number, T2: number, T3: number
  P1: number, P2: number, P3: number, P4: number, P5: number, P6: number, P7: number, P8: number, P9: number
  H1: number, H2: number, H3: number, H4: number, H5: number, H6: number
}

/** Raw ADC outputs: 20-bit temperature and pressure, 16-bit humidity. */
export interface Bme280Raw {
  adcT: number
  adcP: number
  adcH: number
}

export interface Bme280Values {
  /** °C */
  temperature: number
  /** Pa */
  pressure: number
  /** %RH, in [0, 100] */
  humidity: number
  /** The "fine" temperature carried into the pressure and humidity formulas. */
  tFine: number
}

/** Calibration block 1: 26 bytes from 0x88 (0x88–0xA1); block 2: 7 bytes from 0xE1 (0xE1–0xE7). */
export const CALIB1_START = 0x88
export const CALIB1_LENGTH = 26
export const CALIB2_START = 0xe1
export const CALIB2_LENGTH = 7
/** Measurement data: 8 bytes from 0xF7 (press_msb … hum_lsb), read in one burst (§4). */
export const DATA_START = 0xf7
export const DATA_LENGTH = 8
/** The ADC value of a measurement that was skipped (oversampling 0). */
export const SKIPPED_20BIT = 0x80000
export const SKIPPED_16BIT = 0x8000

/** Table 16: little-endian 16-bit words from 0x88; dig_H4/H5 share 0xE5 as 12-bit signed values. */
export function parseCalibration (block1: Uint8Array, block2: Uint8Array): Bme280Calibration {
  if (block1.length < CALIB1_LENGTH || block2.length < CALIB2_LENGTH) {
    throw meshError('ERR_BAD_INPUT', `BME280 calibration needs ${CALIB1_LENGTH} + ${CALIB2_LENGTH} bytes, got ${block1.length} + ${block2.length}`)
  }
  const a = new DataView(block1.buffer, block1.byteOffset, block1.byteLength)
  const b = new DataView(block2.buffer, block2.byteOffset, block2.byteLength)
  const u16 = (o: number): number => a.getUint16(o, true)
  const s16 = (o: number): number => a.getInt16(o, true)
  const e5 = b.getUint8(4)
  const e6 = b.getInt8(5) // signed: dig_H5's upper bits
  return {
    T1: u16(0), T2: s16(2), T3: s16(4),
    P1: u16(6), P2: s16(8), P3: s16(10), P4: s16(12), P5: s16(14), P6: s16(16), P7: s16(18), P8: s16(20), P9: s16(22),
    H1: a.getUint8(25), // 0xA1
    H2: b.getInt16(0, true), // 0xE1/0xE2
    H3: b.getUint8(2), // 0xE3
    H4: (b.getInt8(3) * 16) | (e5 & 0x0f), // 0xE4[7:0] / 0xE5[3:0], 12-bit signed (Bosch's API reads 0xE4 as int8)
    H5: (e6 * 16) | (e5 >> 4), // 0xE6[7:0] / 0xE5[7:4], 12-bit signed
    H6: b.getInt8(6) // 0xE7
  }
}

/** §4: press_msb/lsb/xlsb[7:4], temp_msb/lsb/xlsb[7:4], hum_msb/lsb. */
export function parseRaw (data: Uint8Array): Bme280Raw {
  if (data.length < DATA_LENGTH) throw meshError('ERR_BAD_INPUT', `BME280 data needs ${DATA_LENGTH} bytes, got ${data.length}`)
  const d = (i: number): number => data[i] as number
  return {
    adcP: (d(0) << 12) | (d(1) << 4) | (d(2) >> 4),
    adcT: (d(3) << 12) | (d(4) << 4) | (d(5) >> 4),
    adcH: (d(6) << 8) | d(7)
  }
}

/**
 * The double-precision compensation formulas of datasheet §8.1 (bme280_compensate_T_double,
 * _P_double, _H_double), line for line. JavaScript numbers are IEEE doubles, as there.
 */
export function compensate (cal: Bme280Calibration, raw: Bme280Raw): Bme280Values {
  const { adcT, adcP, adcH } = raw
  // Temperature (§8.1, returns °C)
  let var1 = (adcT / 16384 - cal.T1 / 1024) * cal.T2
  let var2 = ((adcT / 131072 - cal.T1 / 8192) * (adcT / 131072 - cal.T1 / 8192)) * cal.T3
  const tFine = Math.trunc(var1 + var2) // BME280_S32_t t_fine = (BME280_S32_t)(var1 + var2)
  const temperature = (var1 + var2) / 5120

  // Pressure (§8.1, returns Pa)
  let pressure: number
  var1 = tFine / 2 - 64000
  var2 = var1 * var1 * cal.P6 / 32768
  var2 = var2 + var1 * cal.P5 * 2
  var2 = var2 / 4 + cal.P4 * 65536
  var1 = (cal.P3 * var1 * var1 / 524288 + cal.P2 * var1) / 524288
  var1 = (1 + var1 / 32768) * cal.P1
  if (var1 === 0) {
    pressure = 0 // avoid a division by zero, as the datasheet does
  } else {
    let p = 1048576 - adcP
    p = (p - var2 / 4096) * 6250 / var1
    var1 = cal.P9 * p * p / 2147483648
    var2 = p * cal.P8 / 32768
    pressure = p + (var1 + var2 + cal.P7) / 16
  }

  // Humidity (§8.1, returns %RH)
  let h = tFine - 76800
  h = (adcH - (cal.H4 * 64 + cal.H5 / 16384 * h)) *
    (cal.H2 / 65536 * (1 + cal.H6 / 67108864 * h * (1 + cal.H3 / 67108864 * h)))
  h = h * (1 - cal.H1 * h / 524288)
  const humidity = Math.min(100, Math.max(0, h))

  return { temperature, pressure, humidity, tFine }
}
