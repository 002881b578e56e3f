import { afterEach, it } from 'vitest'
import { describeNet } from '../helpers/netns.js'
import { expectSurvived, play, stage, type Stage } from '../helpers/adversary.js'

describeNet('adversarial: the control', () => {
  let s: Stage | undefined
  afterEach(async () => { await s?.world.destroy(); s = undefined })

  it('an honest neighbour that links and stays quiet: every measure within its bound', async () => {
    s = await stage()
    const played = await play(s, { attack: async () => await s?.attacker.call('heard') })
    expectSurvived(played, 'control')
  }, 60_000)
})
