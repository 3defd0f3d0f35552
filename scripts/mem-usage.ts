// Memory cost of guest RAM: create a VM with a 1 GiB memslot backed by mmap(), let the guest
// touch 1 MiB of it, and print the frames allocated, the physical-memory chunk bytes and the
// process RSS delta.
//
//   npx tsx scripts/mem-usage.ts
//
// With the x86 integration (src/kvm.ts openKvm) a real-mode guest stores one byte into each of
// the 256 pages of the first MiB (EPT violations fault them in). Without it a core-only arch
// stands in and the pages are resolved through gfnToPfn, which is what the MMU calls.
import { createHost, type HostProcess } from "../src/host/process.js";
import { MAP_ANONYMOUS, MAP_NORESERVE, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../src/uapi/mman.js";
import { ENOTTY } from "../src/uapi/errno.js";
import * as K from "../src/uapi/kvm.js";
import { KvmError } from "../src/virt/kvm/kvm_error.js";
import type { KvmArch } from "../src/virt/kvm/kvm_host.js";
import { kvmInit, type KvmDev } from "../src/virt/kvm/kvm_main.js";

const GiB = 1 << 30;
const TOUCH = 1 << 20;

// Real mode at 0x1000: for ds in 0x0000, 0x0100, ... 0xff00: mov byte [ds:0], 1; then hlt.
const GUEST = Uint8Array.of(
  0x31, 0xc0, //             xor ax, ax
  0xb9, 0x00, 0x01, //       mov cx, 256
  0x8e, 0xd8, //             l: mov ds, ax
  0xc6, 0x06, 0x00, 0x00, 0x01, // mov byte [0], 1
  0x05, 0x00, 0x01, //       add ax, 0x100      (next 4 KiB page)
  0xe2, 0xf4, //             loop l
  0xf4, //                   hlt
);

const coreOnlyArch: KvmArch = {
  name: "core-only",
  vcpuMmapSize: 3 * 4096,
  checkExtension: () => 0,
  devIoctl: (nr) => { throw new KvmError(ENOTTY, `ioctl 0x${nr.toString(16)}`); },
  initVm: () => {},
  vmIoctl: (_k, nr) => { throw new KvmError(ENOTTY, `ioctl 0x${nr.toString(16)}`); },
  vcpuCreate: () => {},
  vcpuIoctlRun: () => { throw new KvmError(ENOTTY, "KVM_RUN", "core-only arch has no CPU"); },
  vcpuIoctl: (_v, nr) => { throw new KvmError(ENOTTY, `ioctl 0x${nr.toString(16)}`); },
};

async function open(proc: HostProcess): Promise<{ dev: KvmDev; how: string }> {
  try {
    const path = "../src/kvm.js";
    const m = (await import(path)) as { openKvm?: (p: HostProcess) => KvmDev };
    if (typeof m.openKvm === "function") return { dev: m.openKvm(proc), how: "x86 (src/kvm.ts openKvm)" };
  } catch {
    // not integrated yet: fall through
  }
  return { dev: kvmInit(coreOnlyArch, proc), how: "core-only arch" };
}

const rss0 = process.memoryUsage().rss;
const host = createHost({ memBytes: 4 * GiB });
const proc = host.createProcess("mem-usage");
const { dev, how } = await open(proc);
const kvm = dev.createVm();
const hva = proc.mm.mmap(0, GiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
kvm.setUserMemoryRegion({ slot: 0, flags: 0, guest_phys_addr: 0n, memory_size: BigInt(GiB), userspace_addr: BigInt(hva) });
const framesBefore = host.pageAlloc.allocatedFrames;
const chunkBefore = host.physmem.populatedBytes;
const rss1 = process.memoryUsage().rss;

const pages = TOUCH / 4096;
let exits = "";
if (how.startsWith("x86")) {
  proc.mm.copyToUser(hva + 0x1000, GUEST);
  const vcpu = kvm.createVcpu(0);
  const sregs = vcpu.getSregs();
  sregs.cs.base = 0n;
  sregs.cs.selector = 0;
  vcpu.setSregs(sregs);
  vcpu.setRegs({ ...vcpu.getRegs(), rip: 0x1000n, rflags: 2n });
  for (let n = 0; n < 8; n++) {
    vcpu.run();
    exits += `${vcpu.kvmRun.exitReason} `;
    if (vcpu.kvmRun.exitReason === K.KVM_EXIT_HLT) break;
  }
  if (vcpu.kvmRun.exitReason !== K.KVM_EXIT_HLT) throw new Error(`guest did not reach HLT (exit reasons ${exits})`);
  for (let i = 0; i < pages; i++) if (proc.mm.readU8(hva + i * 4096) !== 1) throw new Error(`page ${i} not written`);
} else {
  for (let i = 0; i < pages; i++) {
    const pfn = kvm.gfnToPfn(i, true);
    if (pfn < 0) throw new Error(`gfn ${i}: KVM_PFN error ${pfn}`);
    host.physmem.write8(pfn * 4096, 1); // the guest's store
  }
}

const rss2 = process.memoryUsage().rss;
const mib = (b: number): string => `${(b / (1 << 20)).toFixed(1)} MiB`;
console.log(`arch:                    ${how}`);
console.log(`guest RAM (memslot 0):   ${mib(GiB)} at hva 0x${hva.toString(16)}`);
console.log(`touched:                 ${mib(pages * 4096)} (${pages} pages) ${how.startsWith("x86") ? "by a real-mode guest" : "through gfnToPfn"}`);
console.log(`frames allocated:        ${host.pageAlloc.allocatedFrames - framesBefore} (guest pages + EPT tables + vCPU state; ${host.pageAlloc.allocatedFrames} in total)`);
console.log(`physmem chunk bytes:     ${mib(host.physmem.populatedBytes - chunkBefore)} for the touch, ${mib(host.physmem.populatedBytes)} in total`);
console.log(`process RSS delta:       ${mib(rss2 - rss1)} for the touch, ${mib(rss2 - rss0)} since start`);
