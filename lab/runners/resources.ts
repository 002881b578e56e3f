import type { MeshNode } from '../../mesh/index.js'
import type { Fleet } from '../../firmware-sim/index.js'
import type { ResourceSample } from '../observations.js'
import { MqttTap, type Traffic } from './mqtt-tap.js'

/**
 * Resource samples of a simulated fleet (observations.ts `ResourceSample`). The whole fleet, its
 * gateway and its broker run in this one process, so CPU time and resident memory cannot be told
 * apart by role: they are reported once, under the role `devices`, for the whole process, and
 * the `devices` traffic is the devices' own:
 *
 * - mesh: every device node's link bytes (mesh/node.ts `counters.bytesIn/bytesOut`, handshakes
 *   excluded) and messages (DATA `framesIn/framesOut` plus control `controlIn/controlOut`),
 *   relaying for others included. A crashed device's node keeps the counts it had.
 * - MQTT: the devices' connections to the broker, bytes and packets (runners/mqtt-tap.ts).
 *
 * The broker's and the gateway's traffic are not sampled as roles of their own: their CPU and
 * memory are inside the `devices` figures and cannot be separated from them in one process.
 */
export class ResourceSampler {
  readonly samples: ResourceSample[] = []
  readonly #fleet: Fleet
  readonly #now: () => number
  readonly #nodes = new Map<MeshNode, Traffic>()
  readonly #tap: MqttTap | undefined
  #timer: NodeJS.Timeout | undefined

  /** Make it before the fleet starts, so that the devices' MQTT connections are seen (`mqtt`: the fleet uses a broker). */
  constructor (fleet: Fleet, components: { now: () => number, mqtt: boolean }) {
    this.#fleet = fleet
    this.#now = components.now
    this.#tap = components.mqtt ? new MqttTap(() => fleet.gateway?.ports.mqtt) : undefined
  }

  get tap (): MqttTap | undefined { return this.#tap }

  /** Samples every `ms` from now on (and once at once). */
  start (ms = 1000): void {
    if (this.#timer !== undefined) return
    this.sample()
    this.#timer = setInterval(() => { this.sample() }, ms)
    this.#timer.unref()
  }

  /** Takes one sample now (also before a crash, so the dying node's last counts are kept). */
  sample (): ResourceSample {
    const cpu = process.cpuUsage()
    const total: Traffic = { bytesIn: 0, bytesOut: 0, framesIn: 0, framesOut: 0 }
    for (const sim of this.#fleet.devices) {
      const node = sim.device?.node
      if (node === undefined) continue
      const c = node.counters
      this.#nodes.set(node, { bytesIn: c.bytesIn, bytesOut: c.bytesOut, framesIn: c.framesIn + c.controlIn, framesOut: c.framesOut + c.controlOut })
    }
    for (const t of this.#nodes.values()) add(total, t)
    if (this.#tap !== undefined) add(total, this.#tap.devices())
    const sample: ResourceSample = {
      at: this.#now(),
      role: 'devices',
      cpuMs: (cpu.user + cpu.system) / 1000,
      rssBytes: process.memoryUsage.rss(),
      ...total
    }
    this.samples.push(sample)
    return sample
  }

  /** The samples in [from, to]. */
  between (from: number, to: number): ResourceSample[] {
    return this.samples.filter((s) => s.at >= from && s.at <= to)
  }

  stop (): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
    this.#tap?.stop()
  }
}

function add (to: Traffic, t: Traffic): void {
  to.bytesIn += t.bytesIn
  to.bytesOut += t.bytesOut
  to.framesIn += t.framesIn
  to.framesOut += t.framesOut
}
