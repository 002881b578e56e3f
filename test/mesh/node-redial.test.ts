import { randomBytes } from 'node:crypto'
import { createServer, type AddressInfo } from 'node:net'
import { expect, it, onTestFinished } from 'vitest'
import { generateKeyPair } from '../../shared/index.js'
import { MeshNode, SERVICE_DOMAIN, encodeTxt, txtStrings } from '../../mesh/index.js'
import { describeNet } from '../helpers/netns.js'
import { closeRaw, rawMdns, uniqueFleet, type RawRecord } from '../helpers/mdns.js'

/**
 * The smallest reproduction of a redial loop the end-to-end tests found: a node whose discovered
 * peers cannot be reached (crashed without a goodbye, so their records live on for up to 120 s;
 * or announced by someone who cannot prove the key) dials them again and again without backoff.
 * One node on loopback; two announced peers whose port accepts and closes every connection.
 */

const tag = randomBytes(3).toString('hex')

function instance (name: string, txt: Record<string, string>, port: number, ttl = 120): RawRecord[] {
  const fqdn = `${name}.${SERVICE_DOMAIN}`
  return [
    { name: SERVICE_DOMAIN, type: 'PTR', ttl, data: fqdn },
    { name: fqdn, type: 'SRV', ttl, data: { port, target: `${name}.local` } },
    { name: fqdn, type: 'TXT', ttl, data: txtStrings(txt).map((s) => Buffer.from(s)) },
    { name: `${name}.local`, type: 'A', ttl, data: '127.0.0.1' }
  ]
}

describeNet('a mesh node redials unreachable discovered peers with backoff', () => {
  it('two peers whose dials fail are attempted a few times in 2 s, not hundreds', async () => {
    let attempts = 0
    const trap = createServer((socket) => { attempts++; socket.destroy() })
    await new Promise<void>((resolve) => { trap.listen(0, '127.0.0.1', resolve) })
    onTestFinished(async () => { await new Promise<void>((resolve) => { trap.close(() => { resolve() }) }) })
    const fleet = uniqueFleet('redial')
    const node = new MeshNode({ host: '127.0.0.1', fleet, announceLinks: 0, mdns: { announce: false } }, { keys: generateKeyPair() })
    onTestFinished(async () => { await node.stop() })
    await node.start()

    const mdns = await rawMdns()
    const port = (trap.address() as AddressInfo).port
    const records = [1, 2].flatMap((i) => instance(`ghost-${i}-${tag}`, encodeTxt({ ...generateKeyPair(), fleet }), port))
    onTestFinished(async () => {
      mdns.respond({ answers: records.map((r) => ({ ...r, ttl: 0 })) }) // goodbye
      await closeRaw(mdns)
    })
    mdns.respond({ answers: records })

    // The manager's backoff starts at 1 s (with jitter), so a correct node makes about 2-3 attempts
    // per peer in 2 s. Stop counting early once the count shows a loop.
    const started = performance.now()
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2000)
      trap.on('connection', () => { if (attempts >= 100) { clearTimeout(timer); resolve() } })
    })
    expect(attempts, `${attempts} dials in ${Math.round(performance.now() - started)} ms`).toBeLessThanOrEqual(10)
  })
})
