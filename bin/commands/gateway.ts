import { isMeshError, meshError } from '../../shared/index.js'
import { flagName } from '../../shared/node.js'
import { createGateway, createGatewayLogger, logGateway, LOG_LEVELS, type Gateway, type Reading } from '../../gateway/index.js'
import { RuleEngine, type RuleSet } from '../../firmware-sim/index.js'
import { exitForSignal, write, type Command } from '../cli.js'
import { GATEWAY_FLAGS, loadGatewaySettings } from '../gateway-config.js'
import { gatewayOptions, type GatewayOptions } from '../gateway-options.js'
import { jsonBanner, textBanner } from '../gateway-banner.js'

/**
 * `iotmesh gateway`: the embedded MQTT broker (or a client of an external one), the mesh bridge,
 * the HTTP API and the dashboard, until Ctrl-C. Then it stops cleanly: devices' connections close
 * (their last wills fire), the mesh node says goodbye on DNS-SD, the ports close.
 */

export const gateway: Command = {
  name: 'gateway',
  summary: 'Run a gateway: MQTT broker, mesh bridge, HTTP API and live dashboard',
  usage: 'iotmesh gateway [--config FILE] [--json] [--fleet F] [--mqtt-port P] [--ws-port P] [--http-port P] [--host ADDR] [--broker URL [--mqtt-version 5]] [--no-mesh] [--roster FILE] [--fleet-file FILE] [--key FILE] ' +
    '[--users FILE] [--allow-anonymous] [--token-skew S] [--data-dir DIR | --database URL | --memory] [--retention-days N] [--max-readings N] [--gap-settle-ms MS] [--sequence-block N] ' +
    '[--commanders FILE] [--set-users LIST] [--rules FILE] [--no-homeassistant | --homeassistant-prefix P] [--fleet-file FILE [--credential FILE]] ' +
    '[--tls-cert FILE --tls-key FILE] [--redis URL] [--mesh-port P] [--peers LIST] [--log-level L] [--log-format F] [--log-file FILE] [--reader-key FILE]',
  help: [
    ['--config FILE', 'a config file (JSON, or YAML for .yaml/.yml) of these settings, each flag\'s name in camelCase (--mqtt-port: "mqttPort"; --no-mesh: "mesh": false); ' +
      'every setting is also a variable (IOTMESH_MQTT_PORT; IOTMESH_CONFIG names the file). Precedence: flags > IOTMESH_* > file > defaults. ' +
      'Keep secrets (httpToken, database, redis) in the file or the environment, not in flags. Example: gateway/deploy/gateway.example.yaml'],
    ['--json', 'print the banner as one JSON object on one line ({"event": "start", "gatewayId", "fleet", "mqtt", "ws", "http", "mesh", …: the addresses really listened on}), and {"event": "stop"} when stopped'],
    ['--fleet F', 'the fleet served: letters, digits, - and _ (default "default")'],
    ['--mqtt-port P', 'MQTT port of the embedded broker (default 1883, 8883 with --tls-cert; 0: any free port)'],
    ['--ws-port P', 'MQTT over WebSocket port, at /mqtt (default 8083, 8084 with --tls-cert; 0: any free port; "off": none)'],
    ['--tls-cert FILE', 'with --tls-key FILE (PEM): the embedded broker serves MQTT over TLS (mqtts://) and secure WebSocket (wss://) instead of plain MQTT and WS'],
    ['--tls-key FILE', 'the private key of --tls-cert (PEM; keep it private)'],
    ['--redis URL', 'several embedded brokers share subscriptions, retained messages and sessions through this Redis (redis://[:password@]host:port[/db])'],
    ['--http-port P', 'HTTP port of the dashboard, the API and /metrics (default 8080; 0: any free port)'],
    ['--host ADDR', 'the address to listen on (default 0.0.0.0: every interface)'],
    ['--broker URL', 'join this MQTT broker (mqtt://, mqtts://, ws://, wss://) instead of embedding one'],
    ['--mqtt-version V', 'with --broker: the MQTT version the gateway speaks to it, 3.1.1 (default) or 5; the embedded broker speaks MQTT 3.1.1 only'],
    ['--no-mesh', 'do not join the mesh: a plain MQTT gateway'],
    ['--mesh-port P', 'TCP port of the mesh links (default 0: any free port, announced by DNS-SD); a fixed one for firewalls and --peers of devices'],
    ['--peers LIST', 'host:port of mesh peers to keep linked (networks without multicast), as the device\'s --peers'],
    ['--roster FILE', 'closed mode: only the keys in this JSON roster may publish or link (iotmesh keygen --json entries)'],
    ['--fleet-file FILE', 'the fleet file (iotmesh fleet init): the embedded broker then retains owner-signed configurations on iotmesh/<fleet>/$config/<target> (iotmesh fleet config push --broker); without it, it takes none; ' +
      'the mesh node links only with enrolled devices and spreads revocations; the broker refuses revoked devices, closes their sessions and retains revocations on iotmesh/<fleet>/$revocations/<id>'],
    ['--credential FILE', 'the gateway mesh key\'s enrollment credential (iotmesh fleet enroll of --key\'s public key): enrolled devices link only with enrolled peers'],
    ['--key FILE', "the gateway's key file (iotmesh keygen): its mesh identity, and the key it signs commands with (set/ requests, the HTTP API, --rules); default: a new key pair on every start"],
    ['--users FILE', 'MQTT users who may read the fleet: a JSON object {"user": "password", …} (keep it private)'],
    ['--allow-anonymous', 'an open LAN broker: clients without a user name may connect and read everything (default: refused)'],
    ['--token-skew S', 'how far a device clock may be from the gateway clock, seconds (default 300)'],
    ['--data-dir DIR', 'where the gateway keeps its state, DIR/<fleet>.db (SQLite): replay windows, devices, readings history (default $IOTMESH_HOME/gateway, else ~/.iotmesh/gateway)'],
    ['--database URL', 'keep the state in PostgreSQL instead (postgres://user:pass@host/db): several gateways may share it'],
    ['--memory', 'keep no state on disk: a restarted gateway forgets what it accepted'],
    ['--retention-days N', 'readings history kept this many days (default 30)'],
    ['--max-readings N', 'readings history kept, at most this many readings, the oldest pruned first (default 1,000,000)'],
    ['--gap-settle-ms MS', 'the dashboard\'s sequence gaps: a skipped sequence number counts as lost once it has not arrived for this long (outbox, catch-up, the other path; default 120000)'],
    ['--sequence-block N', 'the devices\' sequence-file block (their sequenceBlock, default 1000): a jump to the first number of a block is a restart, not a loss'],
    // HTTP access (WP 11-D): its own block
    ['--http-token T', 'the HTTP access token; "off": none (anyone who reaches the port reads the API). Default: none on a loopback --host, else the one kept in the state directory (--data-dir, default $IOTMESH_HOME/gateway), file http-token, made on first start'],
    ['--allowed-hosts LIST', 'host names (comma-separated) the dashboard may be reached by besides IP addresses, localhost and this machine\'s name (e.g. a reverse proxy\'s)'],
    // Commands (issue 12)
    ['--commanders FILE', 'who may command which actions through the embedded broker: {"commanders": [{"name", "key": "<base64url public key>", "actions": ["relay/#"]}]}; ' +
      'a command of anyone else on iotmesh/<fleet>/<id>/cmd/<action> is refused. Default: only the gateway\'s own key (--key)'],
    ['--set-users LIST', 'MQTT users (comma-separated, from --users) who may publish plain JSON on iotmesh/<fleet>/<id>/set/<actuator>; the gateway signs it as <actuator>/set ' +
      'with its key and mirrors the result on …/result/<gateway id>/json. Default: none'],
    ['--rules FILE', 'run this automation rule file (JSON or YAML, iotmesh rules check FILE) at the gateway on verified readings, commands signed with the gateway key ' +
      'and sent through the broker: the client-server baseline of rules on the devices'],
    // Home Assistant MQTT discovery (WP 16-E): its own block
    ['--no-homeassistant', 'publish no Home Assistant discovery configs (homeassistant/sensor/…/config) and no plain values (iotmesh/<fleet>/<id>/value/<sensor>)'],
    ['--homeassistant-prefix P', 'the discovery prefix Home Assistant listens on (default "homeassistant")'],
    // Logs (WP 16-E): its own block
    ['--log-level L', `${LOG_LEVELS.join(', ')} (default info): refusals are warn, devices online/offline info, MQTT connections debug`],
    ['--log-format F', 'json (one object per line) or text (default: text on stderr, json to --log-file or under systemd, which sets JOURNAL_STREAM)'],
    ['--log-file FILE', 'append the logs to FILE instead of stderr'],
    ['--reader-key FILE', 'a reader key (iotmesh keygen --reader) granted by the fleet\'s owners: encrypted readings are decrypted for the JSON mirror, history and Home Assistant']
  ],
  options: GATEWAY_FLAGS,
  async run ({ values }, io) {
    const json = values.json === true
    const options = await gatewayOptions(await loadGatewaySettings(values, io.env), io.env)
    let logger: ReturnType<typeof createGatewayLogger>
    try {
      logger = createGatewayLogger(options.log, { stderr: io.stderr })
    } catch (err) {
      throw meshError('ERR_BAD_ARGUMENT', `${options.settings.labels.logFile}: ${(err as Error).message}`, { cause: err })
    }
    let running: Gateway
    try {
      running = await startGateway(options, io.signal)
    } catch (err) {
      // Ctrl-C while it starts (an external broker that does not answer yet): stop at once, say where it was.
      if (io.signal.aborted && isMeshError(err, 'ERR_ABORTED')) {
        const external = options.init.broker
        const url = typeof external === 'string' ? external : external?.url
        write(io.stderr, `iotmesh gateway: stopped while starting${url === undefined ? '' : ` (no answer yet from the broker ${url})`}`)
        return exitForSignal(io.signal)
      }
      throw err
    }
    write(io.stdout, json ? JSON.stringify(jsonBanner(running, options)) : textBanner(running, options))
    logGateway(running, logger)
    running.on('storeError', (err) => { logger.error({ code: (err as { code?: string }).code }, `warning: ${err.message}`) })
    // With --json, stdout holds JSON only: a rule's line is {"event": "rule", "message": …}.
    const log = { out: (line: string) => { write(io.stdout, json ? JSON.stringify({ event: 'rule', message: line }) : line) }, err: (line: string) => { write(io.stderr, line) } }
    const rules = options.rules === undefined ? undefined : runRules(running, options.rules, log)
    // In closed mode the node's key store refuses its own key when the roster lacks it.
    if (options.roster !== undefined && running.mesh !== undefined && running.mesh.keyOf(running.mesh.id) === undefined) {
      logger.warn({ meshId: running.mesh.id }, `warning: the gateway's mesh key (${running.mesh.id}) is not in the roster: mesh nodes in closed mode will not link to it. Add it, or pass --key with a key that is.`)
    }
    await new Promise<void>((resolve) => {
      if (io.signal.aborted) return resolve()
      io.signal.addEventListener('abort', () => resolve(), { once: true })
    })
    if (!json) write(io.stdout, 'stopping…')
    rules?.stop()
    await running.stop()
    write(io.stdout, json ? JSON.stringify({ event: 'stop' }) : 'stopped')
    return 0
  }
}

/**
 * The central rules (the client-server baseline, as a home automation server runs them): the rule
 * engine of the devices (firmware-sim/rules/) fed with every verified reading the gateway accepts,
 * each firing sent as commands signed with the gateway key through the broker. One line per
 * command on stdout (its result), or on stderr (a timeout or an error).
 */
interface RulesLog { out: (line: string) => void, err: (line: string) => void }

function runRules (running: Gateway, rules: { set: RuleSet, file: string }, log: RulesLog): { stop: () => void } {
  const engine = new RuleEngine(rules.set)
  const name = (id: string): string => rules.set.names.get(id) ?? id
  const onReading = (reading: Reading): void => {
    engine.observeReading(reading.origin, reading.records, reading.time)
  }
  engine.on('fire', (firing) => {
    for (const action of firing.actions) {
      const started = Date.now()
      const what = `iotmesh gateway: rule ${JSON.stringify(firing.rule)}: ${action.action} on ${name(action.device)}`
      running.command({ target: action.device, action: action.action, ttl: action.ttl, args: action.args }).then((result) => {
        log.out(`${what} → ${result.status} (${Date.now() - started} ms)`)
      }, (err: unknown) => {
        log.err(`${what} failed (${isMeshError(err) ? err.code : 'error'}): ${(err as Error).message}`)
      })
    }
  })
  running.on('reading', onReading)
  return {
    stop: () => {
      running.off('reading', onReading)
      engine.stop()
    }
  }
}

/** Starts the gateway; a port that cannot be bound is a usage error naming the setting and where it came from. */
async function startGateway (options: GatewayOptions, signal: AbortSignal): Promise<Gateway> {
  try {
    return await createGateway(options.init, options.keys === undefined ? {} : { keys: options.keys }, { signal })
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { port?: number }
    if (e.code === 'EADDRINUSE' || e.code === 'EACCES' || e.code === 'EADDRNOTAVAIL') {
      const { labels } = options.settings
      const setting = e.port === options.ports.http ? 'httpPort' : e.port === options.ports.ws ? 'wsPort' : e.port === options.ports.mqtt ? 'mqttPort' : e.port === options.ports.mesh ? 'meshPort' : 'host'
      const where = labels[setting] === 'the default' ? `--${flagName(setting)}` : labels[setting]
      throw meshError('ERR_BAD_ARGUMENT', `cannot listen on ${options.host}:${e.port ?? '?'} (${e.code}): choose another ${setting} (${where})`, { cause: err })
    }
    throw err
  }
}
