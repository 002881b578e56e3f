/**
 * `node dist/test/bench/alloc.js [devices] [seconds] [shared]`: where a fleet simulated in one
 * process allocates (issue 15, README "Less garbage per frame"). A mesh fleet on in-memory links
 * (default 300 devices, signature checks shared unless the third argument is `own`), 10 s to
 * settle, then V8's sampling heap profiler for `seconds` (default 20), counting what minor and
 * major garbage collections took back as well as what stays. Prints one JSON line: megabytes
 * allocated a second in all, and the functions that allocated most (the allocation is charged to
 * the function it happened in, after V8's inlining). Not a section of `npm run bench`: a
 * diagnosis for the `fleet` section's CPU.
 */
import { Session } from 'node:inspector/promises'
import { createFleet } from '../../firmware-sim/index.js'

interface ProfileNode { callFrame: { functionName: string, url: string, lineNumber: number }, selfSize: number, children: ProfileNode[] }

const devices = Number(process.argv[2] ?? 300)
const seconds = Number(process.argv[3] ?? 20)
const shared = process.argv[4] !== 'own'
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

const fleet = await createFleet({ devices, mode: 'mesh', transport: 'memory', mdns: false, interval: 1000, gateway: {}, seed: 7, shareVerification: shared })
try {
  await sleep(10_000)
  const session = new Session()
  session.connect()
  await session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true })
  await sleep(seconds * 1000)
  const { profile } = await session.post('HeapProfiler.stopSampling') as unknown as { profile: { head: ProfileNode } }
  session.disconnect()
  const bytes = new Map<string, number>()
  const walk = (node: ProfileNode): void => {
    const { functionName, url, lineNumber } = node.callFrame
    const where = `${functionName === '' ? '(anonymous)' : functionName} ${url.split('/').pop() ?? ''}:${lineNumber + 1}`
    if (node.selfSize > 0) bytes.set(where, (bytes.get(where) ?? 0) + node.selfSize)
    for (const child of node.children) walk(child)
  }
  walk(profile.head)
  const total = [...bytes.values()].reduce((a, b) => a + b, 0)
  const mbPerS = (n: number): number => Math.round(n / seconds / 1e4) / 100
  console.log(JSON.stringify({
    devices,
    verification: shared ? 'shared' : 'per-device',
    seconds,
    allocated_mb_per_s: mbPerS(total),
    top: [...bytes].sort((a, b) => b[1] - a[1]).slice(0, 15).map(([where, n]) => ({ where, mb_per_s: mbPerS(n) }))
  }))
} finally {
  await fleet.stop()
}
