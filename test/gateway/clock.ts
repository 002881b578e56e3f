/** A manual clock for gateway tests: time moves only when the test says so (shared/clock.ts). Not a test file. */
export { manualClock, type ManualClock } from '../../shared/index.js'
