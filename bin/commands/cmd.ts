import { readFile } from 'node:fs/promises'
import { connect, type MqttClient } from 'mqtt'
import { MeshNode } from '../../mesh/index.js'
import {
  DEFAULT_FLEET, checkAction, cmdTopic, decodeCommand, decodeResult, encodeCommand, isDeviceId, isMeshError, meshError, parseStatus, resultTopic,
  signDeviceToken, statusTopic, systemRandom, topicFilters, verifySigned, MAX_COMMAND_TTL_S, DEFAULT_COMMAND_TTL_S,
  type CommandResult, type DeviceId, type KeyPair, type PublicKey
} from '../../shared/index.js'
import { readKeyFlag } from '../roster-flags.js'
import { clientLinks, deadline, exitForSignal, numberFlag, onFileArgument, write, type Command, type Io } from '../cli.js'

/** Exit status when no verified result came back (timeout, no route): the command may or may not have run. */
export const EXIT_NO_RESULT = 3

export const cmd: Command = {
  name: 'cmd',
  summary: 'Send one signed command to a device and print its verified result',
  usage: 'iotmesh cmd DEVICE ACTION [ARGS-JSON] --key FILE [--via mesh|broker] [--timeout S] [--ttl S] [--json] [--fleet F] [--peers LIST] [--no-mdns] [--credential FILE] [--broker URL] [--username U --password P]',
  help: [
    ['DEVICE', 'the target: its device id, or its name (as it announces itself)'],
    ['ACTION', 'e.g. relay/set, light/set, state/get'],
    ['ARGS-JSON', 'the arguments as JSON, e.g. \'{"on": true}\' (CBOR on the wire)'],
    ['--key FILE', 'the issuer\'s key file (iotmesh keygen): the target\'s commanders list must allow this key the action'],
    ['--via V', 'mesh (default: peer to peer, no broker) or broker (MQTT, through the gateway)'],
    ['--timeout S', 'seconds to wait for the result (default: the command\'s lifetime)'],
    ['--ttl S', `the command's lifetime in seconds, 0 < S ≤ ${MAX_COMMAND_TTL_S} (default ${DEFAULT_COMMAND_TTL_S}): a device refuses it after that (ERR_EXPIRED)`],
    ['--json', 'print the result as one JSON object'],
    ['--fleet F', 'the fleet (default "default")'],
    ['--peers LIST', 'mesh: host:port of devices to link to (networks without multicast)'],
    ['--no-mdns', 'mesh: do not use mDNS/DNS-SD: link to the --peers given, and to no peer they name'],
    ['--credential FILE', 'mesh: the issuer\'s enrollment credential (iotmesh fleet enroll), shown at the link handshake: a fleet closed by credential links only with it, ' +
      'and a grant to a role (iotmesh fleet grant --to role:R) needs it'],
    ['--broker URL', 'broker: the MQTT broker (default mqtt://localhost:1883)'],
    ['--username U', 'broker: an MQTT user (default: sign in with the key, as devices do)'],
    ['--password P', 'broker: its password (prefer IOTMESH_PASSWORD)'],
    ['exit status', `0: ok; 1: refused (its code printed); 2: usage; ${EXIT_NO_RESULT}: no verified result in time (ERR_TIMEOUT, ERR_NO_ROUTE): it may or may not have run; 130 / 143: stopped by Ctrl-C / SIGTERM before a result came (as for ${EXIT_NO_RESULT})`]
  ],
  options: {
    key: { type: 'string' }, via: { type: 'string' }, timeout: { type: 'string' }, ttl: { type: 'string' }, json: { type: 'boolean' }, fleet: { type: 'string' },
    peers: { type: 'string' }, 'no-mdns': { type: 'boolean' }, credential: { type: 'string' }, broker: { type: 'string' }, username: { type: 'string' }, password: { type: 'string' }
  },
  allowPositionals: 3,
  async run ({ values, positionals }, io) {
    const [device, actionText, argsText] = positionals
    if (device === undefined || actionText === undefined) throw meshError('ERR_BAD_ARGUMENT', 'usage: iotmesh cmd DEVICE ACTION [ARGS-JSON] --key FILE')
    if (typeof values.key !== 'string') throw meshError('ERR_BAD_ARGUMENT', '--key FILE is required: a command is signed by its issuer, whom the device must allow')
    const action = checkArgument(() => checkAction(actionText))
    const args = argsText === undefined ? undefined : checkArgument(() => JSON.parse(argsText) as unknown, 'ARGS-JSON is not valid JSON')
    const via = (values.via as string | undefined) ?? 'mesh'
    if (via !== 'mesh' && via !== 'broker') throw meshError('ERR_BAD_ARGUMENT', `--via must be mesh or broker, got ${JSON.stringify(via)}`)
    const ttl = numberFlag(values, 'ttl', DEFAULT_COMMAND_TTL_S, 0.001, MAX_COMMAND_TTL_S)
    const timeoutMs = numberFlag(values, 'timeout', ttl, 0.001, 3600) * 1000
    const fleet = (values.fleet as string | undefined) ?? DEFAULT_FLEET
    const keys = await readKeyFlag(values.key)
    const timeout = deadline(io.signal, timeoutMs)
    const signal = timeout.signal
    const sign = (target: DeviceId): Uint8Array => checkArgument(() => encodeCommand({
      keys, target, action, id: Math.floor(Date.now() * 1000), ttl, ...(args === undefined ? {} : { args })
    }))
    let result: CommandResult
    try {
      result = via === 'mesh'
        ? await overMesh(values, fleet, keys, device, sign, timeoutMs, signal)
        : await overBroker(values, io, fleet, keys, device, sign, signal)
    } catch (err) {
      if (isMeshError(err) && ['ERR_TIMEOUT', 'ERR_NO_ROUTE', 'ERR_ABORTED'].includes(err.code)) {
        const code = err.code === 'ERR_ABORTED' && !io.signal.aborted ? 'ERR_TIMEOUT' : err.code
        if (values.json === true) write(io.stdout, JSON.stringify({ device, action, via, status: code, message: err.message }))
        write(io.stderr, `iotmesh cmd: ${err.message} (${code})`)
        return io.signal.aborted ? exitForSignal(io.signal) : EXIT_NO_RESULT // stopped by Ctrl-C or SIGTERM: 128 + the signal
      }
      throw err
    } finally {
      timeout.clear()
    }
    const state = result.state === undefined ? undefined : Object.fromEntries(result.state)
    if (values.json === true) {
      write(io.stdout, JSON.stringify({ device: result.target, action, via, id: result.id, status: result.status, state: state ?? null, answeredAt: result.time }))
    } else {
      write(io.stdout, `${result.target} ${action}: ${result.status}${state === undefined ? '' : `  ${Object.entries(state).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ')}`}`)
    }
    return result.status === 'ok' ? 0 : 1
  }
}

function checkArgument<T> (fn: () => T, prefix?: string): T {
  try {
    return fn()
  } catch (err) {
    throw meshError('ERR_BAD_ARGUMENT', `${prefix === undefined ? '' : `${prefix}: `}${(err as Error).message}`, { cause: err })
  }
}

/** Joins the mesh as a node of its own, finds the target (by id, or by name among the peers it discovers), sends, waits. */
async function overMesh (
  values: Record<string, unknown>, fleet: string, keys: KeyPair, device: string, sign: (target: DeviceId) => Uint8Array, timeoutMs: number, signal: AbortSignal
): Promise<CommandResult> {
  const peers = typeof values.peers === 'string' ? values.peers.split(',').map((p) => p.trim()).filter((p) => p.length > 0) : []
  if (values['no-mdns'] === true && peers.length === 0) throw meshError('ERR_BAD_ARGUMENT', '--no-mdns needs --peers: with neither, no device can be found')
  const path = values.credential
  const credential = typeof path === 'string' ? await onFileArgument(path, '--credential', async () => new Uint8Array(await readFile(path))) : undefined
  const node = new MeshNode({
    name: `iotmesh-cmd-${keys.id.slice(0, 6)}`, fleet, ...clientLinks(values, peers), announceLinks: 0, credential
  }, { keys })
  await node.start({ signal })
  try {
    const target = isDeviceId(device) ? device : await byName(node, device, signal)
    return await node.command(sign(target), { timeoutMs, signal })
  } finally {
    await node.stop()
  }
}

async function byName (node: MeshNode, name: string, signal: AbortSignal): Promise<DeviceId> {
  for (;;) {
    const found = node.peers().find((p) => p.name === name && p.id !== undefined)
    if (found?.id !== undefined) return found.id
    if (signal.aborted) throw meshError('ERR_NO_ROUTE', `no device named ${JSON.stringify(name)} found on the mesh; give its device id`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/**
 * Through the broker: reads the target's retained status (its key, to check the result; its name,
 * to find it by name), publishes the signed command on iotmesh/<fleet>/<id>/cmd/<action> and waits
 * for the result on iotmesh/<fleet>/<id>/result/<issuer>.
 */
async function overBroker (
  values: Record<string, unknown>, io: Io, fleet: string, keys: KeyPair, device: string, sign: (target: DeviceId) => Uint8Array, signal: AbortSignal
): Promise<CommandResult> {
  const url = (values.broker as string | undefined) ?? 'mqtt://localhost:1883'
  const clientId = `iotmesh-cmd-${keys.id.slice(0, 8)}-${Date.now().toString(36)}`
  const password = (values.password as string | undefined) ?? io.env.IOTMESH_PASSWORD
  const auth = typeof values.username === 'string'
    ? { username: values.username, ...(password === undefined ? {} : { password }) }
    : { username: keys.id, password: signDeviceToken({ keys, clientId, fleet, now: Date.now(), cti: systemRandom.bytes(8) }) }
  const client = connect(url, { clientId, reconnectPeriod: 0, connectTimeout: 10_000, clean: true, ...auth })
  client.on('error', () => {})
  try {
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => { resolve() })
      client.once('error', (err) => { reject(meshError(/not authorized|bad user/i.test(err.message) ? 'ERR_NOT_AUTHORIZED' : 'ERR_LINK_CLOSED', `${url}: ${err.message}`)) })
      client.once('close', () => { reject(meshError('ERR_LINK_CLOSED', `${url}: the connection closed before CONNACK`)) })
      signal.addEventListener('abort', () => { reject(meshError('ERR_TIMEOUT', `${url}: no CONNACK in time`)) }, { once: true })
    })
    const { id, publicKey } = await statusOf(client, fleet, device, signal)
    return await sendAndWait(client, fleet, keys, id, publicKey, sign(id), signal)
  } finally {
    client.end(true)
  }
}

async function statusOf (client: MqttClient, fleet: string, device: string, signal: AbortSignal): Promise<{ id: DeviceId, publicKey: PublicKey }> {
  const filter = isDeviceId(device) ? statusTopic(fleet, device) : topicFilters.status(fleet)
  return await new Promise((resolve, reject) => {
    const onMessage = (topic: string, payload: Buffer): void => {
      const id = topic.split('/')[2] as DeviceId
      const parsed = parseStatus(new Uint8Array(payload), id)
      const status = parsed.ok ? parsed.status : undefined
      if (status?.state !== 'online') return // offline (its last will) or cleared: it would not get the command
      if (!isDeviceId(device) && status.name !== device) return
      client.off('message', onMessage)
      resolve({ id, publicKey: status.publicKey })
    }
    client.on('message', onMessage)
    signal.addEventListener('abort', () => {
      client.off('message', onMessage)
      reject(meshError('ERR_NO_ROUTE', `no online status of ${JSON.stringify(device)} on the broker: it is offline, never connected, or this client may not read it`))
    }, { once: true })
    client.subscribe(filter, { qos: 1 }, (err) => { if (err != null) reject(meshError('ERR_NOT_AUTHORIZED', `cannot read ${filter}: ${err.message}`)) })
  })
}

async function sendAndWait (
  client: MqttClient, fleet: string, keys: KeyPair, target: DeviceId, publicKey: PublicKey, signed: Uint8Array, signal: AbortSignal
): Promise<CommandResult> {
  const { id, action } = decodeCommand(signed)
  const topic = resultTopic(fleet, target, keys.id)
  const result = new Promise<CommandResult>((resolve, reject) => {
    const onMessage = (t: string, payload: Buffer): void => {
      if (t !== topic) return
      try {
        const r = decodeResult(new Uint8Array(payload))
        if (r.id !== id || r.issuer !== keys.id) return
        verifySigned(r, target, publicKey)
        client.off('message', onMessage)
        resolve(r)
      } catch { /* not a result of ours, or forged: keep waiting */ }
    }
    client.on('message', onMessage)
    signal.addEventListener('abort', () => {
      client.off('message', onMessage)
      reject(meshError('ERR_TIMEOUT', `no verified result from ${target} in time; the command may or may not have run`))
    }, { once: true })
  })
  await client.subscribeAsync(topic, { qos: 1 })
  await client.publishAsync(cmdTopic(fleet, target, action), Buffer.from(signed), { qos: 1 })
  return await result
}
