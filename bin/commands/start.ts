import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import { createFleet, statusLine } from '../../firmware-sim/index.js'
import { intFlag, numberFlag, write, type Command } from '../cli.js'
import { untilDoneOrAborted } from './sim.js'

/**
 * `npm start`: a gateway (embedded Aedes broker, mesh bridge, dashboard, metrics) and a dozen
 * simulated devices in hybrid mode, until Ctrl-C. On a person's machine the devices use the LAN
 * as any mDNS device does (on loopback addresses). Under CI (CI=true) the demo re-runs itself in
 * a private network namespace, so it cannot disturb a real network.
 */
export const start: Command = {
  name: 'start',
  summary: 'Run the demo: a gateway with dashboard and 12 simulated hybrid devices (what `npm start` runs)',
  usage: 'iotmesh start [--devices N] [--duration S]',
  help: [
    ['--devices N', 'number of devices (default 12)'],
    ['--duration S', 'stop after S seconds (default: run until Ctrl-C)']
  ],
  options: { devices: { type: 'string' }, duration: { type: 'string' } },
  async run ({ values }, io) {
    const devices = intFlag(values, 'devices', 12, 1, 5000)
    const duration = values.duration === undefined ? undefined : numberFlag(values, 'duration', 0, 1, 86_400)
    if (io.env.CI !== undefined && io.env.CI !== 'false' && io.env.IOTMESH_NETNS !== '1' && spawnSync('unshare', ['-rn', 'true']).status === 0) {
      const r = spawnSync('unshare', ['-rn', 'sh', '-c', 'ip link set lo up && exec "$0" "$@"', process.execPath, ...process.argv.slice(1)], { stdio: 'inherit', env: { ...io.env, IOTMESH_NETNS: '1' } })
      return r.status ?? 1
    }
    const httpPort = await availablePort('127.0.0.1', 8080)
    write(io.stdout, `iotmesh demo: starting a gateway and ${devices} simulated devices (hybrid: mesh and MQTT)…`)
    // The devices authenticate to the broker with their keys; a person reading MQTT uses this demo user.
    const demoPassword = randomBytes(12).toString('base64url')
    const fleet = await createFleet({ devices, mode: 'hybrid', mqttPort: 1883, gateway: { http: { port: httpPort, host: '127.0.0.1' }, credentials: { demo: demoPassword } } })
    const url = `http://127.0.0.1:${fleet.gateway?.ports.http as number}/`
    const mqttPort = fleet.gateway?.ports.mqtt as number
    write(io.stdout, `
  dashboard   ${url}
  MQTT        mqtt://127.0.0.1:${mqttPort}   user demo, password ${demoPassword} (devices sign in with their keys; anonymous clients are refused)
  metrics     ${url}metrics

Try, in another terminal:
  npx iotmesh peers                       the devices DNS-SD shows
  npx iotmesh watch                       join the mesh and print verified readings
  curl ${url}api/devices
  mosquitto_sub -p ${mqttPort} -u demo -P ${demoPassword} -t 'iotmesh/default/+/json' -v
  npx iotmesh sim --help                  fleets of hundreds, faults, other modes

Ctrl-C stops everything cleanly (goodbye records, offline statuses).
`)
    const tty = io.stdout.isTTY === true
    const ticker = setInterval(() => {
      const line = statusLine(fleet.stats())
      if (tty) io.stdout.write(`\r\u001b[2K${line}`)
    }, 1000)
    await untilDoneOrAborted(duration, io.signal)
    clearInterval(ticker)
    if (tty) io.stdout.write('\n')
    write(io.stdout, `stopping… ${statusLine(fleet.stats())}`)
    await fleet.stop()
    write(io.stdout, 'stopped.')
    return 0
  }
}

async function availablePort (host: string, preferred: number): Promise<number> {
  return await new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(0))
    server.listen(preferred, host, () => server.close(() => resolve(preferred)))
  })
}
