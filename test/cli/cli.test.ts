import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PassThrough, Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { run } from '../../bin/main.js'
import {
  ALG_ED25519, HEADER_ALG, HEADER_KID, decodeFrame, deviceIdToBytes, encodeCbor, fromBase64, publicKeyText,
  signSign1, toHex
} from '../../shared/index.js'
import { loadKeyFile } from '../../shared/node.js'
import { tempDir } from '../shared/support.js'

const root = fileURLToPath(new URL('../..', import.meta.url))

interface Result { code: number, stdout: Buffer, stderr: string }

/** Runs the CLI in-process with captured streams; never touches the real HOME or process signals. */
async function cli (argv: string[], options: { stdin?: string | Uint8Array, home: string }): Promise<Result> {
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  const stdin = Readable.from(options.stdin === undefined ? [] : [Buffer.from(options.stdin)])
  const code = await run(argv, { stdout, stderr, stdin, env: { IOTMESH_HOME: options.home }, signal: new AbortController().signal })
  stdout.end()
  stderr.end()
  const out = Buffer.concat(await stdout.toArray() as Buffer[])
  const err = Buffer.concat(await stderr.toArray() as Buffer[]).toString('utf8')
  return { code, stdout: out, stderr: err }
}

/** The stable code in a CLI error line ("iotmesh sign: … (ERR_X)" or "iotmesh inspect: ERR_X: …"). */
function errorCode (stderr: string): string | undefined {
  return /\b(ERR_[A-Z0-9_]+)\b/.exec(stderr)?.[1]
}

/** Runs the compiled binary (bin/iotmesh.js, which loads dist/) as a user would. */
async function binary (args: string[], stdin?: string | Uint8Array, command = process.execPath, prefix = [join(root, 'bin', 'iotmesh.js')], env: Record<string, string> = {}): Promise<Result> {
  const child = spawn(command, [...prefix, ...args], { cwd: root, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } })
  child.stdin.end(stdin === undefined ? undefined : Buffer.from(stdin))
  const out: Buffer[] = []
  const err: Buffer[] = []
  child.stdout.on('data', (chunk: Buffer) => out.push(chunk))
  child.stderr.on('data', (chunk: Buffer) => err.push(chunk))
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)))
  return { code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') }
}

const reading = JSON.stringify([{ n: 'temp', u: 'Cel', v: 21.5 }, { n: 'hum', u: '%RH', v: 40 }])

async function keygen (home: string, file = 'device.key'): Promise<{ path: string, id: string, publicKey: string }> {
  const path = join(home, file)
  const result = await cli(['keygen', '--out', path, '--json'], { home })
  expect(result.code).toBe(0)
  return JSON.parse(result.stdout.toString()) as { path: string, id: string, publicKey: string }
}

describe('iotmesh (in-process, captured streams)', () => {
  it('--help lists keygen, sign and inspect, and exits 0', async () => {
    const home = await tempDir()
    for (const flag of ['--help', '-h', 'help']) {
      const result = await cli([flag], { home })
      expect(result.code).toBe(0)
      const text = result.stdout.toString()
      for (const command of ['keygen', 'sign', 'inspect']) expect(text).toMatch(new RegExp(`^  ${command}\\b`, 'm'))
    }
  })

  it('no command prints the help and exits 2; --version prints the package version', async () => {
    const home = await tempDir()
    const none = await cli([], { home })
    expect(none.code).toBe(2)
    expect(none.stdout.toString()).toMatch(/keygen/)
    const version = await cli(['--version'], { home })
    expect(version.code).toBe(0)
    const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version: string }
    expect(version.stdout.toString().trim()).toBe(pkg.version)
  })

  it.each(['keygen', 'sign', 'inspect'])('%s --help shows usage and exits 0', async (command) => {
    const result = await cli([command, '--help'], { home: await tempDir() })
    expect(result.code).toBe(0)
    expect(result.stdout.toString()).toMatch(new RegExp(`Usage: iotmesh ${command}`))
  })

  it('keygen --json writes a 0600 key file and prints the id and public key of that file', async () => {
    const home = await tempDir()
    const printed = await keygen(home)
    expect(printed.path).toBe(join(home, 'device.key'))
    expect((await stat(printed.path)).mode & 0o777).toBe(0o600)
    const keys = await loadKeyFile(printed.path)
    expect(printed.id).toBe(keys.id)
    expect(printed.publicKey).toBe(publicKeyText(keys.publicKey))
  })

  it('keygen defaults to $IOTMESH_HOME/device.key; refuses to overwrite (ERR_KEY_EXISTS, exit 1) unless --force', async () => {
    const home = await tempDir()
    const first = await cli(['keygen', '--json'], { home })
    expect(first.code).toBe(0)
    const firstId = (JSON.parse(first.stdout.toString()) as { id: string }).id
    expect((await loadKeyFile(join(home, 'device.key'))).id).toBe(firstId)
    const again = await cli(['keygen'], { home })
    expect(again.code).toBe(1)
    expect(errorCode(again.stderr)).toBe('ERR_KEY_EXISTS')
    expect(again.stderr).toContain('pass --force to replace it')
    expect((await loadKeyFile(join(home, 'device.key'))).id).toBe(firstId)
    const forced = await cli(['keygen', '--force', '--json'], { home })
    expect(forced.code).toBe(0)
    expect((JSON.parse(forced.stdout.toString()) as { id: string }).id).not.toBe(firstId)
  })

  it.each([
    ['raw bytes', [] as string[]],
    ['--hex', ['--hex']],
    ['--base64', ['--base64']]
  ])('sign -> inspect round trip, %s', async (_what, format) => {
    // Keys go as --key=VALUE: a base64url key starts with "-" one time in 64, and `--key -Ab…`
    // would read as an unknown flag (the inspect help says so too).
    const home = await tempDir()
    const { id, publicKey } = await keygen(home)
    const signed = await cli(['sign', ...format], { home, stdin: reading })
    expect(signed.code).toBe(0)
    if (format.length === 0) expect(signed.stdout[0]).toBe(0xd2) // tag 18
    else expect(signed.stdout.toString()).toMatch(format[0] === '--hex' ? /^[0-9a-f]+\n$/ : /^[A-Za-z0-9_-]+\n$/)

    for (const key of [publicKey, toHex(fromBase64(publicKey) as Uint8Array), join(home, 'device.key')]) {
      const inspected = await cli(['inspect', `--key=${key}`, '--json'], { home, stdin: signed.stdout })
      expect(inspected.code).toBe(0)
      const result = JSON.parse(inspected.stdout.toString()) as { ok: boolean, signature: string, frame: { origin: string, seq: number, senml: unknown[], readings: Array<{ name: string, value: number }> } }
      expect(result).toMatchObject({ ok: true, signature: 'valid', frame: { origin: id, seq: 1 } })
      expect(result.frame.readings.map((r) => [r.name, r.value])).toEqual([['temp', 21.5], ['hum', 40]])
    }
    const text = await cli(['inspect', `--key=${publicKey}`], { home, stdin: signed.stdout })
    expect(text.code).toBe(0)
    expect(text.stdout.toString()).toMatch(/^signature\s+valid$/m)
  })

  it('sign --in FILE --out FILE, inspect FILE; a frame inspected without --key is decoded but not checked', async () => {
    const home = await tempDir()
    await keygen(home)
    await writeFile(join(home, 'in.json'), reading)
    const signed = await cli(['sign', '--in', join(home, 'in.json'), '--out', join(home, 'frame.cbor')], { home })
    expect(signed.code).toBe(0)
    expect(signed.stdout).toHaveLength(0)
    const inspected = await cli(['inspect', join(home, 'frame.cbor'), '--json'], { home })
    expect(inspected.code).toBe(0)
    expect(JSON.parse(inspected.stdout.toString())).toMatchObject({ ok: true, signature: 'unchecked' })
  })

  it('sign twice without --seq gives increasing sequence numbers (persisted beside the key); --seq sets one', async () => {
    const home = await tempDir()
    await keygen(home)
    const seqs: number[] = []
    for (let i = 0; i < 3; i++) {
      const signed = await cli(['sign'], { home, stdin: reading })
      expect(signed.code).toBe(0)
      seqs.push(decodeFrame(new Uint8Array(signed.stdout)).seq)
    }
    expect(seqs[1]).toBeGreaterThan(seqs[0] as number)
    expect(seqs[2]).toBeGreaterThan(seqs[1] as number)
    expect(existsSync(join(home, 'device.key.seq'))).toBe(true)
    const explicit = await cli(['sign', '--seq', '42'], { home, stdin: reading })
    expect(decodeFrame(new Uint8Array(explicit.stdout)).seq).toBe(42)
  })

  describe('inspect refuses bad frames with exit 1 and the code', () => {
    async function signedFrame (home: string): Promise<Buffer> {
      await keygen(home)
      return (await cli(['sign'], { home, stdin: reading })).stdout
    }

    it('a corrupted signature (ERR_BAD_SIGNATURE)', async () => {
      const home = await tempDir()
      const frame = Buffer.from(await signedFrame(home))
      frame[frame.length - 1] = (frame[frame.length - 1] as number) ^ 1
      const result = await cli(['inspect', '--key', join(home, 'device.key'), '--json'], { home, stdin: frame })
      expect(result.code).toBe(1)
      expect(JSON.parse(result.stdout.toString())).toMatchObject({ ok: false, signature: 'invalid', error: { code: 'ERR_BAD_SIGNATURE' } })
      const text = await cli(['inspect', '--key', join(home, 'device.key')], { home, stdin: frame })
      expect(text.code).toBe(1)
      expect(errorCode(text.stderr)).toBe('ERR_BAD_SIGNATURE')
    })

    it('any corrupted byte fails (each byte position)', async () => {
      const home = await tempDir()
      const frame = await signedFrame(home)
      const key = (await loadKeyFile(join(home, 'device.key'))).publicKey
      for (let i = 0; i < frame.length; i++) {
        const corrupted = Buffer.from(frame)
        corrupted[i] = (corrupted[i] as number) ^ 0x40
        const result = await cli(['inspect', `--key=${publicKeyText(key)}`, '--json'], { home, stdin: corrupted })
        expect(result.code, `byte ${i}`).toBe(1)
        expect((JSON.parse(result.stdout.toString()) as { error: { code: string } }).error.code).toMatch(/^ERR_/)
      }
    })

    it('another device\'s key (ERR_WRONG_KEY)', async () => {
      const home = await tempDir()
      const frame = await signedFrame(home)
      const other = await keygen(home, 'other.key')
      const result = await cli(['inspect', `--key=${other.publicKey}`], { home, stdin: frame })
      expect(result.code).toBe(1)
      expect(errorCode(result.stderr)).toBe('ERR_WRONG_KEY')
    })

    it('a validly signed frame whose SenML names do not resolve (ERR_BAD_SENML), still as JSON', async () => {
      const home = await tempDir()
      await keygen(home)
      const keys = await loadKeyFile(join(home, 'device.key'))
      const payload = encodeCbor([new Map<number | string, unknown>([[-3, 1_700_000_000], ['seq', 1], [0, 'bad name'], [2, 1]])])
      const frame = signSign1({ protectedHeader: new Map<number, unknown>([[HEADER_ALG, ALG_ED25519], [HEADER_KID, deviceIdToBytes(keys.id)]]), payload, secretKey: keys.secretKey })
      const result = await cli(['inspect', `--key=${publicKeyText(keys.publicKey)}`, '--json'], { home, stdin: frame })
      expect(result.code).toBe(1)
      expect(JSON.parse(result.stdout.toString())).toMatchObject({ ok: false, error: { code: 'ERR_BAD_SENML' } })
    })

    it.each([
      ['text that is neither hex nor base64', 'hello, world!', 'ERR_BAD_INPUT'],
      ['empty input', '', 'ERR_BAD_INPUT'],
      ['truncated hex', 'd28455a2013204', 'ERR_TRUNCATED'],
      ['hex of something else', 'a0', 'ERR_NOT_COSE_SIGN1']
    ])('garbage: %s (%s)', async (_what, input, code) => {
      const result = await cli(['inspect', '--json'], { home: await tempDir(), stdin: input })
      expect(result.code).toBe(1)
      expect(JSON.parse(result.stdout.toString())).toMatchObject({ ok: false, error: { code } })
    })
  })

  describe('usage errors exit 2 with ERR_BAD_ARGUMENT', () => {
    it.each([
      ['an unknown flag', ['sign', '--bogus']],
      ['an unknown short flag', ['inspect', '-z']],
      ['an unknown command', ['frobnicate']],
      ['an extra argument', ['keygen', 'extra']],
      ['two positionals', ['inspect', 'a', 'b']],
      ['--hex with --base64', ['sign', '--hex', '--base64']],
      ['a --seq that is not a number', ['sign', '--seq', 'abc']],
      ['a negative --seq', ['sign', '--seq', '-1']],
      ['a --key that is neither a key nor a file', ['inspect', '--key', 'nonsense']],
      ['a flag without its value', ['sign', '--key']]
    ])('%s', async (_what, argv) => {
      const home = await tempDir()
      await keygen(home)
      const result = await cli(argv, { home, stdin: reading })
      expect(result.code).toBe(2)
      expect(errorCode(result.stderr)).toBe('ERR_BAD_ARGUMENT')
    })

    it('says what it knows: did you mean the nearest command or flag, in its own words, and where the options are', async () => {
      const home = await tempDir()
      const line = async (argv: string[]): Promise<string> => {
        const result = await cli(argv, { home })
        expect(result.code, argv.join(' ')).toBe(2)
        return result.stderr.trim().split('\n')[0] ?? ''
      }
      expect(await line(['devcie'])).toBe('iotmesh: unknown command "devcie"; did you mean "device"? (ERR_BAD_ARGUMENT)')
      expect(await line(['help', 'gatway'])).toContain('did you mean "gateway"?')
      expect(await line(['frobnicate'])).toBe('iotmesh: unknown command "frobnicate" (ERR_BAD_ARGUMENT)')
      expect(await line(['gateway', '--brokr', 'mqtt://x'])).toBe('iotmesh gateway: unknown option --brokr (did you mean --broker?); options: `iotmesh gateway --help` (ERR_BAD_ARGUMENT)')
      expect(await line(['device', '--jason'])).toContain('(did you mean --json?)')
      expect(await line(['sign', '--key'])).toBe('iotmesh sign: --key needs a value; options: `iotmesh sign --help` (ERR_BAD_ARGUMENT)')
      expect(await line(['sign', '--hex=1'])).toBe('iotmesh sign: --hex takes no value; options: `iotmesh sign --help` (ERR_BAD_ARGUMENT)')
      // Node's parser text never shows.
      for (const argv of [['sign', '--bogus'], ['inspect', '-z'], ['sign', '--key']]) expect(await line(argv)).not.toMatch(/positional argument|argument missing|Unknown option/)
    })

    it('iotmesh help <command> prints that command\'s help, exit 0', async () => {
      const home = await tempDir()
      const viaHelp = await cli(['help', 'sign'], { home })
      const viaFlag = await cli(['sign', '--help'], { home })
      expect(viaHelp.code).toBe(0)
      expect(viaHelp.stdout.toString()).toBe(viaFlag.stdout.toString())
      expect(viaHelp.stdout.toString()).toMatch(/^Usage: iotmesh sign/m)
    })

    it.each([
      ['inspect of a missing file', (home: string) => ['inspect', join(home, 'missing')]],
      ['inspect of a directory', (home: string) => ['inspect', home]],
      ['sign --in a missing file', (home: string) => ['sign', '--in', join(home, 'missing.json')]],
      ['sign --out into a missing directory', (home: string) => ['sign', '--out', join(home, 'no', 'such', 'dir', 'f')]],
      ['keygen --out under a file', (home: string) => ['keygen', '--out', join(home, 'device.key', 'x.key')]]
    ])('%s: a file that cannot be used is a usage error, not a crash', async (_what, argv) => {
      const home = await tempDir()
      await keygen(home)
      const result = await cli(argv(home), { home, stdin: reading })
      expect(result.code).toBe(2)
      expect(errorCode(result.stderr)).toBe('ERR_BAD_ARGUMENT')
    })
  })

  it.each([
    ['input that is not JSON', 'not json', 'ERR_BAD_INPUT'],
    ['two values in a record', JSON.stringify({ n: 'x', v: 1, vs: 'y' }), 'ERR_BAD_SENML'],
    ['an invalid name', JSON.stringify({ n: 'bad name', v: 1 }), 'ERR_BAD_SENML'],
    ['an empty pack', '[]', 'ERR_BAD_SENML']
  ])('sign refuses %s (exit 1, %s)', async (_what, input, code) => {
    const home = await tempDir()
    await keygen(home)
    const result = await cli(['sign'], { home, stdin: input })
    expect(result.code).toBe(1)
    expect(errorCode(result.stderr)).toBe(code)
  })

  it('sign without a key file (ERR_BAD_KEY, exit 1)', async () => {
    const home = await tempDir()
    const result = await cli(['sign'], { home, stdin: reading })
    expect(result.code).toBe(1)
    expect(errorCode(result.stderr)).toBe('ERR_BAD_KEY')
  })
})

describe('the compiled binary (node bin/iotmesh.js)', () => {
  const built = existsSync(join(root, 'dist', 'bin', 'main.js'))

  it('is built (npm test builds dist/ first; run `npm run build` before test/run.sh alone)', () => {
    expect(built).toBe(true)
  })

  it.runIf(built)('--help lists the commands', async () => {
    const result = await binary(['--help'])
    expect(result.code).toBe(0)
    for (const command of ['keygen', 'sign', 'inspect']) expect(result.stdout.toString()).toMatch(new RegExp(`^  ${command}\\b`, 'm'))
  })

  it.runIf(built)('keygen, sign through a pipe, inspect, as a user would; exit codes 0, 1, 2', async () => {
    const home = await tempDir()
    const key = join(home, 'device.key')
    const generated = await binary(['keygen', '--out', key, '--json'])
    expect(generated.code).toBe(0)
    expect((await stat(key)).mode & 0o777).toBe(0o600)
    const signed = await binary(['sign', '--key', key, '--hex'], reading)
    expect(signed.code).toBe(0)
    const inspected = await binary(['inspect', '--key', key], signed.stdout)
    expect(inspected.code).toBe(0)
    expect(inspected.stdout.toString()).toMatch(/^signature\s+valid$/m)
    const garbage = await binary(['inspect'], 'garbage!')
    expect(garbage.code).toBe(1)
    expect(errorCode(garbage.stderr)).toBe('ERR_BAD_INPUT')
    const usage = await binary(['sign', '--bogus'])
    expect(usage.code).toBe(2)
    expect(errorCode(usage.stderr)).toBe('ERR_BAD_ARGUMENT')
    const missing = await binary(['inspect', join(home, 'missing')])
    expect(missing.code).toBe(2)
    expect(missing.stderr).not.toMatch(/\n\s+at /) // a message, not a stack trace
  })

  it.runIf(built)('`npx iotmesh --help` works from the repository root', async () => {
    // A private npm cache: a stale global npx cache entry for "iotmesh" (left by an npx run outside
    // the project, which looks the name up in the registry) must not decide this test.
    const cache = await tempDir()
    const result = await binary(['iotmesh', '--help'], undefined, 'npx', ['--no-install'], { npm_config_cache: cache })
    expect(result.code).toBe(0)
    expect(result.stdout.toString()).toMatch(/^Usage: iotmesh <command>/m)
  }, 120_000) // npx runs the package's prepare script (an incremental build: seconds, more on a loaded machine)
})
