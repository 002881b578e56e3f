import { readFile, writeFile } from 'node:fs/promises'
import {
  configTarget, configTopic, cosign, signDeviceToken, systemRandom, generateKeyPair, isMeshError, meshError, parseFleetPolicy, signFleetConfig, verifyFleetConfig,
  type FleetPolicy, type KeyPair, type RemoteSettings
} from '../../shared/index.js'
import { connect } from 'mqtt'
import { loadKeyFile } from '../../shared/node.js'
import { MeshNode } from '../../mesh/index.js'
import { checkRemoteSettings } from '../../firmware-sim/index.js'
import { EXIT_INVALID, EXIT_OK, clientLinks, intFlag, onFileArgument, type Io, type Options } from '../cli.js'

/**
 * `iotmesh fleet config …`: owner-signed, versioned device configuration (shared/fleet-config.ts).
 *
 *   push FILE --to ID|GROUP --version N --owner-key FILE[,FILE…] [--out SIGNED]
 *     FILE is a JSON object of the settings to change (interval, sensors, actuators, rules), checked
 *     with the device configuration's own validators before anything is signed. With --out the
 *     signed configuration is written (to co-sign, or to publish later); without, it must already
 *     carry the fleet's threshold of owner signatures and is handed to the mesh (as `publish`).
 *   cosign SIGNED --owner-key FILE [--out FILE]   one more owner's signature (in place by default)
 *   check SIGNED                                   verifies it against the fleet file
 *   publish SIGNED [--peers LIST] [--no-mdns] [--timeout S]
 *     joins the mesh and hands it to the devices it links to, which spread it (handlers/config.ts)
 */

export const CONFIG_OPTIONS: Options = { to: { type: 'string' }, version: { type: 'string' }, broker: { type: 'string' }, username: { type: 'string' }, password: { type: 'string' } }

export const CONFIG_HELP: Array<[string, string]> = [
  ['config push FILE', '--to ID|GROUP --version N --owner-key FILE[,FILE…] [--out SIGNED]: signs the settings in FILE (JSON: interval, sensors, actuators, rules) ' +
    'for a device or a group; writes it with --out (to co-sign), else hands it to the mesh as config publish does'],
  ['config cosign SIGNED', '--owner-key FILE [--out FILE]: adds this owner\'s signature to a signed configuration'],
  ['config check SIGNED', 'verifies a signed configuration against the fleet file; exit 1 with the code if it does not hold'],
  ['config publish SIGNED', '[--peers LIST] [--no-mdns] [--timeout S]: joins the mesh and hands a complete signed configuration to the devices it links to; with --no-mdns it links to the --peers given, and to no peer they name'],
  ['--broker URL', 'config push/publish: retain it on that MQTT broker at iotmesh/<fleet>/$config/<target> instead (the gateway needs --fleet-file); signs in with a fresh key as a device does, or as --username U --password P (prefer IOTMESH_PASSWORD)']
]

type Say = (object: Record<string, unknown>, text: string) => void

export async function fleetConfig (args: { values: Record<string, unknown>, positionals: string[], file: string, say: Say }, io: Io): Promise<number> {
  const { values, file, say } = args
  const [what, arg] = args.positionals
  const str = (name: string): string | undefined => values[name] as string | undefined
  const need = (name: string): string => {
    const v = str(name)
    if (v === undefined) throw meshError('ERR_BAD_ARGUMENT', `fleet config ${what ?? ''} needs --${name}`)
    return v
  }
  const policy = await readPolicy(file)
  if (arg === undefined) throw meshError('ERR_BAD_ARGUMENT', `fleet config ${what ?? 'push|cosign|check|publish'} FILE`)
  const readBytes = async (): Promise<Uint8Array> => await onFileArgument(arg, 'FILE', async () => new Uint8Array(await readFile(arg)))
  switch (what) {
    case 'push': {
      const text = await onFileArgument(arg, 'FILE', async () => await readFile(arg, 'utf8'))
      let settings: RemoteSettings
      try { settings = JSON.parse(text) as RemoteSettings } catch (err) { throw meshError('ERR_BAD_ARGUMENT', `${arg} is not JSON: ${(err as Error).message}`) }
      const version = intFlag(values, 'version', 0, 1, 0xffff_ffff)
      if (values.version === undefined) throw meshError('ERR_BAD_ARGUMENT', 'fleet config push needs --version N (higher than the one the devices hold)')
      const target = configTarget(need('to'))
      const owners = await Promise.all(need('owner-key').split(',').map(async (path) => await ownerKey(path.trim())))
      const bytes = signFleetConfig({ policy, target, version, settings, owners })
      checkRemoteSettings(verifyFleetConfig(bytes, { ...policy, threshold: 1 }).settings, arg) // what the devices will check, refused here first
      const out = str('out')
      if (out !== undefined) return await finish(bytes, policy, out, say)
      verify(bytes, policy) // complete, or refused here with its code (ERR_TOO_FEW_OWNERS: give --out and co-sign)
      return values.broker === undefined ? await publish(bytes, policy, values, say, io) : await retain(bytes, policy, values, say, io)
    }
    case 'cosign': {
      const bytes = cosign(await readBytes(), policy, await ownerKey(need('owner-key')))
      return await finish(bytes, policy, str('out') ?? arg, say)
    }
    case 'check': {
      try {
        const c = verify(await readBytes(), policy)
        say({ ok: true, kind: 'config', target: c.target, version: c.version, issuedAt: c.issuedAt, settings: c.settings, signers: c.signers },
          `configuration version ${c.version} for ${c.target} (${Object.keys(c.settings).join(', ')}), signed by ${c.signers.length} owner(s): valid`)
        return EXIT_OK
      } catch (err) {
        if (!isMeshError(err)) throw err
        say({ ok: false, code: err.code, message: err.message }, `${arg}: ${err.code}: ${err.message}`)
        return EXIT_INVALID
      }
    }
    case 'publish': {
      const bytes = await readBytes()
      verify(bytes, policy)
      return values.broker === undefined ? await publish(bytes, policy, values, say, io) : await retain(bytes, policy, values, say, io)
    }
    default:
      throw meshError('ERR_BAD_ARGUMENT', 'say iotmesh fleet config push, cosign, check or publish (iotmesh fleet --help)')
  }
}

/** Verifies against the fleet file and checks the settings as a device will. */
function verify (bytes: Uint8Array, policy: FleetPolicy): ReturnType<typeof verifyFleetConfig> {
  const config = verifyFleetConfig(bytes, policy)
  checkRemoteSettings(config.settings, `signed configuration v${config.version}`)
  return config
}

async function finish (bytes: Uint8Array, policy: FleetPolicy, out: string, say: Say): Promise<number> {
  await onFileArgument(out, '--out', async () => { await writeFile(out, bytes) })
  try {
    const c = verify(bytes, policy)
    say({ file: out, kind: 'config', target: c.target, version: c.version, complete: true },
      `wrote ${out}: configuration version ${c.version} for ${c.target}, signed by enough owners (${policy.threshold} of ${policy.owners.length})`)
  } catch (err) {
    if (!isMeshError(err) || err.code !== 'ERR_TOO_FEW_OWNERS') throw err
    say({ file: out, kind: 'config', complete: false, message: err.message }, `wrote ${out}: a configuration; ${err.message}`)
  }
  return EXIT_OK
}

async function publish (bytes: Uint8Array, policy: FleetPolicy, values: Record<string, unknown>, say: Say, io: Io): Promise<number> {
  const peers = (values.peers as string | undefined)?.split(',').map((p) => p.trim()).filter((p) => p !== '') ?? []
  // A fleet with a fleet file is closed by credential (mesh/credentials.ts): the node links with the first owner's key, which needs none.
  const first = typeof values['owner-key'] === 'string' ? values['owner-key'].split(',')[0]?.trim() : undefined
  const keys = first === undefined || first === '' ? generateKeyPair() : await ownerKey(first)
  const node = new MeshNode({ name: 'iotmesh-fleet', fleet: policy.fleet, ...clientLinks(values, peers), announceLinks: 0, routing: { fleetPolicy: policy }, requireCredentials: false }, { keys })
  await node.start()
  try {
    const verdict = node.configure(bytes)
    if (verdict !== 'added') throw meshError('ERR_BAD_CONFIG', `the configuration was not taken (${verdict})`)
    const deadline = Date.now() + intFlag(values, 'timeout', 10, 1, 3600) * 1000
    while (node.links.size === 0 && Date.now() < deadline && !io.signal.aborted) await new Promise((resolve) => setTimeout(resolve, 100))
    if (node.links.size === 0 && io.signal.aborted) throw meshError('ERR_ABORTED', 'stopped before any device linked: nobody got the configuration')
    if (node.links.size === 0) throw meshError('ERR_NO_ROUTE', 'no device linked in time: nobody got the configuration (give --peers, or check the fleet name)')
    await new Promise((resolve) => setTimeout(resolve, 1000)) // the CONFIG goes out on each link as it opens; let it leave
    say({ ok: true, links: node.links.size }, `handed the configuration to ${node.links.size} device(s); the mesh spreads it`)
    return EXIT_OK
  } finally {
    await node.stop()
  }
}

/** Publishes it retained on the broker (QoS 1): the gateway's guard (gateway/config-guard.ts) takes it or refuses it. */
async function retain (bytes: Uint8Array, policy: FleetPolicy, values: Record<string, unknown>, say: Say, io: Io): Promise<number> {
  const config = verify(bytes, policy)
  const url = values.broker as string
  const keys = generateKeyPair()
  const clientId = `iotmesh-fleet-${keys.id.slice(0, 8)}`
  const password = (values.password as string | undefined) ?? io.env.IOTMESH_PASSWORD
  const auth = typeof values.username === 'string'
    ? { username: values.username, ...(password === undefined ? {} : { password }) }
    : { username: keys.id, password: signDeviceToken({ keys, clientId, fleet: policy.fleet, now: Date.now(), cti: systemRandom.bytes(8) }) }
  const client = connect(url, { clientId, reconnectPeriod: 0, connectTimeout: 10_000, clean: true, ...auth })
  try {
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => { resolve() })
      client.once('error', (err) => { reject(meshError('ERR_LINK_CLOSED', `${url}: ${err.message}`)) })
      client.once('close', () => { reject(meshError('ERR_LINK_CLOSED', `${url}: the connection closed before CONNACK`)) })
    })
    const topic = configTopic(policy.fleet, config.target)
    await client.publishAsync(topic, Buffer.from(bytes), { qos: 1, retain: true })
    say({ ok: true, topic, version: config.version }, `retained configuration version ${config.version} on ${topic} (the gateway refuses it unless it holds: see its drops, reason bad_config)`)
    return EXIT_OK
  } finally {
    await client.endAsync().catch(() => {})
  }
}

async function readPolicy (file: string): Promise<FleetPolicy> {
  const text = await onFileArgument(file, '--file', async () => await readFile(file, 'utf8'))
  let json: unknown
  try { json = JSON.parse(text) } catch (err) { throw meshError('ERR_BAD_ARGUMENT', `${file} is not JSON: ${(err as Error).message}`) }
  return parseFleetPolicy(json, file)
}

async function ownerKey (path: string): Promise<KeyPair> {
  return await onFileArgument(path, '--owner-key', async () => await loadKeyFile(path))
}
