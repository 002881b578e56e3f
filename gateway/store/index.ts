import { meshError } from '../../shared/index.js'
import { PostgresStore } from './postgres.js'
import { SqliteStore } from './sqlite.js'
import type { GatewayStore } from './store.js'

/**
 * The gateway's durable state (store.ts): SQLite through libsql embedded (sqlite.ts, the
 * default), PostgreSQL for several gateways sharing one database (postgres.ts).
 */
export { SqliteStore, type SqliteStoreInit } from './sqlite.js'
export { PostgresStore, type PostgresStoreInit } from './postgres.js'
export { GatewayState, type StateInit, type StateCounters } from './state.js'
export { RETENTION_DEFAULTS, type GatewayStore, type KeptDoc, type StoredReading, type SavedOrigin, type HistoryQuery, type RetentionInit } from './store.js'

/**
 * A store for a location, not opened yet: a postgres:// (or postgresql://) URL is a PostgreSQL
 * server, anything else the path of a SQLite file.
 */
export function createStore (location: string, fleet: string, options: { durability?: 'process' | 'power' } = {}): GatewayStore {
  if (isPostgresUrl(location)) return new PostgresStore({ url: location, fleet })
  if (location === '') throw meshError('ERR_BAD_ARGUMENT', 'the store location is empty: a file path or a postgres:// URL')
  return new SqliteStore({ path: location, fleet, durability: options.durability ?? 'process' })
}

/** `createStore`, opened. */
export async function openStore (location: string, fleet: string, options: { durability?: 'process' | 'power' } = {}): Promise<GatewayStore> {
  const store = createStore(location, fleet, options)
  await store.open()
  return store
}

/** Whether a store location is a PostgreSQL URL (`postgres://` or `postgresql://`) rather than a file. */
export function isPostgresUrl (location: string): boolean {
  return /^postgres(ql)?:\/\//.test(location)
}
