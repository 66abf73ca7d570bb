/** Serial/USB relay boards (LCUS protocol) as HAL Relays; see protocol.ts for the bytes. */
export { BAUD_RATE, START, STATUS_QUERY, MAX_CHANNELS, encodeSwitch, encodeStatus, StatusParser, GarbledReplyError, hex, type StatusFormat } from './protocol.ts';
export { RelayBoardClient, type ByteTransport, type RelayBoardOptions, type Wiring } from './client.ts';
export { openSerialRelayBoard, type SerialRelayBoard, type SerialRelayBoardOptions } from './serial.ts';
