/**
 * The Node-only part of iotmesh's shared code (`iotmesh/shared/node`): key files, sequence files,
 * and the node:crypto Ed25519 backend by name. Everything in `iotmesh/shared` is pure and runs in
 * a browser too (test/shared/browser.test.ts); this entry point is where node:fs and node:crypto
 * are imported.
 */
import * as nodeCrypto from 'node:crypto'
import type { Ed25519 } from './crypto/ed25519.js'
import { builtinNodeEd25519 } from './crypto/ed25519-default.js'
import { createNodeEd25519 } from './crypto/ed25519-node.js'

export { saveKeyFile, loadKeyFile } from './node/keyfile.js'
export { openSequenceFile } from './node/sequence-file.js'
export { isFsError, storageError } from './node/fs-errors.js'

/**
 * Ed25519 through node:crypto (OpenSSL). On Node this is the very backend `iotmesh/shared` uses
 * by default (one instance, one key cache); import it to ask for OpenSSL by name.
 */
export const nodeEd25519: Ed25519 = builtinNodeEd25519 ?? createNodeEd25519<nodeCrypto.KeyObject>(nodeCrypto)
export {
  InvalidSetting, booleanSetting, checkFileKeys, configFilePath, envName, flagName, hostPortSetting, integerSetting, listSetting, loadSettingsFile, oneOfSetting, parseConfigText,
  parseSettingOf, pathSetting, resolveSettings, suggest, textSetting,
  type ConfigFile, type ConfigSource, type ResolvedSettings, type Setting, type SettingParser, type SettingsInput, type SettingsTable
} from './node/settings.js'
