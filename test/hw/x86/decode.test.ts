import { test } from "node:test";
import assert from "node:assert/strict";
import { makeRig, writeBytes, realMode, flat32, long64 } from "./helpers.js";
import type { X86Cpu } from "../../../src/hw/x86/cpu.js";

function lengthOf(cpu: X86Cpu, bytes: number[]): number {
  writeBytes(cpu.physmem, 0x1000, [...bytes, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90]);
  cpu.invalidateCode(1);
  cpu.state.rip = 0x1000;
  cpu.fetchDecode();
  return cpu.ilen;
}

const CASES64: [string, number[], number][] = [
  ["nop", [0x90], 1],
  ["add rax, rbx", [0x48, 0x01, 0xd8], 3],
  ["mov rax, imm64", [0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8], 10],
  ["mov eax, imm32", [0xb8, 1, 2, 3, 4], 5],
  ["mov ax, imm16", [0x66, 0xb8, 1, 2], 4],
  ["mov r8, [rip+disp32]", [0x4c, 0x8b, 0x05, 0, 0, 0, 0], 7],
  ["mov eax, [rsp+disp8]", [0x8b, 0x44, 0x24, 0x08], 4],
  ["mov eax, [rbp+rcx*4+disp32]", [0x8b, 0x84, 0x8d, 1, 2, 3, 4], 7],
  ["mov eax, [disp32] via SIB no base", [0x8b, 0x04, 0x25, 0, 0, 0, 0], 7],
  ["mov [r13+0], eax", [0x41, 0x89, 0x45, 0x00], 4],
  ["movabs al, moffs64", [0xa0, 1, 2, 3, 4, 5, 6, 7, 8], 9],
  ["addr32 movabs al, moffs32", [0x67, 0xa0, 1, 2, 3, 4], 6],
  ["add qword [rax], imm8", [0x48, 0x83, 0x00, 0x01], 4],
  ["add dword [rax+disp32], imm32", [0x81, 0x80, 0, 0, 0, 0, 1, 2, 3, 4], 10],
  ["test byte [rax], imm8", [0xf6, 0x00, 0x12], 3],
  ["not dword [rax] (no imm)", [0xf7, 0x10], 2],
  ["test word [rax], imm16", [0x66, 0xf7, 0x00, 0x34, 0x12], 5],
  ["jcc rel32", [0x0f, 0x84, 0, 0, 0, 0], 6],
  ["call rel32", [0xe8, 0, 0, 0, 0], 5],
  ["ret imm16", [0xc2, 8, 0], 3],
  ["enter", [0xc8, 0x10, 0x00, 0x01], 4],
  ["lock cmpxchg16b", [0xf0, 0x48, 0x0f, 0xc7, 0x0e], 5],
  ["rep movsq", [0xf3, 0x48, 0xa5], 3],
  ["fs mov rax,[0]", [0x64, 0x48, 0x8b, 0x04, 0x25, 0, 0, 0, 0], 9],
  ["imul r, r/m, imm8", [0x6b, 0xc0, 0x05], 3],
  ["imul r, r/m, imm32", [0x69, 0xc0, 1, 2, 3, 4], 6],
  ["shld r/m, r, imm8", [0x0f, 0xa4, 0xc3, 0x04], 4],
  ["andn (VEX3)", [0xc4, 0xe2, 0x60, 0xf2, 0xc1], 5],
  ["rorx (VEX3 0F3A + imm8)", [0xc4, 0xe3, 0x7b, 0xf0, 0xc3, 0x08], 6],
  ["crc32 (F2 0F38)", [0xf2, 0x0f, 0x38, 0xf1, 0xc3], 5],
  ["multi-byte nop", [0x66, 0x0f, 0x1f, 0x84, 0x00, 0, 0, 0, 0], 9],
  ["bt r/m, imm8", [0x0f, 0xba, 0xe0, 0x05], 4],
  ["mov cr3, rax", [0x0f, 0x22, 0xd8], 3],
  ["int 0x80", [0xcd, 0x80], 2],
];

const CASES32: [string, number[], number][] = [
  ["mov eax, [ebx+esi*2+disp8]", [0x8b, 0x44, 0x73, 0x10], 4],
  ["mov eax, [disp32]", [0x8b, 0x05, 1, 2, 3, 4], 6],
  ["addr16: mov ax, [bp+si+disp16]", [0x67, 0x66, 0x8b, 0x82, 0x34, 0x12], 6],
  ["inc eax (one byte outside 64-bit)", [0x40], 1],
  ["jmp far ptr16:32", [0xea, 1, 2, 3, 4, 0x08, 0x00], 7],
  ["jmp far ptr16:16 (66)", [0x66, 0xea, 1, 2, 0x08, 0x00], 6],
  ["les (C4 with memory ModRM)", [0xc4, 0x05, 0, 0x20, 0, 0], 6],
  ["push imm32", [0x68, 1, 2, 3, 4], 5],
  ["mov moffs32, eax", [0xa3, 1, 2, 3, 4], 5],
];

const CASES16: [string, number[], number][] = [
  ["mov ax, [disp16]", [0x8b, 0x06, 0x34, 0x12], 4],
  ["mov ax, [bx+si]", [0x8b, 0x00], 2],
  ["mov ax, imm16", [0xb8, 0x34, 0x12], 3],
  ["mov eax, imm32 (66)", [0x66, 0xb8, 1, 2, 3, 4], 6],
  ["32-bit addressing (67) with SIB", [0x67, 0x8b, 0x04, 0x24], 4],
  ["call far ptr16:16", [0x9a, 0, 0, 0, 0], 5],
  ["jcc rel16", [0x0f, 0x85, 0x10, 0x00], 4],
];

test("instruction lengths in 64-bit mode", () => {
  const { cpu } = makeRig(8);
  long64(cpu, 0x1000);
  for (const [name, bytes, len] of CASES64) assert.equal(lengthOf(cpu, bytes), len, name);
});

test("instruction lengths in 32-bit protected mode", () => {
  const { cpu } = makeRig();
  flat32(cpu, 0x1000);
  for (const [name, bytes, len] of CASES32) assert.equal(lengthOf(cpu, bytes), len, name);
});

test("instruction lengths in real mode", () => {
  const { cpu } = makeRig();
  realMode(cpu, 0x1000);
  for (const [name, bytes, len] of CASES16) assert.equal(lengthOf(cpu, bytes), len, name);
});

test("more than 15 bytes is #GP; LOCK on a non-lockable instruction or register form is #UD; and the 15-byte boundary", () => {
  const { cpu } = makeRig(8);
  long64(cpu, 0x1000);
  assert.throws(() => lengthOf(cpu, [0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x90]));
  assert.equal(cpu.faultVec, 13);
  assert.equal(lengthOf(cpu, [0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x90]), 15);
  assert.throws(() => lengthOf(cpu, [0xf0, 0x01, 0xd8])); // lock add eax, ebx
  assert.equal(cpu.faultVec, 6);
  assert.throws(() => lengthOf(cpu, [0xf0, 0x8b, 0x00])); // lock mov
  assert.equal(cpu.faultVec, 6);
  assert.equal(lengthOf(cpu, [0xf0, 0x01, 0x00]), 3); // lock add [rax], eax is fine
});

test("self-modifying code: a write to a page with cached instructions invalidates them", () => {
  const { cpu, mem } = makeRig();
  // loop twice over "mov eax, imm32" patching its immediate in between:
  // 1000: mov eax, 1 ; 1005: mov dword [0x1001], 2 ; 100f: inc ecx ; 1010: cmp ecx, 2 ; 1013: jne 1000 ; hlt
  writeBytes(mem, 0x1000, [0xb8, 1, 0, 0, 0, 0xc7, 0x05, 0x01, 0x10, 0, 0, 2, 0, 0, 0, 0x41, 0x83, 0xf9, 0x02, 0x75, 0xeb, 0xf4]);
  flat32(cpu, 0x1000);
  cpu.run(100);
  assert.equal(cpu.state.gpr[0], 2);
  assert.equal(cpu.state.gpr[2], 2);
});
