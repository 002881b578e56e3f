import { execFileSync } from 'node:child_process'

/** Debian's python3 with python3-zeroconf: an independent DNS-SD browser for the discovery tests. */
export const PYTHON = '/usr/bin/python3' // Debian's, where python3-zeroconf installs; not a pyenv python3

/** Whether python-zeroconf can run here; says on stderr that `who` skips its test when it cannot. */
export function hasZeroconf (who: string): boolean {
  try {
    execFileSync(PYTHON, ['-c', 'import zeroconf'], { stdio: 'ignore' })
    return true
  } catch {
    console.warn(`${who}: SKIPPING the python-zeroconf test: ${PYTHON} cannot import zeroconf (apt-get install python3-zeroconf)`)
    return false
  }
}
