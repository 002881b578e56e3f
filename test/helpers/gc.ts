import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

/** The engine's gc(), exposed at run time (as `node --expose-gc` would): for tests of what a collection must not lose. */
export function exposeGc (): () => void {
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
}
