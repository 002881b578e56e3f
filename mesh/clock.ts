/** The one clock lives in shared/clock.ts; mesh/ re-exports it for its own modules. */
export { systemClock, every, type Clock, type TimerHandle } from '../shared/index.js'
