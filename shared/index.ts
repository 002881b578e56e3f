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
