import type { LinkState, RouterContext } from '../context.js'

/** HELLO [0, version, fleet, listenPort, [address…]]: the first message on every link. */
export function onHello (ctx: RouterContext, state: LinkState, hello: { version: number, fleet: string, port: number, addresses: string[] }): void {
  if (hello.fleet !== ctx.options.fleet) {
    ctx.drop({ code: 'ERR_UNKNOWN_FLEET', from: state.peer })
    ctx.closeLink(state)
    return
  }
  ctx.emitHello({ peer: state.peer, fleet: hello.fleet, port: hello.port, addresses: hello.addresses })
}
