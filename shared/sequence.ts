/**
 * A source of sequence numbers for one origin's frames. The durable one, which never repeats a
 * number across restarts and crashes, keeps its state in a file: `openSequenceFile` in
 * `iotmesh/shared/node` (./node/sequence-file.ts).
 */
export interface SequenceSource {
  /** The next number: strictly greater than every number handed out before, by this store or any earlier run. */
  next (): number
  /** The last number handed out (0 before the first). */
  readonly current: number
}

/** An in-memory source, for tests and simulated fleets that do not outlive their process. */
export function memorySequence (start = 0): SequenceSource {
  let current = start
  return {
    next: () => ++current,
    get current () { return current }
  }
}
