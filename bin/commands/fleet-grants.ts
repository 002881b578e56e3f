import { existsSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import {
  GRANTS_TARGET, cosign, deviceIdFromPublicKey, grantScope, granteeText, isMeshError, meshError, parseGrantee, peekCommandGrants, signCommandGrants, toBase64url, verifyCommandGrants,
  type CommandGrant, type FleetPolicy, type GrantInput, type KeyPair
} from '../../shared/index.js'
import { loadKeyFile } from '../../shared/node.js'
import { EXIT_INVALID, EXIT_OK, onFileArgument, type Io } from '../cli.js'
import { fleetConfig } from './fleet-config.js'

/**
 * `iotmesh fleet grant | revoke-grant | grants | cosign-grants` (issue 13, "Grants"): the fleet's
 * owner-signed grant policy for commands (shared/grants.ts): which keys, or credential roles, may
 * command which actions on which devices. Each grant or revocation writes the next version of the
 * policy file (default grants.cose), signed by the owners given; other owners co-sign it until the
 * threshold is met. `--publish` then hands it to the mesh (or, with --broker, retains it on MQTT),
 * as `iotmesh fleet config publish grants.cose` does: it travels as a configuration for "$grants".
 * An enrolled device obeys the highest version it holds, instead of its `--commanders` file.
 */

export const GRANT_VERBS = ['grant', 'revoke-grant', 'grants', 'cosign-grants'] as const

export const GRANT_OPTIONS = { actions: { type: 'string' }, on: { type: 'string' }, grants: { type: 'string' }, publish: { type: 'boolean' } } as const

export const GRANT_HELP: Array<[string, string]> = [
  ['grant', '--to PUBKEY|role:R --actions "relay/#,state/get" --on ID|group:G|role:R|*[,…] --owner-key FILE[,FILE…] [--grants FILE] [--name N] [--publish]: ' +
    'the next grant policy with this grant (an enrolled device then obeys the policy instead of its --commanders file)'],
  ['revoke-grant', '--to PUBKEY|role:R [--on …] --owner-key FILE[,FILE…] [--grants FILE] [--publish]: the next policy without the grants to this key or role (only those on --on, if given)'],
  ['grants [FILE]', 'verifies a grant policy (default grants.cose) against the fleet file and lists its grants; exit 1 with the code if it does not hold'],
  ['cosign-grants FILE', '--owner-key FILE [--publish]: adds this owner\'s signature to a grant policy (in place)'],
  ['--publish', 'grant, revoke-grant, cosign-grants: once enough owners signed, hand the policy to the mesh (--peers, --no-mdns, --timeout) or retain it on --broker URL']
]

type Say = (object: Record<string, unknown>, text: string) => void

export async function runGrants (what: string, arg: string | undefined, values: Record<string, unknown>, fleetFile: string, policy: FleetPolicy, say: Say, io: Io): Promise<number> {
  const str = (name: string): string | undefined => values[name] as string | undefined
  const file = (what === 'grants' || what === 'cosign-grants' ? arg : undefined) ?? str('grants') ?? 'grants.cose'
  const owners = async (): Promise<KeyPair[]> => {
    const paths = str('owner-key')?.split(',').map((p) => p.trim()).filter((p) => p !== '') ?? []
    if (paths.length === 0) throw meshError('ERR_BAD_ARGUMENT', `fleet ${what} needs --owner-key FILE[,FILE…]`)
    return await Promise.all(paths.map(async (path) => await onFileArgument(path, '--owner-key', async () => await loadKeyFile(path))))
  }
  const list = (name: string): string[] | undefined => str(name)?.split(',').map((p) => p.trim()).filter((p) => p !== '')
  const current = async (): Promise<ReturnType<typeof peekCommandGrants> | undefined> => {
    if (!existsSync(file)) return undefined
    const held = peekCommandGrants(await onFileArgument(file, '--grants', async () => new Uint8Array(await readFile(file))))
    if (held.fleet !== policy.fleet) throw meshError('ERR_UNKNOWN_FLEET', `${file} is the grant policy of fleet ${held.fleet}, not ${policy.fleet}`)
    return held
  }
  const publish = async (bytes: Uint8Array): Promise<number> => {
    if (values.publish !== true) return EXIT_OK
    try { verifyCommandGrants(bytes, policy) } catch (err) {
      if (isMeshError(err, 'ERR_TOO_FEW_OWNERS')) return EXIT_OK // said already: co-sign, then publish
      throw err
    }
    return await fleetConfig({ values, positionals: ['publish', file], file: fleetFile, say }, io)
  }
  switch (what) {
    case 'grant':
    case 'revoke-grant': {
      const toText = str('to')
      if (toText === undefined) throw meshError('ERR_BAD_ARGUMENT', `fleet ${what} needs --to PUBKEY|role:R`)
      const to = parseGrantee(toText)
      const who = typeof to === 'string' ? to : deviceIdFromPublicKey(to)
      const on = list('on')?.map(grantScope)
      const before = await current()
      let grants: GrantInput[] = (before?.grants ?? []).map(inputOf)
      if (what === 'grant') {
        const actions = list('actions')
        if (actions === undefined || actions.length === 0) throw meshError('ERR_BAD_ARGUMENT', 'fleet grant needs --actions PATTERN[,…] (e.g. "relay/#", "+/get", "#")')
        if (on === undefined || on.length === 0) throw meshError('ERR_BAD_ARGUMENT', 'fleet grant needs --on ID|group:G|role:R|*[,…]')
        grants.push({ to, actions, on, name: str('name') })
      } else {
        const left = grants.filter((g) => !(sameGrantee(g.to, to) && (on === undefined || g.on.every((s) => on.includes(s)))))
        if (left.length === grants.length) throw meshError('ERR_BAD_ARGUMENT', `no grant to ${who}${on === undefined ? '' : ` on ${on.join(',')}`} in ${file}`)
        grants = left
      }
      const bytes = signCommandGrants({ policy, version: (before?.version ?? 0) + 1, grants, owners: await owners() })
      await onFileArgument(file, '--grants', async () => { await writeFile(file, bytes) })
      finish(bytes, policy, file, say)
      return await publish(bytes)
    }
    case 'cosign-grants': {
      const before = await onFileArgument(file, 'FILE', async () => new Uint8Array(await readFile(file)))
      peekCommandGrants(before) // a grant policy, or ERR_BAD_CONFIG
      let bytes: Uint8Array = before
      for (const owner of await owners()) bytes = cosign(bytes, policy, owner)
      await onFileArgument(file, 'FILE', async () => { await writeFile(file, bytes) })
      finish(bytes, policy, file, say)
      return await publish(bytes)
    }
    default: {
      const bytes = await onFileArgument(file, 'FILE', async () => new Uint8Array(await readFile(file)))
      try {
        const g = verifyCommandGrants(bytes, policy)
        say(json(g.grants, g.version, g.signers, file), `${file}: grant policy version ${g.version} of fleet ${policy.fleet}, signed by ${g.signers.length} owner(s): valid; ` +
          `${g.grants.length} grant(s)${g.grants.map((x) => `\n  ${text(x)}`).join('')}`)
        return EXIT_OK
      } catch (err) {
        if (!isMeshError(err)) throw err
        say({ ok: false, code: err.code, message: err.message }, `${file}: ${err.code}: ${err.message}`)
        return EXIT_INVALID
      }
    }
  }
}

function inputOf (g: CommandGrant): GrantInput {
  return { to: 'key' in g.to ? g.to.key : `role:${g.to.role}`, actions: g.actions, on: g.on, name: g.name }
}

function sameGrantee (a: GrantInput['to'], b: GrantInput['to']): boolean {
  if (typeof a === 'string' || typeof b === 'string') return a === b
  return a.length === b.length && a.every((x, i) => x === b[i])
}

function text (g: CommandGrant): string {
  return `${granteeText(g.to)}${g.name === undefined ? '' : ` (${g.name})`} may ${g.actions.join(',')} on ${g.on.join(',')}`
}

function json (grants: CommandGrant[], version: number, signers: readonly string[], file: string): Record<string, unknown> {
  return {
    ok: true, file, kind: 'grants', target: GRANTS_TARGET, version, signers,
    grants: grants.map((g) => ({ to: granteeText(g.to), ...('key' in g.to ? { key: toBase64url(g.to.key) } : {}), name: g.name ?? null, actions: g.actions, on: g.on }))
  }
}


function finish (bytes: Uint8Array, policy: FleetPolicy, file: string, say: Say): void {
  try {
    const g = verifyCommandGrants(bytes, policy)
    say({ ...json(g.grants, g.version, g.signers, file), complete: true },
      `wrote ${file}: grant policy version ${g.version}, ${g.grants.length} grant(s), signed by enough owners (${policy.threshold} of ${policy.owners.length})`)
  } catch (err) {
    if (!isMeshError(err) || err.code !== 'ERR_TOO_FEW_OWNERS') throw err
    const g = peekCommandGrants(bytes)
    say({ file, kind: 'grants', version: g.version, complete: false, message: err.message }, `wrote ${file}: grant policy version ${g.version}; ${err.message} (iotmesh fleet cosign-grants ${file})`)
  }
}
