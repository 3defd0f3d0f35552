/**
 * Drives a Linux guest's serial console from Node: spawns `tskvm run` (or qemu-system-x86_64
 * with the same options) with the guest serial on stdio, waits for the initramfs's READY
 * marker (scripts/linux/mkinitramfs.mjs), runs shell commands and collects their output.
 * Shared by test/linux/boot.test.ts and scripts/linux/boot-time.ts.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const CACHE = process.env.TSKVM_LINUX_CACHE ?? join(REPO, ".cache/linux");
export const READY_MARKER = "TSKVM-SHELL-READY";

export interface LinuxImages {
  /** ELF vmlinux (PVH entry) extracted from the Debian bzImage. */
  vmlinux: string;
  /** The Debian bzImage itself. */
  bzImage: string;
  /** Uncompressed newc initramfs with busybox. */
  initrd: string;
}

/** The images scripts/linux/fetch.sh builds, or the reason they are not usable. */
export function findImages(cache = CACHE): LinuxImages | string {
  const img = { vmlinux: join(cache, "vmlinux"), bzImage: join(cache, "vmlinuz"), initrd: join(cache, "initramfs.cpio") };
  for (const f of Object.values(img)) {
    if (!existsSync(f)) return `${f} missing: run scripts/linux/fetch.sh (needs apt-get and the Debian archive)`;
  }
  return img;
}

export const QEMU = "qemu-system-x86_64";

export function haveQemu(): boolean {
  return spawnSync(QEMU, ["--version"], { stdio: "ignore" }).status === 0;
}

export interface BootOptions {
  vmm: "tskvm" | "qemu";
  kernel: string;
  initrd: string;
  append?: string;
  mem?: string;
  /** -smp: number of vCPUs (default 1). */
  smp?: number;
  /** tskvm only: the -monitor argument (default none), e.g. unix:PATH,server,nowait. */
  monitor?: string;
  /** Extra log of everything the guest printed (for failures). */
  onOutput?(text: string): void;
}

export const DEFAULT_APPEND = "console=ttyS0 earlyprintk=serial,ttyS0,115200 loglevel=8 panic=-1";

export class LinuxSession {
  readonly child: ChildProcess;
  /** Everything the guest wrote on its serial port so far. */
  output = "";
  readonly startedAt = performance.now();
  exited: { code: number | null; signal: string | null } | null = null;
  private waiters: Array<() => void> = [];
  private seq = 0;

  constructor(o: BootOptions) {
    const args = ["-kernel", o.kernel, "-initrd", o.initrd, "-append", o.append ?? DEFAULT_APPEND, "-m", o.mem ?? "512M", "-smp", String(o.smp ?? 1), "-serial", "stdio", "-no-reboot"];
    if (o.vmm === "tskvm") {
      this.child = spawn(process.execPath, [join(REPO, "bin/tskvm.js"), "run", ...args, "-monitor", o.monitor ?? "none"], { stdio: ["pipe", "pipe", "pipe"] });
    } else {
      this.child = spawn(QEMU, ["-accel", "tcg", "-M", "pc", "-cpu", "max", "-nographic", "-nodefaults", "-monitor", "none", ...args], { stdio: ["pipe", "pipe", "pipe"] });
    }
    const onData = (b: Buffer): void => {
      const s = b.toString("latin1");
      this.output += s;
      o.onOutput?.(s);
      this.notify();
    };
    this.child.stdout!.on("data", onData);
    this.child.stderr!.on("data", onData);
    this.child.on("exit", (code, signal) => {
      this.exited = { code, signal };
      this.notify();
    });
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Resolves with the offset just past the first match of `re` at or after `from`. */
  async waitFor(re: RegExp | string, timeoutMs: number, from = 0): Promise<number> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const tail = this.output.slice(from);
      const idx = typeof re === "string" ? tail.indexOf(re) : tail.search(re);
      if (idx >= 0) {
        const len = typeof re === "string" ? re.length : (tail.slice(idx).match(re)?.[0].length ?? 0);
        return from + idx + len;
      }
      if (this.exited) throw new Error(`guest ended (${JSON.stringify(this.exited)}) before ${String(re)}; last output:\n${this.output.slice(-2000)}`);
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`timeout waiting for ${String(re)}; last output:\n${this.output.slice(-2000)}`);
      await new Promise<void>((res) => {
        const t = setTimeout(res, Math.min(left, 1000));
        this.waiters.push(() => { clearTimeout(t); res(); });
      });
    }
  }

  /** Waits for the shell; returns the milliseconds from spawn to the READY marker. */
  async waitReady(timeoutMs: number): Promise<number> {
    await this.waitFor(new RegExp(READY_MARKER + "\\r?\\n"), timeoutMs);
    return performance.now() - this.startedAt;
  }

  send(text: string): void {
    this.child.stdin!.write(text);
  }

  /**
   * Runs one shell command line and returns what it printed (CRs dropped). The end marker is
   * written split ("@@""END<n>") so the terminal's echo of the command line never matches it;
   * the echoed line itself is cut off.
   */
  async run(cmd: string, timeoutMs: number): Promise<string> {
    const n = ++this.seq;
    const start = this.output.length;
    this.send(`${cmd}; echo "@@""END${n}"\n`);
    const marker = `@@END${n}`;
    const end = await this.waitFor(marker, timeoutMs, start);
    let text = this.output.slice(start, end - marker.length).replace(/\r/g, "");
    // Both the tty and ash's line editor may echo the line: cut through the last copy.
    const echo = text.lastIndexOf(`"@@""END${n}"`);
    if (echo >= 0) text = text.slice(text.indexOf("\n", echo) + 1);
    return text;
  }

  /** Resolves when the VMM process has ended. */
  async waitExit(timeoutMs: number): Promise<{ code: number | null; signal: string | null }> {
    const deadline = performance.now() + timeoutMs;
    while (!this.exited) {
      const left = deadline - performance.now();
      if (left <= 0) throw new Error("timeout waiting for the VMM to end");
      await new Promise<void>((res) => {
        const t = setTimeout(res, Math.min(left, 1000));
        this.waiters.push(() => { clearTimeout(t); res(); });
      });
    }
    return this.exited;
  }

  /** Ends the VMM process if it is still running (SIGKILL: only this child). */
  kill(): void {
    if (!this.exited) this.child.kill("SIGKILL");
  }
}
