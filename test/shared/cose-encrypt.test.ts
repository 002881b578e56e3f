import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  ALG_A256GCM, ALG_CHACHA20_POLY1305, COSE_ENCRYPT_TAG, ENCRYPTED_SENML_CONTENT_FORMAT, HEADER_CONTENT_TYPE, MAX_READERS, cborHead, concatBytes,
  decodeCoseEncrypt, decodeFrame, decodeSign1, decryptCose, decryptFrame, encodeCbor, encodeFrame, encryptCose, frameReadings, generateReaderKey,
  isMeshError, openFrame, readerKeyFromSecret, readerPublic, seededRandom, toHex, verifyFrame, type ContentAlg, type ReaderKey
} from '../../shared/index.js'
import { codeOf, seededKeys } from './support.js'

/**
 * Readings only their readers can read (issue 13): COSE_Encrypt (RFC 9052 §5.1) with ECDH-ES +
 * A128KW over X25519 (RFC 9053 §6.4, §6.3.1), inside the signed frame (encrypt-then-sign). An
 * independent implementation (Python cbor2 + cryptography, written here from the RFCs) decrypts a
 * frame with nothing but a reader's private key; everyone else gets a stable code; hostile bytes
 * never crash the decoder.
 */

const device = seededKeys(301)
const random = seededRandom(7)
const alice = generateReaderKey(random)
const bob = generateReaderKey(random)
const carol = generateReaderKey(random)
const eve = generateReaderKey(random)
const T = 1_800_000_000.25
const records = [{ n: 'temp', u: 'Cel', v: 21.5 }, { n: 'hum', u: '%RH', v: 40 }]

const sealedFrame = (readers: ReaderKey[], alg?: ContentAlg, seq = 1): Uint8Array =>
  encodeFrame({ keys: device, seq, time: T, records, encrypt: { readers: readers.map((r) => readerPublic(r.publicKey)), alg } })

describe('COSE_Encrypt to X25519 readers', () => {
  it('costs what the README says: a one-reading frame of 138 bytes is 285 encrypted to one reader, 369 to two, 454 to three', () => {
    const one = [{ n: 'temperature', u: 'Cel', v: 21.5 }]
    const size = (n: number): number => encodeFrame({
      keys: device, seq: 1, time: 1_800_000_000.25, records: one, ...(n === 0 ? {} : { encrypt: { readers: [alice, bob, carol].slice(0, n).map((r) => readerPublic(r.publicKey)) } })
    }).length
    expect([0, 1, 2, 3].map(size)).toEqual([138, 285, 369, 454])
  })

  it('round trips to one and to several readers, with each content algorithm', () => {
    for (const alg of [undefined, ALG_A256GCM, ALG_CHACHA20_POLY1305] as Array<ContentAlg | undefined>) {
      const bytes = encryptCose({ plaintext: Uint8Array.of(1, 2, 3), readers: [alice, bob, carol], alg, externalAad: Uint8Array.of(9) })
      expect(bytes[0]).toBe(0xd8)
      expect(bytes[1]).toBe(COSE_ENCRYPT_TAG)
      for (const reader of [alice, bob, carol]) expect(decryptCose(bytes, reader, { externalAad: Uint8Array.of(9) })).toEqual(Uint8Array.of(1, 2, 3))
      expect(codeOf(() => decryptCose(bytes, eve, { externalAad: Uint8Array.of(9) }))).toBe('ERR_NOT_A_READER')
      expect(codeOf(() => decryptCose(bytes, alice, { externalAad: Uint8Array.of(8) }))).toBe('ERR_DECRYPT')
    }
    const one = decodeCoseEncrypt(encryptCose({ plaintext: Uint8Array.of(1), readers: [alice, alice] }))
    expect(one.recipients).toHaveLength(1) // one recipient per kid
  })

  it('a fresh content key and IV per message: the same plaintext twice is two ciphertexts', () => {
    const a = decodeCoseEncrypt(encryptCose({ plaintext: Uint8Array.of(1), readers: [alice] }))
    const b = decodeCoseEncrypt(encryptCose({ plaintext: Uint8Array.of(1), readers: [alice] }))
    expect(toHex(a.iv)).not.toBe(toHex(b.iv))
    expect(toHex(a.recipients[0]!.wrapped)).not.toBe(toHex(b.recipients[0]!.wrapped))
    expect(toHex(a.recipients[0]!.ephemeral)).not.toBe(toHex(b.recipients[0]!.ephemeral))
  })

  it('a reader key is its secret: the same secret is the same key and kid', () => {
    const again = readerKeyFromSecret(alice.secretKey)
    expect(toHex(again.publicKey)).toBe(toHex(alice.publicKey))
    expect(toHex(again.kid)).toBe(toHex(alice.kid))
  })

  it('refuses what is not one it sends: another tag, no or too many recipients, a recipient twice, wrong sizes, unknown algs', () => {
    const good = decodeCoseEncrypt(encryptCose({ plaintext: Uint8Array.of(1), readers: [alice] }))
    const rec = good.recipients[0]!
    const recipient = (kid = rec.kid, x = rec.ephemeral, wrapped = rec.wrapped, protectedBytes = rec.protectedBytes): unknown[] =>
      [protectedBytes, new Map<number, unknown>([[-1, new Map<number, unknown>([[1, 1], [-1, 4], [-2, x]])], [4, kid]]), wrapped]
    const raw = (recipients: unknown[], tag = COSE_ENCRYPT_TAG, iv = good.iv, protectedBytes = good.protectedBytes): Uint8Array =>
      concatBytes(cborHead(6, tag), encodeCbor([protectedBytes, new Map([[5, iv]]), good.ciphertext, recipients]))
    expect(decryptCose(raw([recipient()]), alice)).toEqual(Uint8Array.of(1))
    expect(codeOf(() => decodeCoseEncrypt(raw([recipient()], 16)))).toBe('ERR_NOT_COSE_ENCRYPT')
    expect(codeOf(() => decodeCoseEncrypt(raw([])))).toBe('ERR_NOT_COSE_ENCRYPT')
    expect(codeOf(() => decodeCoseEncrypt(raw(Array.from({ length: MAX_READERS + 1 }, (_, i) => recipient(Uint8Array.of(i, 0, 0, 0, 0, 0, 0, 0))))))).toBe('ERR_NOT_COSE_ENCRYPT')
    expect(codeOf(() => decodeCoseEncrypt(raw([recipient(), recipient()])))).toBe('ERR_DUPLICATE_KEY')
    expect(codeOf(() => decodeCoseEncrypt(raw([recipient(Uint8Array.of(1))])))).toBe('ERR_NOT_COSE_ENCRYPT')
    expect(codeOf(() => decodeCoseEncrypt(raw([recipient(undefined, new Uint8Array(31))])))).toBe('ERR_NOT_COSE_ENCRYPT')
    expect(codeOf(() => decodeCoseEncrypt(raw([recipient(undefined, undefined, new Uint8Array(23))])))).toBe('ERR_NOT_COSE_ENCRYPT')
    expect(codeOf(() => decodeCoseEncrypt(raw([recipient()], undefined, new Uint8Array(11))))).toBe('ERR_NOT_COSE_ENCRYPT')
    expect(codeOf(() => decodeCoseEncrypt(raw([recipient(undefined, undefined, undefined, encodeCbor(new Map([[1, -25]])))])))).toBe('ERR_UNSUPPORTED_ALG')
    expect(codeOf(() => decodeCoseEncrypt(raw([recipient()], undefined, undefined, encodeCbor(new Map([[1, 10]])))))).toBe('ERR_UNSUPPORTED_ALG')
    // a small-order ephemeral key (all zeros) is refused, not turned into a known key (RFC 7748 §6.1)
    expect(codeOf(() => decryptCose(raw([recipient(undefined, new Uint8Array(32))]), alice))).toBe('ERR_DECRYPT')
  })

  it('arbitrary bytes and mutated messages never crash the decoder: a MeshError or the exact plaintext', () => {
    const good = encryptCose({ plaintext: Uint8Array.of(1, 2, 3), readers: [alice, bob] })
    fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
      try { decodeCoseEncrypt(concatBytes(Uint8Array.of(0xd8, 0x60), bytes)) } catch (err) { expect(isMeshError(err)).toBe(true) }
    }), { numRuns: 2000 })
    fc.assert(fc.property(fc.nat(good.length - 1), fc.integer({ min: 1, max: 255 }), (at, flip) => {
      const bytes = good.slice()
      bytes[at] = (bytes[at] as number) ^ flip
      try {
        expect(decryptCose(bytes, alice)).toEqual(Uint8Array.of(1, 2, 3)) // only a change no reader relies on (bob's recipient)
      } catch (err) {
        expect(isMeshError(err)).toBe(true)
      }
    }), { numRuns: 1500 })
  })
})

describe('encrypted frames: encrypt-then-sign', () => {
  it('anyone verifies the origin; only a reader reads: the same readings as a plain frame, the same seq, time and topic', () => {
    const bytes = sealedFrame([alice, bob, carol])
    const plain = decodeFrame(encodeFrame({ keys: device, seq: 1, time: T, records }))
    const frame = openFrame(bytes, device.publicKey) // a relay: verified, unread
    expect(frame.protectedHeader.get(HEADER_CONTENT_TYPE)).toBe(ENCRYPTED_SENML_CONTENT_FORMAT)
    expect([frame.seq, frame.time, frame.topic, frame.records.length]).toEqual([1, T, 'telemetry', 0])
    expect(frame.encrypted?.recipients).toHaveLength(3)
    for (const reader of [alice, bob, carol]) {
      const read = decryptFrame(frame, reader)
      expect(read.records).toEqual(plain.records)
      expect(frameReadings(read)).toEqual(frameReadings(plain))
    }
    expect(codeOf(() => decryptFrame(frame, eve))).toBe('ERR_NOT_A_READER')
    expect(decryptFrame(plain, eve)).toBe(plain) // a plain frame is read as it is
  })

  it('tampered ciphertext is refused by the signature, and a ciphertext re-signed by another device is refused by the reader', () => {
    const bytes = sealedFrame([alice])
    const frame = decodeFrame(bytes)
    const at = bytes.length - 64 - 20 // inside the payload, before the signature
    const tampered = bytes.slice()
    tampered[at] = (tampered[at] as number) ^ 1
    expect(codeOf(() => openFrame(tampered, device.publicKey))).toBe('ERR_BAD_SIGNATURE')
    // mallory, a fleet member, copies the ciphertext into a frame of its own (its kid, its signature)
    const mallory = seededKeys(302)
    const theirs = decodeFrame(encodeFrame({ keys: mallory, seq: 1, time: T, records, encrypt: { readers: [readerPublic(alice.publicKey)] } }))
    const forged = decodeSign1(encodeFrame({ keys: mallory, seq: 1, time: T, records, encrypt: { readers: [readerPublic(alice.publicKey)] } }))
    const swapped = decodeFrame(concatBytes(
      cborHead(6, 18), cborHead(4, 4), cborHead(2, forged.protectedBytes.length), forged.protectedBytes, Uint8Array.of(0xa0),
      cborHead(2, frame.payload.length), frame.payload, cborHead(2, 64), new Uint8Array(64)))
    expect(decryptFrame(theirs, alice).records).toHaveLength(2)
    expect(codeOf(() => decryptFrame(swapped, alice))).toBe('ERR_DECRYPT') // the external_aad is the origin's signed header
  })

  it('an independent COSE implementation (Python cbor2 + cryptography) decrypts a frame with nothing but a reader\'s private key', () => {
    const python = '/usr/bin/python3'
    const probe = existsSync(python) ? spawnSync(python, ['-c', 'import cbor2, cryptography'], { encoding: 'utf8' }) : undefined
    if (probe?.status !== 0) throw new Error('Debian\'s python3-cbor2 and python3-cryptography are needed for the interoperability check (.ci/run installs them)')
    // Written from RFC 9052 §5.1/§5.3, RFC 9053 §4.1/§4.3/§5.2/§6.3.1/§6.4, RFC 3394, RFC 7748, not from shared/cose-encrypt.ts.
    const script = [
      'import sys, hashlib, cbor2',
      'from cryptography.hazmat.primitives import hashes, serialization',
      'from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey',
      'from cryptography.hazmat.primitives.kdf.hkdf import HKDF',
      'from cryptography.hazmat.primitives.keywrap import aes_key_unwrap',
      'from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305',
      'frame = cbor2.loads(bytes.fromhex(sys.argv[1]))',
      'assert frame.tag == 18',
      'sign_protected, _, payload, _ = frame.value',
      'assert cbor2.loads(sign_protected)[3] == 65020',
      'enc = cbor2.loads(payload)',
      'assert enc.tag == 96',
      'body_protected, body_unprotected, ciphertext, recipients = enc.value',
      'sk = X25519PrivateKey.from_private_bytes(bytes.fromhex(sys.argv[2]))',
      'pk = sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)',
      'kid = hashlib.sha256(pk).digest()[:8]',
      'mine = [r for r in recipients if r[1][4] == kid]',
      'if not mine: sys.exit("not a reader")',
      'rp, ru, wrapped = mine[0]',
      'assert cbor2.loads(rp) == {1: -29}',
      'epk = ru[-1]',
      'assert epk[1] == 1 and epk[-1] == 4',
      'shared = sk.exchange(X25519PublicKey.from_public_bytes(epk[-2]))',
      'context = cbor2.dumps([-3, [None, None, None], [None, None, None], [128, rp]])',
      'kek = HKDF(algorithm=hashes.SHA256(), length=16, salt=None, info=context).derive(shared)',
      'cek = aes_key_unwrap(kek, wrapped)',
      'alg = cbor2.loads(body_protected)[1]',
      'aead = ChaCha20Poly1305(cek) if alg == 24 else AESGCM(cek)',
      'aad = cbor2.dumps(["Encrypt", body_protected, sign_protected])',
      'print(aead.decrypt(body_unprotected[5], ciphertext, aad).hex())'
    ].join('\n')
    const plainPayload = decodeSign1(encodeFrame({ keys: device, seq: 5, time: T, records })).payload
    for (const alg of [undefined, ALG_A256GCM, ALG_CHACHA20_POLY1305] as Array<ContentAlg | undefined>) {
      const bytes = sealedFrame([alice, bob, carol], alg, 5)
      verifyFrame(decodeFrame(bytes), device.publicKey)
      for (const reader of [alice, carol]) {
        const r = spawnSync(python, ['-c', script, toHex(bytes), toHex(reader.secretKey)], { encoding: 'utf8' })
        expect(r.stderr).toBe('')
        expect(r.stdout.trim()).toBe(toHex(plainPayload)) // the SenML pack a plain frame carries
      }
      const r = spawnSync(python, ['-c', script, toHex(bytes), toHex(eve.secretKey)], { encoding: 'utf8' })
      expect(r.stderr.trim()).toBe('not a reader')
    }
  })

  it('hostile encrypted frames are refused with a stable code by every node, reader or not', () => {
    const bytes = sealedFrame([alice])
    fc.assert(fc.property(fc.nat(bytes.length - 1), fc.integer({ min: 1, max: 255 }), (at, flip) => {
      const b = bytes.slice()
      b[at] = (b[at] as number) ^ flip
      try {
        const frame = openFrame(b, device.publicKey)
        expect(decryptFrame(frame, alice).records).toHaveLength(2) // only an unsigned byte (the empty unprotected map can't change and stay valid)
      } catch (err) {
        expect(isMeshError(err)).toBe(true)
      }
    }), { numRuns: 1500 })
  })
})
