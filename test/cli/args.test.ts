import { test } from "node:test";
import assert from "node:assert/strict";
import { CliError, parseDevice, parseNumber, parseRunArgs, parseSize } from "../../src/cli/args.js";

test("QEMU spellings: -m, -smp, -kernel, -initrd, -append, -device, -S, -monitor, ignored options", () => {
  const o = parseRunArgs([
    "-m", "512", "-smp", "cpus=2,sockets=1", "-kernel", "k.elf", "-initrd", "a.img,b.img", "-append", "console=ttyS0 quiet",
    "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-device", "pc-testdev", "-device", "pci-testdev",
    "-S", "-monitor", "stdio", "-display", "none", "-nodefaults", "-no-reboot", "-machine", "accel=kvm", "-cpu", "host",
    "-global", "foo.bar=1", "--serial=none", "--trace=kvm_exit,kvm_pio", "--trace-file", "out.trace",
  ]);
  assert.equal(o.ramBytes, 512 * 1024 * 1024);
  assert.equal(o.smp, 2);
  assert.equal(o.kernel, "k.elf");
  assert.deepEqual(o.initrd, ["a.img", "b.img"]);
  assert.equal(o.append, "console=ttyS0 quiet");
  assert.deepEqual(o.isaDebugExit, { iobase: 0xf4, iosize: 4 });
  assert.ok(o.pcTestdev && o.pciTestdev && o.startPaused && o.noReboot);
  assert.equal(o.monitor, "stdio");
  assert.equal(o.serial, "none");
  assert.deepEqual(o.trace, { events: ["kvm_exit", "kvm_pio"], file: "out.trace" });
  assert.deepEqual(o.ignored, ["-display none", "-nodefaults", "-machine accel=kvm", "-cpu host", "-global foo.bar=1"]);
});

test("sizes and numbers", () => {
  assert.equal(parseSize("1G", "-m"), 1 << 30);
  assert.equal(parseSize("64", "-m"), 64 << 20);
  assert.equal(parseSize("2048k", "-m"), 2 << 20);
  assert.equal(parseNumber("0x1000", "x"), 0x1000);
  assert.equal(parseNumber("010", "x"), 8);
  assert.throws(() => parseSize("lots", "-m"), /invalid size 'lots'/);
  assert.throws(() => parseNumber("0xzz", "addr"), /not a number/);
  assert.deepEqual([...parseDevice("loader,file=x.bin,addr=0x1000").props], [["file", "x.bin"], ["addr", "0x1000"]]);
});

test("loader device and defaults", () => {
  const o = parseRunArgs(["-device", "loader,file=hello.bin,addr=0x1000,cpu-mode=real"]);
  assert.deepEqual(o.loaders, [{ file: "hello.bin", addr: 0x1000, mode: "real" }]);
  assert.equal(o.ramBytes, 128 << 20);
  assert.equal(o.serial, "stdio");
  const d = parseRunArgs(["-kernel", "k", "-device", "isa-debug-exit"]);
  assert.deepEqual(d.isaDebugExit, { iobase: 0x501, iosize: 2 }, "QEMU's defaults");
});

test("bad arguments give CliErrors with clear messages", () => {
  const bad: [string[], RegExp][] = [
    [["-kernel", "k", "-frobnicate"], /unknown option '-frobnicate'/],
    [["-kernel"], /needs an argument/],
    [["-kernel", "k", "-device", "virtio-net"], /unknown device 'virtio-net'/],
    [["-kernel", "k", "-device", "isa-debug-exit,port=1"], /unknown property 'port'/],
    [["-kernel", "k", "-device", "pc-testdev,x"], /expected key=value/],
    [["-kernel", "k", "-m", "1"], /at least 2 MiB/],
    [["-kernel", "k", "-smp", "0"], /between 1 and 255/],
    [["-kernel", "k", "-serial", "tcp:1234"], /unsupported backend/],
    [["-device", "loader,file=x"], /addr/],
    [["-device", "loader,file=x,addr=0,cpu-mode=vm86"], /cpu-mode must be/],
    [[], /nothing to run/],
    [["-initrd", "x", "-device", "loader,file=x,addr=0"], /-initrd needs -kernel/],
    [["k.elf"], /unexpected argument 'k.elf'/],
    [["-kernel", "k", "--interval", "1"], /only for 'tskvm stat'/],
  ];
  for (const [argv, re] of bad) assert.throws(() => parseRunArgs(argv), (e: unknown) => e instanceof CliError && re.test(e.message), argv.join(" "));
  assert.equal(parseRunArgs(["-kernel", "k", "--interval", "2"], true).statInterval, 2);
});
