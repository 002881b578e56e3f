import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { describeNet } from '../helpers/netns.js'
import { tempDir } from '../shared/support.js'
import { connectClient, connectDevice, findBinary, seededKeys, startGateway } from './support.js'
import { jsonTopic, topicFilters } from '../../shared/index.js'

const OPENSSL = findBinary('/usr/bin/openssl')
if (OPENSSL === undefined) console.warn('SKIPPED: the TLS tests need openssl (Debian package openssl) to make a test certificate')

const alice = seededKeys(71)

/** A throwaway self-signed certificate for 127.0.0.1. */
async function selfSigned (): Promise<{ key: string, cert: string, ca: Buffer }> {
  const dir = await tempDir()
  const key = join(dir, 'key.pem')
  const cert = join(dir, 'cert.pem')
  execFileSync(OPENSSL ?? 'openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=iotmesh-test', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' })
  return { key, cert, ca: readFileSync(cert) }
}

describeNet('embedded broker over TLS', () => {
  describe.skipIf(OPENSSL === undefined)('with openssl installed', () => {
    it('serves MQTT over TLS and over secure WebSocket with the given key and certificate', async () => {
      const { key, cert, ca } = await selfSigned()
      const gateway = await startGateway({ tls: { key, cert } })
      const subscriber = await connectClient(`wss://127.0.0.1:${gateway.ports.ws ?? 0}/mqtt`, { ca, rejectUnauthorized: true })
      await subscriber.client.subscribeAsync(topicFilters.json(), { qos: 1 })
      const device = await connectDevice(`mqtts://127.0.0.1:${gateway.ports.mqtt ?? 0}`, alice, { mqtt: { ca, rejectUnauthorized: true } })
      await device.publishFrame(1)
      expect((await subscriber.next()).topic).toBe(jsonTopic('default', alice.id))
      // A client that does not trust the certificate is refused by its own TLS check.
      await expect(connectClient(`mqtts://127.0.0.1:${gateway.ports.mqtt ?? 0}`, { rejectUnauthorized: true })).rejects.toThrow()
    })

    it('refuses to start with a key file that cannot be read, naming it', async () => {
      await expect(startGateway({ tls: { key: '/nonexistent/key.pem', cert: '/nonexistent/cert.pem' } })).rejects.toMatchObject({ code: 'ERR_BAD_ARGUMENT' })
    })
  })
})
