import { parseStatus, type DeviceId, type PublicKey } from '../../shared/index.js'

export { decodeFrame, encodeFrame, generateKeyPair, openFrame } from '../../shared/index.js'

/** The device key a retained online status announces (checked against the id in the topic). */
export function parseStatusKey (topic: string, payload: Uint8Array): { id: DeviceId, publicKey: PublicKey } | undefined {
  const id = topic.split('/')[2] ?? ''
  const result = parseStatus(payload, id)
  return result.ok && result.status?.state === 'online' ? { id, publicKey: result.status.publicKey } : undefined
}
