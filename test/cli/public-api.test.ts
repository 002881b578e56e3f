import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

/**
 * The public surface (issue 9): every face package.json exports lists its names explicitly (no
 * `export *`), and no name means two different things across the faces, so a user who imports
 * from two of them never gets one thing shadowing another.
 */

const root = fileURLToPath(new URL('../..', import.meta.url))
const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8')) as { exports: Record<string, string> }
/** './mesh' → 'mesh/index.ts', from "./dist/mesh/index.js". */
const faces = [...new Set(Object.values(pkg.exports))].map((target) => target.replace(/^\.\/dist\//, '').replace(/\.js$/, '.ts'))

describe('the public faces', () => {
  it('"iotmesh" itself is the wire contract, as "iotmesh/shared" is', () => {
    expect(pkg.exports['.']).toBe(pkg.exports['./shared'])
  })

  it('are the index files, shared/node and mesh/testing', () => {
    expect(faces.sort()).toEqual([
      'firmware-sim/index.ts', 'gateway/index.ts', 'lab/index.ts', 'mesh/index.ts', 'mesh/testing.ts', 'shared/index.ts', 'shared/node.ts'
    ])
  })

  it('list their exports by name', () => {
    const wildcards = faces.filter((face) => /^\s*export \*/m.test(readFileSync(`${root}${face}`, 'utf8')))
    expect(wildcards).toEqual([])
  })

  it('give no runtime name two meanings', async () => {
    const seen = new Map<string, { face: string, value: unknown }>()
    const clashes: string[] = []
    for (const face of faces) {
      const mod = await import(`../../${face.replace(/\.ts$/, '.js')}`) as Record<string, unknown>
      for (const [name, value] of Object.entries(mod)) {
        const first = seen.get(name)
        if (first === undefined) seen.set(name, { face, value })
        else if (first.value !== value) clashes.push(`${name}: ${first.face} and ${face}`)
      }
    }
    expect(seen.size).toBeGreaterThan(200)
    expect(clashes).toEqual([])
  })
})
