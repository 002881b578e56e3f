/** Headless Chromium (the Debian package `chromium`) driven by playwright-core, for the browser tests. Not a test file. */
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type Page } from 'playwright-core'
import { onTestFinished } from 'vitest'

export const CHROMIUM = '/usr/bin/chromium'
export const hasChromium = existsSync(CHROMIUM)
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'
]

/** Says once, for `file`, that its browser tests are skipped and what to install. */
export function warnWithoutChromium (file: string): void {
  if (!hasChromium) console.warn(`${file}: ${CHROMIUM} is missing, the browser test is SKIPPED: install the Debian package \`chromium\` (apt-get install -y chromium)`)
}

/** The suffix a browser test's title gets when it is skipped. */
export const SKIPPED_WITHOUT_CHROMIUM = hasChromium ? '' : ` (SKIPPED: ${CHROMIUM} missing, Debian package chromium)`

/** A page in a fresh, empty profile (launchPersistentContext passes it as --user-data-dir); closed when the test ends. */
export async function openBrowser (viewport?: { width: number, height: number }): Promise<Page> {
  const profile = await mkdtemp(join(tmpdir(), 'iotmesh-chromium-'))
  const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, ...(viewport === undefined ? {} : { viewport }) })
  onTestFinished(async () => {
    await context.close()
    await rm(profile, { recursive: true, force: true })
  })
  return context.pages()[0] ?? await context.newPage()
}
