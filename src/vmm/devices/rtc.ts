/**
 * The CMOS RTC and NVRAM of a PC (Motorola MC146818A; QEMU hw/rtc/mc146818rtc.c and kvmtool
 * hw/rtc.c roles). Port 0x70 selects a register (bit 7 is the NMI mask), port 0x71 reads or
 * writes it. The clock follows the host's wall clock plus an offset that guest writes to the
 * time registers adjust; register B selects BCD/binary and 12/24-hour formats.
 *
 * Interrupts (periodic, alarm, update-ended on IRQ 8) are not generated; register C reports
 * no pending flags and a guest that enables them in register B is told so via `onUnsupported`.
 */
import type { IoDevice } from "../io_bus.js";

export const RTC_SECONDS = 0x00, RTC_SECONDS_ALARM = 0x01, RTC_MINUTES = 0x02, RTC_MINUTES_ALARM = 0x03;
export const RTC_HOURS = 0x04, RTC_HOURS_ALARM = 0x05, RTC_DAY_OF_WEEK = 0x06, RTC_DAY_OF_MONTH = 0x07;
export const RTC_MONTH = 0x08, RTC_YEAR = 0x09, RTC_REG_A = 0x0a, RTC_REG_B = 0x0b, RTC_REG_C = 0x0c;
export const RTC_REG_D = 0x0d, RTC_CENTURY = 0x32;
export const REG_A_UIP = 0x80;
export const REG_B_SET = 0x80, REG_B_PIE = 0x40, REG_B_AIE = 0x20, REG_B_UIE = 0x10, REG_B_DM = 0x04, REG_B_24H = 0x02;
export const REG_D_VRT = 0x80;

/** CMOS bytes that describe the machine to firmware and OS probes (the layout SeaBIOS/QEMU use). */
export const CMOS_BASE_MEM_LO = 0x15, CMOS_EXT_MEM_LO = 0x17, CMOS_EXT_MEM2_LO = 0x30;
export const CMOS_MEM_ABOVE_16M_LO = 0x34, CMOS_MEM_ABOVE_4G = 0x5b, CMOS_NR_CPUS = 0x5f;

const TIME_REGS = new Set([RTC_SECONDS, RTC_MINUTES, RTC_HOURS, RTC_DAY_OF_WEEK, RTC_DAY_OF_MONTH, RTC_MONTH, RTC_YEAR, RTC_CENTURY]);

export class CmosRtc implements IoDevice {
  readonly name = "rtc";
  readonly cmos = new Uint8Array(128);
  private index = 0;
  /** NMI mask bit written with the index (port 0x70 bit 7). */
  nmiDisabled = false;
  /** Guest time minus host time, milliseconds. */
  private offsetMs = 0;
  /** Time frozen while register B's SET bit is on (the guest is loading new values). */
  private frozenMs: number | null = null;

  constructor(
    private readonly nowMs: () => number,
    private readonly onUnsupported: (what: string) => void = () => {},
  ) {
    this.cmos[RTC_REG_A] = 0x26; // 32.768 kHz time base, 1024 Hz rate
    this.cmos[RTC_REG_B] = REG_B_24H;
    this.cmos[RTC_REG_D] = REG_D_VRT;
  }

  /** Fill the memory-size bytes (base 640 KiB; extended in KiB; above 16M and above 4G in 64 KiB units). */
  setMemorySize(ramBelow4g: number, ramAbove4g: number, nrCpus: number): void {
    const c = this.cmos;
    const put16 = (at: number, v: number) => { c[at] = v & 0xff; c[at + 1] = (v >>> 8) & 0xff; };
    put16(CMOS_BASE_MEM_LO, 640);
    const extKb = Math.min(Math.max(ramBelow4g - 0x100000, 0) / 1024, 0xffff);
    put16(CMOS_EXT_MEM_LO, extKb);
    put16(CMOS_EXT_MEM2_LO, extKb);
    const above16m = Math.min(Math.max(ramBelow4g - 0x1000000, 0) / 0x10000, 0xffff);
    put16(CMOS_MEM_ABOVE_16M_LO, above16m);
    const above4g = Math.floor(ramAbove4g / 0x10000);
    c[CMOS_MEM_ABOVE_4G] = above4g & 0xff;
    c[CMOS_MEM_ABOVE_4G + 1] = (above4g >>> 8) & 0xff;
    c[CMOS_MEM_ABOVE_4G + 2] = (above4g >>> 16) & 0xff;
    c[CMOS_NR_CPUS] = (nrCpus - 1) & 0xff;
  }

  read(offset: number, data: Uint8Array, len: number): void {
    data.fill(0xff, 0, len);
    if (offset === 1) data[0] = this.readReg(this.index);
  }

  write(offset: number, data: Uint8Array, _len: number): void {
    const v = data[0]!;
    if (offset === 0) {
      this.index = v & 0x7f;
      this.nmiDisabled = (v & 0x80) !== 0;
    } else if (offset === 1) {
      this.writeReg(this.index, v);
    }
  }

  readReg(reg: number): number {
    if (TIME_REGS.has(reg)) return this.timeField(reg, new Date(this.guestMs()));
    if (reg === RTC_REG_C) {
      const v = this.cmos[RTC_REG_C]!;
      this.cmos[RTC_REG_C] = 0; // reading C acknowledges
      return v;
    }
    // UIP is never reported: values are computed on read, so no read can see a half-updated time.
    if (reg === RTC_REG_A) return this.cmos[RTC_REG_A]! & ~REG_A_UIP;
    return this.cmos[reg]!;
  }

  writeReg(reg: number, v: number): void {
    if (TIME_REGS.has(reg)) {
      this.setTimeField(reg, v);
      return;
    }
    switch (reg) {
      case RTC_REG_A:
        this.cmos[reg] = v & ~REG_A_UIP;
        return;
      case RTC_REG_B: {
        const was = this.cmos[RTC_REG_B]!;
        if (v & REG_B_SET && !(was & REG_B_SET)) this.frozenMs = this.guestMs();
        if (!(v & REG_B_SET) && was & REG_B_SET && this.frozenMs !== null) {
          this.offsetMs = this.frozenMs - this.nowMs();
          this.frozenMs = null;
        }
        if (v & (REG_B_PIE | REG_B_AIE | REG_B_UIE)) this.onUnsupported("RTC periodic/alarm/update interrupts (register B bits 6:4)");
        this.cmos[reg] = v;
        return;
      }
      case RTC_REG_C:
      case RTC_REG_D:
        return; // read-only
      default:
        this.cmos[reg] = v;
    }
  }

  private guestMs(): number {
    return this.frozenMs ?? this.nowMs() + this.offsetMs;
  }

  private get binary(): boolean {
    return (this.cmos[RTC_REG_B]! & REG_B_DM) !== 0;
  }

  private toReg(v: number): number {
    return this.binary ? v : ((v / 10) | 0) * 16 + (v % 10);
  }

  private fromReg(v: number): number {
    return this.binary ? v : (v >> 4) * 10 + (v & 0x0f);
  }

  private timeField(reg: number, d: Date): number {
    switch (reg) {
      case RTC_SECONDS: return this.toReg(d.getUTCSeconds());
      case RTC_MINUTES: return this.toReg(d.getUTCMinutes());
      case RTC_HOURS: {
        const h = d.getUTCHours();
        if (this.cmos[RTC_REG_B]! & REG_B_24H) return this.toReg(h);
        const h12 = h % 12 === 0 ? 12 : h % 12;
        return this.toReg(h12) | (h >= 12 ? 0x80 : 0); // bit 7 = PM in 12-hour mode
      }
      case RTC_DAY_OF_WEEK: return this.toReg(d.getUTCDay() + 1);
      case RTC_DAY_OF_MONTH: return this.toReg(d.getUTCDate());
      case RTC_MONTH: return this.toReg(d.getUTCMonth() + 1);
      case RTC_YEAR: return this.toReg(d.getUTCFullYear() % 100);
      default: return this.toReg((d.getUTCFullYear() / 100) | 0); // RTC_CENTURY
    }
  }

  private setTimeField(reg: number, raw: number): void {
    const d = new Date(this.guestMs());
    let v = this.fromReg(reg === RTC_HOURS ? raw & 0x7f : raw);
    switch (reg) {
      case RTC_SECONDS: d.setUTCSeconds(v); break;
      case RTC_MINUTES: d.setUTCMinutes(v); break;
      case RTC_HOURS:
        if (!(this.cmos[RTC_REG_B]! & REG_B_24H)) v = (v % 12) + (raw & 0x80 ? 12 : 0);
        d.setUTCHours(v);
        break;
      case RTC_DAY_OF_WEEK: return; // derived from the date
      case RTC_DAY_OF_MONTH: d.setUTCDate(v); break;
      case RTC_MONTH: d.setUTCMonth(v - 1); break;
      case RTC_YEAR: d.setUTCFullYear(Math.floor(d.getUTCFullYear() / 100) * 100 + v); break;
      default: d.setUTCFullYear(v * 100 + (d.getUTCFullYear() % 100)); break;
    }
    if (this.frozenMs !== null) this.frozenMs = d.getTime();
    else this.offsetMs = d.getTime() - this.nowMs();
  }
}
