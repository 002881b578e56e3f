import type { PublicKey } from '../../../shared/index.js'
import { MSG, type RoutingMessage } from '../messages.js'
import type { LinkState, RouterContext } from '../context.js'
import { onAck } from './ack.js'
import { onCommands } from './command.js'
import { onRevocations } from './revoke.js'
import { onConfigs } from './config.js'
import { onCredentials } from './credential.js'
import { onFleetFiles } from './fleet.js'
import { ingest } from './data.js'
import { onHello } from './hello.js'
import { onInterest } from './interest.js'
import { onKeyRequest, onKeys } from './keys.js'
import { onDigest } from './sync.js'
import { onWant } from './want.js'
import { onRouteRequests } from './route-request.js'

/**
 * One handler per message kind, dispatched in one place (aedes lib/handlers/index.js). A handler
 * fed untrusted input may throw a MeshError; the router catches, counts and drops it.
 */
export function dispatch (ctx: RouterContext, state: LinkState, message: RoutingMessage, learnKey: (publicKey: PublicKey) => void): void {
  switch (message.kind) {
    case MSG.DATA: ingest(ctx, message.frame, message.hops, state.peer); return
    case MSG.HELLO: return onHello(ctx, state, message)
    case MSG.DIGEST: return onDigest(ctx, state, message.entries, message.full)
    case MSG.WANT: return onWant(ctx, state, message.entries)
    case MSG.INTEREST: return onInterest(ctx, state, message.entries)
    case MSG.KEY: return onKeys(learnKey, message.keys)
    case MSG.KEYREQ: return onKeyRequest(ctx, state, message.kids)
    case MSG.PEERS: return ctx.emitPeers(message.peers, state.peer)
    case MSG.ACK: return onAck(ctx, state, message.entries)
    case MSG.CMD: return onCommands(ctx, state, message.entries)
    case MSG.REVOKE: return onRevocations(ctx, state, message.revocations)
    case MSG.CONFIG: return onConfigs(ctx, state, message.configs)
    case MSG.CRED: return onCredentials(ctx, state, message.credentials)
    case MSG.FLEET: return onFleetFiles(ctx, state, message.files)
    case MSG.ROUTEREQ: return onRouteRequests(ctx, state, message.entries)
  }
}

export { sendAcks } from './ack.js'
export { routeSigned } from './command.js'
export { sendRevocations, takeRevocation } from './revoke.js'
export { sendConfigs, takeConfig, type ConfigInfo, type ConfigVerdict } from './config.js'
export { takeCredential } from './credential.js'
export { sendFleetFiles, takeFleetFile, type FleetInfo, type FleetVerdict } from './fleet.js'
export { pushOwn } from './reoffer.js'
export { ingest, release, type InjectResult } from './data.js'
export { sendInterest } from './interest.js'
export { tellKey } from './keys.js'
export { endSync, sync } from './sync.js'
export { askRoutes } from './route-loss.js'
