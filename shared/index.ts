/**
 * The wire contract and pure code of iotmesh: identity, signing, the COSE/SenML codec, topics, errors.
 * Everything here also runs in a browser (no node: imports, no Buffer, no process: eslint.config.js,
 * test/shared/browser.test.ts). Key files, sequence files and `nodeEd25519` are in ./node.ts
 * (`iotmesh/shared/node`).
 */
export { ERROR_CODES, MeshError, meshError, isMeshError, type ErrorCode } from './errors.js'
export { toHex, fromHex, toBase64url, fromBase64, toBase32, fromBase32, concatBytes, bytesEqual, ownBytes } from './bytes.js'
export { SECRET_KEY_LENGTH, PUBLIC_KEY_LENGTH, SIGNATURE_LENGTH, type Ed25519, type PublicKey, type SecretKey } from './crypto/ed25519.js'
export { defaultEd25519 } from './crypto/ed25519-default.js'
export { nobleEd25519 } from './crypto/ed25519-noble.js'
export {
  DEVICE_ID_BYTES, DEVICE_ID_LENGTH, deviceIdBytes, deviceIdFromPublicKey, deviceIdFromBytes, deviceIdToBytes,
  isDeviceId, keyMatchesId, keyPairFromSecret, generateKeyPair, publicKeyText, type DeviceId, type KeyPair
} from './identity.js'
export { DEFAULT_CBOR_LIMITS, encodeCbor, decodeCbor, scanCbor, readHead, cborHead, type CborLimits } from './cbor.js'
export {
  COSE_SIGN1_TAG, HEADER_ALG, HEADER_KID, HEADER_CONTENT_TYPE, ALG_ED25519, ALG_EDDSA, ACCEPTED_ALGS,
  sigStructure, encodeHeader, signSign1, decodeSign1, verifySign1, describeHeader, type Sign1, type HeaderMap
} from './cose.js'
export {
  SENML_LABELS, SENML_UNITS, recordFromCbor, recordToCbor, resolvePack, checkPack, packToJson, packFromJson, MAX_TIME_SECONDS,
  type SenmlRecord, type SenmlPack, type ResolvedRecord
} from './senml.js'
export {
  DEFAULT_FRAME_LIMITS, HEADER_TOPIC, encodeFrame, signFrame, decodeFrame, verifyFrame, openFrame, frameReadings, deviceBaseName,
  ENCRYPTED_SENML_CONTENT_FORMAT, HEADER_SEQ, HEADER_TIME, decryptFrame,
  type FrameLimits, type TelemetryFrame, type EncodeFrameInput, type FrameEncryption
} from './frame.js'
export {
  COSE_ENCRYPT_TAG, HEADER_IV, HEADER_EPHEMERAL_KEY, ALG_A128GCM, ALG_A256GCM, ALG_CHACHA20_POLY1305, ALG_A128KW, ALG_ECDH_ES_A128KW, CONTENT_ALGS,
  MAX_READERS, READER_KID_BYTES, X25519_KEY_BYTES, IV_BYTES, MAX_ENCRYPTED_BYTES, readerKid, readerId, readerPublic, readerKeyFromSecret, generateReaderKey,
  kdfContext, encStructure, encryptCose, decodeCoseEncrypt, decryptCose,
  type ContentAlg, type ReaderPublic, type ReaderKey, type CoseRecipient, type CoseEncrypt, type EncryptInput
} from './cose-encrypt.js'
export {
  READER_GRANTS_CONTENT_FORMAT, signReaderGrants, readGrants, verifyReaderGrants, readersFor, type ReaderGrant, type ReaderGrants, type ReaderGrantsInput
} from './readers.js'
export { createNodeCosePrimitives, defaultCosePrimitives, type CosePrimitives, type AeadName } from './crypto/cose-primitives.js'
export {
  COMMAND_CONTENT_TYPE, RESULT_CONTENT_TYPE, DEFAULT_COMMAND_TTL_S, MAX_COMMAND_TTL_S, MAX_ARGS_BYTES, MAX_ACTION_BYTES, COMMAND_LIMITS,
  encodeCommand, decodeCommand, encodeResult, decodeResult, verifySigned, checkAction, commandKindOf,
  type Command, type CommandResult, type EncodeCommandInput, type EncodeResultInput
} from './command.js'
export { Commanders, parseCommanders, type Commander } from './commanders.js'
export { ACTUATOR_KINDS, actuatorKind, actuatorOfRecord, actuatorStates, type ActuatorControl, type ActuatorKind, type ActuatorStates } from './actuators.js'
export { COSE_SIGN_TAG, MAX_SIGNERS, signCoseSign, addSignature, decodeCoseSign, verifiedSigners, type CoseSign, type CoseSignature } from './cose-sign.js'
export {
  CREDENTIAL_CONTENT_FORMAT, REVOCATION_CONTENT_FORMAT, MAX_CREDENTIAL_SECONDS, DEFAULT_CREDENTIAL_SECONDS, RevocationSet,
  parseFleetPolicy, fleetPolicyJson, enroll, revoke, cosign, verifyCredential, readCredential, credentialId, MAX_CREDENTIAL_BYTES, verifyRevocation, fleetDocumentKind,
  OWNER_ROTATION_CONTENT_FORMAT, ROTATED, rotate, rotationOf,
  type FleetPolicy, type FleetOwner, type Credential, type Revocation, type EnrollInput, type VerifyOptions
} from './fleet.js'
export { HANDOVER_CONTENT_FORMAT, MAX_HANDOVER_BYTES, createHandover, verifyHandover, type Handover } from './handover.js'
export {
  FLEET_FILE_CONTENT_FORMAT, MAX_FLEET_FILE_BYTES, MAX_FLEET_OWNERS, FleetFileChain, signFleetFile, readFleetFile, verifyFleetFile, type SignFleetFileInput,
  FLEET_FILES_LEVEL, MAX_FLEET_FILES, MAX_FLEET_FILES_BYTES, fleetFilesTopic, encodeFleetFiles, decodeFleetFiles
} from './fleet-file.js'
export { rotateOwner, verifyOwnerRotation, applyOwnerRotation, type OwnerRotation } from './owner-rotation.js'
export {
  CONFIG_CONTENT_FORMAT, MAX_CONFIG_BYTES, MAX_CONFIG_VERSION, REMOTE_SETTINGS, CONFIG_LEVEL, ConfigBook,
  configTarget, isConfigTarget, configTopic, configTargetsOf, signFleetConfig, peekFleetConfig, verifyFleetConfig, checkNewer,
  signCommandGrants, verifyCommandGrants, peekCommandGrants,
  type FleetConfig, type RemoteSetting, type RemoteSettings, type SignConfigInput, type SignGrantsInput
} from './fleet-config.js'
export {
  GRANTS_CONTENT_FORMAT, GRANTS_TARGET, MAX_GRANTS, parseGrantee, grantScope, encodeGrantList, parseGrantList, grantCovers, grantIsTo, grantAllows, granteeText,
  type CommandGrant, type Grantee, type GrantInput, type GrantSubject
} from './grants.js'
export { createReplayGuard, type ReplayGuard, type ReplayGuardInit, type ReplayRestore, type ReplayVerdict, type Trust } from './replay.js'
export { memorySequence, type SequenceSource } from './sequence.js'
export {
  TOPIC_ROOT, DEFAULT_FLEET, FLEET_NAME_RULE, TELEMETRY_LEVEL, JSON_LEVEL, STATUS_LEVEL, CMD_LEVEL, RESULT_LEVEL, SET_LEVEL, VALUE_LEVEL, RESERVED_LEVELS, LINKS_TOPIC,
  MAX_DEVICE_TOPIC_BYTES, validateTopic, validateFilter, topicMatches, isFleetName, checkDeviceTopic, isFrameDeviceTopic, deviceRoot,
  frameTopic, telemetryTopic, jsonTopic, statusTopic, cmdTopic, resultTopic, resultJsonTopic, setTopic, valueTopic, deviceTopicOf, topicFilters, parseTopic,
  filterCoversDevice,
  type ParsedTopic, type TopicKind
} from './topics.js'
export {
  MAX_STATUS_BYTES, MAX_NAME_LENGTH, onlineStatus, offlineStatus, deviceLastWill, parseStatus, type DeviceStatus, type StatusResult
} from './status.js'
export { systemClock, manualClock, every, type Clock, type ManualClock, type TimerHandle } from './clock.js'
export { Lifecycle, type LifecycleState, type Defer } from './lifecycle.js'
export { KeyStore, type KeySource, type LearnResult } from './keys.js'
export { HoldPen } from './hold.js'
export {
  Verifier, VERIFIER_DEFAULTS, fingerprint, type VerifierInit, type VerifierComponents, type Admission, type Refusal, type HoldRequest
} from './verifier.js'
export {
  TOKEN_DEFAULTS, tokenAudience, signDeviceToken, readDeviceToken, checkDeviceToken, verifyDeviceToken,
  type DeviceToken, type SignTokenInput, type TokenRead, type TokenExpectations
} from './token.js'
export { systemRandom, seededRandom, mulberry32, mixSeed, type Random } from './random.js'
