export { deliveryChart, faultWindows, type FaultWindow } from './delivery.js'
export { cdfChart, failoverLatencyChart, pathLatencyChart, type CdfSeries } from './latency.js'
export { trafficChart } from './traffic.js'
