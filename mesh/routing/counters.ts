/** What a router counts; `mesh/node.ts` adds link bytes and peers. */
export interface RouterCounters {
  /** DATA messages received from neighbours. */
  framesIn: number
  /** DATA messages sent to neighbours (eager pushes and repairs). */
  framesOut: number
  /** Frames that other devices originated which this node forwarded (to one neighbour or more). */
  relayed: number
  /** Frames this node signed and published. */
  published: number
  /** Distinct verified frames accepted (and offered to subscribers), own ones included. */
  delivered: number
  /** Frames dropped before verification as already seen (same origin and sequence number). */
  duplicates: number
  /** Frames sent in answer to a WANT (catch-up and tree repair). */
  repaired: number
  /** WANT ranges sent. */
  wantsSent: number
  /** Repairs put off `graftDelay` because this node was behind reading its own links (handlers/sync.ts `BEHIND_WAITS`). */
  wantsHeld: number
  /** Full DIGESTs sent: a route to a subscriber appeared, or moved because its old next hop is gone (handlers/sync.ts). */
  fullDigests: number
  /** Slices of sync rounds and parts of full DIGESTs sent (handlers/sync.ts: at most `SYNC_SLICE` origins each, one per turn of the clock). */
  syncSlices: number
  /** Control messages (everything but DATA) received and sent. */
  controlIn: number
  controlOut: number
  /** Frames and messages refused, by error code (ERR_OVER_BUDGET included). */
  rejected: Partial<Record<string, number>>
  /** Messages dropped unread because their sender was over its budget for their kind (budget.ts), by kind; `fresh`: frames of fresh origins refused unchecked past their link's budget (handlers/data.ts). */
  overBudget: Partial<Record<string, number>>
  /** Neighbours disconnected and kept out because their score fell below the threshold (score.ts). */
  bans: number
  /** Second copies of an (origin, seq) refused as a cloned identity (ERR_CLONED_IDENTITY). */
  clones: number
  /** Signed end-to-end acks (ACK entries) taken (verified, new) and sent (signed here or forwarded). */
  acksIn: number
  acksOut: number
  /** Acks not sent on because no reverse path towards their origin was known (sent again by their subscriber later). */
  acksUnrouted: number
  /** Commands and results (CMD entries) taken here (for this node), forwarded on, and not routed (no route, table full, a result nobody here asked for). */
  commandsIn: number
  commandsOut: number
  commandsUnrouted: number
  /** Revocations taken (verified, new) and frames, links and commands refused because their device is revoked. */
  revocations: number
  revokedRefused: number
  /** Configurations taken (verified, a new highest version for their target). */
  configs: number
  /** Credentials of other devices taken by gossip (CRED, verified, new here). */
  credentials: number
  /** Signed fleet files taken (verified, a new version in force). */
  fleetFiles: number
  /** Route requests (ROUTEREQ entries, handlers/route-request.ts): sent for routes this node lost, passed on towards their subscribers, answered with a claim. */
  routeRequestsOut: number
  routeRequestsPassed: number
  routeAnswers: number
  /** New versions of this node's own declaration made because a neighbour asked (ROUTEREQ). */
  redeclared: number
  /** Frames offered again sent on towards durable subscribers whose acks list them as holes (handlers/reoffer.ts), per neighbour. */
  reoffersPassed: number
  /** Origins whose repair history was forgotten because nothing was added for them in `historyIdleMs` (history.ts `forgetIdle`). */
  historyForgotten: number
  /** With `relayBeforeVerify`: frames relayed before this node verified them, and of those, ones that then failed their check (early.ts). */
  relayedEarly: number
  earlyForgeries: number
  /**
   * This node's own frames that waited for the origin rate its neighbours take (pacer.ts), and ones
   * not pushed at all because a burst of them already waited (kept in the history for DIGEST/WANT).
   */
  paced: number
  pacedOver: number
  /** Frames sent on by the broadcast tree (tree.ts) rather than by interest routing. */
  treeFrames: number
  /** This node's signed interest declarations sent to neighbours (one per new version per link, handlers/interest.ts). */
  declarationsOut: number
  /** Other subscribers' declarations passed on to neighbours, each with the first claim of its version on a link that lacked it. */
  declarationsPassed: number
  /**
   * Times a claim taken moved a route from one next hop to another (a route that appeared, or was
   * lost, aside; so are moves because a link closed): what the interest refresh should not cause
   * (issue 15, interest.ts `best`).
   */
  routeMoves: number
}

export function newCounters (): RouterCounters {
  return {
    framesIn: 0, framesOut: 0, relayed: 0, published: 0, delivered: 0, duplicates: 0, repaired: 0, wantsSent: 0, wantsHeld: 0, fullDigests: 0, syncSlices: 0, controlIn: 0, controlOut: 0,
    rejected: {}, overBudget: {}, bans: 0, clones: 0, acksIn: 0, acksOut: 0, acksUnrouted: 0, commandsIn: 0, commandsOut: 0, commandsUnrouted: 0, revocations: 0, revokedRefused: 0, configs: 0, credentials: 0, fleetFiles: 0,
    routeRequestsOut: 0, routeRequestsPassed: 0, routeAnswers: 0, redeclared: 0, reoffersPassed: 0, historyForgotten: 0, relayedEarly: 0, earlyForgeries: 0, paced: 0, pacedOver: 0, treeFrames: 0, declarationsOut: 0, declarationsPassed: 0, routeMoves: 0
  }
}
