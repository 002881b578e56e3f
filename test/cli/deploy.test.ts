import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { copyFile, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { commands } from '../../bin/commands/index.js'
import { loadGatewaySettings } from '../../bin/gateway-config.js'
import { tempDir } from '../shared/support.js'

/**
 * The systemd units of firmware-sim/deploy and gateway/deploy, checked by systemd itself:
 * `systemd-analyze verify` (syntax, directives, the ExecStart binary) and `systemd-analyze
 * security --offline` (the hardening: an exposure of at most 2.0 of 10, "OK"). And the command each
 * runs is one `iotmesh` has. Debian package `systemd`; skipped, naming it, where it is missing.
 */

const root = fileURLToPath(new URL('../..', import.meta.url))
const run = promisify(execFile)
const ANALYZE = '/usr/bin/systemd-analyze'
const hasAnalyze = existsSync(ANALYZE)
if (!hasAnalyze) console.warn(`deploy.test.ts: ${ANALYZE} is missing, the unit checks are SKIPPED: install the Debian package \`systemd\``)

const UNITS = [['firmware-sim/deploy/iotmesh-device.service', 'device'], ['gateway/deploy/iotmesh-gateway.service', 'gateway']] as const

describe('systemd units', () => {
  it.each(UNITS)('%s runs `iotmesh %s` from /opt/iotmesh as the user iotmesh, writing only its state directory', async (file, command) => {
    const text = await readFile(join(root, file), 'utf8')
    const exec = /^ExecStart=(\S+) \/opt\/iotmesh\/bin\/iotmesh\.js (\S+)/m.exec(text)
    expect(exec?.[2]).toBe(command)
    expect(commands.map((c) => c.name)).toContain(command)
    expect(text).toMatch(/^User=iotmesh$/m)
    expect(text).toMatch(/^ProtectSystem=strict$/m)
    expect(text).toMatch(/^ReadWritePaths=\/var\/lib\/iotmesh$/m)
    expect(text).toMatch(/^CapabilityBoundingSet=$/m)
  })

  it('the gateway unit reads its settings from /etc/iotmesh/gateway.yaml, installed from gateway/deploy/gateway.example.yaml, which the gateway accepts', async () => {
    const text = await readFile(join(root, 'gateway/deploy/iotmesh-gateway.service'), 'utf8')
    expect(text).toMatch(/^ExecStart=\S+ \/opt\/iotmesh\/bin\/iotmesh\.js gateway --config \/etc\/iotmesh\/gateway\.yaml /m)
    expect(text).toContain('gateway/deploy/gateway.example.yaml /etc/iotmesh/gateway.yaml')
    const settings = await loadGatewaySettings({ config: join(root, 'gateway/deploy/gateway.example.yaml') }, {})
    expect(settings.config.dataDir).toBe('/var/lib/iotmesh/gateway') // the unit's only writable place (ReadWritePaths)
  })

  it.skipIf(!hasAnalyze).each(UNITS)(`%s: systemd-analyze verify is clean and security --offline rates it OK (≤ 2.0)${hasAnalyze ? '' : ' (SKIPPED: Debian package systemd)'}`, async (file) => {
    const dir = await tempDir()
    const unit = join(dir, file.split('/').at(-1) ?? 'unit.service')
    // verify checks that ExecStart's binary exists: where node is not /usr/bin/node, the copy names this one.
    if (existsSync('/usr/bin/node')) await copyFile(join(root, file), unit)
    else await writeFile(unit, (await readFile(join(root, file), 'utf8')).replace('/usr/bin/node', process.execPath))
    const verify = await run(ANALYZE, ['verify', unit]).then((r) => ({ code: 0, stderr: r.stderr }), (err: { code: number, stderr: string }) => ({ code: err.code, stderr: err.stderr }))
    expect(verify, verify.stderr).toMatchObject({ code: 0 })
    expect(verify.stderr.split('\n').filter((l) => l.includes(unit))).toEqual([])
    const security = await run(ANALYZE, ['security', '--offline=true', '--no-pager', unit])
    const level = /Overall exposure level for \S+: (\d+\.\d+) (\w+)/.exec(security.stdout)
    expect(level, security.stdout.slice(-300)).not.toBeNull()
    expect(Number(level?.[1])).toBeLessThanOrEqual(2.0)
    expect(level?.[2]).toBe('OK')
  })
})
