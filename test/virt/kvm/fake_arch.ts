// A small KvmArch for testing the core alone: records hook calls, runs a scripted "guest".
import { EINVAL, ENOTTY } from "../../../src/uapi/errno.js";
import * as K from "../../../src/uapi/kvm.js";
import { KvmError } from "../../../src/virt/kvm/kvm_error.js";
import type { KvmArch, KvmLike, KvmMemorySlot, KvmMrChange, KvmVcpuLike } from "../../../src/virt/kvm/kvm_host.js";
import { KvmRun } from "../../../src/uapi/kvm_run.js";
import { kvmHandleSignalExit, type KvmVcpu } from "../../../src/virt/kvm/kvm_main.js";
import { statCounter } from "../../../src/virt/kvm/stats.js";
import { createHost } from "../../../src/host/process.js";
import { kvmInit } from "../../../src/virt/kvm/kvm_main.js";
import { VirtualClock } from "../../../src/host/clock.js";

export interface FakeArch extends KvmArch {
  calls: string[];
  /** What the fake guest does on run(): a function of the vCPU. */
  guest: (vcpu: KvmVcpu) => void;
  pendingCompletion: boolean;
}

export function fakeArch(): FakeArch {
  const calls: string[] = [];
  const arch: FakeArch = {
    name: "fake",
    calls,
    pendingCompletion: false,
    vcpuMmapSize: 3 * 4096,
    nrMemslotAsIds: 2,
    vcpuStatDescs: [statCounter("exits"), statCounter("io_exits"), statCounter("signal_exits")],
    guest: (vcpu) => {
      const run = new KvmRun(vcpu.runBytes);
      run.exitReason = K.KVM_EXIT_IO;
      run.ioDirection = K.KVM_EXIT_IO_OUT;
      run.ioPort = 0x3f8;
      run.ioSize = 1;
      run.ioCount = 1;
      run.ioDataOffset = 4096;
    },
    checkExtension: (_kvm, cap) => (cap === K.KVM_CAP_HLT ? 1 : 0),
    devIoctl: (nr) => {
      throw new KvmError(ENOTTY, `ioctl 0x${nr.toString(16)}`);
    },
    initVm: (kvm: KvmLike) => {
      kvm.arch = { regs: null };
      calls.push("initVm");
    },
    vmIoctl: (_kvm, nr, arg) => {
      if (nr === K.KVM_SET_TSS_ADDR) {
        calls.push(`tss ${arg as number}`);
        return 0;
      }
      // x86's kvm_vm_ioctl_enable_cap() answers EINVAL for caps it does not know.
      if (nr === K.KVM_ENABLE_CAP) throw new KvmError(EINVAL, "KVM_ENABLE_CAP", "unknown cap");
      throw new KvmError(ENOTTY, `ioctl 0x${nr.toString(16)}`);
    },
    vcpuCreate: (vcpu: KvmVcpuLike) => {
      vcpu.arch = { regs: { rax: 0n, rbx: 0n, rcx: 0n, rdx: 0n, rsi: 0n, rdi: 0n, rsp: 0n, rbp: 0n, r8: 0n, r9: 0n, r10: 0n, r11: 0n, r12: 0n, r13: 0n, r14: 0n, r15: 0n, rip: 0xfff0n, rflags: 2n } };
      calls.push(`vcpuCreate ${vcpu.vcpuId}`);
    },
    completeUserspaceIo: () => {
      if (arch.pendingCompletion) {
        arch.pendingCompletion = false;
        calls.push("complete");
      }
      return 1;
    },
    vcpuIoctlRun: (vcpu) => {
      const v = vcpu as KvmVcpu;
      if (v.signalPending()) throw kvmHandleSignalExit(v);
      v.stat.exits++;
      arch.guest(v);
      calls.push("run");
      return 0;
    },
    vcpuIoctl: (vcpu, nr, arg) => {
      const a = vcpu.arch as { regs: object };
      if (nr === K.KVM_GET_REGS) return { ...a.regs };
      // A struct the core has no codec for travels as raw bytes.
      if (nr === K.KVM_SET_LAPIC) {
        (a as { lapic?: Uint8Array }).lapic = (arg as Uint8Array).slice();
        return 0;
      }
      if (nr === K.KVM_GET_LAPIC) return (a as { lapic?: Uint8Array }).lapic ?? new Uint8Array(1024);
      if (nr === K.KVM_SET_REGS) {
        a.regs = { ...(arg as object) };
        return 0;
      }
      throw new KvmError(ENOTTY, `ioctl 0x${nr.toString(16)}`);
    },
    prepareMemoryRegion: (_k, old, next, change: KvmMrChange) => {
      calls.push(`prepare ${change} ${old?.id ?? "-"} ${next?.id ?? "-"}`);
    },
    commitMemoryRegion: (_k, old, next, change: KvmMrChange) => {
      calls.push(`commit ${change} ${old?.id ?? "-"} ${next?.id ?? "-"}`);
    },
    flushShadowMemslot: (_k, slot: KvmMemorySlot) => {
      calls.push(`flush ${slot.id}`);
    },
    unmapGfnRange: (_k, slot, s, e) => {
      calls.push(`unmap ${slot.id} ${s.toString(16)}-${e.toString(16)}`);
      return true;
    },
    enableLogDirtyPtMasked: (_k, slot, off, mask) => {
      calls.push(`wp ${slot.id} ${off} ${mask.toString(16)}`);
    },
  };
  return arch;
}

export function setup(memBytes = 64 << 20) {
  const clock = new VirtualClock(1_000_000);
  const host = createHost({ memBytes, clock });
  const proc = host.createProcess("vmm");
  const arch = fakeArch();
  const dev = kvmInit(arch, proc, { onlineCpus: 2 });
  return { host, proc, arch, dev, clock };
}
