// The terminal side of a running VM: guest serial output to stdout (batched per host turn),
// terminal input to the UART, QEMU's Ctrl-a escapes (c: monitor <-> console, x: quit,
// h: help, Ctrl-a Ctrl-a: a literal Ctrl-a), and the monitor on stdio or a unix socket.
import { createServer, type Server, type Socket } from "node:net";
import { rmSync, writeFileSync, appendFileSync } from "node:fs";
import type { Monitor } from "../vmm/monitor.js";
import type { VmRunner } from "../vmm/vm_runner.js";
import { CliError } from "./args.js";

const CTRL_A = 0x01;

export class SerialSink {
  private buf: number[] = [];
  /** stdout went away (EPIPE): the guest's output has nowhere to go. */
  closed = false;
  constructor(private readonly target: string) {
    if (target.startsWith("file:")) writeFileSync(target.slice(5), "");
  }
  push(b: number): void {
    if (this.target === "none" || this.target === "null" || this.closed) return;
    this.buf.push(b);
    if (this.buf.length >= 4096) this.flush();
  }
  flush(): void {
    if (!this.buf.length || this.closed) return;
    const bytes = Uint8Array.from(this.buf);
    this.buf = [];
    if (this.target.startsWith("file:")) appendFileSync(this.target.slice(5), bytes);
    else process.stdout.write(bytes);
  }
}

export class Console {
  private escape = false;
  private monitorMode: boolean;
  private line = "";
  private server: Server | null = null;
  private readonly clients = new Set<Socket>();
  private socketPath: string | null = null;
  private readonly onData = (chunk: Buffer) => this.input(chunk);

  constructor(
    private readonly runner: () => VmRunner,
    private readonly monitor: () => Monitor,
    monitorSpec: string | null,
    private readonly serialIsStdio: boolean,
  ) {
    this.monitorMode = monitorSpec === "stdio";
    if (monitorSpec && monitorSpec !== "stdio" && monitorSpec !== "none") this.listen(monitorSpec);
  }

  start(): void {
    if (process.stdin.isTTY) process.stdin.setRawMode(true);
    process.stdin.on("data", this.onData);
    if (this.monitorMode) this.prompt();
  }

  stop(): void {
    process.stdin.off("data", this.onData);
    if (process.stdin.isTTY) process.stdin.setRawMode(false);
    process.stdin.pause();
    this.server?.close();
    for (const c of this.clients) c.destroy();
    if (this.socketPath) rmSync(this.socketPath, { force: true });
  }

  private prompt(): void {
    process.stderr.write("(qemu) ");
  }

  private input(chunk: Buffer): void {
    const toGuest: number[] = [];
    for (const b of chunk) {
      if (this.escape) {
        this.escape = false;
        if (b === 0x63 /* c */) {
          this.monitorMode = !this.monitorMode;
          process.stderr.write(this.monitorMode ? "\r\nQEMU-style monitor - type 'help' for commands\r\n" : "\r\n");
          if (this.monitorMode) this.prompt();
          continue;
        }
        if (b === 0x78 /* x */) {
          process.stderr.write("\r\ntskvm: terminating on Ctrl-a x\r\n");
          this.runner().quit("terminated by Ctrl-a x");
          continue;
        }
        if (b === 0x68 /* h */) {
          process.stderr.write("\r\nC-a h    print this help\r\nC-a x    exit tskvm\r\nC-a c    switch between console and monitor\r\nC-a C-a  send C-a\r\n");
          continue;
        }
        if (b !== CTRL_A) continue;
      } else if (b === CTRL_A && process.stdin.isTTY) {
        this.escape = true;
        continue;
      }
      if (this.monitorMode) this.monitorKey(b);
      else toGuest.push(b);
    }
    if (toGuest.length && this.serialIsStdio) this.runner().machine.serial.receive(toGuest);
  }

  private monitorKey(b: number): void {
    if (b === 0x0d || b === 0x0a) {
      process.stderr.write("\r\n");
      const out = this.monitor().execute(this.line);
      this.line = "";
      if (out) process.stderr.write(out.replace(/\n/g, "\r\n") + "\r\n");
      if (!this.runner().ending) this.prompt();
    } else if (b === 0x7f || b === 0x08) {
      if (this.line.length) {
        this.line = this.line.slice(0, -1);
        process.stderr.write("\b \b");
      }
    } else if (b >= 0x20 && b < 0x7f) {
      this.line += String.fromCharCode(b);
      process.stderr.write(String.fromCharCode(b));
    }
  }

  /** -monitor unix:PATH[,server][,nowait]: a line-oriented monitor per connection. */
  private listen(spec: string): void {
    const m = /^unix:([^,]+)/.exec(spec);
    if (!m) throw new CliError(`-monitor: unsupported backend '${spec}' (stdio, unix:PATH,server,nowait, none)`);
    const path = m[1]!;
    rmSync(path, { force: true });
    this.socketPath = path;
    this.server = createServer((sock) => {
      this.clients.add(sock);
      sock.on("close", () => this.clients.delete(sock));
      sock.write("QEMU-style monitor - type 'help' for commands\n(qemu) ");
      let pending = "";
      sock.on("data", (d) => {
        pending += d.toString("utf8");
        let nl: number;
        while ((nl = pending.indexOf("\n")) >= 0) {
          const line = pending.slice(0, nl).replace(/\r$/, "");
          pending = pending.slice(nl + 1);
          const out = this.monitor().execute(line);
          sock.write(out ? out + "\n(qemu) " : "(qemu) ");
        }
      });
      sock.on("error", () => sock.destroy());
    });
    this.server.listen(path);
  }
}
