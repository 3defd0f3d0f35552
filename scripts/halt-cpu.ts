// Host CPU cost of an idle guest: a real-mode guest programs the PIC and the PIT for a 100 Hz
// tick (10 ms), then sleeps in HLT; its IRQ0 handler counts ticks and after 200 of them (2 s)
// the guest exits with an OUT. The vCPU halts in the kernel (in-kernel irqchip), so the host
// thread sleeps between ticks. Prints the host CPU time used (process.cpuUsage) as a fraction
// of one core over the wall time, and the halt / halt-polling statistics.
//
//   npx tsx scripts/halt-cpu.ts [--ticks N] [--halt-poll-ns NS]
//
// --halt-poll-ns sets the kvm module parameter halt_poll_ns (default 200000): polling spins on
// the host clock until a timer inside the window falls due, so a larger window costs more CPU
// when the guest's halts are short enough to be caught.
import { createHost } from "../src/host/process.js";
import { MonotonicClock } from "../src/host/clock.js";
import { openKvm } from "../src/kvm.js";
import * as K from "../src/uapi/kvm.js";
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from "../src/uapi/mman.js";
import { KvmError } from "../src/virt/kvm/kvm_error.js";
import { haltPollParams } from "../src/virt/kvm/kvm_vcpu_halt.js";

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}
const ticks = arg("--ticks", 200);
haltPollParams.haltPollNs = arg("--halt-poll-ns", haltPollParams.haltPollNs);

const PIT_HZ = 1193182;
const count = Math.round(PIT_HZ / 100);
const out = (port: number, v: number): number[] => [0xb0, v, 0xe6, port];
const code = Uint8Array.from([
  ...out(0x20, 0x11), ...out(0x21, 0x08), ...out(0x21, 0x04), ...out(0x21, 0x01), ...out(0x21, 0xfe), // PIC: vector 8, only IRQ0
  ...out(0x43, 0x34), ...out(0x40, count & 0xff), ...out(0x40, count >> 8), // PIT channel 0, rate generator, 10 ms
  0xfb, //                                   sti
  0xf4, //                                   l: hlt
  0x81, 0x3e, 0x00, 0x05, ticks & 0xff, ticks >> 8, // cmp word [0x500], ticks
  0x72, 0xf7, //                             jb l
  0xe6, 0x10, //                             out 0x10, al
  0xeb, 0xfe, //                             jmp $
]);
// IRQ0: inc word [0x500]; EOI; iret
const handler = Uint8Array.from([0xff, 0x06, 0x00, 0x05, 0x50, 0xb0, 0x20, 0xe6, 0x20, 0x58, 0xcf]);

const proc = createHost({ memBytes: 256 << 20, clock: new MonotonicClock() }).createProcess("halt-cpu");
const kvm = openKvm(proc);
const vm = kvm.createVm(0);
vm.archIoctl(K.KVM_CREATE_IRQCHIP, 0);
vm.archIoctl(K.KVM_CREATE_PIT2, { flags: 0, pad: new Array(15).fill(0) });
const mem = proc.mm.mmap(0, 0x10000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
proc.mm.copyToUser(mem + 0x1000, code);
proc.mm.copyToUser(mem + 0x1100, handler);
proc.mm.copyToUser(mem + 8 * 4, Uint8Array.of(0x00, 0x11, 0x00, 0x00));
vm.setUserMemoryRegion({ slot: 0, flags: 0, guest_phys_addr: 0n, memory_size: 0x10000n, userspace_addr: BigInt(mem) });
const vcpu = vm.createVcpu(0);
const s = vcpu.getSregs();
s.cs.base = 0n;
s.cs.selector = 0;
vcpu.setSregs(s);
vcpu.setRegs({ ...vcpu.getRegs(), rip: 0x1000n, rflags: 2n });

const cpu0 = process.cpuUsage();
const t0 = performance.now();
let intr = 0;
for (;;) {
  try {
    vcpu.run();
  } catch (e) {
    // KVM_EXIT_INTR: the halt handed control back; run again.
    if (e instanceof KvmError && e.code === "EINTR") {
      intr++;
      continue;
    }
    throw e;
  }
  if (vcpu.kvmRun.exitReason === K.KVM_EXIT_IO && vcpu.kvmRun.ioPort === 0x10) break;
  throw new Error(`unexpected exit ${vcpu.kvmRun.exitReason}`);
}
const wallMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const cpuMs = (cpu.user + cpu.system) / 1000;
const st = vcpu.stat;
const ms = (ns: number): string => (ns / 1e6).toFixed(1);
console.log(`${ticks} ticks of 10 ms in ${wallMs.toFixed(0)} ms wall; host CPU ${cpuMs.toFixed(0)} ms = ${(cpuMs / wallMs).toFixed(3)} of a core (user ${(cpu.user / 1000).toFixed(0)} ms, system ${(cpu.system / 1000).toFixed(0)} ms)`);
console.log(`halt_poll_ns (module) ${haltPollParams.haltPollNs}; vCPU window now ${vcpu.haltPollNs}`);
console.log(`halt_exits ${st.halt_exits}  halt_wakeup ${st.halt_wakeup}  halt_wait_ns ${ms(st.halt_wait_ns)} ms  KVM_EXIT_INTR ${intr}`);
console.log(`halt_attempted_poll ${st.halt_attempted_poll}  halt_successful_poll ${st.halt_successful_poll}  halt_poll_invalid ${st.halt_poll_invalid}`);
console.log(`halt_poll_success_ns ${ms(st.halt_poll_success_ns)} ms  halt_poll_fail_ns ${ms(st.halt_poll_fail_ns)} ms  irq_injections ${st.irq_injections}  exits ${st.exits}`);
const hist = (name: string): string => {
  const h = vcpu.stats.hist[name];
  const parts: string[] = [];
  h.forEach((n, i) => { if (n) parts.push(`<2^${i}ns:${n}`); });
  return parts.join(" ") || "-";
};
console.log(`halt_wait_hist ${hist("halt_wait_hist")}`);
console.log(`halt_poll_success_hist ${hist("halt_poll_success_hist")}  halt_poll_fail_hist ${hist("halt_poll_fail_hist")}`);
