/**
 * The schema and statements both databases share (SQLite 3.35+ and PostgreSQL 12+ read the same
 * SQL here); `$n` placeholders are PostgreSQL's, and SQLite accepts them as well (`?NNN`-style
 * numbered parameters, https://sqlite.org/lang_expr.html#parameters). Where the dialects differ
 * (types, `max` of two values), each store passes its own word.
 */

export const SCHEMA_VERSION = 1

export function schema (dialect: 'sqlite' | 'postgres'): string[] {
  const id = dialect === 'sqlite' ? 'INTEGER PRIMARY KEY' : 'BIGSERIAL PRIMARY KEY'
  const blob = dialect === 'sqlite' ? 'BLOB' : 'BYTEA'
  const real = dialect === 'sqlite' ? 'REAL' : 'DOUBLE PRECISION'
  const int = dialect === 'sqlite' ? 'INTEGER' : 'BIGINT'
  return [
    'CREATE TABLE IF NOT EXISTS iotmesh_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)',
    `CREATE TABLE IF NOT EXISTS readings (
      id ${id}, fleet TEXT NOT NULL, origin TEXT NOT NULL, seq ${int} NOT NULL, time ${real} NOT NULL,
      received_at ${int} NOT NULL, path TEXT NOT NULL, topic TEXT NOT NULL, frame ${blob} NOT NULL,
      UNIQUE (fleet, origin, seq))`,
    'CREATE INDEX IF NOT EXISTS readings_by_time ON readings (fleet, origin, time, seq)',
    'CREATE INDEX IF NOT EXISTS readings_by_age ON readings (fleet, id)',
    `CREATE TABLE IF NOT EXISTS origins (
      fleet TEXT NOT NULL, origin TEXT NOT NULL, high ${int} NOT NULL, floor ${int} NOT NULL DEFAULT -1,
      known ${int} NOT NULL DEFAULT 0, updated_at ${int} NOT NULL, PRIMARY KEY (fleet, origin))`,
    `CREATE TABLE IF NOT EXISTS devices (
      fleet TEXT NOT NULL, id TEXT NOT NULL, info TEXT NOT NULL, last_seen ${int} NOT NULL, PRIMARY KEY (fleet, id))`,
    // Device tokens used (their cti), until they expire: a token is good for one CONNECT on every gateway sharing the store, across restarts.
    `CREATE TABLE IF NOT EXISTS tokens (
      fleet TEXT NOT NULL, device TEXT NOT NULL, cti TEXT NOT NULL, until_s ${int} NOT NULL, PRIMARY KEY (fleet, device, cti))`,
    'CREATE INDEX IF NOT EXISTS tokens_by_expiry ON tokens (fleet, until_s)',
    // Owner-signed documents the gateway took (gateway/kept-trust.ts): fleet files (key: the version) and revocations (key: the device id),
    // verified again at every start against the fleet file given.
    `CREATE TABLE IF NOT EXISTS trust (
      fleet TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, doc ${blob} NOT NULL, PRIMARY KEY (fleet, kind, key))`,
    `INSERT INTO iotmesh_meta (key, value) VALUES ('schema', '${SCHEMA_VERSION}') ON CONFLICT (key) DO NOTHING`
  ]
}

/** `greatest` in PostgreSQL, the two-argument `max` in SQLite. */
export function statements (dialect: 'sqlite' | 'postgres'): Record<string, string> {
  const greatest = dialect === 'sqlite' ? 'max' : 'greatest'
  return {
    insertReading: `INSERT INTO readings (fleet, origin, seq, time, received_at, path, topic, frame) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
      ON CONFLICT (fleet, origin, seq) DO NOTHING`,
    raiseHigh: `INSERT INTO origins (fleet, origin, high, floor, known, updated_at) VALUES ($1, $2, $3, -1, $4, $5)
      ON CONFLICT (fleet, origin) DO UPDATE SET high = ${greatest}(origins.high, excluded.high),
      known = ${greatest}(origins.known, excluded.known), updated_at = ${greatest}(origins.updated_at, excluded.updated_at)`,
    loadOrigins: 'SELECT origin, high, floor, known FROM origins WHERE fleet = $1 ORDER BY updated_at',
    loadWindows: `SELECT r.origin, r.seq FROM readings r JOIN origins o ON o.fleet = r.fleet AND o.origin = r.origin
      WHERE r.fleet = $1 AND r.seq > o.high - $2 AND r.seq <= o.high`,
    loadDevices: 'SELECT info FROM devices WHERE fleet = $1 ORDER BY last_seen DESC LIMIT $2',
    saveDevice: `INSERT INTO devices (fleet, id, info, last_seen) VALUES ($1, $2, $3, $4)
      ON CONFLICT (fleet, id) DO UPDATE SET info = excluded.info, last_seen = excluded.last_seen`,
    history: `SELECT origin, seq, time, received_at, path, topic, frame FROM readings
      WHERE fleet = $1 AND origin = $2 AND time >= $3 AND time < $4 AND (time > $5 OR (time = $5 AND seq > $6))
      ORDER BY time, seq LIMIT $7`,
    newest: `SELECT origin, seq, time, received_at, path, topic, frame FROM readings
      WHERE fleet = $1 AND origin = $2 AND time >= $3 AND time < $4 ORDER BY time DESC, seq DESC LIMIT $5`,
    oldestId: 'SELECT min(id) AS id FROM readings WHERE fleet = $1',
    /** The newest id accepted before a time (ids grow in the order readings were accepted). */
    lastIdBefore: 'SELECT max(id) AS id FROM readings WHERE fleet = $1 AND id <= $2 AND received_at < $3',
    /** The newest id beyond the newest `$2` readings. */
    lastIdBeyond: 'SELECT id FROM readings WHERE fleet = $1 ORDER BY id DESC LIMIT 1 OFFSET $2',
    raiseFloors: `UPDATE origins SET floor = ${greatest}(origins.floor, d.top)
      FROM (SELECT origin, max(seq) AS top FROM readings WHERE fleet = $1 AND id <= $2 GROUP BY origin) AS d
      WHERE origins.fleet = $1 AND origins.origin = d.origin`,
    deleteReadings: 'DELETE FROM readings WHERE fleet = $1 AND id <= $2',
    pruneOrigins: `DELETE FROM origins WHERE fleet = $1 AND origin IN
      (SELECT origin FROM origins WHERE fleet = $1 ORDER BY updated_at DESC ${dialect === 'sqlite' ? 'LIMIT -1' : ''} OFFSET $2)`,
    pruneDevices: `DELETE FROM devices WHERE fleet = $1 AND id IN
      (SELECT id FROM devices WHERE fleet = $1 ORDER BY last_seen DESC ${dialect === 'sqlite' ? 'LIMIT -1' : ''} OFFSET $2)`,
    count: 'SELECT count(*) AS n FROM readings WHERE fleet = $1',
    claimToken: 'INSERT INTO tokens (fleet, device, cti, until_s) VALUES ($1, $2, $3, $4) ON CONFLICT (fleet, device, cti) DO NOTHING',
    pruneTokens: 'DELETE FROM tokens WHERE fleet = $1 AND until_s < $2',
    keepTrust: 'INSERT INTO trust (fleet, kind, key, doc) VALUES ($1, $2, $3, $4) ON CONFLICT (fleet, kind, key) DO NOTHING',
    loadTrust: 'SELECT kind, key, doc FROM trust WHERE fleet = $1 ORDER BY kind, key'
  }
}

/** Most readings deleted by one prune: the database is never blocked long (the next prune goes on). */
export const PRUNE_BATCH = 20_000
