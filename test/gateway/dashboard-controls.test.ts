import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'
import { parseCommanders, publicKeyText } from '../../shared/index.js'
import { Waiter, keysFor, startDevice } from '../firmware/device-support.js'
import { SKIPPED_WITHOUT_CHROMIUM, hasChromium, openBrowser, warnWithoutChromium } from '../helpers/browser.js'
import { describeNet } from '../helpers/netns.js'
import { mqttUrl, seededKeys, startGateway } from './support.js'

/**
 * The dashboard's actuator controls in a real browser (headless Chromium, playwright-core), against
 * a firmware-sim device with a relay and a light on the gateway's secure broker. The device allows
 * the gateway's key `relay/#` only: the relay toggle switches the real relay and the page shows the
 * state the device then reports; the light slider's command comes back refused with its code and
 * the light stays as it was. A gateway that serves HTTP beyond loopback without a token takes no
 * commands, and its page says so with the controls off.
 */

warnWithoutChromium('dashboard-controls.test.ts')
const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url))

describeNet('dashboard actuator controls', () => {
  it.skipIf(!hasChromium)(`switches a relay from the page, shows a refusal with its code, and never shows what was only asked${SKIPPED_WITHOUT_CHROMIUM}`, async () => {
    const token = 'dashboard-controls-token-42'
    const gateway = await startGateway({ allowAnonymous: false, http: { host: '127.0.0.1', port: 0, token }, live: { flushMs: 50 } }, { keys: seededKeys(90) })
    const keys = keysFor(91)
    const commanders = parseCommanders({ commanders: [{ name: 'gateway', key: publicKeyText(gateway.identity.publicKey), actions: ['relay/#'] }] })
    const waiter = new Waiter()
    const { device } = await startDevice({ mode: 'broker', broker: { url: mqttUrl(gateway) }, name: 'hall', sensors: 'temperature', interval: 1000, actuators: ['relay', 'light'], commanders }, { keys }, waiter)
    // The first sample carries the actuators' state: the gateway knows the device has a relay and a light.
    await waiter.until(() => gateway.devices.get(keys.id)?.actuators?.light !== undefined, 'the actuators\' state at the gateway')
    expect(gateway.devices.get(keys.id)?.actuators).toEqual({ relay: { relay: false }, light: { light: false, 'light/level': 100 } })

    const page = await openBrowser({ width: 1280, height: 900 })
    await page.goto(`http://127.0.0.1:${gateway.ports.http ?? 0}/?token=${token}`)
    await page.click(`tr[data-id="${keys.id}"]`)
    const relay = page.locator('[data-actuator="relay"] button.toggle')
    await relay.waitFor()
    expect(await relay.textContent()).toBe('off')
    expect(await relay.isEnabled()).toBe(true)
    expect(await page.locator('.actuators-note').textContent()).toContain(gateway.identity.id)

    await relay.click()
    await page.waitForSelector('[data-actuator="relay"] .actuator-result.ok')
    expect(device.actuatorState.relay).toBe(true)
    // "on" comes from the device's next reading, not from the click.
    await page.waitForSelector('[data-actuator="relay"] button.toggle.on[aria-pressed="true"]')

    // The light: the device refuses the gateway (relay/# only) and signs the refusal.
    const slider = page.locator('[data-actuator="light"] input[type="range"]')
    expect(await slider.inputValue()).toBe('100')
    await slider.evaluate((input: HTMLInputElement) => {
      input.value = '40'
      input.dispatchEvent(new Event('input'))
      input.dispatchEvent(new Event('change'))
    })
    await page.waitForSelector('[data-actuator="light"] .actuator-result.refused')
    expect(await page.locator('[data-actuator="light"] .actuator-result').textContent()).toContain('ERR_NOT_ALLOWED')
    expect(device.actuatorState['light/level']).toBe(100)
    // The slider goes back to what the device reports once it loses focus and the next reading comes.
    await page.locator('[data-actuator="relay"] button.toggle').focus()
    await page.waitForFunction(() => (document.querySelector('[data-actuator="light"] input[type="range"]') as HTMLInputElement | null)?.value === '100')
    expect(device.counters.commands).toMatchObject({ executed: 1, refused: { ERR_NOT_ALLOWED: 1 } })
    await mkdir(ARTIFACTS, { recursive: true })
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-controls.png'), fullPage: true })

    // On a phone (390 × 844 CSS pixels): nothing wider than the screen, the controls still work,
    // and the page logs no error.
    const phone = await openBrowser({ width: 390, height: 844 })
    const errors: string[] = []
    phone.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()) })
    phone.on('pageerror', (e) => { errors.push(e.message) })
    await phone.goto(`http://127.0.0.1:${gateway.ports.http ?? 0}/?token=${token}`)
    await phone.click(`tr[data-id="${keys.id}"]`)
    await phone.locator('[data-actuator="relay"] button.toggle.on').waitFor()
    // What sticks out (inside a scrolling box, such as the fleet table's, does not count).
    const wide = await phone.evaluate(() => [...document.querySelectorAll('body *')]
      .filter((e) => e.getBoundingClientRect().right > 391 && e.closest('.scroll') === null)
      .slice(0, 8).map((e) => `${e.tagName}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`))
    expect(await phone.evaluate(() => document.documentElement.scrollWidth), wide.join(', ')).toBeLessThanOrEqual(390)
    await phone.locator('[data-actuator="relay"] button.toggle').click()
    await phone.waitForSelector('[data-actuator="relay"] button.toggle[aria-pressed="false"]')
    expect(device.actuatorState.relay).toBe(false)
    await phone.screenshot({ path: join(ARTIFACTS, 'dashboard-phone.png'), fullPage: true })
    expect(errors).toEqual([])
  }, 60_000) // two browsers: 17 s on a quiet machine, over 30 s with five workers on two cores

  it.skipIf(!hasChromium)(`keeps the controls off where the HTTP API is open without a token beyond loopback${SKIPPED_WITHOUT_CHROMIUM}`, async () => {
    const gateway = await startGateway({ http: { host: '0.0.0.0', port: 0, token: false }, live: { flushMs: 50 } }, { keys: seededKeys(92) })
    const keys = keysFor(93)
    const waiter = new Waiter()
    await startDevice({ mode: 'broker', broker: { url: mqttUrl(gateway) }, sensors: 'temperature', interval: 1000, actuators: ['relay'] }, { keys }, waiter)
    await waiter.until(() => gateway.devices.get(keys.id)?.actuators?.relay !== undefined, 'the relay\'s state at the gateway')
    expect(gateway.summary().commands).toBe(false)
    const page = await openBrowser()
    await page.goto(`http://127.0.0.1:${gateway.ports.http ?? 0}/`)
    await page.click(`tr[data-id="${keys.id}"]`)
    const relay = page.locator('[data-actuator="relay"] button.toggle')
    await relay.waitFor()
    expect(await relay.isDisabled()).toBe(true)
    expect(await page.locator('.actuators-note').textContent()).toContain('takes no commands over HTTP')
  })
})
