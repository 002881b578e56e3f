import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { expect, it, onTestFinished } from 'vitest'
import { run } from '../../bin/main.js'
import { saveReaderKeyFile } from '../../bin/reader-key.js'
import { MeshNode } from '../../mesh/index.js'
import { encodeFrame, generateKeyPair, generateReaderKey, readerPublic } from '../../shared/index.js'
import { describeNet } from '../helpers/netns.js'

/** `iotmesh watch --reader-key FILE` (issue 13): a granted reader's watch prints encrypted readings; one without a key says what it skipped and goes on. */

function capture (): { stream: PassThrough, text: () => string } {
  const stream = new PassThrough()
  let text = ''
  stream.on('data', (chunk: Buffer) => { text += chunk.toString() })
  return { stream, text: () => text }
}

describeNet('iotmesh watch --reader-key (loopback, private namespace)', () => {
  it('decrypts with a granted reader key; without one, reports ERR_NOT_A_READER per reading and keeps running', async () => {
    const signal = AbortSignal.timeout(20_000)
    const dir = await mkdtemp(join(tmpdir(), 'iotmesh-watch-'))
    onTestFinished(async () => { await rm(dir, { recursive: true, force: true }) })
    const reader = generateReaderKey()
    await saveReaderKeyFile(join(dir, 'reader.key'), reader)
    const keys = generateKeyPair()
    const device = new MeshNode({ name: 'sealed', host: '127.0.0.1', mdns: false, announceLinks: 0 }, { keys })
    onTestFinished(async () => { await device.stop() })
    await device.start()
    const peers = `127.0.0.1:${device.address?.port ?? 0}`

    const out = capture()
    const blindOut = capture()
    const blindErr = capture()
    const stopBlind = new AbortController()
    const watching = run(['watch', '--json', '--no-mdns', '--peers', peers, '--count', '1', '--reader-key', join(dir, 'reader.key')], { stdout: out.stream, stderr: new PassThrough(), signal })
    const blind = run(['watch', '--json', '--no-mdns', '--peers', peers], { stdout: blindOut.stream, stderr: blindErr.stream, signal: AbortSignal.any([signal, stopBlind.signal]) })
    let seq = 1
    const timer = setInterval(() => {
      device.inject(encodeFrame({ keys, seq: seq++, time: Date.now() / 1000, records: [{ n: 'temp', u: 'Cel', v: 21.5 }], encrypt: { readers: [readerPublic(reader.publicKey)] } }))
    }, 50)
    onTestFinished(() => { clearInterval(timer) })
    expect(await watching).toBe(0)
    expect(JSON.parse(out.text().trim().split('\n')[0] ?? '{}')).toMatchObject({ device: keys.id, sensor: 'temp', value: 21.5 })
    while (!blindErr.text().includes('ERR_NOT_A_READER') && !signal.aborted) await new Promise((resolve) => setTimeout(resolve, 20))
    stopBlind.abort()
    expect(await blind).toBe(0)
    expect(blindErr.text()).toMatch(/skipped [a-z2-7]{26}#\d+: ERR_NOT_A_READER/)
    expect(blindOut.text()).toBe('')
  })
})
