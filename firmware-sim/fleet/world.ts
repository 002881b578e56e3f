import { meshError } from '../../shared/index.js'
import type { Device } from '../device.js'
import type { Sensor } from '../sensors/types.js'
import { Presence, createPresenceMotionSensor, type PresenceInit } from '../sensors/sim/presence.js'
import { Room, createRoomTemperatureSensor, type RoomInit } from '../sensors/sim/room.js'

/**
 * The simulated world of a fleet (`FleetInit.world`): rooms whose air the devices' actuators act
 * on, and whose air and visitors the devices' sensors read. A wired device reads only the world:
 * its sensors are those the world gives it (a room's temperature, a place's motion), in place of
 * the fleet's `sensors` list.
 *
 *   { rooms: [{ name: 'hall', motion: { device: 0, gapS: [20, 60], holdS: 30 }, light: { device: 1 } },
 *             { name: 'living', ambient: 15, heaterGain: 10, timeConstantS: 600,
 *               thermometer: 2, heater: { device: 3 } }] }
 *
 * - `thermometer`: the device (fleet index) whose `temperature` is the room's air (room.ts), with
 *   seeded noise. `heater`: the device whose actuator state `state` (SenML name, default `relay`)
 *   switches the room's heater: the room warms towards ambient + heaterGain while it is true.
 * - `light`: the device whose state `state` (default `light`) is the room's light (kept as the
 *   room's light history). `motion`: the device whose `motion` reads the room's seeded visits
 *   (presence.ts).
 * - An actuator acts on the room the moment its device executes a command (the device's `command`
 *   event), and the room follows the state the device starts with; a crash is a power cut: the
 *   heater and the light go off with their device.
 *
 * Deterministic under the seed: visits and sensor noise are seeded, and the room's temperature is
 * a pure function of the heater's switchings (room.ts).
 */

export interface WorldInit {
  rooms: RoomSpec[]
}

export interface RoomSpec extends RoomInit {
  name: string
  thermometer?: number
  /** Deviation of the thermometer's noise, °C (default 0.05). */
  thermometerNoise?: number
  heater?: { device: number, state?: string }
  light?: { device: number, state?: string }
  motion?: { device: number } & Omit<PresenceInit, 'seed' | 'key'>
}

export interface WorldRoom {
  readonly spec: RoomSpec
  readonly room: Room
  readonly presence: Presence | undefined
}

/** A simulated house: rooms with their temperature, heaters, lights and people passing, read and driven by the devices. */
export class World {
  readonly rooms: WorldRoom[]
  readonly #seed: number

  constructor (init: WorldInit, seed: number, devices: number, start: number) {
    this.#seed = seed
    const names = new Set<string>()
    this.rooms = init.rooms.map((spec) => {
      if (typeof spec.name !== 'string' || spec.name === '' || names.has(spec.name)) throw meshError('ERR_BAD_ARGUMENT', `world: every room needs a distinct name, got ${JSON.stringify(spec.name)}`)
      names.add(spec.name)
      for (const [field, index] of [['thermometer', spec.thermometer], ['heater', spec.heater?.device], ['light', spec.light?.device], ['motion', spec.motion?.device]] as const) {
        if (index !== undefined && (!Number.isInteger(index) || index < 0 || index >= devices)) {
          throw meshError('ERR_BAD_ARGUMENT', `world: room ${spec.name}: ${field} is device ${index}, outside 0..${devices - 1}`)
        }
      }
      const presence = spec.motion === undefined ? undefined : new Presence({ ...spec.motion, seed, key: spec.name }, start)
      return { spec, room: new Room(spec.name, spec, start), presence }
    })
  }

  /** Whether the world gives device `index` its sensors. */
  wires (index: number): boolean {
    return this.rooms.some((r) => r.spec.thermometer === index || r.spec.motion?.device === index)
  }

  /** The sensors the world gives device `index` (empty when it wires none). */
  sensorsOf (index: number): Sensor[] {
    const out: Sensor[] = []
    for (const { spec, room, presence } of this.rooms) {
      if (spec.thermometer === index) out.push(createRoomTemperatureSensor(room, { seed: this.#seed, device: index, noise: spec.thermometerNoise ?? 0.05 }))
      if (presence !== undefined && spec.motion?.device === index) out.push(createPresenceMotionSensor(presence))
    }
    return out
  }

  /** Lets device `index`'s actuators act on the rooms, from its state now on. */
  attach (index: number, device: Device, now: () => number): void {
    const targets = this.#actedOnBy(index)
    if (targets.length === 0) return
    const apply = (state: Record<string, boolean | number>, at: number): void => {
      for (const t of targets) {
        const on = state[t.state]
        if (typeof on === 'boolean') t.set(on, at)
      }
    }
    apply(device.actuatorState, now())
    device.on('command', (outcome) => { if (outcome.verdict === 'executed') apply(outcome.state, now()) })
  }

  /** Device `index` lost power: what it drives goes off. */
  powerCut (index: number, at: number): void {
    for (const t of this.#actedOnBy(index)) t.set(false, at)
  }

  #actedOnBy (index: number): Array<{ state: string, set: (on: boolean, at: number) => void }> {
    return this.rooms.flatMap(({ spec, room }) => [
      ...(spec.heater?.device === index ? [{ state: spec.heater.state ?? 'relay', set: (on: boolean, at: number) => { room.setHeater(on, at) } }] : []),
      ...(spec.light?.device === index ? [{ state: spec.light.state ?? 'light', set: (on: boolean, at: number) => { room.setLight(on, at) } }] : [])
    ])
  }
}
