import { constants as fsConstants } from 'node:fs'
import { access } from 'node:fs/promises'
import { SensorAbsent } from './presence.js'

/**
 * The little of an I²C bus a sensor driver needs (SMBus block read and byte write), so tests
 * drive a driver with a fake bus. `openI2cBus` adapts the optional `i2c-bus` package.
 */
export interface I2cBus {
  /** SMBus "read I2C block": `length` (≤ 32) bytes from consecutive registers starting at `register`. */
  readI2cBlock (address: number, register: number, length: number): Promise<Uint8Array>
  /** SMBus "write byte data": one byte to a register. */
  writeByte (address: number, register: number, value: number): Promise<void>
  close (): Promise<void>
}

export type OpenI2cBus = (busNumber: number) => Promise<I2cBus>

/** The promisified bus of i2c-bus 5 (its API, as far as we use it). */
interface PromisifiedBus {
  readI2cBlock (address: number, register: number, length: number, buffer: Buffer): Promise<{ bytesRead: number, buffer: Buffer }>
  writeByte (address: number, register: number, value: number): Promise<void>
  close (): Promise<void>
}

interface I2cBusModule {
  openPromisified (busNumber: number): Promise<PromisifiedBus>
}

/**
 * Opens /dev/i2c-N through `i2c-bus`, an optional dependency with a native addon: it is loaded
 * only here, when a device asks for an I²C sensor, and its absence (not installed, not built for
 * this platform) or a missing bus is a SensorAbsent that says what to do.
 */
export const openI2cBus: OpenI2cBus = async (busNumber) => {
  const device = `/dev/i2c-${busNumber}`
  // i2c-bus opens the device file lazily, at the first transfer: look for it first.
  try {
    await access(device, fsConstants.R_OK | fsConstants.W_OK)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EACCES' || code === 'EPERM') throw new SensorAbsent(`no permission to open ${device}: add the device's user to the i2c group`, code)
    throw new SensorAbsent(`no I²C bus ${device}: enable I²C (on a Raspberry Pi: sudo raspi-config nonint do_i2c 0, then reboot)`, code)
  }
  let mod: I2cBusModule
  try {
    const loaded = await import('i2c-bus' as string) as { default?: I2cBusModule } & Partial<I2cBusModule>
    mod = (typeof loaded.openPromisified === 'function' ? loaded : loaded.default) as I2cBusModule
    if (typeof mod?.openPromisified !== 'function') throw new Error('i2c-bus has no openPromisified()')
  } catch (err) {
    throw new SensorAbsent(`the optional package i2c-bus cannot be loaded (${(err as Error).message.split('\n')[0]}); install it with \`npm install i2c-bus\` on the device`, 'ERR_MODULE_NOT_FOUND')
  }
  let bus: PromisifiedBus
  try {
    bus = await mod.openPromisified(busNumber)
  } catch (err) {
    throw new SensorAbsent(`cannot open ${device}: ${(err as Error).message}`, (err as NodeJS.ErrnoException).code)
  }
  return {
    async readI2cBlock (address, register, length) {
      const { bytesRead, buffer } = await bus.readI2cBlock(address, register, length, Buffer.alloc(length))
      return new Uint8Array(buffer.subarray(0, bytesRead))
    },
    writeByte: (address, register, value) => bus.writeByte(address, register, value),
    close: () => bus.close()
  }
}
