import { afterAll, afterEach, it } from 'vitest'
import { describeNet } from '../helpers/netns.js'
import { TEST_TIMEOUT, expectNoHarnessErrors, expectSurvived, onlyVerdicts, play, stage, type Stage } from '../helpers/adversary.js'

/**
 * The harness's own check: the same stage and measures as every attack (test/helpers/adversary.ts),
 * with a neighbour that links and does nothing wrong. Every bound must hold: if this fails, the
 * attacks' verdicts mean nothing.
 */

describeNet('adversarial: the control', () => {
  let s: Stage | undefined
  afterEach(async () => { await s?.world.destroy(); s = undefined })
  afterAll(expectNoHarnessErrors)

  it('an honest neighbour that links and stays quiet: every measure within its bound', onlyVerdicts(async () => {
    const stage_ = s = await stage()
    const played = await play(stage_, { attack: async () => await stage_.attacker.call('heard') })
    expectSurvived(played, 'control')
  }), TEST_TIMEOUT)
})
