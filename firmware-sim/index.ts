/**
 * The simulation kernel's public surface, for the cluster simulation and tests.
 * See world.ts for the builder and the per-file comments for each model's semantics.
 */
export { Scheduler, SimEvent, SimContext, Trace, msToUs, type RunResult, type RunStop } from './scheduler.ts';
export { World, BROKER, type WorldOptions, type AddBoardOptions } from './world.ts';
export { Board, type BoardHal, type BoardOptions, type BoardState, type BoardStats, type BootFn } from './board.ts';
export { BoardClock, MAX_DRIFT_PPM, type ClockOptions } from './clock.ts';
export { Flash, type FlashOptions, type FlashStats } from './flash.ts';
export { Broker, MqttClient, MqttLink, type MqttConditions, type MqttOptions, type MqttStats } from './mqtt.ts';
export { SerialWire, SerialPort, SerialLink, type SerialOptions, type SerialStats } from './serial.ts';
export { RelayHw, PowerSenseHw, type RelayOptions, type PowerSenseOptions } from './power.ts';
export { FaultInjector, FAULT_KINDS, parseFaultKinds, type FaultKind, type FaultPlanOptions, type PlannedFault } from './faults.ts';
export { Proc, type DeathCause, type LinkPort } from './proc.ts';
export type { SimObserver, BoardChangeCause } from './observer.ts';
