import type { ActuatorStates, DeviceId, SenmlPack } from '../shared/index.js'
import type { DropReason, Path } from './reasons.js'
import type { CredentialInfo } from './trust.js'

/** What the device registry (gateway/devices.ts) shows of a device: the shapes of the HTTP API. */

export type DevicePath = Path | 'both'

export interface StoredReading {
  seq: number
  /** Sampling time, seconds since the epoch. */
  time: number
  /** When the gateway accepted it, ms since the epoch. */
  receivedAt: number
  path: Path
  deviceTopic: string
  records: SenmlPack
}

/** A device as the API shows it (plain JSON). */
export interface DeviceInfo {
  id: DeviceId
  name?: string
  /** base64url public key, once known. */
  pk?: string
  /**
   * Present: its retained status says online, or a reading reached the gateway through the mesh
   * within `presenceMs` (mesh devices publish no status).
   */
  online: boolean
  /** What its retained MQTT status says, when it has one (undefined: none, or cleared). */
  status?: 'online' | 'offline'
  /** Last reading or status, ms since the epoch. */
  lastSeen?: number
  /** Paths seen within `pathWindowMs` of the last reading: broker, mesh or both. */
  path?: DevicePath
  readings: number
  /** Highest sequence number accepted. */
  lastSeq?: number
  /**
   * Sequence numbers the device used that never arrived: skipped and not filled in within the
   * settle time (`gapSettleMs`). The rest of a sequence block skipped by a restart is not counted
   * (gateway/seq-gaps.ts).
   */
  seqGaps: number
  /** Numbers skipped recently that may still arrive (outbox, catch-up); absent when none. */
  seqPending?: number
  /** Online statuses that followed earlier activity (a reconnect or a restart). */
  restarts: number
  signatureFailures: number
  /** When the last signature failure was seen, ms since the epoch. */
  lastSignatureFailure?: number
  /** Drops attributed to this device, by reason. */
  drops: Partial<Record<DropReason, number>>
  /**
   * Set once two different, validly signed frames arrived for one of its (origin, seq): two
   * devices hold its key (one SD-card image on two boards). The first copy of each is kept.
   */
  clone?: CloneInfo
  /**
   * Its actuators' state, as its latest readings report it (shared/actuators.ts): actuator name →
   * state record → value, e.g. {"relay": {"relay": true}}. Only a device with actuators has it.
   */
  actuators?: ActuatorStates
  /**
   * Its owner-signed configuration, as the device reports it in signed frames on its `config` topic
   * (firmware-sim/device/signed-config.ts): the version applied, settings waiting for a restart,
   * and the last configuration it refused, with the code and reason.
   */
  config?: { version: number, restart?: string, refused?: { version: number, reason: string } }
  /**
   * Its enrollment credential as the gateway knows it (with a fleet file: gateway/trust.ts): enrolled
   * (by which owners, with which roles, until when), expired, revoked (with the owners' reason),
   * invalid (with the code) or none. Computed when shown; never stored.
   */
  credential?: CredentialInfo
  /**
   * The device's keys, oldest first, once it rotated its key (a rotation its owners signed:
   * shared/fleet.ts `rotate`): the last is the current one (`id`); each earlier one says when it
   * was retired (its handover's issued-at, seconds since the epoch). Readings of all of them are
   * this device's: its counters and history, here and in the store (gateway/http-history.ts).
   */
  keys?: DeviceKey[]
}

/** One of a device's keys (`DeviceInfo.keys`). */
export interface DeviceKey {
  id: DeviceId
  pk?: string
  /** When it was handed over to the next key, seconds since the epoch (absent: the current key). */
  retiredAt?: number
}

/** A cloned identity, as the registry saw it (drops with reason `cloned_identity`). */
export interface CloneInfo {
  code: 'ERR_CLONED_IDENTITY'
  /** Second copies refused, in all. */
  copies: number
  /** When the first and the latest were seen, ms since the epoch. */
  since: number
  last: number
  /** The sequence number of the latest. */
  seq?: number
}
