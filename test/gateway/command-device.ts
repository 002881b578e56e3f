/** A test device that obeys commands over MQTT: the device-side judge (CommandExecutor) behind a real mqtt.js client. Not a test file. */
import {
  Commanders, DEFAULT_FLEET, decodeCommand, resultTopic, topicFilters, type DeviceId, type KeyPair, type PublicKey
} from '../../shared/index.js'
import { CommandExecutor, createActuator, type Outcome } from '../../firmware-sim/index.js'
import { connectClient, type TestClient } from './support.js'

export interface CommandDevice {
  keys: KeyPair
  executor: CommandExecutor
  client: TestClient
  /** Every command payload that reached the device, and what the executor made of it. */
  outcomes: Outcome[]
  /** Resolves with the next outcome. */
  nextOutcome: (timeoutMs?: number) => Promise<Outcome>
}

/**
 * Connects as `keys` (anonymously, or with `mqtt` options), subscribes to its own command topics,
 * judges each command with a CommandExecutor (relay and light actuators, the given commanders) and
 * publishes every signed result on resultTopic(fleet, itself, issuer) with QoS 1.
 */
export async function startCommandDevice (url: string, keys: KeyPair, commanders: Array<{ publicKey: PublicKey, id: DeviceId, actions: string[] }>, options: { fleet?: string, mqtt?: Parameters<typeof connectClient>[1] } = {}): Promise<CommandDevice> {
  const fleet = options.fleet ?? DEFAULT_FLEET
  const executor = new CommandExecutor({ clockSynced: true }, {
    keys,
    commanders: new Commanders(commanders.map((c) => ({ ...c, name: undefined }))),
    actuators: [createActuator('relay'), createActuator('light')]
  })
  const client = await connectClient(url, { clientId: `cmd-dev-${keys.id.slice(0, 8)}`, ...options.mqtt })
  const outcomes: Outcome[] = []
  const waiters: Array<(o: Outcome) => void> = []
  client.client.on('message', (topic, payload) => {
    if (!topic.includes('/cmd/')) return
    const outcome = executor.handle(payload)
    outcomes.push(outcome)
    for (const w of waiters.splice(0)) w(outcome)
    if (outcome.result !== undefined) {
      const issuer = outcome.command?.issuer ?? decodeCommand(payload).issuer
      client.client.publish(resultTopic(fleet, keys.id, issuer), Buffer.from(outcome.result), { qos: 1 })
    }
  })
  await client.client.subscribeAsync(topicFilters.commands(fleet, keys.id), { qos: 1 })
  return {
    keys,
    executor,
    client,
    outcomes,
    nextOutcome: async (timeoutMs = 5000) => await new Promise<Outcome>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`no command reached ${keys.id} within ${timeoutMs} ms`)) }, timeoutMs)
      waiters.push((o) => { clearTimeout(timer); resolve(o) })
    })
  }
}
