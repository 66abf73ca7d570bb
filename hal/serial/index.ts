export { SerialLink, defaultPortFactory, type SerialLinkOptions, type SerialLinkStats, type SerialPortFactory, type SerialPortLike } from './link.ts';
export { TdmaScheduler, tdmaTiming, encodeBusFrame, decodeBusFrame, BUS_BROADCAST, BUS_HEADER_BYTES, FLAG_FIRST_IN_SLOT, type BusOptions, type TdmaTiming, type TdmaStats } from './tdma.ts';
export { systemClock } from '../clock.ts';
