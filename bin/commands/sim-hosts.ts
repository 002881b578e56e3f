import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createGateway } from '../../gateway/index.js'
import { LINKS_TOPIC, meshError } from '../../shared/index.js'
import { checkFaultSpec, createLan, parseFaultSpec, type ScheduledFault } from '../../firmware-sim/index.js'
import { intFlag, write, type Io } from '../cli.js'
import { startFaultClock } from './fault-clock.js'

/**
 * `iotmesh sim --hosts H`: the fleet spread over H network-namespace hosts on a private LAN, the
 * recipe of ../shared/NETWORK.md (firmware-sim/fleet/lan.ts). The command re-runs itself in new
 * user, network and mount namespaces, builds a bridge (10.77.0.254, where the gateway listens) and
 * H hosts (10.77.0.1…H), and runs one `iotmesh sim --no-gateway` per host with its share of the
 * devices. Devices find each other by DNS-SD across the bridge, each with its own address.
 * Nothing touches a real interface. Every fault kind of --faults works:
 * - partition and heal: every second host leaves the LAN (its veth on the bridge goes down) and
 *   comes back: a real cut for every protocol, mesh links and MQTT alike;
 * - broker-stop and broker-start: the gateway's broker, here;
 * - crash, restart and skew go to the host that runs the devices named (its own `--faults`, with
 *   the indices made local): a crash is that fleet's power cut (firmware-sim/fleet/power-cut.ts:
 *   peers on the same host hear nothing; a link to another host, in another process, ends with a
 *   RST, never a FIN);
 * - loss, delay and dup go to every host: each host's fault model applies them to what its
 *   devices send, on mesh links and MQTT connections (mqtt-faults.ts), so every link gets them in
 *   both directions. Not with netem (tc): the kernel's netem is not available in every namespace.
 * Every fault is on the command's clock: it starts as the hosts are spawned (the LAN and the
 * gateway are up by then), and each host gets that instant as `--faults-epoch` (the hosts share the
 * machine's clock; only their network is their own). A host whose fleet comes up after a fault's
 * time fires it at once, in order; the summary gives each fault's time, and where and when it fired.
 */

/** Faults this process applies; the others go to the hosts' own fleets. */
const HERE = new Set(['partition', 'heal', 'broker-stop', 'broker-start'])

/** The events of host devices [first, first + n) as that host's `--faults` spec, indices made local; '' when none. */
export function hostFaultSpec (faults: readonly ScheduledFault[], first: number, n: number): string {
  return hostFaults(faults, first, n).map((f) => f.item).join(',')
}

/**
 * The items of hostFaultSpec, each with the index in `faults` of the fault it comes from: the host's
 * own list keeps this order (already sorted by time, and parseFaultSpec's sort is stable), so its k-th
 * fault is the k-th item here.
 */
export function hostFaults (faults: readonly ScheduledFault[], first: number, n: number): Array<{ index: number, item: string }> {
  const local = (arg: string | undefined): string | undefined => {
    const m = /^(\d+)(?:-(\d+))?$/.exec(arg ?? '')
    if (m === null) return undefined
    const from = Math.max(Number(m[1]), first)
    const to = Math.min(Number(m[2] ?? m[1]), first + n - 1)
    return from > to ? undefined : from === to ? String(from - first) : `${from - first}-${to - first}`
  }
  return faults.flatMap((f, index) => {
    if (HERE.has(f.kind)) return []
    if (f.kind === 'crash' || f.kind === 'restart' || f.kind === 'skew') {
      const devices = local(f.args[0])
      return devices === undefined ? [] : [{ index, item: `${[f.kind, devices, ...f.args.slice(1)].join(':')}@${f.atS}` }]
    }
    return [{ index, item: `${[f.kind, ...f.args].join(':')}@${f.atS}` }]
  })
}

/** What a host's fleet reported (its JSON summary): when it was up, and when each of its faults fired (wall clock, ms). */
interface HostReport { upAt?: number, faults?: Array<{ firedAt?: number, doneAt?: number }> }

const round3 = (x: number): number => Math.round(x * 1000) / 1000

const BIN = fileURLToPath(new URL('../../../bin/iotmesh.js', import.meta.url))

export async function runOnHosts (opts: { hosts: number, devices: number, mode: string, values: Record<string, unknown>, faultsEpoch?: number }, io: Io): Promise<number> {
  const { hosts, devices, mode, values } = opts
  if (devices < hosts) throw meshError('ERR_BAD_ARGUMENT', `--hosts ${hosts} needs at least as many devices (got ${devices})`)
  const faults = parseFaultSpec((values.faults as string | undefined) ?? '')
  checkFaultSpec(faults, devices)
  if (process.env.IOTMESH_SIM_LAN !== '1') {
    if (spawnSync('unshare', ['-rnm', '--propagation', 'private', 'true']).status !== 0) {
      throw meshError('ERR_BAD_ARGUMENT', '--hosts needs user, network and mount namespaces (unshare -rnm), which this system refuses; run without --hosts')
    }
    const setup = ['mount -t tmpfs none /run', 'mkdir -p /run/netns', 'ip link set lo up', 'exec "$0" "$@"'].join(' && ')
    const child = spawn('unshare', ['-rnm', '--propagation', 'private', 'sh', '-c', setup, process.execPath, ...process.argv.slice(1)], { stdio: 'inherit', env: { ...io.env, IOTMESH_SIM_LAN: '1', IOTMESH_NETNS: '1' } })
    io.signal.addEventListener('abort', () => child.kill('SIGINT'), { once: true })
    return await new Promise((resolve) => child.on('exit', (code) => resolve(code ?? 1)))
  }
  const lan = await createLan({ hosts, subnet: '10.77.0', bridgeHost: 254 })
  try {
    const bridge = lan.address as string
    const seed = intFlag(values, 'seed', 1, 0)
    const duration = values.duration === undefined ? undefined : Number(values.duration)
    const gateway = await createGateway({
      host: '0.0.0.0',
      port: 1883,
      wsPort: false,
      http: { port: intFlag(values, 'http-port', 8080, 0, 65535), host: '127.0.0.1' },
      ...(mode === 'broker' ? {} : { mesh: { host: bridge, mdns: true } })
    })
    const seen = new Set<string>()
    gateway.on('reading', (r) => { if (r.deviceTopic !== LINKS_TOPIC) seen.add(`${r.origin}/${r.seq}`) })
    const json = values.json === true
    if (!json) {
      write(io.stdout, `${devices} ${mode} devices on ${hosts} namespace hosts (10.77.0.1-${hosts}); ` +
        `gateway on ${bridge} (MQTT 1883, dashboard http://127.0.0.1:${gateway.ports.http as number}/ inside the namespace)`)
    }

    const children: ChildProcess[] = []
    const published: number[] = []
    const waiting: number[] = []
    const reports: HostReport[] = []
    const given: Array<Array<{ index: number }>> = [] // per host, its faults (hostFaults)
    const share = (h: number): number => Math.floor(devices / hosts) + (h <= devices % hosts ? 1 : 0)
    // The command's clock: the parent's faults, the hosts' (--faults-epoch) and the summary count from here.
    const t0 = Date.now()
    const epoch = opts.faultsEpoch ?? t0
    let first = 0
    for (const [i, host] of lan.hosts.entries()) {
      const h = i + 1
      const n = share(h)
      const mine = hostFaults(faults, first, n)
      given[i] = mine
      const spec = mine.map((f) => f.item).join(',')
      const args = [BIN, 'sim', '--devices', String(n), '--first-index', String(first), '--no-gateway', '--mode', mode, '--seed', String(seed),
        '--host', host.address, '--broker', `mqtt://${bridge}:1883`, '--json', '--faults-epoch', String(epoch), ...(spec === '' ? [] : ['--faults', spec]),
        ...(values.interval === undefined ? [] : ['--interval', String(values.interval)]),
        ...(values.sensors === undefined ? [] : ['--sensors', String(values.sensors)]),
        ...(values['share-verification'] === true ? ['--share-verification'] : [])]
      first += n
      const child = lan.spawn(host, process.execPath, args, { stderr: 'inherit', env: { ...io.env, IOTMESH_NETNS: '1' } })
      let out = ''
      child.stdout?.on('data', (chunk: Buffer) => { out += chunk.toString() })
      child.on('exit', () => {
        const line = out.trim().split('\n').pop() ?? '{}'
        try {
          const child = JSON.parse(line) as { published?: number, waiting?: number } & HostReport
          published[h - 1] = child.published ?? 0
          waiting[h - 1] = child.waiting ?? 0
          reports[h - 1] = child
        } catch { published[h - 1] = 0 }
      })
      children.push(child)
    }

    // Faults applied here run one after another, each awaited (a broker start waits for its stop).
    const cut = lan.hosts.filter((_, i) => i % 2 === 1) // every second host leaves the LAN
    const apply = async (f: ScheduledFault): Promise<void> => {
      if (f.kind === 'partition' || f.kind === 'heal') await Promise.all(cut.map(async (host) => { await lan.connect(host, f.kind === 'heal') }))
      if (f.kind === 'broker-stop') await gateway.stopBroker()
      if (f.kind === 'broker-start') await gateway.startBroker()
    }
    // Every fault passes through the clock, so this log shows them all in order; the hosts apply their own.
    const clock = startFaultClock(faults, {
      epochMs: epoch,
      apply: async (f) => { if (HERE.has(f.kind)) await apply(f) },
      onDone: (f, { firedS }, err) => {
        if (err !== undefined) write(io.stderr, `iotmesh sim: ${f.kind} failed: ${err.message}`)
        else if (!json) write(io.stdout, HERE.has(f.kind) ? `fault at ${firedS.toFixed(0)} s: ${f.kind}` : `fault due at ${firedS.toFixed(0)} s: ${f.kind} (on the hosts: when each fired is in the summary)`)
      }
    })
    const ticker = setInterval(() => {
      const elapsed = (Date.now() - t0) / 1000
      if (!json && Math.round(elapsed) % 5 === 0) write(io.stdout, `${elapsed.toFixed(0)} s  ${seen.size} readings at the gateway  mesh peers ${gateway.mesh?.links.size ?? 0}  MQTT clients ${gateway.connectedClients}`)
    }, 1000)
    await new Promise<void>((resolve) => {
      const timer = duration === undefined ? undefined : setTimeout(resolve, duration * 1000)
      io.signal.addEventListener('abort', () => { if (timer !== undefined) clearTimeout(timer); resolve() }, { once: true })
    })
    clearInterval(ticker)
    await clock.stop()
    // Stop the hosts' fleets (they print their JSON summary), give late readings a moment, then count.
    await Promise.all(children.map(async (c) => { await stopChild(c) }))
    await new Promise((resolve) => setTimeout(resolve, 2000))
    const total = published.reduce((a, n) => a + (n ?? 0), 0)
    // Readings still unacknowledged in the hosts' outboxes when they stopped are not lost to a fault
    // (the simulator keeps outboxes in memory, so they go with the stop); counted apart, so `published − atGateway`
    // beyond them is what the run lost.
    const left = waiting.reduce((a, n) => a + (n ?? 0), 0)
    const onClock = (at: number | undefined): number | undefined => at === undefined ? undefined : round3((at - epoch) / 1000)
    const timed = faults.map((f, index) => {
      if (HERE.has(f.kind)) {
        const t = clock.timings[index]
        return { ...f, where: 'here', ...(t === undefined ? {} : { firedS: t.firedS, lateS: t.lateS, doneS: t.doneS }) }
      }
      // Each host's report, in wall-clock ms, put on the command's clock here.
      const fired = given.flatMap((mine, i) => {
        const k = mine.findIndex((g) => g.index === index)
        const report = reports[i]?.faults?.[k]
        const firedS = onClock(report?.firedAt)
        return k < 0 ? [] : [{ host: i + 1, ...(firedS === undefined ? {} : { firedS, lateS: round3(firedS - f.atS), doneS: onClock(report?.doneAt) }) }]
      })
      return { ...f, where: 'hosts', hosts: fired }
    })
    const hostsUpS = lan.hosts.map((_, i) => onClock(reports[i]?.upAt) ?? null)
    const summary = { hosts, devices, mode, seed, published: total, atGateway: seen.size, waiting: left, deliveryRatio: total === 0 ? 1 : Math.min(1, seen.size / total), faultsEpoch: epoch, hostsUpS, faults: timed }
    if (json) write(io.stdout, JSON.stringify(summary))
    else {
      write(io.stdout, `published ${total}, at the gateway ${seen.size} (${(summary.deliveryRatio * 100).toFixed(2)} %), ${left} still waiting in the devices' outboxes at the stop`)
      write(io.stdout, `hosts' fleets up at ${hostsUpS.map((s) => s === null ? '?' : `${s.toFixed(1)} s`).join(', ')}; faults, due → fired (command's clock):`)
      for (const f of timed) {
        const at = (w: string, t: { firedS?: number, lateS?: number, doneS?: number }): string => {
          if (t.firedS === undefined) return `${w} never`
          const took = (t.doneS ?? t.firedS) - t.firedS
          return `${w} ${t.firedS.toFixed(1)} s (${t.lateS?.toFixed(1)} s late${took >= 0.5 ? `, took ${took.toFixed(1)} s` : ''})`
        }
        const where = 'hosts' in f ? f.hosts.map((t) => at(`host ${t.host}`, t)).join(', ') : at('here', f)
        write(io.stdout, `  ${[f.kind, ...f.args].join(':')}@${f.atS} → ${where}`)
      }
    }
    await gateway.stop()
    return 0
  } finally {
    await lan.destroy() // kills any host process still running
  }
}

/** SIGINT (the host's fleet prints its summary), SIGKILL if it is still there after 20 s; at once if it already exited. */
async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  await new Promise<void>((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 20_000)
    child.once('exit', () => { clearTimeout(kill); resolve() })
    child.kill('SIGINT')
  })
}
