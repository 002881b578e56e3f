import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import { describe, expect, it, onTestFinished } from 'vitest'
import { EXIT_USAGE, parse, type Io } from '../../bin/cli.js'
import { gateway as command } from '../../bin/commands/gateway.js'
import { isMeshError, publicKeyText, setTopic } from '../../shared/index.js'
import { saveKeyFile } from '../../shared/node.js'
import { describeNet } from '../helpers/netns.js'
import { watchOutput } from '../helpers/cli.js'
import { startCommandDevice } from './command-device.js'
import { connectClient, connectDevice, makeFrame, seededKeys } from './support.js'

/** `iotmesh gateway --commanders FILE --set-users LIST --rules FILE` (issue 12): flags, banner, and the central rules firing a command. */

/** As bin/main.ts runs a command: a MeshError becomes its message on stderr and its exit status. */
async function runCommand (argv: string[], signal: AbortSignal = new AbortController().signal): Promise<{ code: Promise<number>, out: ReturnType<typeof watchOutput>, err: ReturnType<typeof watchOutput> }> {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  const io: Io = { stdout, stderr, stdin: Readable.from([]), env: {}, signal }
  const out = watchOutput(stdout)
  const err = watchOutput(stderr)
  const code = (async () => {
    try {
      const args = parse(command, argv)
      if (args.values.help === true) {
        stdout.write(command.help.map(([flag, text]) => `${flag}  ${text}`).join('\n'))
        return 0
      }
      return await command.run(args, io)
    } catch (e) {
      if (!isMeshError(e)) throw e
      stderr.write(`iotmesh gateway: ${e.message} (${e.code})\n`)
      return e.code === 'ERR_BAD_ARGUMENT' ? EXIT_USAGE : 1
    }
  })()
  return { code, out, err }
}

async function tempHome (): Promise<string> {
  const home = await mkdtemp(join(tmpdir(), 'iotmesh-gwcmd-'))
  onTestFinished(async () => { await rm(home, { recursive: true, force: true }) })
  return home
}

const gatewayKeys = seededKeys(70)
const owner = seededKeys(71)
const hall = seededKeys(72) // a motion sensor
const lamp = seededKeys(73) // a light

describe('iotmesh gateway: command flags', () => {
  it('--help lists --commanders, --set-users and --rules', async () => {
    const run = await runCommand(['--help'])
    expect(await run.code).toBe(0)
    for (const flag of ['--commanders FILE', '--set-users LIST', '--rules FILE']) expect(run.out.text()).toContain(flag)
  })

  it('bad files and lists are usage errors naming the flag', async () => {
    const home = await tempHome()
    const badRules = join(home, 'rules.yaml')
    await writeFile(badRules, 'rules:\n  - name: r\n    when: { all: [ { device: nobody, sensor: motion, equals: true } ] }\n    then: [ { device: nobody, action: light/set } ]\n')
    const badCommanders = join(home, 'commanders.json')
    await writeFile(badCommanders, JSON.stringify({ commanders: [{ key: 'short', actions: ['#'] }] }))
    const users = join(home, 'users.json')
    await writeFile(users, JSON.stringify({ ha: 'home-assistant-secret' }))
    for (const [args, flag] of [
      [['--rules', badRules], '--rules'],
      [['--rules', join(home, 'missing.yaml')], '--rules'],
      [['--commanders', badCommanders], '--commanders'],
      [['--commanders', join(home, 'missing.json')], '--commanders'],
      [['--set-users', 'ha'], '--set-users'], // no --users
      [['--users', users, '--set-users', 'ha,nobody'], '--set-users'],
      [['--broker', 'mqtt://127.0.0.1:1', '--set-users', 'ha'], '--set-users']
    ] as Array<[string[], string]>) {
      const run = await runCommand(args)
      expect(await run.code, args.join(' ')).toBe(2)
      expect(run.err.text()).toContain('ERR_BAD_ARGUMENT')
      expect(run.err.text()).toContain(flag)
    }
  })
})

describeNet('iotmesh gateway --rules: the central baseline', () => {
  it('runs the rule file on verified readings and sends its command through the broker, signed with --key; prints the result', async () => {
    const home = await tempHome()
    const key = join(home, 'gateway.key')
    await saveKeyFile(key, gatewayKeys)
    const rules = join(home, 'rules.yaml')
    await writeFile(rules, [
      'devices:', `  hall: ${hall.id}`, `  lamp: ${lamp.id}`,
      'rules:',
      '  - name: hall-light',
      '    when: { all: [ { device: hall, sensor: motion, equals: true } ] }',
      '    then: [ { device: lamp, action: light/set, args: { on: true, level: 80 } } ]'
    ].join('\n'))
    const commanders = join(home, 'commanders.json')
    await writeFile(commanders, JSON.stringify({ commanders: [{ name: 'owner', key: publicKeyText(owner.publicKey), actions: ['light/#'] }] }))
    const users = join(home, 'users.json')
    await writeFile(users, JSON.stringify({ ha: 'home-assistant-secret' }))
    const controller = new AbortController()
    onTestFinished(() => { controller.abort() })
    const run = await runCommand(['--mqtt-port', '0', '--ws-port', 'off', '--http-port', '0', '--host', '127.0.0.1', '--no-mesh', '--memory', '--allow-anonymous',
      '--key', key, '--rules', rules, '--commanders', commanders, '--users', users, '--set-users', 'ha'], controller.signal)
    const [, mqttPort] = await run.out.match(/^mqtt {7}mqtt:\/\/127\.0\.0\.1:(\d+)$/m)
    expect(run.out.text()).toContain(`commands   signed as ${gatewayKeys.id}; forwarded on the broker from 1 commanders (--commanders) and the gateway only`)
    expect(run.out.text()).toContain('set        ha may publish iotmesh/default/<id>/set/<actuator>')
    expect(run.out.text()).toContain(`rules      1 rules from ${rules}, run at the gateway, commands through the broker`)
    const url = `mqtt://127.0.0.1:${mqttPort}`

    const light = await startCommandDevice(url, lamp, [{ ...gatewayKeys, actions: ['light/set'] }])
    await connectDevice(url, lamp, { status: true, mqtt: { clientId: 'lamp-status' } }) // its key, from its retained status
    const sensor = await connectDevice(url, hall)
    await sensor.publishFrame(1, makeFrame(hall, 1, { records: [{ n: 'motion', vb: false }] }))
    await sensor.publishFrame(2, makeFrame(hall, 2, { records: [{ n: 'motion', vb: true }] }))
    await run.out.match(/^iotmesh gateway: rule "hall-light": light\/set on lamp → ok \(\d+ ms\)$/m)
    expect(light.executor.state()).toMatchObject({ light: true, 'light/level': 80 })
    expect(light.outcomes.map((o) => o.command?.issuer)).toEqual([gatewayKeys.id])

    // The same gateway takes set/ from the user it was told to.
    const ha = await connectClient(url, { username: 'ha', password: 'home-assistant-secret' })
    const next = light.nextOutcome()
    await ha.client.publishAsync(setTopic('default', lamp.id, 'light'), 'OFF', { qos: 1 })
    expect((await next).verdict).toBe('executed')
    expect(light.executor.state()).toMatchObject({ light: false })

    controller.abort()
    expect(await run.code).toBe(0)
  })
})
