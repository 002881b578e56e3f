import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import { expect, it, onTestFinished } from 'vitest'
import { parse, type Io } from '../../bin/cli.js'
import { cmd } from '../../bin/commands/cmd.js'
import { Commanders, isMeshError, onlineStatus, statusTopic } from '../../shared/index.js'
import { saveKeyFile } from '../../shared/node.js'
import { describeNet } from '../helpers/netns.js'
import { startCommandDevice } from './command-device.js'
import { deviceToken, mqttUrl, seededKeys, startGateway } from './support.js'

/**
 * `iotmesh cmd DEVICE ACTION --via broker` (bin/commands/cmd.ts) against the gateway's secure
 * embedded broker: the CLI signs in with its key as devices do, reads the target's status for its
 * key, publishes the command, reads the result. The gateway forwards the command only when the
 * CLI's key is in its commanders file.
 */

const owner = seededKeys(91)
const stranger = seededKeys(92)
const alice = seededKeys(93)

async function run (argv: string[]): Promise<{ code: number, out: string, err: string }> {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  let out = ''
  let err = ''
  stdout.on('data', (c: Buffer) => { out += c.toString() })
  stderr.on('data', (c: Buffer) => { err += c.toString() })
  const io: Io = { stdout, stderr, stdin: Readable.from([]), env: {}, signal: new AbortController().signal }
  let code: number
  try {
    code = await cmd.run(parse(cmd, argv), io)
  } catch (e) {
    if (!isMeshError(e)) throw e
    err += `${e.code}: ${e.message}\n`
    code = -1
  }
  return { code, out, err }
}

describeNet('iotmesh cmd --via broker through the gateway', () => {
  it('a commander of the gateway commands a device through the secure broker; a stranger\'s command is never forwarded', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'iotmesh-cmd-'))
    onTestFinished(async () => { await rm(dir, { recursive: true, force: true }) })
    await saveKeyFile(join(dir, 'owner.key'), owner)
    await saveKeyFile(join(dir, 'stranger.key'), stranger)
    const gateway = await startGateway({
      allowAnonymous: false, credentials: { grafana: 'grafana-secret-1' },
      commanders: new Commanders([{ id: owner.id, publicKey: owner.publicKey, name: 'owner', actions: ['relay/#'] }])
    })
    const url = mqttUrl(gateway)
    const device = await startCommandDevice(url, alice, [{ ...owner, actions: ['relay/#'] }, { ...stranger, actions: ['relay/#'] }], {
      mqtt: { clientId: 'alice-1', username: alice.id, password: deviceToken(alice, 'alice-1') }
    })
    await device.client.client.publishAsync(statusTopic('default', alice.id), onlineStatus({ publicKey: alice.publicKey }), { qos: 1, retain: true })

    const ok = await run([alice.id, 'relay/set', '{"on": true}', '--key', join(dir, 'owner.key'), '--via', 'broker', '--broker', url, '--timeout', '5'])
    expect(ok.err).toBe('')
    expect(ok.code).toBe(0)
    expect(ok.out).toContain(`${alice.id} relay/set: ok`)
    expect(device.executor.state()).toMatchObject({ relay: true })

    // The device would obey the stranger. Signed in with its key, the stranger (no commander of the gateway) may not read statuses.
    const unread = await run([alice.id, 'relay/set', '{"on": false}', '--key', join(dir, 'stranger.key'), '--via', 'broker', '--broker', url, '--timeout', '1'])
    expect(unread.err).toMatch(/^ERR_NOT_AUTHORIZED: cannot read/)
    // Signed in as a user who reads everything, it publishes its command: the gateway does not forward it (command_unknown_issuer).
    const refused = await run([alice.id, 'relay/set', '{"on": false}', '--key', join(dir, 'stranger.key'), '--via', 'broker', '--broker', url, '--timeout', '1', '--username', 'grafana', '--password', 'grafana-secret-1'])
    expect(refused.code).toBe(3) // no verified result
    expect(gateway.counters.dropped.command_unknown_issuer).toBe(1)
    expect(device.executor.state()).toMatchObject({ relay: true })
    expect(device.executor.counters.executed).toBe(1)
  })
})
