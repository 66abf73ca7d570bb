export { Polarity, fsError, type PolarityOptions } from './common.ts';
export { LedRelay, SysfsRelay, SysfsPowerSense, sysfsGpioNumber, type LedRelayOptions, type SysfsRelayOptions, type SysfsPowerSenseOptions, type SysfsLineOptions } from './sysfs.ts';
export { GpiosetRelay, GpiogetPowerSense, detectGpiodVersion, parseGpiodVersion, gpiosetArgs, gpiogetArgs, type GpiodVersion, type GpiosetRelayOptions, type GpiogetPowerSenseOptions } from './gpiod.ts';
