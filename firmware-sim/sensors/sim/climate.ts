import { between, unitAt } from '../../random.js'

/**
 * The simulated weather a device sits in. Temperature follows a daily cycle, a sinusoid over 24 h
 * of local time peaking in the afternoon; humidity moves against it. A device's mean and swing
 * are drawn from (seed, device), so every device of a fleet differs, and the same seed gives the
 * same fleet.
 */

/** Identifies a simulated device: the fleet's seed and the device's index in the fleet. */
export interface SimInit {
  /** The fleet's seed (any integer); default 1. */
  seed?: number
  /** The device's index in its fleet; default 0. */
  device?: number
}

export interface ClimateInit extends SimInit {
  /** Daily mean temperature, °C; default drawn per device from [18, 24). */
  mean?: number
  /** Half the daily swing, °C; default drawn per device from [2, 5). */
  amplitude?: number
  /** Local hour of the daily maximum; default 15 (3 pm). */
  peakHour?: number
  /** Local time minus UTC, in minutes; default 0. */
  utcOffsetMinutes?: number
}

export interface Climate {
  readonly seed: number
  readonly device: number
  readonly mean: number
  readonly amplitude: number
  readonly peakHour: number
  readonly utcOffsetMinutes: number
}

const DAY_MS = 86_400_000
const HOUR_MS = 3_600_000

export function simIdentity (init: SimInit): { seed: number, device: number } {
  return { seed: init.seed ?? 1, device: init.device ?? 0 }
}

/** A device's simulated weather, seeded: temperature on a daily cycle, humidity moving against it. */
export function createClimate (init: ClimateInit = {}): Climate {
  const { seed, device } = simIdentity(init)
  return {
    seed,
    device,
    mean: init.mean ?? between(unitAt(seed, device, 'climate', 'mean'), 18, 24),
    amplitude: init.amplitude ?? between(unitAt(seed, device, 'climate', 'amplitude'), 2, 5),
    peakHour: init.peakHour ?? 15,
    utcOffsetMinutes: init.utcOffsetMinutes ?? 0
  }
}

/** Local hour of day in [0, 24) at `timeMs`. */
export function localHour (climate: Climate, timeMs: number): number {
  const local = timeMs + climate.utcOffsetMinutes * 60_000
  return (((local % DAY_MS) + DAY_MS) % DAY_MS) / HOUR_MS
}

/** The daily cycle alone, in [-1, 1]: 1 at the peak hour, -1 twelve hours later. */
export function dailyCycle (climate: Climate, timeMs: number): number {
  return Math.cos(2 * Math.PI * (localHour(climate, timeMs) - climate.peakHour) / 24)
}

/** Air temperature around the device at `timeMs`, °C, before sensor noise. */
export function ambientTemperature (climate: Climate, timeMs: number): number {
  return climate.mean + climate.amplitude * dailyCycle(climate, timeMs)
}
