import { readFile } from 'node:fs/promises'
import { meshError, readersFor, verifyReaderGrants, type FleetPolicy, type FrameEncryption, type ReaderGrants } from '../../shared/index.js'

/**
 * A device's readings encrypted to its fleet's readers (issue 13, shared/readers.ts): the
 * owner-signed reader grant list, checked against the fleet file at start, decides for each
 * reading's topic whether it goes out encrypted (COSE_Encrypt inside the signed frame) and to whom.
 * Only the encrypted form enters the outbox, so no delivery path, relay or history ever holds
 * the readings in the clear.
 */

/** Reads and verifies a reader grant list (a path or its bytes); ERR_BAD_ARGUMENT when unreadable, else the verification's code. */
export async function loadReaderGrants (file: string | Uint8Array, policy: FleetPolicy): Promise<ReaderGrants> {
  let bytes: Uint8Array
  if (typeof file === 'string') {
    try {
      bytes = new Uint8Array(await readFile(file))
    } catch (err) {
      throw meshError('ERR_BAD_ARGUMENT', `cannot read the reader grant list ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err })
    }
  } else {
    bytes = file
  }
  return verifyReaderGrants(bytes, policy)
}

/**
 * How a reading on `topic` is sent: undefined in the clear (the list leaves that topic out);
 * ERR_NOT_A_READER when the topic is to be encrypted and nobody may read it (every reader revoked):
 * the reading is refused rather than sent in the clear.
 */
export function encryptionFor (grants: ReaderGrants | undefined, topic: string): FrameEncryption | undefined {
  if (grants === undefined) return undefined
  const readers = readersFor(grants, topic)
  if (readers === undefined) return undefined
  if (readers.length === 0) throw meshError('ERR_NOT_A_READER', `the reader grant list (version ${grants.version}) encrypts ${topic} but grants no reader: the reading is not sent`)
  return { readers }
}
