/**
 * kvmclock, the host side (arch/x86/kvm/x86.c; Documentation/virt/kvm/x86/msr.rst):
 *   - MSR_KVM_SYSTEM_TIME_NEW / MSR_KVM_SYSTEM_TIME: the guest names a pvclock_vcpu_time_info
 *     (bit 0 enables it); KVM rewrites it on KVM_REQ_CLOCK_UPDATE with the odd/even version
 *     protocol (kvm_guest_time_update / kvm_setup_guest_pvclock).
 *   - MSR_KVM_WALL_CLOCK_NEW / MSR_KVM_WALL_CLOCK: the guest asks for the wall-clock time at
 *     which its kvmclock read 0 (kvm_write_wall_clock).
 *   - KVM_GET_CLOCK / KVM_SET_CLOCK (struct kvm_clock_data): the VM's kvmclock in ns, with
 *     KVM_CLOCK_TSC_STABLE / KVM_CLOCK_REALTIME / KVM_CLOCK_HOST_TSC.
 *   - The master clock (pvclock_update_vm_gtod_copy): while every vCPU runs on the same TSC
 *     offset generation, all vCPUs' time info is built from one (host TSC, host ns) pair, so
 *     readings on different vCPUs are ordered and PVCLOCK_TSC_STABLE_BIT is set.
 *
 * kvmclock ns = host monotonic ns + kvmclock_offset; it reads 0 when the VM is created.
 */
import { EINVAL } from "../../../uapi/errno.js";
import * as K from "../../../uapi/kvm.js";
import type { KvmClockData } from "../../../uapi/kvm_structs.js";
import { KvmError } from "../../../virt/kvm/kvm_error.js";
import { KVM_REQ_CLOCK_UPDATE, KVM_REQ_MASTERCLOCK_UPDATE, kvmCheckRequest, kvmMakeRequest, type X86Kvm, type X86Vcpu } from "./kvm_host.js";
import { readGpa, writeGpa } from "./mmu/paging_tmpl.js";
import {
  kvmGetTimeScale, pvclockReadCycles, NSEC_PER_SEC, PVCLOCK_GUEST_STOPPED, PVCLOCK_TSC_STABLE_BIT, PVCLOCK_WALL_CLOCK_SIZE,
  PVTI_FLAGS, PVTI_SIZE, PVTI_SYSTEM_TIME, PVTI_TSC_SHIFT, PVTI_TSC_TIMESTAMP, PVTI_TSC_TO_SYSTEM_MUL, PVTI_VERSION,
} from "./pvclock.js";
import { kvmHasTsc, kvmHostTsc, kvmReadL1Tsc, kvmTscVcpusMatched } from "./tsc.js";

export const MSR_KVM_WALL_CLOCK = 0x11;
export const MSR_KVM_SYSTEM_TIME = 0x12;
export const MSR_KVM_WALL_CLOCK_NEW = 0x4b564d00;
export const MSR_KVM_SYSTEM_TIME_NEW = 0x4b564d01;
/** The kvmclock MSRs KVM_GET_MSR_INDEX_LIST reports (emulated_msrs). */
export const KVMCLOCK_MSRS: readonly number[] = [MSR_KVM_SYSTEM_TIME, MSR_KVM_WALL_CLOCK, MSR_KVM_SYSTEM_TIME_NEW, MSR_KVM_WALL_CLOCK_NEW];
/** KVM_CLOCK_VALID_FLAGS, also the KVM_CAP_ADJUST_CLOCK answer. */
export const KVM_CLOCK_VALID_FLAGS = K.KVM_CLOCK_TSC_STABLE | K.KVM_CLOCK_REALTIME | K.KVM_CLOCK_HOST_TSC;

const TWO32 = 4294967296;

/** The kvmclock part of kvm_arch_init_vm(): kvmclock starts at 0; note the host's realtime offset. */
export function kvmClockInitVm(kvm: X86Kvm): void {
  const ka = kvm.arch.clock;
  const now = kvm.proc.clock.nowNs();
  ka.kvmclockOffset = -now;
  ka.realtimeOffsetNs = Date.now() * 1e6 - now;
}

/** pvclock_update_vm_gtod_copy(): decide on the master clock and take its (host TSC, ns) pair. */
function updateVmGtodCopy(kvm: X86Kvm): void {
  const ka = kvm.arch.clock;
  const vcpus = kvm.arch.vcpus;
  ka.useMasterClock = kvmTscVcpusMatched(vcpus, ka.nrVcpusMatchedTsc) && !ka.bootVcpuRunsOldKvmclock && kvmHasTsc(vcpus[0]);
  if (ka.useMasterClock) {
    ka.masterKernelNs = kvm.proc.clock.nowNs();
    ka.masterCycleNow = kvmHostTsc(vcpus[0]);
  }
}

/** kvm_end_pvclock_update(): every vCPU rewrites its time info before it next runs. */
function requestClockUpdateAll(kvm: X86Kvm): void {
  for (const v of kvm.arch.vcpus) kvmMakeRequest(v, KVM_REQ_CLOCK_UPDATE);
}

/** kvm_update_masterclock() */
export function kvmUpdateMasterclock(kvm: X86Kvm): void {
  updateVmGtodCopy(kvm);
  requestClockUpdateAll(kvm);
}

const scale = { shift: 0, mul: 0 };
const u32 = new Uint8Array(4);
const pvti = new Uint8Array(PVTI_SIZE);
const pvtiView = new DataView(pvti.buffer);

function putU64(v: DataView, off: number, x: number): void {
  const hi = Math.floor(x / TWO32);
  v.setUint32(off, x - hi * TWO32, true);
  v.setInt32(off + 4, hi, true);
}

/** kvm_setup_guest_pvclock(): version odd, the record, version even. */
function setupGuestPvclock(vcpu: X86Vcpu, gpa: number): void {
  const hv = vcpu.arch.tsc.hvClock;
  if (!readGpa(vcpu, gpa, pvti, PVTI_SIZE)) return;
  // Keep PVCLOCK_GUEST_STOPPED if the guest has not consumed it yet.
  const stopped = pvti[PVTI_FLAGS] & PVCLOCK_GUEST_STOPPED;
  hv.version = ((pvtiView.getUint32(PVTI_VERSION, true) + 1) | 1) >>> 0;
  pvtiView.setUint32(PVTI_VERSION, hv.version, true);
  if (!writeGpa(vcpu, gpa, pvti, 4)) return;
  putU64(pvtiView, PVTI_TSC_TIMESTAMP, hv.tscTimestamp);
  putU64(pvtiView, PVTI_SYSTEM_TIME, hv.systemTime);
  pvtiView.setUint32(PVTI_TSC_TO_SYSTEM_MUL, hv.tscToSystemMul, true);
  pvtiView.setInt8(PVTI_TSC_SHIFT, hv.tscShift);
  pvti[PVTI_FLAGS] = hv.flags | stopped;
  pvti[30] = 0;
  pvti[31] = 0;
  writeGpa(vcpu, gpa, pvti, PVTI_SIZE);
  hv.version = (hv.version + 1) >>> 0;
  pvtiView.setUint32(PVTI_VERSION, hv.version, true);
  writeGpa(vcpu, gpa, pvti, 4);
}

/** kvm_guest_time_update(): new time info from the master clock (or now), written if kvmclock is on. */
export function kvmGuestTimeUpdate(vcpu: X86Vcpu): void {
  const t = vcpu.arch.tsc;
  if (t.virtualTscKhz === 0 || !kvmHasTsc(vcpu)) return;
  const ka = vcpu.kvm.arch.clock;
  let hostTsc: number;
  let kernelNs: number;
  if (ka.useMasterClock) {
    hostTsc = ka.masterCycleNow;
    kernelNs = ka.masterKernelNs;
  } else {
    kernelNs = vcpu.kvm.proc.clock.nowNs();
    hostTsc = kvmHostTsc(vcpu);
  }
  const hv = t.hvClock;
  kvmGetTimeScale(NSEC_PER_SEC, t.virtualTscKhz * 1000, scale);
  hv.tscTimestamp = kvmReadL1Tsc(vcpu, hostTsc);
  hv.systemTime = kernelNs + ka.kvmclockOffset;
  hv.tscShift = scale.shift;
  hv.tscToSystemMul = scale.mul;
  hv.flags = ka.useMasterClock ? PVCLOCK_TSC_STABLE_BIT : 0;
  if (t.systemTimeMsr % 2 === 1) setupGuestPvclock(vcpu, t.systemTimeMsr - 1);
}

/** The kvmclock requests of vcpu_enter_guest(): KVM_REQ_MASTERCLOCK_UPDATE, then KVM_REQ_CLOCK_UPDATE. */
export function kvmClockCheckRequests(vcpu: X86Vcpu): void {
  if (kvmCheckRequest(vcpu, KVM_REQ_MASTERCLOCK_UPDATE)) kvmUpdateMasterclock(vcpu.kvm);
  if (kvmCheckRequest(vcpu, KVM_REQ_CLOCK_UPDATE)) kvmGuestTimeUpdate(vcpu);
}

/** __get_kvmclock(): the VM's kvmclock now, as KVM_GET_CLOCK reports it. */
export function kvmGetClock(kvm: X86Kvm): KvmClockData {
  const ka = kvm.arch.clock;
  const d: KvmClockData = { clock: 0n, flags: 0, pad0: 0, realtime: 0n, host_tsc: 0n, pad: [0, 0, 0, 0] };
  const v0 = kvm.arch.vcpus[0];
  if (ka.useMasterClock && v0 !== undefined && kvmHasTsc(v0)) {
    const now = kvm.proc.clock.nowNs();
    const hostTsc = kvmHostTsc(v0);
    d.realtime = BigInt(Math.round(now + ka.realtimeOffsetNs));
    d.host_tsc = BigInt(hostTsc);
    d.flags = K.KVM_CLOCK_TSC_STABLE | K.KVM_CLOCK_REALTIME | K.KVM_CLOCK_HOST_TSC;
    // The master clock read at the host TSC rate (get_cpu_tsc_khz), as the host's own pvclock.
    kvmGetTimeScale(NSEC_PER_SEC, (v0.arch.ops.hostTscKhz?.(v0) ?? 0) * 1000, scale);
    d.clock = BigInt(pvclockReadCycles({ tscTimestamp: ka.masterCycleNow, systemTime: ka.masterKernelNs + ka.kvmclockOffset, tscToSystemMul: scale.mul, tscShift: scale.shift }, hostTsc));
  } else {
    d.clock = BigInt(Math.round(kvm.proc.clock.nowNs() + ka.kvmclockOffset));
  }
  return d;
}

/** get_kvmclock_ns() */
export function kvmGetKvmclockNs(kvm: X86Kvm): number {
  return Number(kvmGetClock(kvm).clock);
}

/** kvm_vm_ioctl_set_clock() */
export function kvmSetClock(kvm: X86Kvm, d: Partial<KvmClockData>): void {
  const flags = d.flags ?? 0;
  if (flags & ~KVM_CLOCK_VALID_FLAGS) throw new KvmError(EINVAL, "KVM_SET_CLOCK", `flags 0x${flags.toString(16)}`);
  const ka = kvm.arch.clock;
  updateVmGtodCopy(kvm);
  const now = kvm.proc.clock.nowNs();
  let clock = Number(BigInt.asUintN(64, BigInt(d.clock ?? 0n)));
  if (flags & K.KVM_CLOCK_REALTIME) {
    // Time passed since userspace sampled `realtime` is added (a migration's downtime).
    const nowReal = now + ka.realtimeOffsetNs;
    const then = Number(d.realtime ?? 0n);
    if (nowReal > then) clock += nowReal - then;
  }
  ka.kvmclockOffset = clock - (ka.useMasterClock ? ka.masterKernelNs : now);
  requestClockUpdateAll(kvm);
}

/** kvm_vm_ioctl() for KVM_GET_CLOCK / KVM_SET_CLOCK; undefined for other ioctls. */
export function kvmClockVmIoctl(kvm: X86Kvm, nr: number, arg: number | object): number | object | undefined {
  if (nr === K.KVM_GET_CLOCK) return kvmGetClock(kvm);
  if (nr === K.KVM_SET_CLOCK) {
    kvmSetClock(kvm, arg as Partial<KvmClockData>);
    return 0;
  }
  return undefined;
}

/** kvm_write_wall_clock(): the wall-clock time at which kvmclock read 0, version odd then even. */
function kvmWriteWallClock(vcpu: X86Vcpu, gpa: number): void {
  const kvm = vcpu.kvm;
  if (!readGpa(vcpu, gpa, u32, 4)) return;
  let version = new DataView(u32.buffer).getUint32(0, true);
  if (version & 1) version++; // random junk before the first write
  version = (version + 1) >>> 0;
  const wc = new Uint8Array(PVCLOCK_WALL_CLOCK_SIZE);
  const v = new DataView(wc.buffer);
  v.setUint32(0, version, true);
  if (!writeGpa(vcpu, gpa, wc, 4)) return;
  const wallNs = kvm.proc.clock.nowNs() + kvm.arch.clock.realtimeOffsetNs - kvmGetKvmclockNs(kvm);
  const sec = Math.floor(wallNs / NSEC_PER_SEC);
  v.setUint32(4, sec % TWO32, true); // 32-bit seconds: wraps in 2106
  v.setUint32(8, Math.round(wallNs - sec * NSEC_PER_SEC) % NSEC_PER_SEC, true);
  writeGpa(vcpu, gpa, wc, PVCLOCK_WALL_CLOCK_SIZE);
  v.setUint32(0, (version + 1) >>> 0, true);
  writeGpa(vcpu, gpa, wc, 4);
}

/** kvm_get_msr_common() for the kvmclock MSRs; undefined for others. */
export function kvmClockGetMsr(vcpu: X86Vcpu, index: number, out: Int32Array): boolean | undefined {
  let v: number;
  switch (index) {
    case MSR_KVM_WALL_CLOCK:
    case MSR_KVM_WALL_CLOCK_NEW:
      v = vcpu.kvm.arch.clock.wallClockMsr;
      break;
    case MSR_KVM_SYSTEM_TIME:
    case MSR_KVM_SYSTEM_TIME_NEW:
      v = vcpu.arch.tsc.systemTimeMsr;
      break;
    default:
      return undefined;
  }
  const hi = Math.floor(v / TWO32);
  out[0] = (v - hi * TWO32) | 0;
  out[1] = hi | 0;
  return true;
}

/** kvm_set_msr_common() for the kvmclock MSRs; undefined for others. */
export function kvmClockSetMsr(vcpu: X86Vcpu, index: number, lo: number, hi: number, hostInitiated: boolean): boolean | undefined {
  const data = (hi >>> 0) * TWO32 + (lo >>> 0);
  switch (index) {
    case MSR_KVM_WALL_CLOCK:
    case MSR_KVM_WALL_CLOCK_NEW:
      vcpu.kvm.arch.clock.wallClockMsr = data;
      kvmWriteWallClock(vcpu, data);
      return true;
    case MSR_KVM_SYSTEM_TIME:
    case MSR_KVM_SYSTEM_TIME_NEW: {
      // kvm_write_system_time(): the boot vCPU's choice of the old MSR rules out the master clock.
      const oldMsr = index === MSR_KVM_SYSTEM_TIME;
      const ka = vcpu.kvm.arch.clock;
      if (vcpu.vcpuId === 0 && !hostInitiated) {
        if (ka.bootVcpuRunsOldKvmclock !== oldMsr) kvmMakeRequest(vcpu, KVM_REQ_MASTERCLOCK_UPDATE);
        ka.bootVcpuRunsOldKvmclock = oldMsr;
      }
      vcpu.arch.tsc.systemTimeMsr = data;
      // KVM_REQ_GLOBAL_CLOCK_UPDATE: every vCPU refreshes its time info.
      requestClockUpdateAll(vcpu.kvm);
      return true;
    }
    default:
      return undefined;
  }
}
