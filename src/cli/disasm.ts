// The monitor's disassembler: iced-x86 (a maintained x86 decoder/formatter, Rust compiled to
// WebAssembly), with GNU as (AT&T) syntax like QEMU's monitor.
import { Decoder, DecoderOptions, Formatter, FormatterSyntax } from "iced-x86";
import type { Disassembler } from "../vmm/monitor.js";

export const icedDisassembler: Disassembler = {
  disassemble(bytes, ip, bitness, count) {
    const dec = new Decoder(bitness, bytes, DecoderOptions.None);
    const fmt = new Formatter(FormatterSyntax.Gas);
    dec.ip = BigInt(ip);
    const out: { length: number; text: string }[] = [];
    try {
      while (out.length < count && dec.canDecode) {
        const ins = dec.decode();
        const hexBytes = Array.from(bytes.subarray(Number(ins.ip - BigInt(ip)), Number(ins.ip - BigInt(ip)) + ins.length), (b) => b.toString(16).padStart(2, "0")).join(" ");
        out.push({ length: ins.length, text: `${fmt.format(ins).padEnd(36)} # ${hexBytes}` });
        ins.free();
      }
    } finally {
      dec.free();
      fmt.free();
    }
    return out;
  },
};
