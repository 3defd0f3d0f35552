// Memory cost of guest RAM: create a VM with a 1 GiB memslot backed by mmap(), let the "guest"
// touch 1 MiB of it through gfn -> pfn resolution (what the MMU does on an EPT violation), and
// print the frames allocated, the physical-memory chunk bytes and the process RSS delta.
//
//   npx tsx scripts/mem-usage.ts [touchBytes]
//
// When the x86 integration (src/kvm.ts openKvm) is present it is used for the VM; otherwise a
// core-only arch (no CPU) stands in, since only the memory path is measured.
import { createHost, type HostProcess } from "../src/host/process.js";
import { MAP_ANONYMOUS, MAP_NORESERVE, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../src/uapi/mman.js";
import { ENOTTY } from "../src/uapi/errno.js";
import { KvmError } from "../src/virt/kvm/kvm_error.js";
import type { KvmArch } from "../src/virt/kvm/kvm_host.js";
import { kvmInit, type KvmDev } from "../src/virt/kvm/kvm_main.js";

const GiB = 1 << 30;
const touch = Number(process.argv[2] ?? 1 << 20);

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

const pages = Math.ceil(touch / 4096);
for (let i = 0; i < pages; i++) {
  const pfn = kvm.gfnToPfn(i, true);
  if (pfn < 0) throw new Error(`gfn ${i}: KVM_PFN error ${pfn}`);
  host.physmem.write8(pfn * 4096, i & 0xff); // the guest's store
}

const rss2 = process.memoryUsage().rss;
const mib = (b: number): string => `${(b / (1 << 20)).toFixed(1)} MiB`;
console.log(`arch:                    ${how}`);
console.log(`guest RAM (memslot 0):   ${mib(GiB)} at hva 0x${hva.toString(16)}`);
console.log(`touched:                 ${mib(pages * 4096)} (${pages} pages)`);
console.log(`frames allocated:        ${host.pageAlloc.allocatedFrames - framesBefore} (${host.pageAlloc.allocatedFrames} in total incl. VM setup)`);
console.log(`physmem chunk bytes:     ${mib(host.physmem.populatedBytes - chunkBefore)} for the touch, ${mib(host.physmem.populatedBytes)} in total`);
console.log(`process RSS delta:       ${mib(rss2 - rss1)} for the touch, ${mib(rss2 - rss0)} since start`);
