import { meshError } from '../../../shared/index.js'
import { normalAt, quantize } from '../../random.js'
import type { Sensor } from '../types.js'
import { simSensor } from './base.js'

/**
 * A simulated room that actuators act on (issue 12): a heater warms it, a light is on or off in
 * it. Its air temperature is Newton's law of cooling towards an equilibrium that the heater
 * raises: with the heater off the room relaxes towards `ambient`, with it on towards
 * `ambient + heaterGain`, with time constant `timeConstantS`:
 *
 *   T(t) = Teq + (T0 − Teq) · exp(−(t − t0) / τ)        between two switchings of the heater
 *
 * The room keeps every switching (time, state) since it was made, so its temperature at any time
 * is a pure function of that history: the same switchings give the same readings, whatever the
 * sampling schedule. Times are wall-clock milliseconds, as sensors read them.
 */

export interface RoomInit {
  /** Temperature the room falls to with the heater off, °C (default 15). */
  ambient?: number
  /** How much warmer the heater makes the room at equilibrium, °C (default 10). */
  heaterGain?: number
  /** Time constant τ of the room, s (default 600: a real room; the lab uses seconds). */
  timeConstantS?: number
  /** Temperature when made, °C (default `ambient`). */
  initial?: number
}

interface Segment { start: number, from: number, heater: boolean }

/** A simulated room's temperature: relaxing towards `ambient`, or `ambient + heaterGain` with its heater on. */
export class Room {
  readonly name: string
  readonly ambient: number
  readonly heaterGain: number
  readonly tauMs: number
  readonly #segments: Segment[]
  readonly #light: Array<{ at: number, on: boolean }> = []

  constructor (name: string, init: RoomInit = {}, start = 0) {
    this.name = name
    this.ambient = init.ambient ?? 15
    this.heaterGain = init.heaterGain ?? 10
    const tauS = init.timeConstantS ?? 600
    if (!(tauS > 0) || !Number.isFinite(tauS)) throw meshError('ERR_BAD_ARGUMENT', `room ${name}: timeConstantS must be a number of seconds above 0, got ${tauS}`)
    if (!Number.isFinite(this.ambient) || !Number.isFinite(this.heaterGain)) throw meshError('ERR_BAD_ARGUMENT', `room ${name}: ambient and heaterGain must be numbers`)
    this.tauMs = tauS * 1000
    this.#segments = [{ start, from: init.initial ?? this.ambient, heater: false }]
  }

  get heater (): boolean { return this.#last().heater }
  get light (): boolean { return this.#light.at(-1)?.on ?? false }

  /** The heater switched at `at` (a time before the last switching counts as that time). No change, no record. */
  setHeater (on: boolean, at: number): void {
    const last = this.#last()
    if (last.heater === on) return
    const t = Math.max(at, last.start)
    this.#segments.push({ start: t, from: this.temperatureAt(t), heater: on })
  }

  setLight (on: boolean, at: number): void {
    if (this.light === on) return
    this.#light.push({ at: Math.max(at, this.#light.at(-1)?.at ?? at), on })
  }

  /** The light's switchings, oldest first. */
  lightHistory (): ReadonlyArray<{ at: number, on: boolean }> { return this.#light }

  /** The heater's switchings (the first entry is the room's making, heater off), oldest first. */
  heaterHistory (): ReadonlyArray<{ at: number, on: boolean }> { return this.#segments.map((s) => ({ at: s.start, on: s.heater })) }

  /** Air temperature at `t`, °C (before the room was made: its initial temperature). */
  temperatureAt (t: number): number {
    const s = this.#segmentAt(t)
    return this.#equilibrium(s) + (s.from - this.#equilibrium(s)) * Math.exp(-Math.max(0, t - s.start) / this.tauMs)
  }

  /**
   * The instants in (from, to] at which the temperature crosses `threshold` going `down` (from
   * at or above it to below) or `up` (from at or below it to above), exactly (the model is
   * monotonic between switchings).
   */
  crossings (threshold: number, direction: 'down' | 'up', from: number, to: number): number[] {
    const out: number[] = []
    this.#segments.forEach((s, i) => {
      const end = Math.min(this.#segments[i + 1]?.start ?? Infinity, to)
      const start = Math.max(s.start, from)
      if (end <= start) return
      const a = this.temperatureAt(start)
      const b = this.#valueIn(s, end)
      const crosses = direction === 'down' ? a >= threshold && b < threshold : a <= threshold && b > threshold
      if (!crosses) return
      const eq = this.#equilibrium(s)
      const t = s.start - this.tauMs * Math.log((threshold - eq) / (s.from - eq))
      if (t > start && t <= end) out.push(t)
    })
    return out
  }

  #valueIn (s: Segment, t: number): number {
    const eq = this.#equilibrium(s)
    return eq + (s.from - eq) * Math.exp(-Math.max(0, t - s.start) / this.tauMs)
  }

  #equilibrium (s: Segment): number { return this.ambient + (s.heater ? this.heaterGain : 0) }

  #last (): Segment { return this.#segments[this.#segments.length - 1] as Segment }

  #segmentAt (t: number): Segment {
    for (let i = this.#segments.length - 1; i > 0; i--) if ((this.#segments[i] as Segment).start <= t) return this.#segments[i] as Segment
    return this.#segments[0] as Segment
  }
}

export interface RoomTemperatureInit {
  /** The fleet's seed and the device's index: the noise's stream. */
  seed?: number
  device?: number
  /** Deviation of the sensor noise, °C (default 0.05). */
  noise?: number
  /** Resolution of a reading, °C (default 0.1). */
  resolution?: number
}

/** `temperature` in Cel: the room's air temperature, plus noise. */
export function createRoomTemperatureSensor (room: Room, init: RoomTemperatureInit = {}): Sensor {
  const noise = init.noise ?? 0.05
  const resolution = init.resolution ?? 0.1
  return simSensor('temperature', ['temperature'], (now) => {
    const v = room.temperatureAt(now) + noise * normalAt(init.seed ?? 1, init.device ?? 0, 'room-temperature', now)
    return [{ n: 'temperature', u: 'Cel', v: quantize(v, resolution) }]
  })
}
