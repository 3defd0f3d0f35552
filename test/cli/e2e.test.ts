// End-to-end: spawn the tskvm command. Guest-running cases need the KVM backend (src/kvm.ts,
// openKvm) and a CPU able to run them; until src/kvm.ts exists they are skipped with that reason.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEMO_MESSAGE } from "../../src/vmm/demo_guest.js";

const BIN = join(import.meta.dirname, "../../bin/tskvm.js");
const backend = existsSync(join(import.meta.dirname, "../../src/kvm.ts"));
const SKIP = backend ? false : "KVM backend src/kvm.ts (openKvm) not in the tree yet";

function tskvm(args: string[], input = "") {
  const r = spawnSync(process.execPath, [BIN, ...args], { input, encoding: "utf8", timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("help and user mistakes: clear one-line errors, exit 1, no stack traces", () => {
  const h = tskvm(["help"]);
  assert.equal(h.status, 0);
  assert.match(h.stdout, /usage: tskvm <command>/);
  for (const [args, re] of [
    [["run", "-kernel", "k", "-bogus"], /^tskvm: unknown option '-bogus'/],
    [["run", "-kernel", "/nonexistent/kernel"], /^tskvm: -kernel '\/nonexistent\/kernel': no such file/],
    [["frob"], /^tskvm: unknown command 'frob'/],
    [["report"], /^tskvm: usage: tskvm report/],
  ] as const) {
    const r = tskvm([...args]);
    assert.equal(r.status, 1, args.join(" "));
    assert.match(r.stderr, re);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
    assert.equal(r.stdout, "");
  }
});

test("report reads a trace file", () => {
  const dir = mkdtempSync(join(tmpdir(), "tskvm-"));
  const f = join(dir, "t.trace");
  writeFileSync(f, [
    "           tskvm-1000  [000] ....     0.000010: kvm_exit: vcpu 0 reason IO_INSTRUCTION rip 0x1000 info1 0x0000000003f80000 info2 0x0000000000000000 intr_info 0x00000000 error_code 0x00000000",
    "           tskvm-1000  [000] ....     0.000015: kvm_entry: vcpu 0, rip 0x1001",
  ].join("\n"));
  const r = tskvm(["report", f]);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /IO_INSTRUCTION\s+1\s+100\.00%\s+100\.00%\s+5\.00us/);
});

const hasToolchain = ["as", "ld"].every((t) => !spawnSync(t, ["--version"]).error);

test("demo: the guest's serial text is all that reaches stdout; ACPI poweroff exits 0", { skip: SKIP }, () => {
  const r = tskvm(["demo"]);
  assert.equal(r.stderr, "");
  assert.equal(r.status, 0);
  if (!hasToolchain) {
    assert.equal(r.stdout, DEMO_MESSAGE); // no toolchain to build guests/demo: the built-in demo
    return;
  }
  // guests/demo/demo.S: the climb to long mode, KVM's CPUID signature, PIT interrupts through the
  // in-kernel PIC while sleeping in HLT, power-off. The count is 25 or more: the PIT reinjects
  // ticks the host was too busy to deliver on time (KVM's reinject mode), one after each EOI,
  // so on a loaded machine several can land between the guest's check and its CLI.
  assert.match(r.stdout, /^tskvm demo: real mode[^\n]*\r\ntskvm demo: 32-bit protected mode[^\n]*\r\ntskvm demo: long mode[^\n]*\r\n/);
  assert.match(r.stdout, /hypervisor signature: KVMKVMKVM\r\n/);
  const ticks = /timer interrupts taken: (\d+)\r\ntskvm demo: powering off\r\n$/.exec(r.stdout);
  assert.ok(ticks, r.stdout);
  assert.ok(Number(ticks[1]) >= 25 && Number(ticks[1]) <= 60, `ticks: ${ticks[1]}`);
});

test("run -kernel with a plain ELF64: loaded by its program headers, entered in long mode", { skip: SKIP || (!hasToolchain && "no as/ld") }, () => {
  const dir = mkdtempSync(join(tmpdir(), "tskvm-"));
  const src = join(dir, "k.S");
  writeFileSync(src, [
    ".code64", ".globl _start", "_start:",
    "  mov $0x3f8, %dx", "  lea msg(%rip), %rsi",
    "1: lodsb", "  test %al, %al", "  jz 2f", "  out %al, (%dx)", "  jmp 1b",
    "2: mov %cr0, %rax", "  bt $31, %rax", "  setc %al", "  add $0x20, %al", // 0x21 with paging on
    "  mov $0xf4, %dx", "  out %al, (%dx)", "  hlt",
    "msg: .asciz \"plain ELF64 in long mode\\n\"", "",
  ].join("\n"));
  const obj = join(dir, "k.o");
  const elf = join(dir, "k.elf");
  assert.equal(spawnSync("as", ["--64", "-o", obj, src]).status, 0);
  assert.equal(spawnSync("ld", ["-m", "elf_x86_64", "-nostdlib", "-static", "-Ttext=0x200000", "-o", elf, obj]).status, 0);
  const r = tskvm(["run", "-kernel", elf, "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
  assert.equal(r.stdout, "plain ELF64 in long mode\n");
  assert.equal(r.status, (0x21 << 1) | 1);

  // The same file with its program-header table cut off is a corrupt image: one clear line, exit 1.
  const bad = join(dir, "bad.elf");
  writeFileSync(bad, readFileSync(elf).subarray(0, 80));
  const b = tskvm(["run", "-kernel", bad]);
  assert.equal(b.status, 1);
  assert.equal(b.stdout, "");
  assert.match(b.stderr, /^tskvm: .*bad\.elf/);
  assert.doesNotMatch(b.stderr, /\n\s+at /, "no stack trace");
});

test("run a flat real-mode image with isa-debug-exit: exit status (v << 1) | 1", { skip: SKIP }, () => {
  const dir = mkdtempSync(join(tmpdir(), "tskvm-"));
  const img = join(dir, "hello.bin");
  // mov $0x3f8,%dx; mov $'4',%al; out %al,(%dx); mov $'\n',%al; out %al,(%dx); mov $0xf4,%dx; mov $3,%al; out %al,(%dx); hlt
  writeFileSync(img, Uint8Array.from([0xba, 0xf8, 0x03, 0xb0, 0x34, 0xee, 0xb0, 0x0a, 0xee, 0xba, 0xf4, 0x00, 0xb0, 0x03, 0xee, 0xf4]));
  const r = tskvm(["run", "-device", `loader,file=${img},addr=0x1000,cpu-mode=real`, "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-display", "none"]);
  assert.equal(r.stdout, "4\n");
  assert.equal(r.status, 7);
});

test("run -kernel multiboot image in 32-bit protected mode, --trace writes ftrace text, report summarises it", { skip: SKIP }, () => {
  const dir = mkdtempSync(join(tmpdir(), "tskvm-"));
  const k = join(dir, "mb.bin");
  const load = 0x100000;
  const code = [
    0xba, 0xf8, 0x03, 0x00, 0x00, // mov $0x3f8,%edx
    0x3d, 0x02, 0xb0, 0xad, 0x2b, // cmp $0x2badb002,%eax
    0xb0, 0x4f, // mov $'O',%al
    0x74, 0x02, // je +2
    0xb0, 0x58, // mov $'X',%al
    0xee, // out %al,(%dx)
    0xb0, 0x0a, 0xee, // mov $'\n',%al; out
    0xba, 0xf4, 0x00, 0x00, 0x00, 0x31, 0xc0, 0xee, 0xf4, // mov $0xf4,%edx; xor %eax,%eax; out; hlt
  ];
  const hdr = new Uint8Array(32 + code.length);
  const dv = new DataView(hdr.buffer);
  const flags = 0x10002;
  dv.setUint32(0, 0x1badb002, true); dv.setUint32(4, flags, true); dv.setUint32(8, (-(0x1badb002 + flags)) >>> 0, true);
  dv.setUint32(12, load, true); dv.setUint32(16, load, true); dv.setUint32(20, 0, true); dv.setUint32(24, 0, true); dv.setUint32(28, load + 32, true);
  hdr.set(code, 32);
  writeFileSync(k, hdr);
  const trace = join(dir, "out.trace");
  const r = tskvm(["run", "-kernel", k, "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "--trace=kvm_exit,kvm_entry", "--trace-file", trace]);
  assert.equal(r.stdout, "O\n");
  assert.equal(r.status, 1);
  assert.match(readFileSync(trace, "utf8"), /kvm_exit: vcpu 0 reason IO_INSTRUCTION/);
  const rep = tskvm(["report", trace]);
  assert.equal(rep.status, 0);
  // The last IO exit (the isa-debug-exit write) ends the VM: no kvm_entry follows it.
  assert.match(rep.stdout, /IO_INSTRUCTION\s+2\s/);
});

test("stat prints per-VM and per-vCPU counters and exit reasons to stderr; an empty image is a user error", { skip: SKIP }, () => {
  const dir = mkdtempSync(join(tmpdir(), "tskvm-"));
  const img = join(dir, "hello.bin");
  writeFileSync(img, Uint8Array.from([0xba, 0xf8, 0x03, 0xb0, 0x34, 0xee, 0xb0, 0x0a, 0xee, 0xba, 0xf4, 0x00, 0xb0, 0x00, 0xee, 0xf4]));
  const r = tskvm(["stat", "-device", `loader,file=${img},addr=0x1000`, "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
  assert.equal(r.stdout, "4\n");
  assert.equal(r.status, 1);
  assert.match(r.stderr, /io_exits\s+3\s+3/);
  assert.match(r.stderr, /Exits to userspace[\s\S]*IO\s+3/);
  const e = tskvm(["stat", "-device", "loader,file=/dev/null,addr=0x1000"]);
  assert.equal(e.status, 1);
  assert.match(e.stderr, /empty image/);
});


test("-S with a unix-socket monitor: inspect the stopped guest, then cont", { skip: SKIP, timeout: 90_000 }, async () => {
  const { spawn } = await import("node:child_process");
  const { createConnection } = await import("node:net");
  const dir = mkdtempSync(join(tmpdir(), "tskvm-"));
  const img = join(dir, "hello.bin");
  writeFileSync(img, Uint8Array.from([0xba, 0xf8, 0x03, 0xb0, 0x34, 0xee, 0xb0, 0x0a, 0xee, 0xba, 0xf4, 0x00, 0xb0, 0x03, 0xee, 0xf4]));
  const sock = join(dir, "mon.sock");
  const vm = spawn(process.execPath, [BIN, "run", "-S", "-monitor", `unix:${sock},server,nowait`, "-device", `loader,file=${img},addr=0x1000`, "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"], { stdio: ["ignore", "pipe", "pipe"] });
  try {
    let stdout = "";
    vm.stdout.on("data", (d) => { stdout += d; });
    const exited = new Promise<number | null>((r) => vm.on("exit", (c) => r(c)));
    for (let i = 0; i < 600 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 100));
    const s = createConnection(sock);
    let got = "";
    s.on("data", (d) => { got += d; });
    const waitFor = async (re: RegExp) => { for (let i = 0; i < 600 && !re.test(got); i++) await new Promise((r) => setTimeout(r, 50)); };
    await waitFor(/\(qemu\) $/);
    s.write("info status\n");
    await waitFor(/VM status: paused\n\(qemu\) $/);
    s.write("x /2i $pc\n");
    await waitFor(/mov \$0x34,%al[^\n]*\n\(qemu\) $/);
    assert.equal(stdout, "", "nothing ran while stopped");
    s.write("cont\n");
    assert.equal(await exited, 7);
    s.destroy();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(stdout, "4\n");
    assert.match(got, /0x0000000000001000:  mov \$0x3F8,%dx/);
  } finally {
    vm.kill();
  }
});
