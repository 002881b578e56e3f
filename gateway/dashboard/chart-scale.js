/* iotmesh dashboard: the charts' scales (time ranges, axis ticks). Pure: no DOM, so tests import it in Node. */

/** The time ranges a person picks for the charts: label and seconds (Infinity: every point kept). */
export const RANGES = [['5 min', 300], ['1 h', 3600], ['all', Infinity]]

/** The default range, in seconds. */
export const DEFAULT_RANGE = 300

/**
 * The time window [t0, t1] (seconds since the epoch) a chart of `range` shows at `now` (ms): the last
 * `range` seconds; for "all", from the first point (at least a minute).
 */
export function timeWindow (range, now, first) {
  const t1 = now / 1000
  if (Number.isFinite(range)) return [t1 - range, t1]
  return [Math.min(first ?? t1, t1 - 60), t1]
}

/** The points of a series inside [t0, t1]. */
export function inWindow (points, t0, t1) {
  return points.filter((p) => p.t >= t0 && p.t <= t1)
}

/**
 * Ticks at round values (1, 2 or 5 times a power of ten) covering [lo, hi], about `count` of them,
 * with the decimals their step needs: { values, decimals, lo, hi } where lo and hi are widened to
 * the outer ticks.
 */
export function niceTicks (lo, hi, count = 4) {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return { values: [], decimals: 0, lo: 0, hi: 1 }
  if (lo === hi) { lo -= 1; hi += 1 }
  const raw = (hi - lo) / Math.max(1, count)
  const power = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power
  const first = Math.floor(lo / step) * step
  const last = Math.ceil(hi / step) * step
  const values = []
  for (let v = first; v <= last + step / 2 && values.length < 50; v += step) values.push(Number(v.toFixed(12)))
  const decimals = Math.max(0, Math.min(6, -Math.floor(Math.log10(step))))
  return { values, decimals, lo: first, hi: last }
}

/** Steps for time ticks, seconds: from 10 s to a day. */
const TIME_STEPS = [10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400]

/** Time ticks (seconds since the epoch) at round clock times inside [t0, t1], about `count` of them. */
export function timeTicks (t0, t1, count = 5) {
  const span = Math.max(1, t1 - t0)
  const step = TIME_STEPS.find((s) => span / s <= count) ?? 86400
  const ticks = []
  for (let t = Math.ceil(t0 / step) * step; t <= t1 && ticks.length < 50; t += step) ticks.push(t)
  return { values: ticks, step }
}

/** A tick's clock label: hh:mm, with seconds when the step is under a minute; `offsetMin` is the local offset (Date#getTimezoneOffset). */
export function timeLabel (t, step, offsetMin = 0) {
  const local = new Date(t * 1000 - offsetMin * 60_000)
  const hh = String(local.getUTCHours()).padStart(2, '0')
  const mm = String(local.getUTCMinutes()).padStart(2, '0')
  const ss = String(local.getUTCSeconds()).padStart(2, '0')
  return step < 60 ? `${hh}:${mm}:${ss}` : `${hh}:${mm}`
}

/**
 * The room (px) the value axis needs left of the plot for `labels` (11 px text, right-aligned 6 px
 * left of the plot): at least `min`, more for long ticks such as 1014.800, which were cut at the
 * chart's left edge (".014.800") with a fixed 54 px. Digits are about 7 px wide, "." and "," 3.5.
 */
export function valueAxisWidth (labels, min = 54) {
  const widest = Math.max(0, ...labels.map((text) => [...text].reduce((w, c) => w + (c === '.' || c === ',' ? 3.5 : 7), 0)))
  return Math.max(min, Math.ceil(widest + 10))
}
