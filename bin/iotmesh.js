#!/usr/bin/env node
// The `iotmesh` command. The CLI is TypeScript compiled to dist/ by `npm run build`, which
// `npm install` runs (the `prepare` script); this shim only finds it.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const main = new URL('../dist/bin/main.js', import.meta.url)
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write('iotmesh: dist/ is missing; run `npm run build` in the iotmesh checkout first.\n')
  process.exit(2)
}
const { run } = await import(main.href)
process.exitCode = await run(process.argv.slice(2))
