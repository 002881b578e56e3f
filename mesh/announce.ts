import { DEFAULT_CBOR_LIMITS, type SenmlRecord } from '../shared/index.js'

/**
 * What a node publishes on `mesh/links` (MeshNode.announceLinks): its neighbours' ids,
 * space-separated, in `links` records (SenML string values, RFC 8428 §4.2) of at most the
 * 1,024 bytes every receiver takes for one string (shared/cbor.ts `maxStringBytes`), as many as
 * it takes, and its `degree`. One string held 37 ids at most: a node with more links (a gateway,
 * or a device in a fleet of 100 over TCP in one process) had its announcement refused by its own
 * signer, and the throw in that timer ended the process (issue 15). Readers join every `links`
 * record (gateway/topology.ts).
 */
export function linksRecords (ids: readonly string[], maxBytes = DEFAULT_CBOR_LIMITS.maxStringBytes): SenmlRecord[] {
  const records: SenmlRecord[] = []
  let chunk = ''
  for (const id of ids) { // device ids are ASCII: a character is a byte
    if (chunk !== '' && chunk.length + 1 + id.length > maxBytes) {
      records.push({ n: 'links', vs: chunk })
      chunk = ''
    }
    chunk = chunk === '' ? id : `${chunk} ${id}`
  }
  records.push({ n: 'links', vs: chunk }, { n: 'degree', v: ids.length })
  return records
}
