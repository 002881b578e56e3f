import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'
import type { MeshNode } from '../../mesh/index.js'
import { createMemoryNetwork } from '../../mesh/testing.js'
import { type Gateway, type Reading } from '../../gateway/index.js'
import { SKIPPED_WITHOUT_CHROMIUM, hasChromium, openBrowser, warnWithoutChromium } from '../helpers/browser.js'
import { describeNet } from '../helpers/netns.js'
import { barrier, connectClient, connectDevice, linked, makeFrame, meshAddress, mqttUrl, nextEvent, seededKeys, startMeshGateway, startMeshNode } from './support.js'
import { telemetryTopic } from '../../shared/index.js'

/**
 * The dashboard in a real browser: headless Chromium (the Debian package `chromium`) driven by
 * playwright-core, against a gateway with a small mesh fleet on the in-memory transport and a
 * broker-mode device (mqtt.js). Nothing is reloaded: every change arrives over /api/events.
 */

const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url))
warnWithoutChromium('dashboard.test.ts')

/** Publishes from a mesh node (sampled `ago` seconds ago) and resolves once the gateway accepted it. */
async function publish (gateway: Gateway, node: MeshNode, records: Array<{ n: string, u?: string, v: number }>, ago = 0): Promise<Reading> {
  const accepted = nextEvent<Reading>(gateway, 'reading', (r) => r.origin === node.id && r.deviceTopic === 'telemetry')
  node.publish('telemetry', records, { time: Date.now() / 1000 - ago })
  return await accepted
}

describeNet('dashboard', () => {
  it.skipIf(!hasChromium)(`shows the running fleet in headless Chromium and updates it live: readings, a device going offline, a bad signature${SKIPPED_WITHOUT_CHROMIUM}`, async () => {
    const net = createMemoryNetwork({ seed: 21 })
    // With an access token, as on any address but loopback: the browser logs in with the printed URL (gateway/access.ts).
    const token = 'dashboard-test-token-0123'
    const gateway = await startMeshGateway(net, { http: { host: '127.0.0.1', port: 0, token }, live: { flushMs: 50 } })
    const gw = meshAddress(gateway.mesh)
    const greenhouse = await startMeshNode(net, 'greenhouse', seededKeys(301), [gw])
    const cellar = await startMeshNode(net, 'cellar', seededKeys(302), [gw])
    const attic = await startMeshNode(net, 'attic', seededKeys(303), [meshAddress(greenhouse), meshAddress(cellar)])
    await linked(attic, greenhouse.id, cellar.id)
    await linked(gateway.mesh!, greenhouse.id, cellar.id)
    await linked(greenhouse, gateway.mesh!.id)
    await linked(cellar, gateway.mesh!.id)
    await barrier([greenhouse, gateway.mesh], [cellar, gateway.mesh], [attic, greenhouse], [attic, cellar])
    for (let i = 0; i < 12; i++) {
      for (const [k, node] of [greenhouse, cellar, attic].entries()) {
        // A history of the last minute, so the charts have something to draw.
        await publish(gateway, node, [{ n: 'temp', u: 'Cel', v: 18 + k * 2 + Math.sin(i / 2) * 1.5 }, { n: 'hum', u: '%RH', v: 45 + k * 5 + Math.cos(i / 3) * 4 }], (12 - i) * 5)
      }
    }
    for (const node of [greenhouse, cellar, attic]) {
      const announced = nextEvent<Reading>(gateway, 'reading', (r) => r.origin === node.id && r.deviceTopic === 'mesh/links')
      node.announceLinks()
      await announced
    }
    const boilerKeys = seededKeys(310)
    const boiler = await connectDevice(mqttUrl(gateway), boilerKeys, { name: 'boiler-room' })
    for (let seq = 1; seq <= 6; seq++) {
      const accepted = nextEvent<Reading>(gateway, 'reading', (r) => r.origin === boilerKeys.id && r.seq === seq)
      await boiler.publishFrame(seq, makeFrame(boilerKeys, seq, { time: Date.now() / 1000 - (6 - seq) * 5, records: [{ n: 'pressure', u: 'Pa', v: 101_300 + seq * 40 }, { n: 'temp', u: 'Cel', v: 55 + seq }] }))
      await accepted
    }

    const page = await openBrowser({ width: 1440, height: 960 })
    const pageErrors: string[] = []
    page.on('pageerror', (err) => pageErrors.push(err.message))
    page.on('console', (message) => { if (message.type() === 'error') pageErrors.push(message.text()) })
    const base = `http://127.0.0.1:${gateway.ports.http ?? 0}`
    await page.goto(`${base}/?token=${token}`)
    expect(page.url()).toBe(`${base}/`) // the token went into a cookie, out of the address bar

    // The running fleet: every device, with its path.
    const row = (id: string): string => `#fleet tr[data-id="${id}"]`
    for (const node of [greenhouse, cellar, attic]) {
      await page.waitForSelector(row(node.id), { timeout: 10_000 })
      expect(await page.textContent(`${row(node.id)} [data-col="path"]`)).toBe('mesh')
    }
    await page.waitForSelector(row(boilerKeys.id))
    // Pressure as a person reads it: the device signed 101,540 Pa; the page shows hPa.
    await page.waitForFunction((selector) => /1015\.4 hPa/.test(document.querySelector(selector)?.textContent ?? ''), `${row(boilerKeys.id)} [data-col="latest"]`)
    expect(await page.textContent(`${row(boilerKeys.id)} .name`)).toBe('boiler-room')
    expect(await page.textContent(`${row(boilerKeys.id)} [data-col="path"]`)).toBe('broker')
    expect(await page.textContent('#fleet-name')).toBe('default')
    await page.waitForSelector('#connection.live')
    // The topology: the gateway, three mesh nodes and the broker device.
    await page.waitForFunction(() => document.querySelectorAll('svg.topology g.node').length === 5)
    expect(await page.locator('svg.topology line.edge-mesh').count()).toBeGreaterThanOrEqual(4)
    expect(await page.locator('svg.topology line.edge-mqtt').count()).toBe(1)
    await page.evaluate(() => { (window as unknown as { noReload: boolean }).noReload = true })

    // A new reading changes the table and the chart, without a reload.
    await page.click(row(cellar.id))
    await page.waitForSelector('svg.chart[data-sensor="temp"]')
    const readingsBefore = Number(await page.textContent(`${row(cellar.id)} [data-col="readings"]`))
    await publish(gateway, cellar, [{ n: 'temp', u: 'Cel', v: 27.25 }, { n: 'hum', u: '%RH', v: 51 }])
    await page.waitForSelector('svg.chart[data-sensor="temp"][data-last="27.25"]')
    await page.waitForFunction(([selector, n]) => document.querySelector(selector as string)?.textContent === String(n), [`${row(cellar.id)} [data-col="readings"]`, readingsBefore + 1] as const)
    expect(await page.textContent(`${row(cellar.id)} [data-col="latest"]`)).toContain('27.25 °C')

    // The broker device dies without a goodbye: its last will marks it offline.
    const offline = nextEvent(gateway, 'status', (e: { deviceId: string, status?: { state: string } }) => e.deviceId === boilerKeys.id && e.status?.state === 'offline')
    boiler.client.stream.destroy()
    await offline
    await page.waitForSelector(`${row(boilerKeys.id)}.offline .offline-badge`)

    // A frame with a bad signature, claiming to come from the attic: marked on its row and node.
    const forger = await connectClient(mqttUrl(gateway))
    const bad = makeFrame(seededKeys(303), (gateway.devices.get(attic.id)?.lastSeq ?? 0) + 1, { time: Date.now() / 1000 })
    bad[bad.length - 3] = (bad[bad.length - 3] as number) ^ 0xff
    const refused = nextEvent(gateway, 'drop', (d: { reason: string }) => d.reason === 'bad_signature')
    await forger.client.publishAsync(telemetryTopic('default', attic.id), bad, { qos: 1 })
    await refused
    await page.waitForSelector(`${row(attic.id)}.bad-signature .sig-badge`)
    expect(await page.textContent(`${row(attic.id)} [data-col="sig"]`)).toBe('1')
    await page.waitForSelector(`svg.topology g.node.bad-signature[data-id="${attic.id}"]`)
    await page.waitForSelector('#log li.log-bad_signature')

    // A second board flashed with the attic's card signs another reading under a number the attic used:
    // the gateway keeps the first copy and marks the device as a cloned identity (ERR_CLONED_IDENTITY).
    const lastSeq = gateway.devices.get(attic.id)?.lastSeq ?? 0
    const twin = makeFrame(seededKeys(303), lastSeq, { time: Date.now() / 1000, records: [{ n: 'temp', u: 'Cel', v: -40 }] })
    const cloned = nextEvent(gateway, 'drop', (d: { reason: string }) => d.reason === 'cloned_identity')
    await forger.client.publishAsync(telemetryTopic('default', attic.id), twin, { qos: 1 })
    await cloned
    await page.waitForSelector(`${row(attic.id)}.cloned .clone-badge`)
    await page.waitForSelector(`svg.topology g.node.cloned[data-id="${attic.id}"]`)
    await page.waitForSelector('#log li.log-cloned_identity')
    expect(gateway.devices.get(attic.id)?.clone).toMatchObject({ code: 'ERR_CLONED_IDENTITY', copies: 1, seq: lastSeq })

    expect(await page.evaluate(() => (window as unknown as { noReload?: boolean }).noReload)).toBe(true)
    expect(pageErrors).toEqual([])
    await mkdir(ARTIFACTS, { recursive: true })
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true })
  }, 60_000)
})
