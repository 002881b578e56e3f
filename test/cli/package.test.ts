import { execFile } from 'node:child_process'
import { mkdir, readFile, readdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { expect, it } from 'vitest'
import { describeNet } from '../helpers/netns.js'
import { assertBuilt } from '../helpers/fresh-build.js'
import { tempDir } from '../shared/support.js'

/**
 * What `npm pack` ships, and that it works where a user installs it. The tarball is unpacked into
 * an empty project's node_modules/iotmesh as `npm install iotmesh-<version>.tgz` places it; its
 * dependencies are linked from this checkout's node_modules (the suite runs offline, in a network
 * namespace, so it cannot fetch them), which keeps the test about the package: its files, its
 * `exports`, its `bin`. The project then imports the faces by their package names, runs the CLI,
 * and starts a gateway that serves the dashboard from the package.
 */

const root = fileURLToPath(new URL('../..', import.meta.url))
const run = promisify(execFile)

describeNet('the npm package', () => {
  it('ships the build, the dashboard, the deploy files and the LICENSE; no .ts sources, no source maps, no tests or benchmarks; and works in an empty project', async () => {
    assertBuilt(['bin', 'shared', 'mesh', 'gateway', 'firmware-sim', 'lab'])
    const work = await tempDir()
    // --ignore-scripts: `prepare` would build again; the suite built dist/ already (asserted above).
    const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: root, env: { ...process.env, npm_config_loglevel: 'error' } })
    const [packed] = JSON.parse(stdout) as Array<{ filename: string, files: Array<{ path: string }> }>
    const files = (packed?.files ?? []).map((f) => f.path)
    expect(files).toEqual(expect.arrayContaining([
      'LICENSE', 'README.md', 'package.json', 'bin/iotmesh.js', 'dist/bin/main.js', 'dist/shared/index.js', 'dist/shared/index.d.ts',
      'gateway/dashboard/index.html', 'gateway/dashboard/app.js', 'firmware-sim/deploy/iotmesh-device.service', 'firmware-sim/deploy/README-pi.md', 'gateway/deploy/iotmesh-gateway.service'
    ]))
    expect(files.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([])
    expect(files.filter((f) => f.endsWith('.map') || f.endsWith('.tsbuildinfo'))).toEqual([])
    expect(files.filter((f) => f.startsWith('dist/test/') || f.startsWith('test/') || f.includes('/bench/'))).toEqual([])

    const project = join(work, 'project')
    const modules = join(project, 'node_modules')
    await mkdir(join(modules, 'iotmesh'), { recursive: true })
    await run('tar', ['-xzf', join(work, packed?.filename ?? ''), '-C', join(modules, 'iotmesh'), '--strip-components=1'])
    for (const name of await readdir(join(root, 'node_modules'))) {
      if (name !== '.bin' && name !== 'iotmesh' && !name.startsWith('.')) await symlink(join(root, 'node_modules', name), join(modules, name))
    }
    await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'empty-project', private: true, type: 'module' }))
    await writeFile(join(project, 'use.mjs'), `
      import { generateKeyPair, encodeFrame, openFrame } from 'iotmesh'
      import { createGateway } from 'iotmesh/gateway'
      import { MeshNode } from 'iotmesh/mesh'
      import { createDevice } from 'iotmesh/firmware-sim'
      const keys = generateKeyPair()
      const frame = encodeFrame({ keys, seq: 1, records: [{ n: 'temp', u: 'Cel', v: 21.5 }] })
      const opened = openFrame(frame, keys.publicKey)
      const gateway = await createGateway({ host: '127.0.0.1', port: 0, wsPort: 0, http: { host: '127.0.0.1', port: 0 } })
      const page = await fetch('http://127.0.0.1:' + gateway.ports.http + '/')
      const html = await page.text()
      await gateway.stop()
      let deep = 'refused'
      try { await import('iotmesh/dist/shared/index.js'); deep = 'allowed' } catch {}
      console.log(JSON.stringify({ origin: opened.origin === keys.id, dashboard: page.status === 200 && html.includes('iotmesh'), mesh: typeof MeshNode, device: typeof createDevice, deep }))
    `)
    const used = await run(process.execPath, ['use.mjs'], { cwd: project })
    expect(JSON.parse(used.stdout)).toEqual({ origin: true, dashboard: true, mesh: 'function', device: 'function', deep: 'refused' })
    const bin = join(modules, 'iotmesh', 'bin', 'iotmesh.js')
    const version = await run(process.execPath, [bin, '--version'], { cwd: project })
    expect(version.stdout.trim()).toBe((JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version: string }).version)
    const keygen = await run(process.execPath, [bin, 'keygen', '--out', join(project, 'device.key'), '--json'], { cwd: project })
    expect(JSON.parse(keygen.stdout)).toMatchObject({ id: expect.stringMatching(/^[a-z2-7]{26}$/) })
  }, 180_000) // npm pack, five Node processes and a gateway: a minute and more on a loaded machine
})
