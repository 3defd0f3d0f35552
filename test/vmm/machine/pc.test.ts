import { test } from "node:test";
import assert from "node:assert/strict";
import { createHost } from "../../../src/host/process.js";
import { PcMachine, type PcConfig } from "../../../src/vmm/machine/pc.js";
import { VmRunner } from "../../../src/vmm/vm_runner.js";
import { Monitor } from "../../../src/vmm/monitor.js";
import { demoGuestImage, DEMO_LOAD_ADDR, DEMO_MESSAGE } from "../../../src/vmm/demo_guest.js";
import { FakeKvm, hlt, intr, outb, outw, exitReason, withIrqchip, type Step } from "../fake_kvm.js";
import * as K from "../../../src/uapi/kvm.js";
import { decodeIrqRouting } from "../../../src/uapi/irqchip.js";

const MB = 1 << 20;

function setup(scripts: Step[][][], opts: Partial<PcConfig> = {}, caps = new Set<number>(), noReboot = true) {
  const proc = createHost({ memBytes: 64 * MB }).createProcess("tskvm-test");
  const kvm = new FakeKvm(scripts, caps);
  const out: number[] = [];
  const warnings: string[] = [];
  const cfg: PcConfig = {
    ramBytes: 32 * MB, nrCpus: 1, kernel: null, initrds: [], cmdline: "", isaDebugExit: { iobase: 0xf4, iosize: 4 },
    pcTestdev: true, pciTestdev: true,
    flat: [{ file: { name: "demo", data: demoGuestImage() }, addr: DEMO_LOAD_ADDR, mode: "real" }], ...opts,
  };
  const host = { serialOut: (b: number) => out.push(b), nowMs: () => 0, warn: (m: string) => warnings.push(m) };
  const runner = new VmRunner(() => new PcMachine(kvm, proc, cfg, host), { noReboot, startPaused: false, yieldToHost: async () => {} });
  return { kvm, runner, out, warnings, text: () => String.fromCharCode(...out) };
}

test("machine layout: RAM memslot, images in guest memory, boot registers, tables", () => {
  const { kvm, runner } = setup([[[hlt]]]);
  const vm = kvm.vms[0]!;
  assert.deepEqual(vm.regions.map((r) => [r.slot, r.guest_phys_addr, r.memory_size]), [[0, 0n, BigInt(32 * MB)]]);
  const m = runner.machine;
  assert.deepEqual([...m.ram.read(DEMO_LOAD_ADDR, 4)], [...demoGuestImage().subarray(0, 4)]);
  assert.equal(vm.vcpus[0]!.regs.rip, BigInt(DEMO_LOAD_ADDR));
  assert.equal(vm.vcpus[0]!.sregs.cs.selector, 0);
  assert.equal(new TextDecoder().decode(m.ram.read(0xe0000, 8)), "RSD PTR ");
  assert.equal(new TextDecoder().decode(m.ram.read(0xf0000, 4)), "_MP_");
  assert.equal(m.irqchip, false);
  assert.equal(vm.vcpus[0]!.cpuid?.entries[1]!.ebx, 0x00010800, "supported CPUID set, APIC ID 0");
});

test("each vCPU gets the supported CPUID with its own APIC ID", () => {
  const { kvm } = setup([[[hlt]], []], { nrCpus: 3 }, withIrqchip);
  assert.deepEqual(kvm.vms[0]!.vcpus.map((v) => v.cpuid!.entries[1]!.ebx >>> 24), [0, 1, 2]);
});

test("run loop: serial output, ACPI poweroff ends with status 0", async () => {
  const steps: Step[] = [...DEMO_MESSAGE].map((c) => outb(0x3f8, c.charCodeAt(0)));
  steps.splice(5, 0, intr);
  steps.push(outw(0x604, 0x2000));
  const { runner, text } = setup([[steps]]);
  const end = await runner.run();
  assert.equal(text(), DEMO_MESSAGE);
  assert.deepEqual([end.kind, end.status], ["poweroff", 0]);
  assert.equal(runner.state, "finished");
});

test("isa-debug-exit status, HLT without irqchip ends 'halted', internal error is status 1", async () => {
  let r = setup([[[outb(0x3f8, 0x41), outb(0xf4, 0x10)]]]);
  let end = await r.runner.run();
  assert.deepEqual([end.kind, end.status], ["exit", 0x21]);
  r = setup([[[hlt]]]);
  end = await r.runner.run();
  assert.deepEqual([end.kind, end.status], ["halted", 0]);
  r = setup([[[exitReason(K.KVM_EXIT_INTERNAL_ERROR)]]]);
  end = await r.runner.run();
  assert.equal(end.kind, "error");
  assert.equal(end.status, 1);
});

test("reset: triple fault reboots into a fresh VM unless -no-reboot", async () => {
  const r = setup([[[exitReason(K.KVM_EXIT_SHUTDOWN)]], [[outb(0xcf9, 0x06)]], [[outb(0xf4, 0)]]], {}, new Set(), false);
  const end = await r.runner.run();
  assert.equal(r.runner.resets, 2);
  assert.equal(r.kvm.vms.length, 3);
  assert.deepEqual(r.kvm.vms.map((v) => v.destroyed), [true, true, false], "a reset closes the old VM");
  assert.deepEqual([end.kind, end.status], ["exit", 1]);
  const n = setup([[[exitReason(K.KVM_EXIT_SHUTDOWN)]]]);
  assert.equal((await n.runner.run()).kind, "shutdown");
});

test("irqchip: created with the PIT, device interrupts go out as KVM_IRQ_LINE; -smp > 1 without it is refused", () => {
  const { kvm, runner } = setup([[[hlt]]], { pcTestdev: true }, withIrqchip);
  const vm = kvm.vms[0]!;
  assert.ok(vm.ioctls.some((c) => c.request === K.KVM_CREATE_IRQCHIP));
  assert.ok(vm.ioctls.some((c) => c.request === K.KVM_CREATE_PIT2));
  runner.machine.setIrq(4, true);
  const line = vm.ioctls.at(-1)!;
  assert.equal(line.request, K.KVM_IRQ_LINE);
  assert.deepEqual([...runner.machine.proc.mm.copyFromUser(line.arg, 8)], [4, 0, 0, 0, 1, 0, 0, 0]);
  assert.throws(() => setup([[[hlt]]], { nrCpus: 2 }), /-smp 2 needs an in-kernel irqchip/);
});

test("irqchip: GSI routing as QEMU's pc sets it, matching the MADT's ISA IRQ 0 -> GSI 2 override", () => {
  const proc = createHost({ memBytes: 64 * MB }).createProcess("tskvm-test");
  let routing: ReturnType<typeof decodeIrqRouting> | null = null;
  const kvm = new FakeKvm([[[hlt]]], withIrqchip, (request, arg) => {
    if (request === K.KVM_SET_GSI_ROUTING) routing = decodeIrqRouting(proc.mm.copyFromUser(arg, 8 + 48 * 64));
    return 0;
  });
  const cfg: PcConfig = {
    ramBytes: 32 * MB, nrCpus: 1, kernel: null, initrds: [], cmdline: "", isaDebugExit: null, pcTestdev: false, pciTestdev: false,
    flat: [{ file: { name: "demo", data: demoGuestImage() }, addr: DEMO_LOAD_ADDR, mode: "real" }],
  };
  new PcMachine(kvm, proc, cfg, { serialOut: () => {}, nowMs: () => 0, warn: () => {} });
  assert.ok(routing, "KVM_SET_GSI_ROUTING issued after KVM_CREATE_IRQCHIP");
  const r = routing as ReturnType<typeof decodeIrqRouting>;
  const to = (gsi: number) => r.entries.filter((e) => e.gsi === gsi).map((e) => `${e.irqchip!.irqchip}:${e.irqchip!.pin}`).sort();
  assert.deepEqual(to(0), ["0:0", "2:2"], "the PIT: PIC IRQ 0 and I/O APIC pin 2");
  assert.deepEqual(to(2), [], "GSI 2 (the cascade) has no route");
  assert.deepEqual(to(4), ["0:4", "2:4"]);
  assert.deepEqual(to(9), ["1:1", "2:9"]);
  assert.deepEqual(to(23), ["2:23"]);
  assert.ok(r.entries.every((e) => e.type === K.KVM_IRQ_ROUTING_IRQCHIP));
});

test("monitor: info mtree/pci/kvm, xp dumps, stop/cont, bad commands", async () => {
  const { runner } = setup([[[intr, outb(0xf4, 0)]]]);
  const mon = new Monitor(runner, null);
  const mtree = mon.execute("info mtree");
  assert.match(mtree, /0000000000000000-0000000001ffffff \(prio 0, ram\): slot 0/);
  assert.match(mtree, /00000000ff000000-00000000ff00ffff \(prio 1, i\/o\): pc-testdev-iomem/);
  assert.match(mtree, /03f8-03ff \(prio 0, i\/o\): serial0/);
  assert.match(mon.execute("info pci"), /8086:1237[\s\S]*1b36:0005[\s\S]*BAR0: 32 bit memory at 0xfe000000 \[size 0x1000\]/);
  assert.match(mon.execute("xp /4bx 0x1000"), /^0000000000001000: 0xbe 0x18 0x10 0xba$/);
  assert.match(mon.execute("xp /2c 0x1018"), /'H' 'e'/);
  assert.match(mon.execute("xp /1g 0xe0000"), /0x2052545020445352/);
  assert.match(mon.execute("info kvm"), /irqchip: none\nboot: flat/);
  assert.match(mon.execute("frob"), /unknown command: 'frob'/);
  assert.match(mon.execute("xp /4x 0x7fffffff0"), /^Error: .*outside guest RAM/);
  assert.match(mon.execute("x /2i 0x1000"), /Error: no disassembler/);
  mon.execute("stop");
  assert.equal(runner.state, "paused");
  const done = runner.run();
  mon.execute("cont");
  const end = await done;
  assert.equal(end.kind, "exit");
});

test("monitor x /Ni through a disassembler, $pc, info registers", async () => {
  const { icedDisassembler } = await import("../../../src/cli/disasm.js");
  const { runner } = setup([[[hlt]]]);
  const mon = new Monitor(runner, icedDisassembler);
  // The scripted vCPU has no KVM_TRANSLATE: use xp-style physical decode through x with identity translation.
  runner.machine.translate = (_i: number, gva: number) => gva;
  const out = mon.execute("x /3i $pc");
  assert.match(out, /^0x0000000000001000:  mov \$0x1018,%si\s+# be 18 10\n0x0000000000001003:  mov \$0x3F8,%dx\s+# ba f8 03\n0x0000000000001006:  mov \(%si\),%al\s+# 8a 04$/);
  const regs = mon.execute("info registers");
  assert.match(regs, /RIP=0000000000001000 RFL=00000002/);
  assert.match(regs, /CS =0000 0000000000000000 0000ffff type=11/);
  assert.match(mon.execute("x /1x $bogus"), /unknown register/);
});
