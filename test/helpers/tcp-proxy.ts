import { connect, createServer, type AddressInfo, type Socket } from 'node:net'

export type Direction = 'up' | 'down'

/** Rewrites a chunk in flight; `offset` is how many bytes went that way before it. */
export type Tamper = (chunk: Buffer, direction: Direction, offset: number) => Buffer

export interface TcpProxy {
  readonly address: { host: string, port: number }
  /** Everything that passed, per direction ('up' = client to server), as the wire carried it. */
  captured (direction: Direction): Buffer
  /** Stops reading in one direction (the receiver "stops reading"), or both (a black hole). */
  pause (direction: Direction | 'both'): void
  resume (direction: Direction | 'both'): void
  close (): Promise<void>
}

/**
 * A tiny TCP proxy on 127.0.0.1:0 for tests: a passive observer (capture), an active attacker
 * (tamper), a peer that stops reading, or a path that goes silent.
 */
export async function startProxy (target: { host: string, port: number }, tamper?: Tamper): Promise<TcpProxy> {
  const chunks: Record<Direction, Buffer[]> = { up: [], down: [] }
  const offsets: Record<Direction, number> = { up: 0, down: 0 }
  const paused: Record<Direction, boolean> = { up: false, down: false }
  const pairs: Array<{ client: Socket, upstream: Socket }> = []
  const sockets = new Set<Socket>()
  const own = (socket: Socket): Socket => {
    sockets.add(socket)
    socket.on('error', () => {})
    socket.on('close', () => { sockets.delete(socket) })
    return socket
  }
  const pipe = (from: Socket, to: Socket, direction: Direction): void => {
    from.on('data', (chunk: Buffer) => {
      const out = tamper === undefined ? chunk : tamper(Buffer.from(chunk), direction, offsets[direction])
      offsets[direction] += chunk.length
      chunks[direction].push(Buffer.from(out))
      to.write(out)
    })
    from.on('close', () => { to.destroy() })
  }
  const server = createServer((client) => {
    own(client)
    client.pause()
    const upstream = own(connect(target))
    upstream.pause()
    pairs.push({ client, upstream })
    pipe(client, upstream, 'up')
    pipe(upstream, client, 'down')
    upstream.once('connect', () => {
      if (!paused.up) client.resume()
      if (!paused.down) upstream.resume()
    })
  })
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  const sides = (direction: Direction | 'both'): Direction[] => direction === 'both' ? ['up', 'down'] : [direction]
  return {
    address: { host: '127.0.0.1', port: (server.address() as AddressInfo).port },
    captured: (direction) => Buffer.concat(chunks[direction]),
    pause: (direction) => {
      for (const side of sides(direction)) {
        paused[side] = true
        for (const pair of pairs) (side === 'up' ? pair.client : pair.upstream).pause()
      }
    },
    resume: (direction) => {
      for (const side of sides(direction)) {
        paused[side] = false
        for (const pair of pairs) (side === 'up' ? pair.client : pair.upstream).resume()
      }
    },
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
    }
  }
}
