import { nobleEd25519 } from './ed25519-noble.js'
import { createNodeEd25519 } from './ed25519-node.js'
import type { Ed25519 } from './ed25519.js'

/**
 * The Ed25519 backend used wherever the caller passes none: node:crypto on Node (it verifies about
 * 13x faster than noble; `npm run bench -- --only codec`), @noble/ed25519 everywhere else.
 *
 * How node:crypto gets here without an import. `process.getBuiltinModule` (Node >= 20.16, hence
 * package.json "engines") returns a built-in module synchronously, from plain code, only where
 * one exists. So a library user who imports only `iotmesh/shared` on Node gets OpenSSL by default,
 * with nothing to register and whatever else they import; a browser (no `process`) gets noble;
 * and bundlers see no `node:` specifier to resolve, stub or choke on. The alternatives fall short:
 * a package.json `imports` map with "node"/"default" conditions must point into dist/, which
 * vitest and tsc read as .ts sources, so the tests would run a different file than users do; a
 * backend registered when `iotmesh/shared/node` loads leaves users of `iotmesh/shared` alone on
 * Node with the slow one; a top-level `await import('node:crypto')` puts a `node:` specifier in
 * front of every bundler and top-level await in front of every importer.
 */
function nodeBackendIfBuiltin (): Ed25519 | undefined {
  let nodeCrypto
  try {
    // eslint-disable-next-line no-restricted-properties -- the one feature-tested look at the host, explained above
    nodeCrypto = globalThis.process?.getBuiltinModule?.('node:crypto')
  } catch {
    return undefined // a runtime with a `process` whose getBuiltinModule refuses node:crypto
  }
  return nodeCrypto === undefined ? undefined : createNodeEd25519<ReturnType<typeof nodeCrypto.createPrivateKey>>(nodeCrypto)
}

/** The node:crypto backend when this runtime has node:crypto built in; undefined elsewhere. */
export const builtinNodeEd25519: Ed25519 | undefined = nodeBackendIfBuiltin()

/** node:crypto where the runtime offers it through process.getBuiltinModule (Node), @noble/ed25519 elsewhere (browsers). */
export const defaultEd25519: Ed25519 = builtinNodeEd25519 ?? nobleEd25519
