import { decryptFrame, isMeshError, type ErrorCode, type ReaderKey, type SenmlPack, type TelemetryFrame } from '../shared/index.js'

/**
 * The gateway as a reader of encrypted readings (issue 13, shared/cose-encrypt.ts). A frame is
 * verified first (its origin, its freshness) and only then opened here: with the gateway's reader
 * key (`iotmesh gateway --reader-key`) its readings reach the JSON mirror, the history and Home
 * Assistant; without one, or when the frame was not encrypted to this key (no grant, revoked), the
 * ciphertext is still forwarded and stored as it came, and counted, never a crash.
 */

export type Opened =
  | { encrypted: false, records: SenmlPack }
  | { encrypted: true, readable: true, records: SenmlPack }
  | { encrypted: true, readable: false, records: SenmlPack, code: ErrorCode | 'ERR_NO_READER_KEY' }

export class ReadingDecryptor {
  readonly counters = { decrypted: 0, unread: 0 }
  constructor (readonly readerKey: ReaderKey | undefined) {}

  /** The frame's readings: as they are for a plain frame, decrypted for an encrypted one when this key may read it, none otherwise. */
  open (frame: TelemetryFrame): Opened {
    if (frame.encrypted === undefined) return { encrypted: false, records: frame.records }
    if (this.readerKey === undefined) {
      this.counters.unread++
      return { encrypted: true, readable: false, records: [], code: 'ERR_NO_READER_KEY' }
    }
    try {
      const records = decryptFrame(frame, this.readerKey).records
      this.counters.decrypted++
      return { encrypted: true, readable: true, records }
    } catch (err) {
      this.counters.unread++
      return { encrypted: true, readable: false, records: [], code: isMeshError(err) ? err.code : 'ERR_DECRYPT' }
    }
  }
}
