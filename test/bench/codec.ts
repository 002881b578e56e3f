import { randomBytes } from 'node:crypto'
import {
  decodeFrame, encodeFrame, generateKeyPair, nobleEd25519, openFrame, signFrame, verifyFrame, type SenmlRecord
} from '../../shared/index.js'
import { nodeEd25519 } from '../../shared/node.js'
import { interleaved, round } from './measure.js'

/** Section "crypto" and "codec": Ed25519 rates per implementation, and what the envelope adds. */
export function benchCodec (quick: boolean): Record<string, unknown> {
  const ms = quick ? 150 : 600
  const rounds = quick ? 3 : 5
  const keys = generateKeyPair()
  const message = randomBytes(110) // the anchors' payload size
  const nodeSig = nodeEd25519.sign(message, keys.secretKey)
  const nobleSig = nobleEd25519.sign(message, keys.secretKey)

  const one: SenmlRecord[] = [{ n: 'temp', u: 'Cel', v: 21.37 }]
  const ten: SenmlRecord[] = [
    { n: 'temp', u: 'Cel', v: 21.37 }, { n: 'hum', u: '%RH', v: 48.2 }, { n: 'press', u: 'Pa', v: 101325.4 },
    { n: 'bat', u: '%EL', v: 87 }, { n: 'vbat', u: 'V', v: 3.912 }, { n: 'motion', vb: false },
    { n: 'door', vb: true }, { n: 'rssi', u: 'dBm', v: -61 }, { n: 'lux', u: 'lx', v: 312.5 }, { n: 'cpu', u: 'Cel', v: 48.3 }
  ]
  const time = Date.now() / 1000
  let seq = 100_000
  const frame1 = encodeFrame({ keys, seq, time, records: one })
  const frame10 = encodeFrame({ keys, seq, time, records: ten })

  const rates = interleaved({
    node_sign: () => nodeEd25519.sign(message, keys.secretKey),
    node_verify: () => nodeEd25519.verify(nodeSig, message, keys.publicKey),
    noble_sign: () => nobleEd25519.sign(message, keys.secretKey),
    noble_verify: () => nobleEd25519.verify(nobleSig, message, keys.publicKey),
    frame_encode_sign: () => encodeFrame({ keys, seq: ++seq, time, records: one }),
    // What a publishing mesh node needs (the bytes and the parsed frame): encoded then parsed, as the router did, or signFrame.
    frame_encode_then_decode: () => decodeFrame(encodeFrame({ keys, seq: ++seq, time, records: one })),
    frame_sign_frame: () => signFrame({ keys, seq: ++seq, time, records: one }),
    frame_decode_verify: () => openFrame(frame1, keys.publicKey),
    frame_decode_only: () => decodeFrame(frame1),
    frame_verify_noble: () => verifyFrame(decodeFrame(frame1), keys.publicKey, { ed25519: nobleEd25519 })
  }, rounds, ms)

  return {
    crypto: {
      message_bytes: message.length,
      node: { sign_per_s: rates.node_sign, verify_per_s: rates.node_verify },
      noble: { sign_per_s: rates.noble_sign, verify_per_s: rates.noble_verify },
      node_over_noble_verify: round((rates.node_verify as number) / (rates.noble_verify as number), 2)
    },
    codec: {
      frames_encoded_signed_per_s: rates.frame_encode_sign,
      frames_decoded_verified_per_s: rates.frame_decode_verify,
      frames_decoded_only_per_s: rates.frame_decode_only,
      publish_encode_then_decode_per_s: rates.frame_encode_then_decode,
      publish_sign_frame_per_s: rates.frame_sign_frame,
      frames_decoded_verified_noble_per_s: rates.frame_verify_noble,
      raw_node_verify_per_s: rates.node_verify,
      decode_verify_over_raw_verify: round((rates.frame_decode_verify as number) / (rates.node_verify as number)),
      goal_decode_verify_over_raw_verify: 0.9,
      frame_bytes_1_reading: frame1.length,
      frame_bytes_10_readings: frame10.length,
      goal_frame_bytes_1_reading: 120
    }
  }
}
