/** The wire contract and pure code of iotmesh: identity, signing, the COSE/SenML codec, topics, errors. */
export { ERROR_CODES, MeshError, meshError, isMeshError, type ErrorCode } from './errors.js'
export { toHex, fromHex, toBase64url, fromBase64, toBase32, fromBase32, concatBytes, bytesEqual } from './bytes.js'
export { SECRET_KEY_LENGTH, PUBLIC_KEY_LENGTH, SIGNATURE_LENGTH, type Ed25519, type PublicKey, type SecretKey } from './crypto/ed25519.js'
export { nodeEd25519 } from './crypto/ed25519-node.js'
export { nobleEd25519 } from './crypto/ed25519-noble.js'
export {
  DEVICE_ID_BYTES, DEVICE_ID_LENGTH, deviceIdBytes, deviceIdFromPublicKey, deviceIdFromBytes, deviceIdToBytes,
  isDeviceId, keyMatchesId, keyPairFromSecret, generateKeyPair, publicKeyText, type DeviceId, type KeyPair
} from './identity.js'
export { saveKeyFile, loadKeyFile } from './keyfile.js'
export { DEFAULT_CBOR_LIMITS, encodeCbor, decodeCbor, scanCbor, readHead, cborHead, type CborLimits } from './cbor.js'
export {
  COSE_SIGN1_TAG, HEADER_ALG, HEADER_KID, HEADER_CONTENT_TYPE, ALG_ED25519, ALG_EDDSA, ACCEPTED_ALGS,
  sigStructure, encodeHeader, signSign1, decodeSign1, verifySign1, describeHeader, type Sign1, type HeaderMap
} from './cose.js'
export {
  SENML_LABELS, SENML_UNITS, recordFromCbor, recordToCbor, resolvePack, packToJson, packFromJson,
  type SenmlRecord, type SenmlPack, type ResolvedRecord
} from './senml.js'
export {
  DEFAULT_FRAME_LIMITS, DEFAULT_TOPIC, HEADER_TOPIC, checkDeviceTopic, encodeFrame, decodeFrame, verifyFrame, openFrame, frameReadings, deviceBaseName,
  type FrameLimits, type TelemetryFrame, type EncodeFrameInput
} from './frame.js'
export { createReplayGuard, type ReplayGuard, type ReplayVerdict } from './replay.js'
export { openSequenceFile, memorySequence, type SequenceSource } from './sequence.js'
export { validateTopic, validateFilter, topicMatches, telemetryTopic, DEFAULT_FLEET } from './topics.js'
