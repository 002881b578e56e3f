/**
 * Every timer in gateway/ passes through a `Clock` (undici's one timer module), so tests inject a
 * manual clock or vitest fake timers and replay exactly. It is mesh's clock, so one object drives both.
 */
export { systemClock, type Clock } from '../mesh/index.js'
