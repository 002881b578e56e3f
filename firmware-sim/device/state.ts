import { mkdir, stat, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import {
  generateKeyPair, memorySequence, meshError, type KeyPair, type SequenceSource
} from '../../shared/index.js'
import { loadKeyFile, openSequenceFile, saveKeyFile, storageError } from '../../shared/node.js'
import { checkSequenceAhead, openOutbox } from '../outbox.js'
import type { DeliveryPath, FsyncPolicy, Outbox } from '../outbox/types.js'

/**
 * What a device keeps between runs, under its data directory:
 *
 *     <dataDir>/device.key   its identity (PKCS#8 PEM, 0600), created on first start when absent
 *     <dataDir>/device.seq   sequence reservations (shared/sequence.ts: fsync + atomic rename)
 *     <dataDir>/outbox/      frames not delivered yet (outbox/disk.ts)
 *
 * Sequence numbers never repeat, across restarts and crashes: the store reserves numbers on disk
 * before handing them out and starts above its last reservation, and at start it must be at or
 * above the outbox's high-water mark (checkSequenceAhead), else the sequence file was lost or
 * restored from an old copy and the device refuses to start (ERR_SEQUENCE_STORE) rather than
 * sign fresh readings that receivers would drop as replays.
 *
 * Without a data directory (simulated fleets) everything is in memory and the numbers start at
 * the wall clock in microseconds, as the mesh router's do: a restarted process starts above the
 * numbers it used before unless it signed more than a million frames a second.
 */
export interface DeviceState {
  keys: KeyPair
  /** True when the key file was created by this start. */
  keyCreated: boolean
  keyFile: string | undefined
  sequence: SequenceSource
  outbox: Outbox
  /** Whether the device opened the outbox (and closes it on stop). */
  ownsOutbox: boolean
}

export interface StateInit {
  dataDir?: string
  keyFile?: string
  sequenceBlock?: number
  paths: DeliveryPath[]
  fsync?: FsyncPolicy
  outboxFrames?: number
  outboxBytes?: number
}

export async function openDeviceState (
  init: StateInit,
  given: { keys?: KeyPair, sequence?: SequenceSource, outbox?: Outbox, now: () => number }
): Promise<DeviceState> {
  const { dataDir } = init
  if (dataDir !== undefined) await checkDataDir(dataDir)
  const keyFile = init.keyFile ?? (dataDir === undefined ? undefined : join(dataDir, 'device.key'))
  let keys = given.keys
  let keyCreated = false
  if (keys === undefined && keyFile !== undefined) {
    if (await exists(keyFile)) {
      keys = await loadKeyFile(keyFile)
    } else {
      keys = generateKeyPair()
      await saveKeyFile(keyFile, keys) // O_EXCL: two devices starting on one data dir cannot both create it
      keyCreated = true
    }
  }
  keys ??= generateKeyPair()
  const sequence = given.sequence ?? (dataDir === undefined
    ? memorySequence(Math.floor(given.now() * 1000))
    : openSequenceFile(join(dataDir, 'device.seq'), { block: init.sequenceBlock ?? 1000 }))
  let outbox = given.outbox
  const ownsOutbox = outbox === undefined
  if (outbox === undefined) {
    const dir = dataDir === undefined ? undefined : join(dataDir, 'outbox')
    try {
      outbox = await openOutbox({
        paths: init.paths,
        ...(dir === undefined ? {} : { dir }),
        ...(init.fsync === undefined ? {} : { fsync: init.fsync }),
        ...(init.outboxFrames === undefined ? {} : { maxFrames: init.outboxFrames }),
        ...(init.outboxBytes === undefined ? {} : { maxBytes: init.outboxBytes })
      })
    } catch (err) {
      throw storageError(err, `the outbox ${dir ?? ''}`) ?? err
    }
  } else {
    const missing = init.paths.filter((p) => !outbox?.paths.includes(p))
    if (missing.length > 0) throw meshError('ERR_BAD_ARGUMENT', `the outbox given has paths ${outbox.paths.join(', ')} but the device delivers on ${init.paths.join(', ')}`)
  }
  try {
    checkSequenceAhead(sequence, outbox)
  } catch (err) {
    if (ownsOutbox) await outbox.close()
    throw err
  }
  return { keys, keyCreated, keyFile, sequence, outbox, ownsOutbox }
}

/**
 * The data directory exists (created 0700 when absent) and takes a new file: a file in its place,
 * no permission, a read-only mount or a full disk stop the device at start with ERR_DATA_DIR and a
 * sentence, instead of a device that runs on and signs nothing (every sample needs the sequence file).
 */
async function checkDataDir (dir: string): Promise<void> {
  const probe = join(dir, `.write-probe-${process.pid}`)
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 })
    await writeFile(probe, 'iotmesh\n', { flag: 'wx' })
    await unlink(probe)
  } catch (err) {
    await unlink(probe).catch(() => {})
    throw storageError(err, `the data directory ${dir} cannot be written`) ?? err
  }
}

async function exists (path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw meshError('ERR_BAD_KEY', `cannot read key file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err })
  }
}
