import { createRequire } from 'node:module'
import mqemitterRedis from 'mqemitter-redis'
import { meshError } from '../shared/index.js'

/**
 * Outgrowing one machine: several embedded gateways share one broker state through Redis —
 * messages through `mqemitter-redis` (Redis pub/sub), retained messages, subscriptions, wills and
 * QoS state through `aedes-persistence-redis` (aedes 1.x needs ≥ 11.2.1: the async persistence
 * interface, docs/MIGRATION.md). A device connected to gateway 1 reaches a subscriber of gateway 2.
 */

export interface ClusterInit {
  /** redis://[:password@]host:port[/db] */
  redis: string
}

/** What aedes needs of a persistence here (aedes-persistence-redis ships no types). */
export interface ClusterPersistence {
  destroy (cb?: () => void): unknown
}

export interface ClusterParts {
  mq: unknown
  persistence: ClusterPersistence
  /** Closes the persistence's Redis connection (aedes closes `mq` itself). */
  close (): Promise<void>
}

type PersistenceFactory = (opts: Record<string, unknown>) => ClusterPersistence
interface Quittable { quit: (...args: unknown[]) => Promise<unknown> }
interface RedisConnection {
  on: (event: string, fn: (err: Error) => void) => unknown
  sendCommand: (command: { promise?: Promise<unknown> }, ...rest: unknown[]) => unknown
}

export function redisOptions (url: string): { host: string, port: number, db: number, username?: string, password?: string } {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch (err) {
    throw meshError('ERR_BAD_ARGUMENT', `cluster.redis must be a redis:// URL, got ${JSON.stringify(url)}`, { cause: err })
  }
  if (parsed.protocol !== 'redis:') throw meshError('ERR_BAD_ARGUMENT', `cluster.redis must be a redis:// URL, got ${JSON.stringify(url)}`)
  const db = parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : 0
  if (!Number.isSafeInteger(db) || db < 0) throw meshError('ERR_BAD_ARGUMENT', `the Redis database in ${url} is not a number`)
  return {
    host: parsed.hostname,
    port: parsed.port === '' ? 6379 : Number(parsed.port),
    db,
    ...(parsed.username === '' ? {} : { username: decodeURIComponent(parsed.username) }),
    ...(parsed.password === '' ? {} : { password: decodeURIComponent(parsed.password) })
  }
}

export function createClusterParts (init: ClusterInit): ClusterParts {
  const options = redisOptions(init.redis)
  const require = createRequire(import.meta.url)
  const persistenceFactory = require('aedes-persistence-redis') as PersistenceFactory
  // The persistence's Redis connection, made here so its failures are ours to handle: on close,
  // ioredis rejects the commands still queued ("Connection is closed"), and aedes-persistence-redis
  // does not always await them. ioredis is resolved as aedes-persistence-redis resolves it.
  const Redis = createRequire(require.resolve('aedes-persistence-redis'))('ioredis') as new (opts: Record<string, unknown>) => RedisConnection
  const conn = new Redis({ ...options, maxRetriesPerRequest: 3 })
  conn.on('error', () => {})
  const sendCommand = conn.sendCommand.bind(conn)
  conn.sendCommand = (command: { promise?: Promise<unknown> }, ...rest: unknown[]) => {
    const result = sendCommand(command, ...rest)
    command.promise?.catch(() => {}) // the caller still sees the rejection; it just cannot go unheard
    return result
  }
  const persistence = persistenceFactory({ conn })
  // No ready check: ioredis's check is an INFO command, which a connection in subscriber mode may
  // not send; on a reconnect the server refuses it ("only (P|S)SUBSCRIBE … allowed in this context").
  const mq = mqemitterRedis({ ...options, maxRetriesPerRequest: 3, enableReadyCheck: false })
  // mqemitter-redis re-emits connection errors on `state`; unheard, Node would throw them and take
  // the gateway down. ioredis reconnects by itself: a Redis hiccup is survived, not fatal.
  ;(mq as { state?: { on: (event: string, fn: (err: Error) => void) => void } }).state?.on('error', () => {})
  // mqemitter-redis closes with `subConn.quit()` and `pubConn.quit()` and drops their promises; when
  // the connection is already gone, quit rejects ("Connection is closed") and nobody would hear it.
  for (const conn of [(mq as { subConn?: Quittable }).subConn, (mq as { pubConn?: Quittable }).pubConn]) {
    if (conn === undefined) continue
    const quit = conn.quit.bind(conn)
    conn.quit = (...args: unknown[]) => {
      const done = quit(...args)
      done.catch(() => {})
      return done
    }
  }
  let closed: Promise<void> | undefined
  return {
    mq,
    persistence,
    close: async () => {
      closed ??= Promise.resolve(persistence.destroy()).then(() => {}, () => {})
      await closed
    }
  }
}
