/**
 * The tskvm side of the bench: runs a guests/bench image in-process through tskvm's KVM API
 * (openKvm -> createVm -> setUserMemoryRegion -> createVcpu -> run), booting it in the state a
 * Multiboot loader leaves (32-bit flat protected mode, paging off; Multiboot 0.6.96 section
 * 3.2), with the same device rules as bench/peers/kvm-bench.c: port 0x3f8 is the console, an OUT
 * to 0xf4 ends the run, every other port and all MMIO are accepted and ignored (INs read 0).
 * Serial lines carry host timestamps and the vCPU's retired-instruction count.
 */
import { createHost } from "../../src/host/process.js";
import { openKvm } from "../../src/kvm.js";
import { KvmRun } from "../../src/uapi/kvm_run.js";
import { MAP_ANONYMOUS, MAP_NORESERVE, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../../src/uapi/mman.js";
import {
  KVM_EXIT_FAIL_ENTRY, KVM_EXIT_HLT, KVM_EXIT_INTERNAL_ERROR, KVM_EXIT_INTR, KVM_EXIT_IO, KVM_EXIT_IO_OUT, KVM_EXIT_MMIO, KVM_EXIT_NAMES,
  KVM_EXIT_SHUTDOWN,
} from "../../src/uapi/kvm.js";
import type { KvmSegment } from "../../src/uapi/kvm_structs.js";
import type { PeerRun, SerialLine } from "./types.js";

export const LOAD_GPA = 0x100000;
const SERIAL = 0x3f8;
const EXIT_PORT = 0xf4;

function flatSeg(selector: number, type: number): KvmSegment {
  return { base: 0n, limit: 0xffffffff, selector, type, present: 1, dpl: 0, db: 1, s: 1, l: 0, g: 1, avl: 0, unusable: 0, padding: 0 };
}

/**
 * The emulated CPU behind a vCPU handle, found structurally (vcpu.arch.vendor.pcpu.cpu, the VMX
 * backend's layout) so the bench keeps working if it moves: then MIPS comes from the guests'
 * analytic counts only.
 */
function insnCounter(vcpu: unknown): (() => number) | null {
  const cpu = (vcpu as { arch?: { vendor?: { pcpu?: { cpu?: { insnCount?: number } } } } }).arch?.vendor?.pcpu?.cpu;
  return cpu && typeof cpu.insnCount === "number" ? () => cpu.insnCount! : null;
}

/** Boots `image` with `memBytes` of RAM at GPA 0; `maxMs` bounds the wall time (then stop = "timeout"). */
export function runOnTskvm(image: Uint8Array, memBytes: number, maxMs: number): PeerRun {
  const host = createHost({ memBytes: memBytes + (32 << 20) });
  const proc = host.createProcess("tskvm-bench");
  const t0 = performance.now();
  const ns = (): number => Math.round((performance.now() - t0) * 1e6);
  const kvm = openKvm(proc);
  const vm = kvm.createVm(0);
  const mm = proc.mm;
  const hva = mm.mmap(0, memBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  mm.copyToUser(hva + LOAD_GPA, image);
  vm.setUserMemoryRegion({ slot: 0, flags: 0, guest_phys_addr: 0n, memory_size: BigInt(memBytes), userspace_addr: BigInt(hva) });
  const vcpu = vm.createVcpu(0);
  vcpu.setCpuid2(kvm.getSupportedCpuid(256));
  const run = new KvmRun(vcpu.mmap(0, kvm.getVcpuMmapSize()));
  const sregs = vcpu.getSregs();
  sregs.cs = flatSeg(0x18, 0xb);
  sregs.ds = flatSeg(0x10, 0x3);
  sregs.es = { ...sregs.ds };
  sregs.fs = { ...sregs.ds };
  sregs.gs = { ...sregs.ds };
  sregs.ss = { ...sregs.ds };
  sregs.cr0 = 0x33n; // PE MP ET NE
  sregs.cr4 = 0n;
  sregs.efer = 0n;
  vcpu.setSregs(sregs);
  vcpu.setRegs({
    rip: BigInt(LOAD_GPA), rflags: 2n, rax: 0x2badb002n,
    rbx: 0n, rcx: 0n, rdx: 0n, rsi: 0n, rdi: 0n, rsp: 0n, rbp: 0n,
    r8: 0n, r9: 0n, r10: 0n, r11: 0n, r12: 0n, r13: 0n, r14: 0n, r15: 0n,
  });
  const icount = insnCounter(vcpu);

  const lines: SerialLine[] = [];
  let text = "";
  let start = -1;
  let startInsns = 0;
  let first = -1;
  let exits = 0;
  let io = 0;
  let mmio = 0;
  let stop = "unhandled";
  let detail = "";
  const deadline = performance.now() + maxMs;
  for (;;) {
    vcpu.run();
    exits++;
    const reason = run.exitReason;
    if (reason === KVM_EXIT_IO) {
      io++;
      const data = run.ioData();
      const bytes = run.ioSize * run.ioCount;
      if (run.ioDirection !== KVM_EXIT_IO_OUT) {
        data.fill(0, 0, bytes);
      } else if (run.ioPort === EXIT_PORT) {
        stop = "exit-port";
        break;
      } else if (run.ioPort === SERIAL) {
        for (let i = 0; i < bytes; i++) {
          const t = ns();
          if (first < 0) first = t;
          if (text.length === 0 && start < 0) {
            start = t;
            startInsns = icount ? icount() : 0;
          }
          const c = data[i]!;
          if (c === 0x0a) {
            lines.push({ startNs: start, endNs: t, text, startInsns, endInsns: icount ? icount() : undefined });
            text = "";
            start = -1;
          } else {
            text += String.fromCharCode(c);
          }
        }
      }
    } else if (reason === KVM_EXIT_MMIO) {
      mmio++;
      if (!run.mmioIsWrite) run.mmioData.fill(0);
    } else if (reason === KVM_EXIT_INTR) {
      // a host signal interrupted KVM_RUN: just re-enter
    } else if (reason === KVM_EXIT_HLT) {
      stop = "hlt";
      break;
    } else if (reason === KVM_EXIT_SHUTDOWN) {
      stop = "shutdown";
      break;
    } else {
      detail = KVM_EXIT_NAMES[reason] ?? `exit ${reason}`;
      if (reason === KVM_EXIT_INTERNAL_ERROR) {
        detail += ` suberror ${run.internalSuberror} data [`;
        for (let i = 0; i < Math.min(run.internalNdata, 16); i++) detail += `${i ? " " : ""}0x${run.internalData(i).toString(16)}`;
        detail += "]";
      }
      if (reason === KVM_EXIT_FAIL_ENTRY) detail += ` hardware_entry_failure_reason 0x${run.failEntryHardwareEntryFailureReason.toString(16)}`;
      const r = vcpu.getRegs();
      detail += ` at rip 0x${r.rip.toString(16)}`;
      break;
    }
    if ((exits & 0xff) === 0 && performance.now() > deadline) {
      stop = "timeout";
      break;
    }
  }
  if (text.length > 0) lines.push({ startNs: start, endNs: ns(), text, startInsns });
  proc.exit();
  return { lines, firstByteNs: first, stop, detail, exits, io, mmio, hasInsns: icount !== null };
}
