/**
 * A preload (`node --import dist/test/adversarial/loop-monitor.js …`) that reports the event-loop
 * delay of any node program, such as the `iotmesh` CLI, on stderr every 250 ms: one line
 * `iotmesh-loop {"t", "p99", "max"}` (wall ms; delays in ms beyond the 5 ms resolution). A loop
 * that never yields (a microtask loop starves timers) shows as lines that stop coming.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks'

const RESOLUTION_MS = 5
const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
histogram.enable()
const ms = (ns: number): number => Math.max(0, Math.round((ns / 1e6 - RESOLUTION_MS) * 100) / 100)
setInterval(() => {
  process.stderr.write(`iotmesh-loop ${JSON.stringify({ t: Date.now(), p99: ms(histogram.percentile(99)), max: ms(histogram.max) })}\n`)
  histogram.reset()
}, 250).unref()
