/**
 * The guest TSC (the TSC parts of arch/x86/kvm/x86.c): the guest reads
 *   guest TSC = (host TSC x l1_tsc_scaling_ratio) >> 48 + l1_tsc_offset
 * through the VMCS TSC offset and multiplier (SDM Vol. 3C 26.3 / 26.6.5, hw/x86/vmx/tsc_scaling.ts).
 * Here: KVM_SET_TSC_KHZ / KVM_GET_TSC_KHZ (kvm_set_tsc_khz with the 250 ppm tolerance),
 * host and guest writes of IA32_TSC (kvm_synchronize_tsc for the host, an offset adjustment
 * mirrored into IA32_TSC_ADJUST for the guest), IA32_TSC_ADJUST, and the TSC matching that lets
 * kvmclock use one master clock for all vCPUs (kvm_track_tsc_matching).
 *
 * The host TSC is the one of the processor each vCPU runs on (KvmX86Ops.readHostTsc); the
 * emulated processors all derive it from the host clock, so they are synchronised.
 */
import { EFAULT, EINVAL, ENXIO } from "../../../uapi/errno.js";
import * as K from "../../../uapi/kvm.js";
import { KvmError } from "../../../virt/kvm/kvm_error.js";
import type { MmStruct } from "../../../host/mm.js";
import { tscMultiplierFor, tscScale } from "../../../hw/x86/vmx/tsc_scaling.js";
import { KVM_REQ_CLOCK_UPDATE, KVM_REQ_MASTERCLOCK_UPDATE, kvmMakeRequest, type X86Vcpu } from "./kvm_host.js";

/** KVM_{GET,SET,HAS}_DEVICE_ATTR on a vCPU: the TSC control group and its offset attribute (asm/kvm.h). */
export const KVM_VCPU_TSC_CTRL = 0;
export const KVM_VCPU_TSC_OFFSET = 0;

/** tsc_tolerance_ppm: a requested rate this close to the host's runs unscaled. */
export const TSC_TOLERANCE_PPM = 250;
/** kvm_caps.max_tsc_scaling_ratio for VMX is the whole 64-bit field; KVM_SET_TSC_KHZ bounds it by max_guest_tsc_khz. */
const MAX_GUEST_TSC_KHZ = 0x7fffffff;

/** Whether the vendor gives KVM a TSC at all (every VMX vCPU does). */
export function kvmHasTsc(vcpu: X86Vcpu): boolean {
  return vcpu.arch.ops.readHostTsc !== undefined;
}

/** rdtsc() on the host processor of this vCPU. */
export function kvmHostTsc(vcpu: X86Vcpu): number {
  const f = vcpu.arch.ops.readHostTsc;
  if (f === undefined) throw new KvmError(EINVAL, "rdtsc", "the vendor module has no TSC");
  return f(vcpu);
}

/** kvm_scale_tsc(): host ticks to guest ticks at this vCPU's ratio. */
export function kvmScaleTsc(vcpu: X86Vcpu, hostTsc: number): number {
  const t = vcpu.arch.tsc;
  return t.ratioHi === 0x10000 && t.ratioLo === 0 ? hostTsc : tscScale(hostTsc, t.ratioLo, t.ratioHi);
}

/** kvm_read_l1_tsc(): the guest's TSC at host TSC value `hostTsc`. */
export function kvmReadL1Tsc(vcpu: X86Vcpu, hostTsc: number): number {
  return kvmScaleTsc(vcpu, hostTsc) + vcpu.arch.tsc.offset;
}

/** The guest's TSC now. */
export function kvmGuestTsc(vcpu: X86Vcpu): number {
  return kvmReadL1Tsc(vcpu, kvmHostTsc(vcpu));
}

/** kvm_compute_l1_tsc_offset(): the offset that makes the guest read `target` now. */
function computeL1TscOffset(vcpu: X86Vcpu, target: number): number {
  return target - kvmScaleTsc(vcpu, kvmHostTsc(vcpu));
}

/** kvm_vcpu_write_tsc_offset() */
function writeTscOffset(vcpu: X86Vcpu, offset: number): void {
  vcpu.arch.tsc.offset = offset;
  vcpu.arch.ops.writeTscOffset?.(vcpu, offset);
}

/** adjust_tsc_offset_guest() */
function adjustTscOffsetGuest(vcpu: X86Vcpu, adj: number): void {
  writeTscOffset(vcpu, vcpu.arch.tsc.offset + adj);
}

/** nsec_to_cycles() at the guest rate. */
function nsecToCycles(vcpu: X86Vcpu, ns: number): number {
  return Math.floor((ns * vcpu.arch.tsc.virtualTscKhz) / 1e6);
}

/** kvm_track_tsc_matching(): all vCPUs on one offset generation allow the master clock. */
function trackTscMatching(vcpu: X86Vcpu, newGeneration: boolean): void {
  const ka = vcpu.kvm.arch.clock;
  const all = ka.nrVcpusMatchedTsc + 1 === vcpu.kvm.arch.vcpus.length;
  if ((ka.useMasterClock && newGeneration) || ka.useMasterClock !== all) kvmMakeRequest(vcpu, KVM_REQ_MASTERCLOCK_UPDATE);
}

/** Whether every vCPU of the VM runs on the same TSC offset generation (vcpus_matched). */
export function kvmTscVcpusMatched(vcpus: readonly X86Vcpu[], nrMatched: number): boolean {
  return vcpus.length > 0 && nrMatched + 1 === vcpus.length;
}

/**
 * kvm_synchronize_tsc(): a host write of IA32_TSC (`data`), or vCPU creation (`data` null, as
 * KVM passes NULL). A zero, or a value within one second of what the previous write implies
 * now, puts this vCPU on the VM's current offset so all vCPUs read the same TSC.
 */
export function kvmSynchronizeTsc(vcpu: X86Vcpu, data: number | null): void {
  const kvm = vcpu.kvm;
  const ka = kvm.arch.clock;
  const t = vcpu.arch.tsc;
  const ns = kvm.proc.clock.nowNs();
  let value = data ?? 0;
  let offset = computeL1TscOffset(vcpu, value);
  const elapsed = ns - ka.lastTscNsec;
  let synchronizing = false;
  if (t.virtualTscKhz !== 0) {
    if (value === 0) synchronizing = true;
    else if (ka.userSetTsc) {
      const exp = ka.lastTscWrite + nsecToCycles(vcpu, elapsed);
      const hz = t.virtualTscKhz * 1000;
      synchronizing = value < exp + hz && value + hz > exp;
    }
  }
  if (value !== 0) ka.userSetTsc = true;
  let matched = false;
  if (synchronizing && t.virtualTscKhz === ka.lastTscKhz) {
    // The host TSCs are synchronised (one clock), so the VM's current offset is the answer.
    offset = ka.curTscOffset;
    value = kvmScaleTsc(vcpu, kvmHostTsc(vcpu)) + offset;
    matched = true;
  }
  commitTscSync(vcpu, offset, value, ns, matched);
}

/** __kvm_synchronize_tsc(): load `offset`, record the write, and track which vCPUs share the offset generation. */
function commitTscSync(vcpu: X86Vcpu, offset: number, value: number, ns: number, matched: boolean): void {
  const ka = vcpu.kvm.arch.clock;
  const t = vcpu.arch.tsc;
  ka.lastTscNsec = ns;
  ka.lastTscWrite = value;
  ka.lastTscKhz = t.virtualTscKhz;
  ka.lastTscOffset = offset;
  writeTscOffset(vcpu, offset);
  if (!matched) {
    ka.curTscGeneration++;
    ka.curTscNsec = ns;
    ka.curTscWrite = value;
    ka.curTscOffset = offset;
    ka.nrVcpusMatchedTsc = 0;
  } else if (t.generation !== ka.curTscGeneration) {
    ka.nrVcpusMatchedTsc++;
  }
  t.generation = ka.curTscGeneration;
  trackTscMatching(vcpu, !matched);
}

/** The TSC part of kvm_arch_vcpu_create/postcreate: the host rate, then synchronise with the other vCPUs. */
export function kvmTscVcpuInit(vcpu: X86Vcpu): void {
  if (!kvmHasTsc(vcpu)) return;
  const t = vcpu.arch.tsc;
  t.virtualTscKhz = vcpu.arch.ops.hostTscKhz?.(vcpu) ?? 0;
  if (t.virtualTscKhz === 0) return;
  vcpu.arch.ops.writeTscMultiplier?.(vcpu, 0, 0x10000);
  kvmSynchronizeTsc(vcpu, null);
}

/** kvm_set_tsc_khz() + set_tsc_khz(): false when the rate cannot be provided. */
function kvmSetTscKhz(vcpu: X86Vcpu, userKhz: number): boolean {
  const t = vcpu.arch.tsc;
  const hostKhz = vcpu.arch.ops.hostTscKhz?.(vcpu) ?? 0;
  if (userKhz === 0 || hostKhz === 0) return false;
  const lo = Math.floor((hostKhz * (1e6 - TSC_TOLERANCE_PPM)) / 1e6);
  const hi = Math.floor((hostKhz * (1e6 + TSC_TOLERANCE_PPM)) / 1e6);
  const ratio = new Int32Array(2);
  if (userKhz < lo || userKhz > hi) {
    tscMultiplierFor(userKhz, hostKhz, ratio);
    if (ratio[0] === 0 && ratio[1] === 0) return false;
  } else {
    ratio[1] = 0x10000;
  }
  const write = vcpu.arch.ops.writeTscMultiplier;
  if (write === undefined || !write(vcpu, ratio[0], ratio[1])) {
    // No TSC scaling: only a rate within the tolerance works (KVM's catch-up mode is not modelled).
    if (ratio[0] !== 0 || ratio[1] !== 0x10000) return false;
  }
  t.virtualTscKhz = userKhz;
  t.ratioLo = ratio[0];
  t.ratioHi = ratio[1];
  kvmMakeRequest(vcpu, KVM_REQ_CLOCK_UPDATE);
  return true;
}

interface DeviceAttr { flags: number; group: number; attr: bigint | number; addr: bigint | number }

/**
 * KVM_{HAS,GET,SET}_DEVICE_ATTR on a vCPU (kvm_arch_tsc_has/get/set_attr): group
 * KVM_VCPU_TSC_CTRL, attribute KVM_VCPU_TSC_OFFSET, a u64 at `addr` in the caller's memory.
 * Setting the offset synchronises like a host TSC write, matching vCPUs given the same offset.
 */
function tscDeviceAttr(vcpu: X86Vcpu, nr: number, arg: number | object): number {
  const name = nr === K.KVM_HAS_DEVICE_ATTR ? "KVM_HAS_DEVICE_ATTR" : nr === K.KVM_GET_DEVICE_ATTR ? "KVM_GET_DEVICE_ATTR" : "KVM_SET_DEVICE_ATTR";
  const mm = vcpu.kvm.proc.mm;
  let a: DeviceAttr;
  if (typeof arg === "number" || arg instanceof Uint8Array) {
    // The struct itself (copied in by the core) or a pointer to it.
    const bytes = arg instanceof Uint8Array ? arg : copyIn(mm, arg, 24, name);
    const v = new DataView(bytes.buffer, bytes.byteOffset, 24);
    a = { flags: v.getUint32(0, true), group: v.getUint32(4, true), attr: v.getBigUint64(8, true), addr: v.getBigUint64(16, true) };
  } else {
    a = arg as DeviceAttr;
  }
  if (a.group !== KVM_VCPU_TSC_CTRL || BigInt(a.attr) !== BigInt(KVM_VCPU_TSC_OFFSET) || !kvmHasTsc(vcpu)) throw new KvmError(ENXIO, name, `group ${a.group} attr ${a.attr}`);
  if (nr === K.KVM_HAS_DEVICE_ATTR) return 0;
  const addr = Number(a.addr);
  const buf = new DataView(new ArrayBuffer(8));
  if (nr === K.KVM_GET_DEVICE_ATTR) {
    buf.setBigInt64(0, BigInt(vcpu.arch.tsc.offset), true);
    copyOut(mm, addr, new Uint8Array(buf.buffer), name);
    return 0;
  }
  const offset = Number(new DataView(copyIn(mm, addr, 8, name).buffer).getBigInt64(0, true));
  const t = vcpu.arch.tsc;
  const ka = vcpu.kvm.arch.clock;
  const matched = t.virtualTscKhz !== 0 && ka.lastTscKhz === t.virtualTscKhz && ka.lastTscOffset === offset;
  ka.userSetTsc = true;
  commitTscSync(vcpu, offset, kvmScaleTsc(vcpu, kvmHostTsc(vcpu)) + offset, vcpu.kvm.proc.clock.nowNs(), matched);
  return 0;
}

function copyIn(mm: MmStruct, addr: number, len: number, name: string): Uint8Array {
  try {
    return mm.copyFromUser(addr, len);
  } catch {
    throw new KvmError(EFAULT, name, `0x${addr.toString(16)}`);
  }
}

function copyOut(mm: MmStruct, addr: number, data: Uint8Array, name: string): void {
  try {
    mm.copyToUser(addr, data);
  } catch {
    throw new KvmError(EFAULT, name, `0x${addr.toString(16)}`);
  }
}

/** kvm_arch_vcpu_ioctl(): KVM_SET_TSC_KHZ / KVM_GET_TSC_KHZ and the TSC device attributes; undefined for other ioctls. */
export function kvmTscVcpuIoctl(vcpu: X86Vcpu, nr: number, arg: number | object): number | undefined {
  if (nr === K.KVM_HAS_DEVICE_ATTR || nr === K.KVM_GET_DEVICE_ATTR || nr === K.KVM_SET_DEVICE_ATTR) return tscDeviceAttr(vcpu, nr, arg);
  if (nr === K.KVM_GET_TSC_KHZ) return vcpu.arch.tsc.virtualTscKhz;
  if (nr !== K.KVM_SET_TSC_KHZ) return undefined;
  let khz = Number(arg) >>> 0;
  if (!kvmHasTsc(vcpu)) throw new KvmError(EINVAL, "KVM_SET_TSC_KHZ", "no TSC");
  if (vcpu.arch.ops.writeTscMultiplier !== undefined && khz >= MAX_GUEST_TSC_KHZ) throw new KvmError(EINVAL, "KVM_SET_TSC_KHZ", `${khz} kHz`);
  if (khz === 0) khz = vcpu.arch.ops.hostTscKhz?.(vcpu) ?? 0;
  if (!kvmSetTscKhz(vcpu, khz)) throw new KvmError(EINVAL, "KVM_SET_TSC_KHZ", `${khz} kHz not possible`);
  return 0;
}

const TWO32 = 4294967296;
const u64 = (lo: number, hi: number): number => (hi >>> 0) * TWO32 + (lo >>> 0);
const s64 = (lo: number, hi: number): number => (hi | 0) * TWO32 + (lo >>> 0);
function split(v: number, out: Int32Array): void {
  const hi = Math.floor(v / TWO32);
  out[0] = (v - hi * TWO32) | 0;
  out[1] = hi | 0;
}

/** kvm_get_msr_common() for IA32_TSC and IA32_TSC_ADJUST; undefined for other MSRs. */
export function kvmTscGetMsr(vcpu: X86Vcpu, index: number, out: Int32Array): boolean | undefined {
  if (index === MSR_IA32_TSC) {
    if (!kvmHasTsc(vcpu)) return undefined;
    split(kvmGuestTsc(vcpu), out);
    return true;
  }
  if (index === MSR_IA32_TSC_ADJUST) {
    out[0] = vcpu.arch.msr.tscAdjustLo;
    out[1] = vcpu.arch.msr.tscAdjustHi;
    return true;
  }
  return undefined;
}

/** kvm_set_msr_common() for IA32_TSC and IA32_TSC_ADJUST; undefined for other MSRs. */
export function kvmTscSetMsr(vcpu: X86Vcpu, index: number, lo: number, hi: number, hostInitiated: boolean): boolean | undefined {
  const m = vcpu.arch.msr;
  if (index === MSR_IA32_TSC) {
    if (!kvmHasTsc(vcpu)) return undefined;
    const data = u64(lo, hi);
    if (hostInitiated) {
      kvmSynchronizeTsc(vcpu, data);
    } else {
      // A guest write moves IA32_TSC_ADJUST by the same amount (SDM Vol. 3B 18.17.3).
      const adj = computeL1TscOffset(vcpu, data) - vcpu.arch.tsc.offset;
      adjustTscOffsetGuest(vcpu, adj);
      split(s64(m.tscAdjustLo, m.tscAdjustHi) + adj, tmp);
      m.tscAdjustLo = tmp[0];
      m.tscAdjustHi = tmp[1];
    }
    return true;
  }
  if (index === MSR_IA32_TSC_ADJUST) {
    if (!hostInitiated && kvmHasTsc(vcpu)) {
      adjustTscOffsetGuest(vcpu, s64(lo, hi) - s64(m.tscAdjustLo, m.tscAdjustHi));
      // tsc_timestamp must follow, or the guest's kvmclock would jump.
      kvmMakeRequest(vcpu, KVM_REQ_CLOCK_UPDATE);
    }
    m.tscAdjustLo = lo | 0;
    m.tscAdjustHi = hi | 0;
    return true;
  }
  return undefined;
}

const tmp = new Int32Array(2);
export const MSR_IA32_TSC = 0x10;
export const MSR_IA32_TSC_ADJUST = 0x3b;
