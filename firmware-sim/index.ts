/**
 * firmware-sim: what runs on a device, real or simulated: sensors (simulated and Linux), the
 * outbox that keeps readings until a delivery path takes them, the device configuration, and the
 * device runtime that ties them to the mesh and the broker. The fleet simulator comes next.
 */
export {
  hashKey, unitAt, normalAt, streamAt, normal, between, walkAt, quantize, quantizeDown, type KeyPart
} from './random.js'

export {
  TELEMETRY_TOPIC, stderrLogger, silentLogger,
  type Sensor, type SensorReading, type SensorNotice, type SensorLogger
} from './sensors/types.js'
export {
  SIM_SENSORS, LINUX_SENSORS, SENSOR_PRESETS, SENSOR_FIELDS, parseSensorList, createSensors, readSensors,
  type SensorName, type SensorOptions, type SensorsInit, type SensorsComponents, type SensorOutput
} from './sensors/registry.js'

export { createClimate, ambientTemperature, dailyCycle, localHour, type Climate, type ClimateInit, type SimInit } from './sensors/sim/climate.js'
export { createTemperatureSensor, type TemperatureInit } from './sensors/sim/temperature.js'
export { createHumiditySensor, type HumidityInit } from './sensors/sim/humidity.js'
export { createPressureSensor, type PressureInit } from './sensors/sim/pressure.js'
export { createBatterySensor, liIonVoltage, LI_ION_CURVE, type BatteryInit } from './sensors/sim/battery.js'
export { createMotionSensor, type MotionInit } from './sensors/sim/motion.js'
export { createDoorSensor, type DoorInit } from './sensors/sim/door.js'
export { withSensorFaults, type FaultSpec, type SensorFaults, type SensorFaultKind, type FaultySensor } from './sensors/sim/faults.js'

export { type LinuxInit, type LinuxComponents } from './sensors/linux/presence.js'
export { createCpuTempSensor, type CpuTempInit } from './sensors/linux/cpu-temp.js'
export { createLoadSensor } from './sensors/linux/load.js'
export { createMemorySensor, parseMeminfo } from './sensors/linux/memory.js'
export { createDiskSensor, type DiskInit, type DiskComponents, type StatFs } from './sensors/linux/disk.js'
export { createWifiSensor, parseWireless, type WifiInit, type WirelessRow } from './sensors/linux/wifi.js'
export { openI2cBus, type I2cBus, type OpenI2cBus } from './sensors/linux/i2c.js'
export { createBme280Sensor, BME280_ADDRESSES, BME280_CHIP_ID, BME280_REG, type Bme280Init, type Bme280Components } from './sensors/linux/bme280.js'
export {
  parseCalibration, parseRaw, compensate,
  type Bme280Calibration, type Bme280Raw, type Bme280Values
} from './sensors/linux/bme280-compensation.js'

export {
  openOutbox, createMemoryOutbox, openDiskOutbox, checkFsync, checkSequenceAhead, DELIVERY_PATHS,
  type Outbox, type OutboxEntry, type OutboxInit, type OutboxStats, type PendingOptions, type DiskOutboxInit, type DiskOutboxComponents,
  type DeliveryPath, type FsyncPolicy
} from './outbox.js'

export {
  resolveConfig, loadConfigFile, loadDeviceConfig, deliveryPaths, envName, flagName, parsePeer, SETTING_NAMES, SETTING_SWITCHES,
  type DeviceConfig, type DeviceMode, type ConfigFile, type ConfigInput, type ConfigSource, type ResolvedConfig, type SettingName
} from './config.js'

export { Device, MAX_WRITES_IN_FLIGHT, createDevice } from './device.js'
export { deviceInit } from './device/from-config.js'
export { loadFleetPolicy } from './device/revocations.js'
export { SignedConfig, checkRemoteSettings, CONFIG_TOPIC, type ConfigState, type CheckedSettings, type Refusal } from './device/signed-config.js'
export { DeviceGrants, GrantedCommanders, GRANTS_FILE, openDeviceGrants, type GrantCounters, type GrantEvent, type GrantOutcome } from './device/grants.js'
export { batchByTopic, type Batch } from './device/batch.js'
export type {
  DeviceInit, DeviceComponents, DeviceEvents, DeviceCounters, PathCounters, ReadingEvent, TickEvent,
  DeviceBrokerInit, DrainInit, MqttConnect
} from './device/types.js'
export { Fleet, createFleet, seededKeys as simDeviceKeys, simGatewayKeys, type FleetInit, type FleetStats, type FleetFlow, type FleetEvents, type SimDevice, type DeviceRole } from './fleet/fleet.js'
export { World, type WorldInit, type RoomSpec, type WorldRoom } from './fleet/world.js'
export { FLEET_TOPOLOGIES, gridWidth, topologyHops, topologyPeers, type FleetTopology } from './fleet/topology.js'
export { Room, createRoomTemperatureSensor, type RoomInit, type RoomTemperatureInit } from './sensors/sim/room.js'
export { Presence, createPresenceMotionSensor, type PresenceInit } from './sensors/sim/presence.js'
export { parseFaultSpec, checkFaultSpec, applyFault, type ScheduledFault } from './fleet/faults-spec.js'
export { statusLine, finalSummary } from './fleet/summary.js'
export { MqttFaults, FaultyMqttStream, MQTT_RTO_MS } from './fleet/mqtt-faults.js'
export { createLan, type Lan, type LanHost, type LanInit, type LanSpawnOptions } from './fleet/lan.js'
export { CommandExecutor, type ExecutorInit, type ExecutorComponents, type Outcome, type ExecutorCounters } from './commands/executor.js'
export { openJournal, memoryJournal, type CommandJournal, type JournalEntry } from './commands/journal.js'
export { createActuator, driveGpio, parseActuatorList, ACTUATOR_NAMES, type Actuator, type ActuatorName, type ActuatorSpec, type ActuatorState } from './commands/actuators.js'
export { GpioOutput, parseGpioLine, gpioLineText, type GpioInit, type GpioLineSpec } from './commands/gpio.js'
export { RULES_SCHEMA } from './rules/schema.js'
export { parseRules, checkRules, explainRules, durationMs, type Rule, type RuleSet, type Condition, type RuleAction } from './rules/rules.js'
export { RuleEngine, type RuleReading, type Firing, type RuleEngineEvents } from './rules/engine.js'
