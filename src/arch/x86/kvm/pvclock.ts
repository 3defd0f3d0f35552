/**
 * The pvclock ABI shared by KVM and its guests (arch/x86/include/asm/pvclock-abi.h,
 * Documentation/virt/kvm/x86/msr.rst): the per-vCPU struct pvclock_vcpu_time_info and the
 * struct pvclock_wall_clock in guest memory, kvm_get_time_scale() (the mul/shift pair that turns
 * TSC ticks into ns) and the guest's reading rule (__pvclock_read_cycles).
 *
 * All arithmetic is exact on numbers: 64x32-bit products are split into limbs below 2^53.
 */

/** struct pvclock_vcpu_time_info (32 bytes) field offsets. */
export const PVTI_VERSION = 0;
export const PVTI_TSC_TIMESTAMP = 8;
export const PVTI_SYSTEM_TIME = 16;
export const PVTI_TSC_TO_SYSTEM_MUL = 24;
export const PVTI_TSC_SHIFT = 28;
export const PVTI_FLAGS = 29;
export const PVTI_SIZE = 32;
/** struct pvclock_wall_clock (12 bytes): version, sec, nsec. */
export const PVCLOCK_WALL_CLOCK_SIZE = 12;

/** flags: the TSC is synchronised across vCPUs, so readings from different vCPUs are ordered. */
export const PVCLOCK_TSC_STABLE_BIT = 1 << 0;
/** flags: the guest was stopped by the host (KVM_KVMCLOCK_CTRL); KVM keeps it when rewriting. */
export const PVCLOCK_GUEST_STOPPED = 1 << 1;

export const NSEC_PER_SEC = 1_000_000_000;

/** floor(a * 2^32 / b) for 0 <= a < b < 2^32 (div_frac). */
function divFrac(a: number, b: number): number {
  const hiPart = a * 65536;
  const q1 = Math.floor(hiPart / b);
  const r1 = hiPart - q1 * b;
  return q1 * 65536 + Math.floor((r1 * 65536) / b);
}

/**
 * kvm_get_time_scale(): shift and 32-bit multiplier such that
 * scaled = ((base_ticks << shift) * mul) >> 32 (shift < 0 shifts right) converts base_hz ticks
 * into scaled_hz units.
 */
export function kvmGetTimeScale(scaledHz: number, baseHz: number, out: { shift: number; mul: number }): void {
  let tps64 = baseHz;
  let scaled64 = scaledHz;
  let shift = 0;
  while (tps64 > scaled64 * 2 || tps64 >= 4294967296) {
    tps64 = Math.floor(tps64 / 2);
    shift--;
  }
  let tps32 = tps64;
  while (tps32 <= scaled64 || scaled64 >= 4294967296) {
    if (scaled64 >= 4294967296 || tps32 >= 0x80000000) scaled64 = Math.floor(scaled64 / 2);
    else tps32 *= 2;
    shift++;
  }
  out.shift = shift;
  out.mul = divFrac(scaled64, tps32);
}

/** pvclock_scale_delta(): ((delta << shift) * mul) >> 32 for a non-negative delta. */
export function pvclockScaleDelta(delta: number, mul: number, shift: number): number {
  const d = shift < 0 ? Math.floor(delta / 2 ** -shift) : delta * 2 ** shift;
  const dHi = Math.floor(d / 4294967296);
  const dLo = d - dHi * 4294967296;
  const mHi = Math.floor(mul / 65536);
  const mLo = mul - mHi * 65536;
  const lowPart = Math.floor((dLo * mHi + Math.floor((dLo * mLo) / 65536)) / 65536);
  return dHi * mul + lowPart;
}

export interface PvclockTimeInfo {
  tscTimestamp: number;
  systemTime: number;
  tscToSystemMul: number;
  tscShift: number;
}

/** __pvclock_read_cycles(): the guest's ns at TSC value `tsc` (a TSC before tsc_timestamp reads as system_time). */
export function pvclockReadCycles(p: PvclockTimeInfo, tsc: number): number {
  const delta = tsc - p.tscTimestamp;
  return p.systemTime + (delta > 0 ? pvclockScaleDelta(delta, p.tscToSystemMul, p.tscShift) : 0);
}
