import { chmod, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { parseFrameInput } from '../../bin/commands/inspect.js'
import {
  ALG_ED25519, ERROR_CODES, HEADER_ALG, HEADER_KID, MeshError, decodeCbor, decodeFrame, decodeSign1, deviceIdToBytes,
  encodeCommand, encodeFrame, isMeshError, keyPairFromSecret, meshError, openFrame, recordFromCbor,
  signSign1, validateTopic, verifyFrame, decodeCoseSign, parseFleetPolicy, toBase64url, verifyCredential, verifyRevocation, enroll, peekFleetConfig, checkNewer,
  decodeCoseEncrypt, decryptCose, encryptCose, readGrants, readerKeyFromSecret, verifyHandover, verifyOwnerRotation, readFleetFile, signFleetFile,
  type ErrorCode, type KeyPair, type ReaderKey
} from '../../shared/index.js'
import { loadKeyFile, openSequenceFile, saveKeyFile } from '../../shared/node.js'
import { parseRules } from '../../firmware-sim/index.js'
import { SqliteStore } from '../../gateway/store/index.js'
import { codeOfAsync, seededKeys, tempDir } from './support.js'

const keys = seededKeys(1)
const other = seededKeys(2)
const ownedBy = (threshold: number, ...owners: KeyPair[]): ReturnType<typeof parseFleetPolicy> =>
  parseFleetPolicy({ fleet: 'f', threshold, owners: owners.map((o) => ({ key: toBase64url(o.publicKey) })) })
const reader = (n: number): ReaderKey => readerKeyFromSecret(new Uint8Array(32).fill(n))
const frame = (): Uint8Array => encodeFrame({ keys, seq: 1, time: 1_700_000_000, records: [{ n: 'temp', u: 'Cel', v: 21.5 }] })
const signed = (protectedHeader: Map<number, unknown>): Uint8Array => signSign1({ protectedHeader, payload: Uint8Array.of(0x80), secretKey: keys.secretKey })

/**
 * Every code in ERROR_CODES, with where it is raised and, where shared/ or bin/ raise it, an input
 * that provokes it. Typed as Record<ErrorCode, …> so a new code without a row fails the type check,
 * and the first test fails at run time too.
 */
type Row = { where: string, provoke: () => unknown } | { where: string, provoke?: undefined }
const rows: Record<ErrorCode, Row> = {
  // Untrusted bytes: the wire contract (shared/)
  ERR_BAD_CBOR: { where: 'shared/cbor.ts', provoke: () => decodeCbor(Uint8Array.of(0x9f, 0xff)) },
  ERR_TRUNCATED: { where: 'shared/cbor.ts', provoke: () => decodeCbor(Uint8Array.of(0x82, 0x01)) },
  ERR_FRAME_TOO_LARGE: { where: 'shared/cbor.ts, shared/frame.ts; mesh/links framing', provoke: () => decodeFrame(new Uint8Array(8193)) },
  ERR_TOO_DEEP: { where: 'shared/cbor.ts', provoke: () => decodeCbor(Uint8Array.of(0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x00)) },
  ERR_TOO_MANY_RECORDS: { where: 'shared/cbor.ts, shared/frame.ts', provoke: () => decodeCbor(Uint8Array.of(0x99, 0x01, 0x01, ...new Uint8Array(257))) },
  ERR_STRING_TOO_LONG: { where: 'shared/cbor.ts', provoke: () => decodeCbor(Uint8Array.of(0x59, 0x04, 0x01, ...new Uint8Array(1025))) },
  ERR_NOT_PREFERRED: { where: 'shared/cbor.ts', provoke: () => decodeCbor(Uint8Array.of(0x18, 0x01)) }, // 1 in a two-byte head
  ERR_BAD_UTF8: { where: 'shared/cbor.ts', provoke: () => decodeCbor(Uint8Array.of(0x62, 0xc0, 0xaf)) }, // an overlong "/"
  ERR_BAD_LABEL: { where: 'shared/cbor.ts', provoke: () => decodeCbor(Uint8Array.of(0xa1, 0xf9, 0x3c, 0x00, 0x00)) }, // {1.0: 0}
  ERR_DUPLICATE_KEY: { where: 'shared/cbor.ts, shared/cose.ts (a label in both header buckets)', provoke: () => decodeCbor(Uint8Array.of(0xa2, 0x01, 0x00, 0x01, 0x01)) }, // {1: 0, 1: 1}
  ERR_NOT_COSE_SIGN1: { where: 'shared/cose.ts', provoke: () => decodeSign1(frame().subarray(1)) },
  ERR_UNSUPPORTED_ALG: { where: 'shared/cose.ts', provoke: () => decodeSign1(signed(new Map([[HEADER_ALG, -7]]))) },
  ERR_BAD_HEADER: { where: 'shared/cose.ts, shared/frame.ts', provoke: () => decodeSign1(signed(new Map([[HEADER_KID, new Uint8Array(16)]]))) },
  ERR_BAD_SENML: { where: 'shared/senml.ts, shared/frame.ts', provoke: () => recordFromCbor(1, 0) },
  ERR_BAD_SIGNATURE: {
    where: 'shared/frame.ts; mesh/routing',
    provoke: () => {
      const bytes = frame()
      bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 1
      verifyFrame(decodeFrame(bytes), keys.publicKey)
    }
  },
  ERR_WRONG_KEY: { where: 'shared/frame.ts; mesh/discovery, mesh/routing', provoke: () => openFrame(frame(), seededKeys(2).publicKey) },
  ERR_REPLAY: { where: 'mesh/routing (on the verdicts of shared/replay.ts, which returns them rather than throwing)' },
  ERR_CLONED_IDENTITY: { where: 'mesh/routing, gateway (on the verdicts of shared/verifier.ts, which returns them rather than throwing)' },
  // Identity and keys
  ERR_BAD_KEY: { where: 'shared/identity.ts, shared/keyfile.ts, shared/crypto/*', provoke: () => keyPairFromSecret(new Uint8Array(31)) },
  ERR_KEY_PERMISSIONS: {
    where: 'shared/keyfile.ts',
    provoke: async () => {
      const path = join(await tempDir(), 'device.key')
      await saveKeyFile(path, keys)
      await chmod(path, 0o644)
      await loadKeyFile(path)
    }
  },
  ERR_KEY_EXISTS: {
    where: 'shared/keyfile.ts',
    provoke: async () => {
      const path = join(await tempDir(), 'device.key')
      await saveKeyFile(path, keys)
      await saveKeyFile(path, keys)
    }
  },
  ERR_BAD_DEVICE_ID: { where: 'shared/identity.ts', provoke: () => deviceIdToBytes('not-an-id') },
  ERR_SEQUENCE_STORE: {
    where: 'shared/sequence.ts',
    provoke: async () => {
      const path = join(await tempDir(), 'device.seq')
      await writeFile(path, 'garbage')
      openSequenceFile(path)
    }
  },
  // Mesh: discovery, links, routing (mesh/)
  ERR_BAD_TXT: { where: 'mesh/discovery (DNS-SD TXT records)' },
  ERR_NAME_CONFLICT: { where: 'mesh/discovery (DNS-SD probing, RFC 6762 §9)' },
  ERR_HANDSHAKE: { where: 'mesh/links (handshake)' },
  ERR_PEER_KEY_MISMATCH: { where: 'mesh/links (handshake)' },
  ERR_PROTOCOL_VERSION: { where: 'mesh/links (handshake)' },
  ERR_DECRYPT: {
    where: 'mesh/links (secure channel); shared/cose-encrypt.ts',
    provoke: () => decryptCose(encryptCose({ plaintext: Uint8Array.of(1), readers: [reader(1)], externalAad: Uint8Array.of(1) }), reader(1))
  },
  ERR_LINK_CLOSED: { where: 'mesh/links' },
  ERR_BACKPRESSURE: { where: 'mesh/links' },
  ERR_NOT_IN_ROSTER: { where: 'mesh/links, mesh/routing (closed fleets)' },
  ERR_BUSY: { where: 'mesh/links (handshake limits: tcp.ts, admission.ts)' },
  ERR_BANNED: { where: 'mesh/links (ban list: bans.ts, tcp.ts, memory.ts, manager.ts)' },
  ERR_HOP_LIMIT: { where: 'mesh/routing' },
  ERR_BAD_DECLARATION: { where: 'mesh/routing (INTEREST declarations: test/mesh/interest.test.ts)' },
  ERR_ROUTE_PROOF: { where: 'mesh/routing (INTEREST hash chains: test/mesh/interest.test.ts)' },
  ERR_BAD_ACK: { where: 'mesh/routing (end-to-end ACKs, mesh/routing/ack.ts: test/mesh/acks.test.ts)' },
  ERR_TABLE_FULL: { where: 'mesh/routing (interest table and intake), mesh/node.ts (peer candidates)' },
  ERR_OVER_BUDGET: { where: 'mesh/routing (per-peer budgets, mesh/routing/budget.ts)' },
  ERR_PEER_SCORE: { where: 'mesh/routing (peer scoring, mesh/routing/score.ts)' },
  ERR_BAD_TOPIC: { where: 'shared/topics.ts, shared/frame.ts', provoke: () => validateTopic('sport/#') },
  ERR_ABORTED: { where: 'mesh/discovery, mesh/links' },
  ERR_UNKNOWN_SIGNER: { where: 'mesh/routing' },
  ERR_UNKNOWN_FLEET: { where: 'mesh/routing' },
  ERR_TOPIC_MISMATCH: { where: 'gateway' },
  ERR_FORBIDDEN: { where: 'gateway (MQTT broker authorization)' },
  ERR_BAD_STATUS: { where: 'gateway (device status messages)' },
  // Broker access: gateway/auth.ts refuses CONNECTs and SUBSCRIBEs (codes in its counters and logs); shared/token.ts reads
  // tokens without throwing; test/gateway/auth.test.ts provokes each with mosquitto_sub/mosquitto_pub and wrong tokens
  ERR_NOT_AUTHORIZED: { where: 'gateway/auth.ts (anonymous CONNECT, forbidden SUBSCRIBE); firmware-sim broker path (a refused token)' },
  ERR_BAD_CREDENTIALS: { where: 'gateway/auth.ts (user name and password)' },
  ERR_BAD_TOKEN: { where: 'gateway/auth.ts via readDeviceToken/checkDeviceToken (shared/token.ts)' },
  ERR_TOKEN_EXPIRED: { where: 'gateway/auth.ts via checkDeviceToken (shared/token.ts)' },
  ERR_CLOCK_SKEW: { where: 'gateway/auth.ts via checkDeviceToken (shared/token.ts); firmware-sim broker path (CONNACK 4 to its token, or a clock before 2025); firmware-sim/commands/executor.ts' },
  ERR_MESSAGE_TOO_LARGE: { where: 'gateway/broker.ts (MQTT packet size), gateway/authorize.ts (message size)' },
  ERR_QUOTA: { where: 'gateway/authorize.ts (retained message quota)' },
  // The gateway's durable state
  ERR_STORE: {
    where: 'gateway/store/ (sqlite.ts, postgres.ts)',
    provoke: async () => {
      const path = join(await tempDir(), 'gateway.db')
      await writeFile(path, 'not a database, but long enough to be read as a header of one: '.repeat(20))
      await new SqliteStore({ path, fleet: 'default' }).open()
    }
  },
  // The gateway's HTTP side and the device's disk (test/gateway/http-access.test.ts, test/firmware/outbox-bitrot.test.ts)
  ERR_HTTP_TOKEN: { where: 'gateway/http.ts (access token)' },
  ERR_HTTP_HOST: { where: 'gateway/http.ts (Host check, gateway/access.ts)' },
  ERR_HTTP_ORIGIN: { where: 'gateway/http.ts (Origin check, gateway/access.ts)' },
  ERR_NOT_FOUND: { where: 'gateway/http.ts (no such route or device: 404)' },
  ERR_HTTP_METHOD: { where: 'gateway/http.ts (a method other than GET or HEAD: 405)' },
  ERR_INTERNAL: { where: 'gateway/http.ts (a handler that threw: 500)' },
  ERR_SSE_EVICTED: { where: 'gateway/live.ts (live-stream client caps)' },
  ERR_DATA_DIR: { where: 'firmware-sim/device/state.ts (the data directory, the outbox); bin/main.ts (any command, via shared/node/fs-errors.ts)' },
  ERR_OUTBOX_CORRUPT: { where: 'firmware-sim/outbox/disk.ts (opening a disk outbox)' },
  // Commands
  ERR_BAD_COMMAND: { where: 'shared/command.ts', provoke: () => encodeCommand({ keys, target: keys.id, action: 'Relay Set', id: 1 }) },
  ERR_WRONG_TARGET: { where: 'firmware-sim/commands/executor.ts' },
  ERR_NOT_ALLOWED: { where: 'firmware-sim/commands/executor.ts' },
  ERR_EXPIRED: { where: 'firmware-sim/commands/executor.ts' },
  ERR_RATE_LIMITED: { where: 'firmware-sim/commands/executor.ts' },
  ERR_UNKNOWN_ACTION: { where: 'firmware-sim/commands/executor.ts, actuators.ts' },
  ERR_BAD_ARGS: { where: 'firmware-sim/commands/actuators.ts' },
  ERR_JOURNAL: { where: 'firmware-sim/commands/journal.ts' },
  ERR_NOT_COSE_SIGN: { where: 'shared/cose-sign.ts', provoke: () => decodeCoseSign(Uint8Array.of(0xd8, 0x62, 0x80)) },
  ERR_BAD_CREDENTIAL: { where: 'shared/fleet.ts', provoke: () => verifyCredential(Uint8Array.of(0x01), parseFleetPolicy({ fleet: 'f', owners: [{ key: toBase64url(keys.publicKey) }] })) },
  ERR_CREDENTIAL_EXPIRED: { where: 'shared/fleet.ts', provoke: () => verifyCredential(enroll({ policy: ownedBy(1, keys), publicKey: other.publicKey, issuedAt: 1000, lifetime: 10, cti: Uint8Array.of(1), owners: [keys] }), ownedBy(1, keys)) },
  ERR_NOT_OWNER: { where: 'shared/fleet.ts', provoke: () => enroll({ policy: ownedBy(1, keys), publicKey: other.publicKey, cti: Uint8Array.of(1), owners: [other] }) },
  ERR_TOO_FEW_OWNERS: { where: 'shared/fleet.ts', provoke: () => verifyCredential(enroll({ policy: ownedBy(2, keys, other), publicKey: other.publicKey, cti: Uint8Array.of(1), owners: [keys] }), ownedBy(2, keys, other)) },
  ERR_REVOKED: { where: 'mesh/routing/handlers/revoke.ts, data.ts, router.ts (addLink), mesh/credentials.ts (link handshake)' },
  ERR_NO_CREDENTIAL: { where: 'mesh/credentials.ts (link handshake of a fleet closed by credential), mesh/routing/handlers/credential.ts (a relayed frame whose origin\'s credential never came)' },
  ERR_CREDENTIAL_MISMATCH: {
    where: 'shared/fleet.ts verifyCredential (publicKey), mesh/credentials.ts',
    provoke: () => verifyCredential(enroll({ policy: ownedBy(1, keys), publicKey: other.publicKey, cti: Uint8Array.of(1), owners: [keys] }), ownedBy(1, keys), { publicKey: keys.publicKey })
  },
  ERR_BAD_REVOCATION: { where: 'shared/fleet.ts', provoke: () => verifyRevocation(Uint8Array.of(0x01), parseFleetPolicy({ fleet: 'f', owners: [{ key: toBase64url(keys.publicKey) }] })) },
  ERR_BAD_HANDOVER: { where: 'shared/handover.ts, shared/fleet.ts (a rotation), shared/owner-rotation.ts', provoke: () => verifyHandover(Uint8Array.of(0x01), 'f') },
  ERR_BAD_ROTATION: { where: 'shared/owner-rotation.ts', provoke: () => verifyOwnerRotation(Uint8Array.of(0x01), ownedBy(1, keys)) },
  ERR_BAD_CONFIG: { where: 'shared/fleet-config.ts; firmware-sim/device/signed-config.ts (settings the device refuses)', provoke: () => peekFleetConfig(Uint8Array.of(0x01)) },
  ERR_BAD_FLEET_FILE: { where: 'shared/fleet-file.ts; mesh/routing/handlers/fleet.ts', provoke: () => readFleetFile(Uint8Array.of(0x01), 'f') },
  ERR_FLEET_STALE: {
    where: 'shared/fleet-file.ts; mesh/routing/handlers/fleet.ts',
    provoke: () => signFleetFile({ current: { ...ownedBy(1, keys), version: 3 }, next: { threshold: 1, owners: [keys] }, version: 2, owners: [keys] })
  },
  ERR_CONFIG_STALE: { where: 'shared/fleet-config.ts (checkNewer); firmware-sim/device/signed-config.ts', provoke: () => { checkNewer(1, 2, 'group:g') } },
  ERR_NOT_COSE_ENCRYPT: { where: 'shared/cose-encrypt.ts', provoke: () => decodeCoseEncrypt(Uint8Array.of(0xd8, 0x60, 0x80)) },
  ERR_NOT_A_READER: {
    where: 'shared/cose-encrypt.ts, firmware-sim/device/encrypt.ts',
    provoke: () => decryptCose(encryptCose({ plaintext: Uint8Array.of(1), readers: [reader(1)] }), reader(2))
  },
  ERR_BAD_READER_GRANT: { where: 'shared/readers.ts', provoke: () => readGrants(Uint8Array.of(0x01)) },
  ERR_NO_ROUTE: { where: 'mesh/routing/handlers/command.ts, mesh/command-client.ts' },
  ERR_TIMEOUT: { where: 'mesh/command-client.ts; gateway/commands.ts (Gateway.command)' },
  ERR_BAD_RULES: { where: 'firmware-sim/rules/rules.ts', provoke: () => parseRules('rules: []') },
  // Command line and configuration
  ERR_BAD_ARGUMENT: { where: 'bin/cli.ts, bin/commands/*, shared/frame.ts; mesh/discovery', provoke: () => encodeFrame({ keys, seq: -1, records: [{ v: 1 }] }) },
  ERR_BAD_INPUT: { where: 'bin/commands/inspect.ts, bin/commands/sign.ts', provoke: () => parseFrameInput(new TextEncoder().encode('not a frame')) }
}

describe('ERROR_CODES: one row per code', () => {
  it('the table lists exactly the codes of shared/errors.ts (add a row with every new code)', () => {
    expect(Object.keys(rows).sort()).toEqual(Object.keys(ERROR_CODES).sort())
  })

  it.each(Object.entries(rows))('%s has a description a person can read, and says where it is raised', (code, row) => {
    const description = ERROR_CODES[code as ErrorCode] as string
    expect(description.length).toBeGreaterThan(15)
    expect(row.where).not.toBe('')
  })

  const provoked = Object.entries(rows).filter((entry): entry is [string, { where: string, provoke: () => unknown }] => entry[1].provoke !== undefined)
  it.each(provoked)('%s is provoked in shared/ or bin/ (%s)', async (code, row) => {
    expect(await codeOfAsync(async () => { await row.provoke() })).toBe(code)
  })

  it('every code raised in shared/ has a provoking input (the rest are mesh/ or gateway/ codes)', () => {
    for (const [code, row] of Object.entries(rows)) {
      if (row.where.startsWith('shared/') || row.where.startsWith('bin/')) expect(row.provoke, code).toBeDefined()
    }
  })
})

describe('MeshError', () => {
  it('is an Error with a stable code, a cause and details, and serializes without its stack', () => {
    const cause = new Error('underlying')
    const err = meshError('ERR_BAD_KEY', 'what was wrong', { cause, details: { path: '/x' } })
    expect(err).toBeInstanceOf(Error)
    expect(err).toBeInstanceOf(MeshError)
    expect(err.name).toBe('MeshError')
    expect(err.code).toBe('ERR_BAD_KEY')
    expect(err.cause).toBe(cause)
    expect(err.details).toEqual({ path: '/x' })
    expect(JSON.parse(JSON.stringify(err))).toEqual({ code: 'ERR_BAD_KEY', message: 'what was wrong', details: { path: '/x' } })
    expect(new MeshError('ERR_REPLAY', 'm').toJSON()).toEqual({ code: 'ERR_REPLAY', message: 'm' })
    expect('cause' in new MeshError('ERR_REPLAY', 'm')).toBe(false)
  })

  it('isMeshError checks the type and, optionally, the code', () => {
    const err = meshError('ERR_REPLAY', 'm')
    expect(isMeshError(err)).toBe(true)
    expect(isMeshError(err, 'ERR_REPLAY')).toBe(true)
    expect(isMeshError(err, 'ERR_BAD_KEY')).toBe(false)
    expect(isMeshError(Object.assign(new Error('m'), { code: 'ERR_REPLAY' }))).toBe(false)
    expect(isMeshError(undefined)).toBe(false)
  })

  it('a signed frame with a valid header decodes (the provocations above fail only where meant to)', () => {
    const ok = signSign1({
      protectedHeader: new Map<number, unknown>([[HEADER_ALG, ALG_ED25519], [HEADER_KID, deviceIdToBytes(keys.id)]]),
      payload: Uint8Array.of(0x80),
      secretKey: keys.secretKey
    })
    expect(decodeSign1(ok).alg).toBe(ALG_ED25519)
    expect(openFrame(frame(), keys.publicKey).seq).toBe(1)
  })
})
