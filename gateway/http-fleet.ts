import type { FleetTrustJson } from './trust.js'
import type { HttpHandler } from './http.js'

/**
 * GET /api/fleet   the fleet's trust (gateway/trust.ts): its owners and threshold, every revocation
 * held (device, the owners' reason, when, signed by whom) and the grant policy for commands held
 * (version and grants; null: none). `fleetFile: false` when the gateway runs without a fleet file.
 * A device's own credential state is on GET /api/devices (`credential`).
 */
export function fleetHandler (trust: () => FleetTrustJson): HttpHandler {
  return (req, res, url) => {
    if (url.pathname !== '/api/fleet' && url.pathname !== '/api/fleet/') return false
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'application/json; charset=utf-8', allow: 'GET' }).end(JSON.stringify({ error: 'GET only', code: 'ERR_BAD_ARGUMENT' }))
      return true
    }
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }).end(JSON.stringify(trust()))
    return true
  }
}
