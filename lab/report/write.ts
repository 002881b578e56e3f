import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { meshError } from '../../shared/index.js'
import { deliveryChart } from '../charts/delivery.js'
import { failoverLatencyChart, pathLatencyChart } from '../charts/latency.js'
import { trafficChart } from '../charts/traffic.js'
import { notOnTimeChart, triggersChart } from '../charts/automation.js'
import { automationMarkdown } from './automation.js'
import { refusalChart } from '../charts/revocation.js'
import { revocationMarkdown } from './revocation.js'
import type { ModeObservations } from '../observations.js'
import { failoverMarkdown } from './failover.js'
import { latencyMarkdown } from './latency.js'
import { scaleMarkdown } from './scale.js'
import type { ExperimentResults } from '../results/types.js'
import { RESULTS_SCHEMA } from '../results/schema.js'
import { validateSchema, type SchemaError } from '../results/validate.js'

/**
 * The files of a run: results.json (checked against RESULTS_SCHEMA first), results.schema.json,
 * report.md and its SVG charts, and for failover runs given their observations, readings.csv
 * (every reading's fate). `renderReport` is pure (name → content, in writing order);
 * `writeReport` writes them into a directory it creates.
 */

export interface ReportOptions {
  /** Failover: the raw observations, written as readings.csv. */
  observations?: readonly ModeObservations[]
  /** Failover, re-rendered without observations: a readings.csv already beside the report, to link. */
  readingsFile?: string
}

/** One file of a report: its name in the report's directory and its text. */
export interface ReportFile { name: string, content: string }

/** The name of the schema written beside results.json. */
export const SCHEMA_FILE = 'results.schema.json'

/** Every way a results object departs from the results schema (empty when it is valid). */
export function validateResults (results: unknown): SchemaError[] {
  return validateSchema(RESULTS_SCHEMA, results)
}

/** The report's files (report.md, charts, results.json and its schema) from checked results, without writing them. */
export function renderReport (results: ExperimentResults, options: ReportOptions = {}): ReportFile[] {
  const errors = validateResults(results)
  if (errors.length > 0) {
    const list = errors.slice(0, 10).map((e) => `${e.path || '(root)'} ${e.message}`).join('; ')
    throw meshError('ERR_BAD_ARGUMENT', `experiment results do not match ${SCHEMA_FILE}: ${list}${errors.length > 10 ? `; and ${errors.length - 10} more` : ''}`, { details: { errors } })
  }
  const files: ReportFile[] = [
    { name: 'results.json', content: `${JSON.stringify({ $schema: SCHEMA_FILE, ...results }, null, 2)}\n` },
    { name: SCHEMA_FILE, content: `${JSON.stringify(RESULTS_SCHEMA, null, 2)}\n` }
  ]
  switch (results.experiment) {
    case 'failover': {
      const readings = options.observations === undefined ? options.readingsFile : 'readings.csv'
      files.push({ name: 'delivery.svg', content: deliveryChart(results) })
      files.push({ name: 'latency.svg', content: failoverLatencyChart(results) })
      if (options.observations !== undefined) files.push({ name: 'readings.csv', content: readingsCsv(options.observations) })
      files.push({ name: 'report.md', content: failoverMarkdown(results, { delivery: 'delivery.svg', latency: 'latency.svg', ...(readings === undefined ? {} : { readings }) }) })
      break
    }
    case 'scale':
      files.push({ name: 'traffic.svg', content: trafficChart(results) })
      files.push({ name: 'report.md', content: scaleMarkdown(results, { traffic: 'traffic.svg' }) })
      break
    case 'latency':
      files.push({ name: 'latency.svg', content: pathLatencyChart(results) })
      files.push({ name: 'report.md', content: latencyMarkdown(results, { latency: 'latency.svg' }) })
      break
    case 'automation':
      files.push({ name: 'triggers.svg', content: triggersChart(results) })
      files.push({ name: 'not-on-time.svg', content: notOnTimeChart(results) })
      files.push({ name: 'report.md', content: automationMarkdown(results, { triggers: 'triggers.svg', notOnTime: 'not-on-time.svg' }) })
      break
    case 'revocation':
      files.push({ name: 'refusal.svg', content: refusalChart(results) })
      files.push({ name: 'report.md', content: revocationMarkdown(results, { refusal: 'refusal.svg' }) })
      break
  }
  return files
}

/**
 * A saved results.json (as `writeReport` wrote it), parsed and checked against RESULTS_SCHEMA:
 * what `iotmesh experiment --from FILE --render-only` re-renders without running anything.
 */
export function parseSavedResults (text: string, source: string): ExperimentResults {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw meshError('ERR_BAD_ARGUMENT', `${source} is not JSON (${(err as Error).message}): give the results.json of an experiment report`, { cause: err })
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw meshError('ERR_BAD_ARGUMENT', `${source} is not an experiment's results object`)
  const { $schema: _schema, ...results } = parsed as Record<string, unknown>
  const errors = validateResults(results)
  if (errors.length > 0) {
    const list = errors.slice(0, 5).map((e) => `${e.path || '(root)'} ${e.message}`).join('; ')
    throw meshError('ERR_BAD_ARGUMENT', `${source} does not match ${SCHEMA_FILE} (made by another version of iotmesh?): ${list}`, { details: { errors } })
  }
  return results as unknown as ExperimentResults
}

/** Writes the run's files into `dir` (created if missing); returns their paths. */
export async function writeReport (dir: string, results: ExperimentResults, options: ReportOptions = {}): Promise<string[]> {
  const files = renderReport(results, options)
  await mkdir(dir, { recursive: true })
  const paths: string[] = []
  for (const file of files) {
    const path = join(dir, file.name)
    await writeFile(path, file.content)
    paths.push(path)
  }
  return paths
}

/** One row per reading: times in ms from the mode's timeline start, empty where it never arrived. */
export function readingsCsv (observations: readonly ModeObservations[]): string {
  const rows = ['mode,origin,seq,published_ms,gateway_ms,peer_ms,duplicates_at_gateway']
  const rel = (t: number | undefined, t0: number): string => (t === undefined ? '' : String(Math.round((t - t0) * 1000) / 1000))
  for (const o of observations) {
    const sorted = [...o.readings].sort((a, b) => a.publishedAt - b.publishedAt || (a.origin < b.origin ? -1 : a.origin > b.origin ? 1 : a.seq - b.seq))
    for (const r of sorted) {
      rows.push([o.mode, r.origin, r.seq, rel(r.publishedAt, o.t0), rel(r.receivedAt?.gateway, o.t0), rel(r.receivedAt?.peer, o.t0), r.duplicatesAtGateway ?? 0].join(','))
    }
  }
  return `${rows.join('\n')}\n`
}
