import { networkInterfaces } from 'node:os'
import { expect, it } from 'vitest'
import { describeNet } from '../helpers/netns.js'

describeNet('private network namespace', () => {
  it('has loopback up and no real interface', () => {
    const names = Object.keys(networkInterfaces())
    expect(names).toContain('lo')
    expect(names.filter((n) => n !== 'lo' && !/^(br|v\d|veth)/.test(n))).toEqual([])
  })
})
