/*
 * iotmesh dashboard: the fleet's trust (issue 13). A device's credential state (GET /api/devices,
 * `credential`: gateway/trust.ts) in the fleet table and the detail, and the fleet's owners,
 * revocations and grant policy (GET /api/fleet) in their own panel.
 */
import { el, shortId } from './format.js'

const DAY = 86_400

function isoDay (seconds) {
  return new Date(seconds * 1000).toISOString().slice(0, 10)
}

/** The table cell: [text, class, title] for a device's credential (undefined: the gateway has no fleet file). */
export function credentialCell (credential, now = Date.now()) {
  if (credential === undefined) return ['—', 'cred cred-unknown', 'this gateway runs without a fleet file']
  const c = credential
  switch (c.state) {
    case 'enrolled': {
      const left = (c.expiresAt - now / 1000) / DAY
      const soon = left < 30
      return [soon ? `enrolled, ${Math.max(0, Math.floor(left))} d left` : 'enrolled', `cred cred-enrolled${soon ? ' cred-soon' : ''}`, credentialFact(c)]
    }
    case 'expired': return ['expired', 'cred cred-expired', credentialFact(c)]
    case 'revoked': return ['revoked', 'cred cred-revoked', credentialFact(c)]
    case 'invalid': return ['invalid', 'cred cred-invalid', credentialFact(c)]
    default: return ['none', 'cred cred-none', credentialFact(c)]
  }
}

/** One line a person reads: who enrolled it, until when, with which roles; or why it is not trusted. */
export function credentialFact (c) {
  if (c === undefined) return '— (no fleet file)'
  const by = c.owners?.length ? ` by ${c.owners.map((o) => shortId(o)).join(', ')}` : ''
  const roles = c.roles?.length ? `; roles ${c.roles.join(', ')}` : ''
  switch (c.state) {
    case 'enrolled': return `enrolled${by}, until ${isoDay(c.expiresAt)}${roles}`
    case 'expired': return `expired ${isoDay(c.expiresAt)} (enrolled${by})`
    case 'revoked': return `revoked: ${c.reason ?? ''}${c.revokedAt === undefined ? '' : ` (${isoDay(c.revokedAt)})`}`
    case 'invalid': return `invalid credential: ${c.code ?? ''}`
    default: return 'none: not enrolled by the fleet\'s owners'
  }
}

/** The fleet trust panel: owners, the grant policy's version, every revocation. */
export class TrustPanel {
  /** `nameOf(id)`: a device's name, if the fleet table knows one. */
  constructor (root, { nameOf = () => undefined } = {}) {
    this.root = root
    this.nameOf = nameOf
    this.key = undefined
  }

  /** Fetches /api/fleet again when the summary says something changed (revocations held, grant policy version). */
  async refresh (summary) {
    const key = summary?.trust === undefined ? 'none' : `${summary.trust.revocations}/${summary.trust.grants}`
    if (key === this.key) return
    this.key = key
    try {
      const response = await fetch('/api/fleet')
      if (response.ok) this.render(await response.json())
    } catch {
      this.key = undefined // try again with the next summary
    }
  }

  render (fleet) {
    this.root.dataset.revocations = String(fleet.revocations.length)
    this.root.dataset.grants = fleet.grants === null ? 'none' : String(fleet.grants.version)
    if (!fleet.fleetFile) {
      this.root.replaceChildren(el('p', 'empty', 'No fleet file: this gateway checks no credentials, revocations or grants (iotmesh gateway --fleet-file).'))
      return
    }
    const dl = el('dl', 'facts')
    const owners = fleet.owners.map((o) => o.name ?? shortId(o.id)).join(', ')
    const grants = fleet.grants === null
      ? 'none: each device\'s commanders file decides'
      : `version ${fleet.grants.version}, ${fleet.grants.grants.length} grant${fleet.grants.grants.length === 1 ? '' : 's'}`
    for (const [k, v, id] of [['owners', `${fleet.threshold} of ${fleet.owners.length}: ${owners}`, 'trust-owners'], ['grants', grants, 'trust-grants'], ['revocations', String(fleet.revocations.length), 'trust-count']]) {
      const dd = el('dd', '', v)
      dd.id = id
      dl.append(el('dt', '', k), dd)
    }
    const list = el('ul', 'revocations')
    list.id = 'revocations'
    for (const r of fleet.revocations) {
      const li = el('li', 'revocation')
      li.dataset.id = r.device
      const name = this.nameOf(r.device)
      li.append(el('span', name === undefined ? 'mono' : 'name', name ?? shortId(r.device)), el('span', 'reason', r.reason), el('span', 'muted', ` ${isoDay(r.issuedAt)}, by ${r.owners.map((o) => shortId(o)).join(', ')}`))
      li.title = r.device
      list.append(li)
    }
    const grantList = el('ul', 'grants')
    for (const g of fleet.grants?.grants ?? []) grantList.append(el('li', 'mono', `${g.name === undefined ? shortId(g.to) : g.name}: ${g.actions.join(', ')} on ${g.on.map((o) => shortId(o)).join(', ')}`))
    this.root.replaceChildren(dl, list, grantList)
  }
}
