import type { Command } from '../cli.js'
import { gateway } from './gateway.js'
import { device } from './device.js'
import { inspect } from './inspect.js'
import { keygen } from './keygen.js'
import { peers } from './peers.js'
import { watch } from './watch.js'
import { sign } from './sign.js'
import { sim } from './sim.js'
import { start } from './start.js'
import { experiment } from './experiment.js'
import { rules } from './rules.js'

export const commands: Command[] = [keygen, sign, inspect, device, gateway, peers, watch, sim, start, experiment, rules]
