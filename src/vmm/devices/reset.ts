/**
 * The ways a PC guest resets or powers itself off:
 * - port 0xcf9, the PIIX3/ICH reset control register: writing bit 2 (RST_CPU) resets, bit 1
 *   (SYS_RST) selects a hard reset (Intel 82371 PIIX3 datasheet, "Reset Control Register");
 * - port 0x64 command 0xfe, which pulses the 8042 keyboard controller's reset output;
 * - the ACPI PM1a control register: SLP_EN with SLP_TYP = the \_S5 value enters soft-off
 *   (ACPI 6.5 §4.8.3.2.1, §7.4.2). As on QEMU's pc machine, SLP_TYP 0 is S5 (our DSDT's \_S5),
 *   so guests written for QEMU power off the same way.
 * Also the rest of the ACPI PM register block (PM1 status/enable and the 3.579545 MHz PM timer),
 * so the FADT describes real registers.
 */
import { leGet, lePut, type IoDevice, type MachineControl } from "../io_bus.js";

export const RST_CNT_PORT = 0xcf9;
export const RST_CNT_SYS_RST = 0x02, RST_CNT_RST_CPU = 0x04, RST_CNT_FULL_RST = 0x08;
export const I8042_COMMAND_PORT = 0x64;
export const I8042_CMD_PULSE_RESET = 0xfe;

/** ACPI PM I/O block (the PIIX4 PM base QEMU uses). */
export const ACPI_PM_BASE = 0x600;
export const ACPI_PM1_EVT_OFF = 0x00, ACPI_PM1_EVT_LEN = 4;
export const ACPI_PM1_CNT_OFF = 0x04, ACPI_PM1_CNT_LEN = 2;
export const ACPI_PM_TMR_OFF = 0x08, ACPI_PM_TMR_LEN = 4;
export const ACPI_PM_BLOCK_LEN = 0x0c;
export const ACPI_PM1_CNT_SCI_EN = 1 << 0;
export const ACPI_PM1_CNT_SLP_TYP_SHIFT = 10;
export const ACPI_PM1_CNT_SLP_EN = 1 << 13;
export const ACPI_S5_SLP_TYP = 0;
export const ACPI_PM_TIMER_HZ = 3579545;
/** PM1 status: TMR_STS, PWRBTN_STS, WAK_STS are write-1-to-clear. */
const PM1_STS_W1C = 0x8d31;

export class ResetControl implements IoDevice {
  readonly name = "reset-control";
  private rcr = 0;

  constructor(private readonly control: MachineControl) {}

  read(_offset: number, data: Uint8Array, len: number): void {
    lePut(data, len, this.rcr);
  }

  write(_offset: number, data: Uint8Array, _len: number): void {
    const v = data[0]!;
    // The reset happens on the 0 -> 1 transition of RST_CPU.
    if (v & RST_CNT_RST_CPU && !(this.rcr & RST_CNT_RST_CPU)) {
      this.rcr = 0;
      this.control.requestReset(v & RST_CNT_SYS_RST ? "0xcf9 hard reset" : "0xcf9 soft reset");
      return;
    }
    this.rcr = v & (RST_CNT_SYS_RST | RST_CNT_RST_CPU | RST_CNT_FULL_RST);
  }
}

/**
 * The command port of an 8042 keyboard controller reduced to what a VMM without a keyboard
 * needs: the pulse-reset command. No keyboard controller is present otherwise, so status reads
 * float to 0xff, which is how Linux's i8042 probe recognises an absent controller.
 */
export class I8042Reset implements IoDevice {
  readonly name = "i8042-reset";

  constructor(private readonly control: MachineControl) {}

  read(_offset: number, data: Uint8Array, len: number): void {
    data.fill(0xff, 0, len);
  }

  write(_offset: number, data: Uint8Array, _len: number): void {
    if (data[0] === I8042_CMD_PULSE_RESET) this.control.requestReset("8042 pulse reset");
  }
}

export class AcpiPm implements IoDevice {
  readonly name = "acpi-pm";
  pm1Sts = 0;
  pm1En = 0;
  pm1Cnt = 0;

  constructor(
    private readonly control: MachineControl,
    private readonly nowNs: () => number,
  ) {}

  /** The PM timer: a 24-bit counter at 3.579545 MHz (FADT TMR_VAL_EXT = 0). */
  timer(): number {
    return Math.floor((this.nowNs() * ACPI_PM_TIMER_HZ) / 1e9) & 0xffffff;
  }

  read(offset: number, data: Uint8Array, len: number): void {
    let v: number;
    if (offset < ACPI_PM1_CNT_OFF) v = (this.pm1Sts | (this.pm1En << 16)) >>> (offset * 8);
    else if (offset < ACPI_PM_TMR_OFF) v = this.pm1Cnt >>> ((offset - ACPI_PM1_CNT_OFF) * 8);
    else v = this.timer() >>> ((offset - ACPI_PM_TMR_OFF) * 8);
    lePut(data, len, v >>> 0);
  }

  write(offset: number, data: Uint8Array, len: number): void {
    const v = leGet(data, Math.min(len, 4));
    if (offset < ACPI_PM1_CNT_OFF) {
      for (let i = 0; i < len && offset + i < ACPI_PM1_CNT_OFF; i++) {
        const at = offset + i;
        const b = data[i]!;
        if (at < 2) this.pm1Sts &= ~((b << (at * 8)) & PM1_STS_W1C); // status bits are write-1-to-clear
        else this.pm1En = (this.pm1En & ~(0xff << ((at - 2) * 8))) | (b << ((at - 2) * 8));
      }
      return;
    }
    if (offset < ACPI_PM_TMR_OFF) {
      const shift = (offset - ACPI_PM1_CNT_OFF) * 8;
      const mask = len >= 2 ? 0xffff : 0xff << shift;
      this.pm1Cnt = ((this.pm1Cnt & ~mask) | ((v << shift) & mask)) & 0xffff;
      if (this.pm1Cnt & ACPI_PM1_CNT_SLP_EN) {
        const typ = (this.pm1Cnt >> ACPI_PM1_CNT_SLP_TYP_SHIFT) & 7;
        this.pm1Cnt &= ~ACPI_PM1_CNT_SLP_EN; // SLP_EN reads as 0
        if (typ === ACPI_S5_SLP_TYP) this.control.requestPoweroff("ACPI S5");
      }
    }
    // The PM timer is read-only.
  }
}
