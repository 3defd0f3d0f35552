/**
 * isa-debug-exit (QEMU hw/misc/debugexit.c's role): a guest write of `value` to the port
 * range ends the VMM with exit status (value << 1) | 1, so a test guest's 0 ("pass") becomes
 * 1 and can never be confused with the VMM's own success.
 */
import { leGet, type IoDevice, type MachineControl } from "../io_bus.js";

export class IsaDebugExit implements IoDevice {
  readonly name = "isa-debug-exit";

  constructor(
    readonly iobase: number,
    readonly iosize: number,
    private readonly control: MachineControl,
  ) {}

  read(_offset: number, data: Uint8Array, len: number): void {
    data.fill(0xff, 0, len); // write-only device
  }

  write(_offset: number, data: Uint8Array, len: number): void {
    const value = leGet(data, Math.min(len, 4));
    // The exit status is truncated to 8 bits by the host OS as for any process.
    this.control.requestExit(((value << 1) | 1) >>> 0);
  }
}
