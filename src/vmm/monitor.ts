/**
 * An HMP-like monitor (QEMU's human monitor; docs "QEMU Monitor"): text commands in, text out.
 *   info kvm | registers | cpus | mtree | irq | pci      x /Nfmt addr (virtual)   xp /Nfmt addr (physical)
 *   stop | cont | system_reset | quit | help
 * Formats: x (hex words), b/h/w/g sizes, i (instructions through the Disassembler handed in).
 * It reaches the guest only through the machine (KVM_GET_REGS/SREGS, KVM_TRANSLATE, guest RAM).
 */
import { KVM_EXIT_NAMES } from "../uapi/kvm.js";
import { VmmError } from "./error.js";
import type { KvmRegs, KvmSegment } from "../uapi/kvm_structs.js";
import type { VmRunner } from "./vm_runner.js";

export interface Disassembler {
  /** Decode up to `count` instructions from `bytes` at `ip` in `bitness`-bit mode: one text line each. */
  disassemble(bytes: Uint8Array, ip: number, bitness: 16 | 32 | 64, count: number): { length: number; text: string }[];
}

const HELP = `info kvm|registers|cpus|mtree|irq|pci -- show machine state
x /Nfmt addr    -- guest-virtual memory dump (fmt: x d u c i; size b h w g)
xp /Nfmt addr   -- guest-physical memory dump
stop | cont     -- pause / resume the vCPUs
system_reset    -- reset the machine
quit | q        -- end tskvm
help            -- this text`;

export class Monitor {
  /** The vCPU `x`, `info registers` and `x/i` act on (QEMU's "current CPU"). */
  cpu = 0;

  constructor(
    private readonly runner: VmRunner,
    private readonly disasm: Disassembler | null,
  ) {}

  /** Run one command line; returns its output (no trailing newline). Errors become text. */
  execute(line: string): string {
    const t = line.trim();
    if (!t) return "";
    try {
      return this.dispatch(t);
    } catch (e) {
      if (e instanceof VmmError || e instanceof RangeError) return `Error: ${e.message}`;
      if (e instanceof Error && e.name === "KvmError") return `Error: ${e.message}`;
      throw e;
    }
  }

  private dispatch(t: string): string {
    const m = /^(\S+)\s*(.*)$/.exec(t)!;
    const cmd = m[1]!, rest = m[2]!;
    if (cmd.startsWith("x/") || cmd.startsWith("xp/")) return this.memDump(cmd.startsWith("xp") ? "xp" : "x", cmd.slice(cmd.indexOf("/")) + " " + rest);
    switch (cmd) {
      case "help": case "?": return HELP;
      case "info": return this.info(rest.trim());
      case "x": case "xp": return this.memDump(cmd, rest);
      case "stop": this.runner.pause(); return "";
      case "cont": case "c": this.runner.resume(); return "";
      case "system_reset": this.runner.systemReset(); return "";
      case "quit": case "q": this.runner.quit("quit from the monitor"); return "";
      case "cpu": {
        const n = Number(rest);
        if (!Number.isInteger(n) || n < 0 || n >= this.runner.machine.vcpus.length) throw new VmmError(`invalid CPU index '${rest}'`);
        this.cpu = n;
        return "";
      }
      default: throw new VmmError(`unknown command: '${cmd}' (try 'help')`);
    }
  }

  private info(what: string): string {
    const m = this.runner.machine;
    switch (what) {
      case "kvm": return `kvm support: enabled\nstate: ${this.runner.state}\nirqchip: ${m.irqchip ? "in-kernel" : "none"}\nboot: ${m.bootFormat}\nresets: ${this.runner.resets}`;
      case "status": return `VM status: ${this.runner.state}`;
      case "cpus":
        return m.vcpus.map((v, i) => {
          const r = v.getRegs();
          return `${i === this.cpu ? "*" : " "} CPU #${i}: pc=0x${hex(r.rip, 16)}${this.runner.halted[i] ? " (halted)" : ""} thread_id=${m.proc.pid} last_exit=${KVM_EXIT_NAMES[v.kvmRun.exitReason] ?? v.kvmRun.exitReason}`;
        }).join("\n");
      case "registers": return this.registers();
      case "mtree": return this.mtree();
      case "irq": {
        const rows = [...m.irqCounts.entries()].sort((a, b) => a[0] - b[0]).map(([l, n]) => `${String(l).padStart(3)}: ${n}`);
        return `IRQ line changes raised by devices (${m.irqchip ? "routed via KVM_IRQ_LINE" : "no irqchip"}):\n${rows.join("\n") || "  none"}`;
      }
      case "pci":
        return m.pci.devices().map(({ slot, dev }) => {
          const bars = dev.bars.map((b, i) => (b ? `  BAR${i}: ${b.io ? "I/O" : "32 bit memory"} at 0x${(b.mapped ?? 0).toString(16)} [size 0x${b.size.toString(16)}]${b.mapped === null ? " (unmapped)" : ""}` : null)).filter(Boolean);
          const c = dev.config;
          return [`  Bus  0, device ${String(slot).padStart(3)}, function 0:`, `    ${dev.name}: PCI device ${hex4(c[0]! | (c[1]! << 8))}:${hex4(c[2]! | (c[3]! << 8))}`, ...bars.map((b) => "  " + b)].join("\n");
        }).join("\n");
      default: throw new VmmError(`info: unknown item '${what}' (kvm, status, cpus, registers, mtree, irq, pci)`);
    }
  }

  private registers(): string {
    const v = this.runner.machine.vcpus[this.cpu]!;
    const r = v.getRegs();
    const s = v.getSregs();
    const g = (n: keyof KvmRegs) => `${n.toUpperCase().padEnd(3)}=${hex(r[n], 16)}`;
    const seg = (n: string, x: KvmSegment) => `${n.padEnd(3)}=${hex4(x.selector)} ${hex(x.base, 16)} ${hex(BigInt(x.limit), 8)} type=${x.type} dpl=${x.dpl} db=${x.db} l=${x.l} g=${x.g} p=${x.present}`;
    return [
      `CPU #${this.cpu}`,
      `${g("rax")} ${g("rbx")} ${g("rcx")} ${g("rdx")}`,
      `${g("rsi")} ${g("rdi")} ${g("rbp")} ${g("rsp")}`,
      `R8 =${hex(r.r8, 16)} R9 =${hex(r.r9, 16)} R10=${hex(r.r10, 16)} R11=${hex(r.r11, 16)}`,
      `R12=${hex(r.r12, 16)} R13=${hex(r.r13, 16)} R14=${hex(r.r14, 16)} R15=${hex(r.r15, 16)}`,
      `RIP=${hex(r.rip, 16)} RFL=${hex(r.rflags, 8)}`,
      seg("ES", s.es), seg("CS", s.cs), seg("SS", s.ss), seg("DS", s.ds), seg("FS", s.fs), seg("GS", s.gs),
      seg("LDT", s.ldt), seg("TR", s.tr),
      `GDT=     ${hex(s.gdt.base, 16)} ${hex(BigInt(s.gdt.limit), 8)}`,
      `IDT=     ${hex(s.idt.base, 16)} ${hex(BigInt(s.idt.limit), 8)}`,
      `CR0=${hex(s.cr0, 8)} CR2=${hex(s.cr2, 16)} CR3=${hex(s.cr3, 16)} CR4=${hex(s.cr4, 8)}`,
      `EFER=${hex(s.efer, 16)} APIC_BASE=${hex(s.apic_base, 16)}`,
    ].join("\n");
  }

  private mtree(): string {
    const m = this.runner.machine;
    const lines = ["address-space: memory"];
    for (const s of m.ram.slots) lines.push(`  ${hex(BigInt(s.gpa), 16)}-${hex(BigInt(s.gpa + s.size - 1), 16)} (prio 0, ram): slot ${s.slot} hva 0x${s.hva.toString(16)}`);
    for (const r of m.mmio.list()) lines.push(`  ${hex(BigInt(r.base), 16)}-${hex(BigInt(r.base + r.len - 1), 16)} (prio 1, i/o): ${r.dev.name}`);
    lines.push("address-space: I/O");
    for (const r of m.pio.list()) lines.push(`  ${hex(BigInt(r.base), 4)}-${hex(BigInt(r.base + r.len - 1), 4)} (prio 0, i/o): ${r.dev.name}`);
    return lines.join("\n");
  }

  /** x / xp: "/Nfmt addr" with QEMU's defaults (1 word, hex). */
  private memDump(cmd: "x" | "xp", args: string): string {
    const mm = /^\s*\/(\d*)([a-z]*)\s+(\S+)$/.exec(args.trim()) ?? /^()()(\S+)$/.exec(args.trim());
    if (!mm) throw new VmmError(`${cmd}: usage: ${cmd} /Nfmt addr`);
    const count = mm[1] ? Number(mm[1]) : 1;
    const fmtLetters = mm[2]!;
    const addr = this.parseAddr(mm[3]!);
    let fmt = "x", size = 4;
    for (const ch of fmtLetters) {
      if (ch === "b") size = 1; else if (ch === "h") size = 2; else if (ch === "w") size = 4; else if (ch === "g") size = 8;
      else if ("xduci".includes(ch)) fmt = ch;
      else throw new VmmError(`${cmd}: invalid format '${ch}'`);
    }
    if (fmt === "c") size = 1; // characters are bytes, as in QEMU's memory_dump
    if (count < 1 || count > 4096) throw new VmmError(`${cmd}: count must be 1..4096`);
    const machine = this.runner.machine;
    const toPhys = (a: number): number => {
      if (cmd === "xp") return a;
      const p = machine.translate(this.cpu, a);
      if (p === null) throw new VmmError(`Cannot access memory at virtual address 0x${a.toString(16)}`);
      return p;
    };
    if (fmt === "i") {
      if (!this.disasm) throw new VmmError("no disassembler available");
      const bits = this.bitness();
      // Read page by page through the translation (instructions may straddle a page).
      const need = count * 15;
      const bytes = new Uint8Array(need);
      for (let off = 0; off < need;) {
        const a = addr + off;
        const chunk = Math.min(need - off, 4096 - (a & 0xfff));
        bytes.set(machine.ram.read(toPhys(a), chunk), off);
        off += chunk;
      }
      return this.formatInsns(bytes, addr, bits, count);
    }
    const lines: string[] = [];
    const perLine = size === 8 ? 2 : size === 1 && fmt === "c" ? 16 : 4;
    for (let i = 0; i < count; i += perLine) {
      const a = addr + i * size;
      const cells: string[] = [];
      for (let j = i; j < Math.min(count, i + perLine); j++) {
        const va = addr + j * size;
        const b = machine.ram.read(toPhys(va), size);
        let v = 0n;
        for (let k = size - 1; k >= 0; k--) v = (v << 8n) | BigInt(b[k]!);
        cells.push(formatCell(v, size, fmt));
      }
      lines.push(`${a.toString(16).padStart(16, "0")}: ${cells.join(" ")}`);
    }
    return lines.join("\n");
  }

  private formatInsns(bytes: Uint8Array, addr: number, bits: 16 | 32 | 64, count: number): string {
    const out: string[] = [];
    let at = addr;
    for (const ins of this.disasm!.disassemble(bytes, addr, bits, count)) {
      out.push(`0x${at.toString(16).padStart(16, "0")}:  ${ins.text}`);
      at += ins.length;
    }
    return out.join("\n");
  }

  /** A number, or $pc (CS base + RIP, as QEMU's monitor) / $rax... from the current CPU. */
  private parseAddr(s: string): number {
    if (s.startsWith("$")) {
      const v = this.runner.machine.vcpus[this.cpu]!;
      const r = v.getRegs();
      const name = s.slice(1).toLowerCase();
      if (name === "pc") return Number(BigInt.asUintN(64, v.getSregs().cs.base + r.rip));
      const key = (name === "eip" || name === "ip" ? "rip" : name.replace(/^e/, "r")) as keyof KvmRegs;
      if (!(key in r)) throw new VmmError(`unknown register '${s}'`);
      return Number(r[key]);
    }
    const v = /^0x[0-9a-f]+$/i.test(s) ? parseInt(s.slice(2), 16) : /^\d+$/.test(s) ? parseInt(s, 10) : NaN;
    if (!Number.isSafeInteger(v)) throw new VmmError(`invalid address '${s}'`);
    return v;
  }

  private bitness(): 16 | 32 | 64 {
    const s = this.runner.machine.vcpus[this.cpu]!.getSregs();
    if (s.cs.l && (s.efer & 0x400n)) return 64;
    return s.cs.db ? 32 : 16;
  }
}

function formatCell(v: bigint, size: number, fmt: string): string {
  switch (fmt) {
    case "d": {
      const bits = BigInt(size * 8);
      const signed = v >= 1n << (bits - 1n) ? v - (1n << bits) : v;
      return signed.toString().padStart(size * 3);
    }
    case "u": return v.toString().padStart(size * 3);
    case "c": return Number(v) >= 0x20 && Number(v) < 0x7f ? `'${String.fromCharCode(Number(v))}'` : `\\x${v.toString(16).padStart(2, "0")}`;
    default: return "0x" + v.toString(16).padStart(size * 2, "0");
  }
}

function hex(v: bigint | number, w: number): string {
  return BigInt.asUintN(64, BigInt(v)).toString(16).padStart(w, "0");
}

function hex4(v: number): string {
  return v.toString(16).padStart(4, "0");
}
