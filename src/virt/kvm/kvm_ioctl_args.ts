/**
 * How the byte-level ioctl path moves arguments between user memory (the VMM's address space)
 * and objects: copy_from_user / copy_to_user of the uapi structs, with EFAULT when the memory
 * is not there, and the table of arch ioctls whose argument layout the core decodes before the
 * arch hook (kvm_arch_*_ioctl) sees it.
 */
import type { MmStruct } from "../../host/mm.js";
import { E2BIG, EFAULT, EIO } from "../../uapi/errno.js";
import { IOC_NONE, IOC_READ, IOC_WRITE, iocDir, iocSize } from "../../uapi/ioctl.js";
import * as K from "../../uapi/kvm.js";
import * as S from "../../uapi/kvm_structs.js";
import type { StructCodec } from "../../uapi/struct.js";
import { KvmError } from "./kvm_error.js";

export function copyIn<T extends object>(mm: MmStruct, codec: StructCodec<T>, hva: number, name: string): T {
  const buf = new Uint8Array(codec.size);
  if (mm.accessUser(hva, buf, false) !== 0) throw new KvmError(EFAULT, name, `copy_from_user 0x${hva.toString(16)}`);
  return codec.decode(buf);
}

export function copyOut<T extends object>(mm: MmStruct, codec: StructCodec<T>, v: Partial<T>, hva: number, name: string): void {
  if (mm.accessUser(hva, codec.encode(v), true) !== 0) throw new KvmError(EFAULT, name, `copy_to_user 0x${hva.toString(16)}`);
}

export function copyInBytes(mm: MmStruct, hva: number, len: number, name: string): Uint8Array {
  const buf = new Uint8Array(len);
  if (mm.accessUser(hva, buf, false) !== 0) throw new KvmError(EFAULT, name, `copy_from_user 0x${hva.toString(16)}+${len}`);
  return buf;
}

export function copyOutBytes(mm: MmStruct, hva: number, bytes: Uint8Array, name: string): void {
  if (mm.accessUser(hva, bytes, true) !== 0) throw new KvmError(EFAULT, name, `copy_to_user 0x${hva.toString(16)}+${bytes.length}`);
}

/** How the byte-level path moves an arch ioctl's argument between user memory and objects. */
export interface ArgCodec {
  name: string;
  /** Read the argument from user memory (for _IOW / _IOWR). */
  read?(mm: MmStruct, hva: number): object;
  /** Write the result (or the updated input) back (for _IOR / _IOWR). */
  write?(mm: MmStruct, hva: number, v: object): void;
}

function fixed<T extends object>(name: string, codec: StructCodec<T>, request: number): ArgCodec {
  const dir = iocDir(request);
  return {
    name,
    read: dir & IOC_WRITE ? (mm, hva) => copyIn(mm, codec, hva, name) : undefined,
    write: dir & IOC_READ ? (mm, hva, v) => copyOut(mm, codec, v as T, hva, name) : undefined,
  };
}

/** MAX_IO_MSRS (x86.c msr_io: nmsrs >= 256 is E2BIG before anything is copied). */
const MAX_IO_MSRS = 256;
/** KVM_MAX_CPUID_ENTRIES (KVM_SET_CPUID2: nent > 256 is E2BIG before the entries are copied). */
const KVM_MAX_CPUID_ENTRIES = 256;

function msrsCodec(name: string, writeBack: boolean): ArgCodec {
  return {
    name,
    read(mm, hva) {
      const h = copyIn(mm, S.kvm_msrs, hva, name);
      if (h.nmsrs >= MAX_IO_MSRS) throw new KvmError(E2BIG, name, `nmsrs ${h.nmsrs}`);
      return S.decodeMsrs(copyInBytes(mm, hva, S.msrsSize(h.nmsrs), name));
    },
    write: writeBack ? (mm, hva, v) => copyOutBytes(mm, hva, S.encodeMsrs(v as S.KvmMsrs), name) : undefined,
  };
}

function cpuidCodec(name: string, readEntries: boolean): ArgCodec {
  return {
    name,
    read(mm, hva) {
      const h = copyIn(mm, S.kvm_cpuid2, hva, name);
      if (!readEntries) return { nent: h.nent, entries: [] };
      if (h.nent > KVM_MAX_CPUID_ENTRIES) throw new KvmError(E2BIG, name, `nent ${h.nent}`);
      return S.decodeCpuid2(copyInBytes(mm, hva, S.cpuid2Size(h.nent), name));
    },
    write: readEntries ? undefined : (mm, hva, v) => copyOutBytes(mm, hva, S.encodeCpuid2(v as S.KvmCpuid2), name),
  };
}

function msrListCodec(name: string): ArgCodec {
  return {
    name,
    read: (mm, hva) => ({ nmsrs: copyIn(mm, S.kvm_msr_list, hva, name).nmsrs, indices: [] }),
    write: (mm, hva, v) => copyOutBytes(mm, hva, S.encodeMsrList(v as S.KvmMsrList), name),
  };
}

/**
 * Arch ioctls whose argument layout the core knows: decoded before the arch hook sees them.
 * Ioctls not listed here get the raw-bytes default (rawCodec below) when they take a pointer.
 * Conventions for the hook: _IOW gets the decoded object; _IOR gets 0 and returns the object to
 * copy out; _IOWR gets the decoded object and returns either a new object to copy out or a
 * number (then the input object, possibly updated in place, is copied out).
 */
export const ARCH_IOCTL_ARGS = new Map<number, ArgCodec>([
  [K.KVM_GET_REGS, fixed("KVM_GET_REGS", S.kvm_regs, K.KVM_GET_REGS)],
  [K.KVM_SET_REGS, fixed("KVM_SET_REGS", S.kvm_regs, K.KVM_SET_REGS)],
  [K.KVM_GET_SREGS, fixed("KVM_GET_SREGS", S.kvm_sregs, K.KVM_GET_SREGS)],
  [K.KVM_SET_SREGS, fixed("KVM_SET_SREGS", S.kvm_sregs, K.KVM_SET_SREGS)],
  [K.KVM_GET_FPU, fixed("KVM_GET_FPU", S.kvm_fpu, K.KVM_GET_FPU)],
  [K.KVM_SET_FPU, fixed("KVM_SET_FPU", S.kvm_fpu, K.KVM_SET_FPU)],
  [K.KVM_TRANSLATE, fixed("KVM_TRANSLATE", S.kvm_translation, K.KVM_TRANSLATE)],
  [K.KVM_INTERRUPT, fixed("KVM_INTERRUPT", S.kvm_interrupt, K.KVM_INTERRUPT)],
  [K.KVM_GET_MP_STATE, fixed("KVM_GET_MP_STATE", S.kvm_mp_state, K.KVM_GET_MP_STATE)],
  [K.KVM_SET_MP_STATE, fixed("KVM_SET_MP_STATE", S.kvm_mp_state, K.KVM_SET_MP_STATE)],
  [K.KVM_SET_GUEST_DEBUG, fixed("KVM_SET_GUEST_DEBUG", S.kvm_guest_debug, K.KVM_SET_GUEST_DEBUG)],
  [K.KVM_GET_VCPU_EVENTS, fixed("KVM_GET_VCPU_EVENTS", S.kvm_vcpu_events, K.KVM_GET_VCPU_EVENTS)],
  [K.KVM_SET_VCPU_EVENTS, fixed("KVM_SET_VCPU_EVENTS", S.kvm_vcpu_events, K.KVM_SET_VCPU_EVENTS)],
  [K.KVM_GET_DEBUGREGS, fixed("KVM_GET_DEBUGREGS", S.kvm_debugregs, K.KVM_GET_DEBUGREGS)],
  [K.KVM_SET_DEBUGREGS, fixed("KVM_SET_DEBUGREGS", S.kvm_debugregs, K.KVM_SET_DEBUGREGS)],
  [K.KVM_ENABLE_CAP, fixed("KVM_ENABLE_CAP", S.kvm_enable_cap, K.KVM_ENABLE_CAP)],
  [K.KVM_IRQ_LINE, fixed("KVM_IRQ_LINE", S.kvm_irq_level, K.KVM_IRQ_LINE)],
  [K.KVM_IRQ_LINE_STATUS, fixed("KVM_IRQ_LINE_STATUS", S.kvm_irq_level, K.KVM_IRQ_LINE_STATUS)],
  [K.KVM_IRQFD, fixed("KVM_IRQFD", S.kvm_irqfd, K.KVM_IRQFD)],
  [K.KVM_IOEVENTFD, fixed("KVM_IOEVENTFD", S.kvm_ioeventfd, K.KVM_IOEVENTFD)],
  [K.KVM_SET_IDENTITY_MAP_ADDR, fixed("KVM_SET_IDENTITY_MAP_ADDR", S.kvm_identity_map_addr, K.KVM_SET_IDENTITY_MAP_ADDR)],
  [K.KVM_CREATE_PIT2, fixed("KVM_CREATE_PIT2", S.kvm_pit_config, K.KVM_CREATE_PIT2)],
  [K.KVM_SET_CLOCK, fixed("KVM_SET_CLOCK", S.kvm_clock_data, K.KVM_SET_CLOCK)],
  [K.KVM_GET_CLOCK, fixed("KVM_GET_CLOCK", S.kvm_clock_data, K.KVM_GET_CLOCK)],
  [K.KVM_GET_MSRS, msrsCodec("KVM_GET_MSRS", true)],
  [K.KVM_SET_MSRS, msrsCodec("KVM_SET_MSRS", false)],
  [K.KVM_SET_CPUID2, cpuidCodec("KVM_SET_CPUID2", true)],
  [K.KVM_GET_CPUID2, cpuidCodec("KVM_GET_CPUID2", false)],
  [K.KVM_GET_SUPPORTED_CPUID, cpuidCodec("KVM_GET_SUPPORTED_CPUID", false)],
  [K.KVM_GET_EMULATED_CPUID, cpuidCodec("KVM_GET_EMULATED_CPUID", false)],
  [K.KVM_GET_MSR_INDEX_LIST, msrListCodec("KVM_GET_MSR_INDEX_LIST")],
  [K.KVM_GET_MSR_FEATURE_INDEX_LIST, msrListCodec("KVM_GET_MSR_FEATURE_INDEX_LIST")],
]);

/**
 * Register (or replace) the argument codec of an arch ioctl, e.g. a variable-length struct such
 * as KVM_SET_GSI_ROUTING, so the byte-level path hands the arch a decoded object.
 */
export function registerArchIoctlArg(request: number, codec: ArgCodec): void {
  ARCH_IOCTL_ARGS.set(request >>> 0, codec);
}

/**
 * The default for a pointer argument the core has no codec for (_IOC_SIZE != 0): the arch
 * receives the _IOC_SIZE bytes as a Uint8Array and, for _IOR/_IOWR, returns a Uint8Array (or
 * updates the given one in place and returns a number) that is copied back. The bytes are read
 * whatever the direction bits say, because some requests carry the wrong ones (KVM_SET_IRQCHIP
 * is _IOR yet its handler copies the struct in).
 */
function rawCodec(request: number): ArgCodec {
  const name = `ioctl 0x${request.toString(16)}`;
  const size = iocSize(request);
  const dir = iocDir(request);
  return {
    name,
    read: (mm, hva) => copyInBytes(mm, hva, size, name),
    write: dir & IOC_READ
      ? (mm, hva, v) => {
          if (!(v instanceof Uint8Array)) throw new KvmError(EIO, name, "arch must return the struct as bytes");
          copyOutBytes(mm, hva, v.subarray(0, size), name);
        }
      : undefined,
  };
}

/** Run an arch ioctl hook through the byte-level argument conventions above. */
export function archIoctlBytes(mm: MmStruct, request: number, arg: number, call: (a: number | object) => number | object): number {
  let c = ARCH_IOCTL_ARGS.get(request);
  if (!c) {
    if (iocSize(request) === 0 || iocDir(request) === IOC_NONE) {
      // An integer argument (or none): passed through unchanged.
      const r = call(arg);
      if (typeof r !== "number") throw new KvmError(EIO, `ioctl 0x${request.toString(16)}`, "arch returned a struct for an integer-argument ioctl");
      return r;
    }
    c = rawCodec(request);
  }
  const input = c.read ? c.read(mm, arg) : 0;
  const r = call(input);
  if (c.write) {
    if (typeof r === "object") c.write(mm, arg, r);
    else if (typeof input === "object") c.write(mm, arg, input);
    else throw new KvmError(EIO, c.name, "arch returned no struct to copy out");
  }
  return typeof r === "number" ? r : 0;
}
