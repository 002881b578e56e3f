import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { GpioOutput, createActuator, driveGpio, parseActuatorList, parseGpioLine } from '../../firmware-sim/index.js'
import { codeOf, tempDir } from './support.js'

/**
 * GPIO outputs (firmware-sim/commands/gpio.ts) against a fake `gpioset`: a script that answers
 * `--version` as libgpiod 1.x or 2.x would, logs the arguments of every line it is asked to hold,
 * and holds it (runs) until it is sent SIGTERM, as the real tool does. The chip is a file under a
 * fake root's /dev, as the Linux sensors read a fake /sys. What is checked: the arguments for each
 * libgpiod generation, one holder at a time (the old one gone before the new one starts), the
 * initial state, release on close, and absent or busy hardware reported, never thrown.
 */

async function fakeGpio (version: string, behaviour: 'hold' | 'busy' = 'hold'): Promise<{ root: string, gpioset: string, log: () => Promise<string[]> }> {
  const dir = await tempDir()
  const root = join(dir, 'root')
  await mkdir(join(root, 'dev'), { recursive: true })
  await writeFile(join(root, 'dev', 'gpiochip0'), '')
  const logFile = join(dir, 'gpio.log')
  await writeFile(logFile, '')
  const gpioset = join(dir, 'gpioset')
  await writeFile(gpioset, [
    '#!/bin/sh',
    `if [ "$1" = "--version" ]; then echo "gpioset (libgpiod) v${version}"; exit 0; fi`,
    behaviour === 'busy' ? 'echo "gpioset: error setting the GPIO line values: Device or resource busy" >&2; exit 1' : '',
    `echo "start $*" >> ${logFile}`,
    `trap 'echo "exit $*" >> ${logFile}; exit 0' TERM`,
    'while :; do sleep 0.02; done'
  ].join('\n'))
  await chmod(gpioset, 0o755)
  return { root, gpioset, log: async () => (await readFile(logFile, 'utf8')).split('\n').filter((l) => l !== '') }
}

describe('GPIO outputs through libgpiod\'s gpioset', () => {
  it('libgpiod 1.x: a relay holds its line at the initial state, then at each new one; one holder at a time; released on close', async () => {
    const fake = await fakeGpio('1.6.3')
    const warnings: Error[] = []
    const relay = driveGpio(createActuator('relay'), parseGpioLine('gpiochip0:17'), { root: fake.root, gpioset: fake.gpioset, onWarning: (e) => warnings.push(e) })
    onTestFinished(async () => { await relay.close?.() })
    await new Promise((resolve) => setTimeout(resolve, 300))
    relay.apply(relay.plan('relay/set', { on: true }))
    await new Promise((resolve) => setTimeout(resolve, 300))
    relay.apply(relay.plan('relay/set', { on: false }))
    await new Promise((resolve) => setTimeout(resolve, 300))
    await relay.close?.()
    expect(await fake.log()).toEqual([
      'start --mode=signal gpiochip0 17=0', 'exit --mode=signal gpiochip0 17=0',
      'start --mode=signal gpiochip0 17=1', 'exit --mode=signal gpiochip0 17=1',
      'start --mode=signal gpiochip0 17=0', 'exit --mode=signal gpiochip0 17=0'
    ])
    expect(warnings).toEqual([])
  })

  it('libgpiod 2.x and an active-low line: --chip and --active-low', async () => {
    const fake = await fakeGpio('2.1')
    const out = new GpioOutput(parseGpioLine('gpiochip0:27:active-low'), { root: fake.root, gpioset: fake.gpioset })
    onTestFinished(async () => { await out.close() })
    expect(out.present).toBe(true)
    await out.set(true)
    await out.close()
    expect(await fake.log()).toEqual(['start --chip gpiochip0 --active-low 27=1', 'exit --chip gpiochip0 --active-low 27=1'])
  })

  it('absent hardware is reported once and nothing is driven; a busy line is a warning naming it; the actuator\'s state changes either way', async () => {
    const fake = await fakeGpio('1.6.3')
    const warnings: Error[] = []
    const absent = driveGpio(createActuator('valve'), parseGpioLine('gpiochip4:3'), { root: fake.root, gpioset: fake.gpioset, onWarning: (e) => warnings.push(e) })
    absent.apply(absent.plan('valve/set', { open: true }))
    expect(absent.state()).toEqual({ valve: true })
    expect(warnings.map((w) => w.message)).toEqual([expect.stringMatching(/gpiochip4 is not there .*runs simulated/)])
    expect(await fake.log()).toEqual([])

    const busy = await fakeGpio('1.6.3', 'busy')
    const failures: Error[] = []
    const out = new GpioOutput(parseGpioLine('gpiochip0:5'), { root: busy.root, gpioset: busy.gpioset, onWarning: (e) => failures.push(e) })
    await out.set(true)
    expect(failures.map((w) => w.message)).toEqual([expect.stringMatching(/gpiochip0:5: .* failed \(1\): .*Device or resource busy/)])

    const missingTool = new GpioOutput(parseGpioLine('gpiochip0:5'), { root: busy.root, gpioset: join(busy.root, 'no-such-gpioset'), onWarning: (e) => failures.push(e) })
    expect(missingTool.present).toBe(false)
    expect(failures.at(-1)?.message).toMatch(/does not run \(install libgpiod's tools/)
  })

  it('--actuators names a line per actuator; a thermostat drives none; bad lines are refused', () => {
    expect(parseActuatorList('relay=gpiochip0:17,light,valve=gpiochip1:4:active-low')).toEqual([
      { name: 'relay', gpio: { chip: 'gpiochip0', offset: 17, activeLow: false } },
      { name: 'light' },
      { name: 'valve', gpio: { chip: 'gpiochip1', offset: 4, activeLow: true } }
    ])
    for (const bad of ['thermostat=gpiochip0:1', 'relay=gpio17', 'relay=gpiochip0:', 'relay=/sys/class/gpio/gpio17']) {
      expect(codeOf(() => parseActuatorList(bad)), bad).toBe('ERR_BAD_ARGUMENT')
    }
  })
})
