import { readFile } from 'node:fs/promises'
import { RULES_SCHEMA, explainRules, parseRules } from '../../firmware-sim/index.js'
import { isMeshError, meshError } from '../../shared/index.js'
import { EXIT_INVALID, EXIT_OK, onFileArgument, write, type Command } from '../cli.js'

/**
 * `iotmesh rules check FILE`: validates an automation rule file (firmware-sim/rules/) and says
 * what each rule does, in words; `iotmesh rules schema` prints the JSON Schema rule files follow.
 */
export const rules: Command = {
  name: 'rules',
  summary: 'Check an automation rule file and explain it in words, or print its JSON Schema',
  usage: 'iotmesh rules check FILE [--json] | iotmesh rules schema',
  help: [
    ['check FILE', 'validate FILE (JSON or YAML) against the schema, resolve its device names, refuse rules that trigger themselves; explain each rule'],
    ['schema', 'print the JSON Schema (draft 2020-12) of rule files'],
    ['--json', 'check: print {ok, error?, rules?: [sentence…]}']
  ],
  options: { json: { type: 'boolean' } },
  allowPositionals: 2,
  async run ({ values, positionals }, io) {
    const [what, file] = positionals
    if (what === 'schema') {
      write(io.stdout, JSON.stringify(RULES_SCHEMA, null, 2))
      return EXIT_OK
    }
    if (what !== 'check' || file === undefined) throw meshError('ERR_BAD_ARGUMENT', 'say `iotmesh rules check FILE` or `iotmesh rules schema`')
    const text = await onFileArgument(file, 'FILE', async () => await readFile(file, 'utf8'))
    try {
      const sentences = explainRules(parseRules(text, file))
      if (values.json === true) write(io.stdout, JSON.stringify({ ok: true, rules: sentences }))
      else write(io.stdout, `${file}: ${sentences.length} rule${sentences.length === 1 ? '' : 's'}, valid\n${sentences.map((s) => `  ${s}`).join('\n')}`)
      return EXIT_OK
    } catch (err) {
      if (!isMeshError(err)) throw err
      if (values.json === true) write(io.stdout, JSON.stringify({ ok: false, error: { code: err.code, message: err.message } }))
      else write(io.stderr, `iotmesh rules: ${err.code}: ${err.message}`)
      return EXIT_INVALID
    }
  }
}
