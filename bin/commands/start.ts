import { write, type Command } from '../cli.js'
import { commands } from './index.js'

/** `npm start`. Until the fleet simulator lands, it shows what this build can do. */
export const start: Command = {
  name: 'start',
  summary: 'Run the demo (what `npm start` runs)',
  usage: 'iotmesh start',
  help: [],
  options: {},
  async run (_args, io) {
    const list = commands.filter((c) => c.name !== 'start').map((c) => `  iotmesh ${c.usage.replace(/^iotmesh /, '')}\n      ${c.summary}`).join('\n')
    write(io.stdout, `iotmesh is installed. This build provides:\n${list}\n\nTry:\n  npx iotmesh keygen --out /tmp/demo.key\n  echo '[{"n":"temp","u":"Cel","v":21.5}]' | npx iotmesh sign --key /tmp/demo.key --hex | npx iotmesh inspect --key /tmp/demo.key`)
    return 0
  }
}
