/**
 * The classic first KVM program (LWN "Using the KVM API"), written against tskvm's API line for
 * line as the C original is written against /dev/kvm: a real-mode guest at 0x1000 adds 2 + 2,
 * writes the digit and a newline to port 0x3f8 and halts.
 *
 *   npx tsx examples/hello.ts            prints "4"
 *   npx tsx examples/hello.ts --trace    also prints the kvm tracepoints (ftrace format) to stderr
 *   npx tsx examples/hello.ts --stats    also prints the vCPU statistics to stderr
 */

import { createHost } from "../src/host/process.js";
import { openKvm } from "../src/kvm.js";
import { ftraceSubscriber } from "../src/virt/kvm/trace.js";
import { MAP_ANONYMOUS, MAP_SHARED, PROT_READ, PROT_WRITE } from "../src/uapi/mman.js";
import { KvmRun } from "../src/uapi/kvm_run.js";
import {
  KVM_API_VERSION, KVM_EXIT_FAIL_ENTRY, KVM_EXIT_HLT, KVM_EXIT_INTERNAL_ERROR, KVM_EXIT_IO, KVM_EXIT_IO_OUT,
} from "../src/uapi/kvm.js";

export interface HelloOptions {
  trace?: boolean;
  stats?: boolean;
  /** Where the guest's output and the diagnostics go (default: the process's stdout / stderr). */
  out?: (s: string) => void;
  err?: (s: string) => void;
}

/** Run the guest; resolves to the process exit status. */
export function hello(opts: HelloOptions = {}): number {
  const out = opts.out ?? ((s: string) => process.stdout.write(s));
  const err = opts.err ?? ((s: string) => process.stderr.write(s));
  const code = Uint8Array.of(
    0xba, 0xf8, 0x03, // mov $0x3f8, %dx
    0x00, 0xd8, //       add %bl, %al
    0x04, 0x30, //       add $'0', %al
    0xee, //             out %al, (%dx)
    0xb0, 0x0a, //       mov $'\n', %al
    0xee, //             out %al, (%dx)
    0xf4, //             hlt
  );

  const proc = createHost().createProcess("hello");
  const kvm = openKvm(proc); // open("/dev/kvm", O_RDWR | O_CLOEXEC)
  if (opts.trace) kvm.subscribeTrace(null, ftraceSubscriber((line) => err(line + "\n")));

  const ret = kvm.getApiVersion(); // ioctl(kvm, KVM_GET_API_VERSION, NULL)
  if (ret !== KVM_API_VERSION) {
    err(`KVM_GET_API_VERSION ${ret}, expected 12\n`);
    return 1;
  }
  const vm = kvm.createVm(0); // ioctl(kvm, KVM_CREATE_VM, 0)

  // Allocate one aligned page of guest memory to hold the code.
  const mem = proc.mm.mmap(0, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  proc.mm.copyToUser(mem, code); // memcpy(mem, code, sizeof(code))

  // Map it to the second page frame (to avoid the real-mode IDT at 0).
  vm.setUserMemoryRegion({ slot: 0, flags: 0, guest_phys_addr: 0x1000n, memory_size: 0x1000n, userspace_addr: BigInt(mem) });

  const vcpu = vm.createVcpu(0); // ioctl(vmfd, KVM_CREATE_VCPU, 0)

  // Map the shared kvm_run structure and following data.
  const mmapSize = kvm.getVcpuMmapSize(); // ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, NULL)
  if (mmapSize < 2352) {
    err(`KVM_GET_VCPU_MMAP_SIZE unexpectedly small\n`);
    return 1;
  }
  const runBytes = vcpu.mmap(0, mmapSize);
  const run = new KvmRun(runBytes);

  // Initialize CS to point at 0, via a read-modify-write of sregs.
  const sregs = vcpu.getSregs();
  sregs.cs.base = 0n;
  sregs.cs.selector = 0;
  vcpu.setSregs(sregs);

  // Initialize registers: instruction pointer for our code, addends, and initial flags required by x86 architecture.
  vcpu.setRegs({
    rip: 0x1000n, rax: 2n, rbx: 2n, rflags: 0x2n,
    rcx: 0n, rdx: 0n, rsi: 0n, rdi: 0n, rsp: 0n, rbp: 0n,
    r8: 0n, r9: 0n, r10: 0n, r11: 0n, r12: 0n, r13: 0n, r14: 0n, r15: 0n,
  });

  // Repeatedly run code and handle VM exits.
  for (;;) {
    vcpu.run(); // ioctl(vcpufd, KVM_RUN, NULL)
    switch (run.exitReason) {
      case KVM_EXIT_HLT:
        if (opts.stats) {
          for (const [name, value] of Object.entries(vcpu.stat)) if (value !== 0) err(`${name}=${value}\n`);
        }
        return 0;
      case KVM_EXIT_IO:
        if (run.ioDirection === KVM_EXIT_IO_OUT && run.ioSize === 1 && run.ioPort === 0x3f8 && run.ioCount === 1) {
          out(String.fromCharCode(runBytes[run.ioDataOffset]));
        } else {
          err("unhandled KVM_EXIT_IO\n");
          return 1;
        }
        break;
      case KVM_EXIT_FAIL_ENTRY:
        err(`KVM_EXIT_FAIL_ENTRY: hardware_entry_failure_reason = 0x${run.failEntryHardwareEntryFailureReason.toString(16)}\n`);
        return 1;
      case KVM_EXIT_INTERNAL_ERROR:
        err(`KVM_EXIT_INTERNAL_ERROR: suberror = 0x${run.internalSuberror.toString(16)}\n`);
        return 1;
      default:
        err(`exit_reason = 0x${run.exitReason.toString(16)}\n`);
        return 1;
    }
  }
}

const isMain = import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith("examples/hello.ts");
if (isMain) {
  const args = process.argv.slice(2);
  process.exitCode = hello({ trace: args.includes("--trace"), stats: args.includes("--stats") });
}
