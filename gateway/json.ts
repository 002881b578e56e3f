import { deviceBaseName, packToJson, type SenmlPack, type TelemetryFrame } from '../shared/index.js'

/**
 * A verified frame as SenML JSON (RFC 8428 §5), what the gateway publishes on …/json.
 *
 * RFC 8428 §4.1: a base name applies to every record until the next record that sets one, so
 * each base name in the pack is prefixed with the device's, deviceBaseName(id) = "<id>:", and the
 * first record always carries it. The resolved names are then "<id>:temp" (or "<id>:env:temp"
 * for a pack whose own bn is "env:"), globally unique as §4.5.1 asks, while the readings,
 * times, units and the `seq` extension (§4.4) stay exactly what the device signed.
 */
export function frameToSenmlJson (frame: Pick<TelemetryFrame, 'origin' | 'records'>): Array<Record<string, unknown>> {
  const base = deviceBaseName(frame.origin)
  const pack: SenmlPack = frame.records.map((record, index) => {
    if (index === 0 || record.bn !== undefined) return { ...record, bn: base + (record.bn ?? '') }
    return record
  })
  return packToJson(pack)
}

/** {@link frameToSenmlJson} as text: what the gateway publishes on …/json. */
export function frameToSenmlJsonText (frame: Pick<TelemetryFrame, 'origin' | 'records'>): string {
  return JSON.stringify(frameToSenmlJson(frame))
}
