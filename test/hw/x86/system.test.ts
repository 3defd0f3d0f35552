import { test } from "node:test";
import assert from "node:assert/strict";
import { makeRig, writeBytes, write32, write64, realMode, flat32, long64, idtGate32, idtGate64, writeGdt, segDesc, run32, run64, setR, getR, read32 } from "./helpers.js";
import { ActivityState } from "../../../src/hw/x86/state.js";

test("REP MOVSB/STOSD/CMPSB/SCASB in 32-bit mode, backward MOVSW in real mode", () => {
  const { cpu, mem } = run32([0xf3, 0xa4, 0xb8, 0x11, 0x22, 0x33, 0x44, 0xb9, 3, 0, 0, 0, 0xf3, 0xab], (c) => {
    writeBytes(c.physmem, 0x3000, [1, 2, 3, 4, 5]);
    c.state.gpr[12] = 0x3000; c.state.gpr[14] = 0x4000; c.state.gpr[2] = 5;
  });
  assert.deepEqual([0, 1, 2, 3, 4].map((i) => mem.read8(0x4000 + i)), [1, 2, 3, 4, 5]);
  assert.equal(read32(mem, 0x4005), 0x44332211);
  assert.equal(read32(mem, 0x400d), 0x44332211);
  assert.equal(cpu.state.gpr[2], 0);
  assert.equal(cpu.state.gpr[14], 0x4011);
  // repe cmpsb stops at the first difference
  const r = run32([0xf3, 0xa6], (c) => {
    writeBytes(c.physmem, 0x3000, [7, 7, 7, 9]); writeBytes(c.physmem, 0x4000, [7, 7, 8, 9]);
    c.state.gpr[12] = 0x3000; c.state.gpr[14] = 0x4000; c.state.gpr[2] = 4;
  });
  assert.equal(r.cpu.state.gpr[2], 1);
  assert.equal(r.cpu.state.gpr[12], 0x3003);
  // repne scasb finds the byte
  const s = run32([0xf2, 0xae], (c) => {
    writeBytes(c.physmem, 0x4000, [1, 2, 3, 0x55, 4]);
    c.state.gpr[0] = 0x55; c.state.gpr[14] = 0x4000; c.state.gpr[2] = 10;
  });
  assert.equal(s.cpu.state.gpr[14], 0x4004);
  assert.equal(s.cpu.state.gpr[2], 6);
  // real mode: std; rep movsw copies backwards with 16-bit SI/DI/CX
  const rig = makeRig();
  writeBytes(rig.mem, 0x1000, [0xfd, 0xf3, 0xa5, 0xf4]);
  writeBytes(rig.mem, 0x2000, [1, 2, 3, 4]);
  realMode(rig.cpu, 0x1000);
  rig.cpu.state.gpr[12] = 0x2002; rig.cpu.state.gpr[14] = 0x3002; rig.cpu.state.gpr[2] = 0x10002;
  rig.cpu.run(100);
  assert.deepEqual([0, 1, 2, 3].map((i) => rig.mem.read8(0x3000 + i)), [1, 2, 3, 4]);
  assert.equal(rig.cpu.state.gpr[2], 0x10000, "only CX counts in 16-bit addressing");
  assert.equal(rig.cpu.state.gpr[14], 0x2ffe);
});

test("a REP string instruction is interruptible and restartable", () => {
  const rig = makeRig();
  writeBytes(rig.mem, 0x1000, [0xf3, 0xaa, 0xf4]);
  flat32(rig.cpu, 0x1000);
  rig.cpu.state.gpr[0] = 0xab; rig.cpu.state.gpr[14] = 0x10000; rig.cpu.state.gpr[2] = 3000;
  const n = rig.cpu.run(1);
  assert.equal(n, 1);
  assert.equal(rig.cpu.state.rip, 0x1000, "RIP stays on the REP instruction while iterations remain");
  assert.ok(rig.cpu.state.gpr[2] > 0 && rig.cpu.state.gpr[2] < 3000);
  rig.cpu.run(100);
  assert.equal(rig.cpu.state.gpr[2], 0);
  assert.equal(rig.mem.read8(0x10000 + 2999), 0xab);
  assert.equal(rig.mem.read8(0x10000 + 3000), 0);
});

test("stack: PUSH/POP, CALL/RET, ENTER/LEAVE, PUSHA/POPA, PUSHF/POPF", () => {
  // push 0x1234; pop ebx; call f; hlt; f: enter 8,0; mov eax,[ebp]; leave; ret
  const { cpu } = run32([0x68, 0x34, 0x12, 0, 0, 0x5b, 0xe8, 0x01, 0, 0, 0, 0xf4, 0xc8, 8, 0, 0, 0x8b, 0x45, 0x00, 0xc9, 0xc3], (c) => {
    c.state.gpr[10] = 0x5555;
  });
  assert.equal(cpu.state.gpr[6], 0x1234);
  assert.equal(cpu.state.gpr[0], 0x5555, "[ebp] after ENTER holds the old EBP");
  assert.equal(cpu.state.gpr[8], 0x80000);
  assert.equal(cpu.state.gpr[10], 0x5555);
  assert.equal(cpu.state.rip, 0x100c);
  const p = run32([0x60, 0x31, 0xc0, 0x31, 0xdb, 0x61, 0x9c, 0x58], (c) => { c.state.gpr[0] = 1; c.state.gpr[6] = 2; c.setRflags(0x2 | 0x1 | 0x40); });
  assert.equal(p.cpu.state.gpr[6], 2, "POPA restored EBX");
  assert.equal(p.cpu.state.gpr[0] & 0xfff, 0x046, "PUSHF after xor/popa: ZF|PF set, bit 1");
});

test("real mode far CALL/RET, INT through the IVT and IRET", () => {
  const rig = makeRig();
  const { mem, cpu } = rig;
  // 0000:1000: call far 0200:0010 ; int 0x21 ; hlt
  writeBytes(mem, 0x1000, [0x9a, 0x10, 0x00, 0x00, 0x02, 0xcd, 0x21, 0xf4]);
  // 0200:0010 (= 0x2010): mov ax,cs; retf
  writeBytes(mem, 0x2010, [0x8c, 0xc8, 0xcb]);
  // IVT[0x21] = 0300:0000; handler: mov bx,0x77; iret
  write32(mem, 0x21 * 4, 0x03000000);
  writeBytes(mem, 0x3000, [0xbb, 0x77, 0x00, 0xcf]);
  realMode(cpu, 0x1000);
  cpu.setRflags(0x202);
  cpu.run(100);
  assert.equal(cpu.state.gpr[0] & 0xffff, 0x0200);
  assert.equal(cpu.state.gpr[6] & 0xffff, 0x77);
  assert.equal(cpu.state.segSel[1], 0);
  assert.equal(cpu.state.rip, 0x1008);
  assert.equal(cpu.getRflags() & 0x200, 0x200, "IRET restored IF");
  assert.equal(cpu.state.gpr[8], 0x8000);
});

test("#DE in real mode goes through IVT vector 0 with the faulting IP", () => {
  const rig = makeRig();
  writeBytes(rig.mem, 0x1000, [0xf6, 0xf3, 0xf4]); // div bl
  write32(rig.mem, 0, 0x00002000);
  writeBytes(rig.mem, 0x2000, [0x5e, 0xf4]); // pop si (the pushed IP); hlt
  realMode(rig.cpu, 0x1000);
  rig.cpu.state.gpr[0] = 5; rig.cpu.state.gpr[6] = 0;
  rig.cpu.run(100);
  assert.equal(rig.cpu.state.gpr[12] & 0xffff, 0x1000);
});

/** Protected-mode machine with a GDT: 08 code32, 10 data32, 18 code32 DPL3, 20 data32 DPL3, 28 TSS; IDT at 0x9000. */
function pmMachine(): ReturnType<typeof makeRig> {
  const rig = makeRig();
  const { mem, cpu } = rig;
  writeGdt(mem, 0x8000, [
    [0, 0], segDesc(0, 0xfffff, 0x9b, 0xc), segDesc(0, 0xfffff, 0x93, 0xc),
    segDesc(0, 0xfffff, 0xfb, 0xc), segDesc(0, 0xfffff, 0xf3, 0xc), segDesc(0xa000, 0x67, 0x89, 0),
    segDesc(0x5000, 0x0fff, 0x93, 0x4), // 0x30: small data segment, limit 0xfff
  ]);
  write32(mem, 0xa000 + 4, 0x70000); write32(mem, 0xa000 + 8, 0x10); // TSS ESP0/SS0
  flat32(cpu, 0x1000);
  const st = cpu.state;
  st.gdtrBase = 0x8000; st.gdtrLimit = 0x37; st.idtrBase = 0x9000; st.idtrLimit = 0x7ff;
  st.segSel[7] = 0x28; st.segBase[7] = 0xa000; st.segLimit[7] = 0x67; st.segAr[7] = 0x8b;
  cpu.stateChanged();
  return rig;
}

test("protected mode: segment limit violation raises #GP(0) through the IDT with an error code", () => {
  const rig = pmMachine();
  const { mem, cpu } = rig;
  // mov ax,0x30; mov ds,ax; mov eax,[0x1000] (beyond limit 0xfff) ; hlt
  writeBytes(mem, 0x1000, [0x66, 0xb8, 0x30, 0x00, 0x8e, 0xd8, 0xa1, 0x00, 0x10, 0x00, 0x00, 0xf4]);
  idtGate32(mem, 0x9000, 13, 0x08, 0x2000);
  writeBytes(mem, 0x2000, [0x5b, 0x59, 0xf4]); // pop ebx (error code); pop ecx (eip); hlt
  cpu.run(100);
  assert.equal(cpu.state.gpr[6], 0, "#GP error code 0");
  assert.equal(cpu.state.gpr[2], 0x1006, "saved EIP is the faulting instruction");
  assert.equal(cpu.state.segBase[3], 0x5000);
  // loading a bad selector: #GP(selector)
  const r2 = pmMachine();
  writeBytes(r2.mem, 0x1000, [0x66, 0xb8, 0x08, 0x00, 0x8e, 0xd0, 0xf4]); // mov ss, code selector
  idtGate32(r2.mem, 0x9000, 13, 0x08, 0x2000);
  writeBytes(r2.mem, 0x2000, [0x5b, 0xf4]);
  r2.cpu.run(100);
  assert.equal(r2.cpu.state.gpr[6], 0x08);
});

test("protected mode: INT from ring 3 switches to the TSS stack and IRET returns to ring 3", () => {
  const rig = pmMachine();
  const { mem, cpu } = rig;
  // ring 3 code at 0x1000: int 0x40; mov ebx,esp; hlt(#GP at CPL3 -> vector 13)
  writeBytes(mem, 0x1000, [0xcd, 0x40, 0x89, 0xe3, 0xf4]);
  idtGate32(mem, 0x9000, 0x40, 0x08, 0x2000, 3);
  writeBytes(mem, 0x2000, [0x89, 0xe1, 0x8b, 0x44, 0x24, 0x0c, 0xcf]); // mov ecx,esp; mov eax,[esp+12] (old esp); iret
  idtGate32(mem, 0x9000, 13, 0x08, 0x3000);
  writeBytes(mem, 0x3000, [0xf4]);
  const st = cpu.state;
  for (const s of [0, 2, 3, 4, 5]) { st.segSel[s] = 0x23; st.segAr[s] = 0xc0f3; }
  st.segSel[1] = 0x1b; st.segAr[1] = 0xc0fb;
  st.gpr[8] = 0x60000;
  cpu.stateChanged();
  assert.equal(cpu.cpl, 3);
  cpu.run(100);
  assert.equal(cpu.state.gpr[2], 0x70000 - 20, "ring-0 stack: SS, ESP, EFLAGS, CS, EIP");
  assert.equal(cpu.state.gpr[0], 0x60000);
  assert.equal(cpu.state.gpr[6], 0x60000, "back on the ring-3 stack after IRET");
  assert.equal(cpu.state.rip, 0x3001);
  assert.equal(cpu.cpl, 0, "HLT at CPL 3 faulted into the ring-0 #GP handler");
});

test("double fault: #GP while delivering #NP becomes #DF; a fault in #DF delivery shuts down", () => {
  const rig = pmMachine();
  const { mem, cpu } = rig;
  writeBytes(mem, 0x1000, [0xcd, 0x41]); // int 0x41 with a not-present gate -> #NP -> IDT[11] beyond limit -> #GP -> #DF
  cpu.state.idtrLimit = 0x41 * 8 + 7;
  write32(mem, 0x9000 + 0x41 * 8, 0x00082000); write32(mem, 0x9000 + 0x41 * 8 + 4, 0x00000e00); // not present
  idtGate32(mem, 0x9000, 8, 0x08, 0x2000);
  writeBytes(mem, 0x2000, [0x5b, 0xf4]);
  cpu.run(100);
  // IDT limit covers vector 8 (0x40 bytes) and 0x41 but vector 11's gate is zero (not a valid type): #GP -> contributory pair -> #DF
  assert.equal(cpu.state.activityState, ActivityState.HLT);
  assert.equal(cpu.state.rip, 0x2002, "the #DF handler ran");
  const r2 = pmMachine();
  writeBytes(r2.mem, 0x1000, [0xcd, 0x41]);
  r2.cpu.state.idtrLimit = 0x10; // vector 8 out of limit as well
  r2.cpu.run(100);
  assert.equal(r2.cpu.state.activityState, ActivityState.SHUTDOWN);
});

test("64-bit mode: #PF delivery through a 16-byte gate with IST, CR2 and error code; IRETQ", () => {
  const rig = makeRig(8);
  const { mem, cpu } = rig;
  long64(cpu, 0x1000);
  // GDT: 08 code64, 10 data
  writeGdt(mem, 0x8000, [[0, 0], segDesc(0, 0xfffff, 0x9b, 0xa), segDesc(0, 0xfffff, 0x93, 0xc)]);
  cpu.state.gdtrBase = 0x8000; cpu.state.gdtrLimit = 0x17;
  cpu.state.idtrBase = 0x9000; cpu.state.idtrLimit = 0xfff;
  write64(mem, 0x20000 + 36, 0x300000, 0); // IST1
  idtGate64(mem, 0x9000, 14, 0x08, 0x2000, 0, 1);
  // touch an unmapped address: mov rax, [0x40000000]; then hlt
  writeBytes(mem, 0x1000, [0x48, 0x8b, 0x04, 0x25, 0x00, 0x00, 0x00, 0x40, 0xf4]);
  // handler: pop rbx (error code); mov rcx, cr2; mov rdx, rsp; add qword [rsp], 8 (skip the insn); iretq
  writeBytes(mem, 0x2000, [0x5b, 0x0f, 0x20, 0xd1, 0x48, 0x89, 0xe2, 0x48, 0x83, 0x04, 0x24, 0x08, 0x48, 0xcf]);
  cpu.run(100);
  assert.equal(getR(cpu, 3), 0n, "not-present read from CPL 0: error code 0");
  assert.equal(getR(cpu, 1), 0x40000000n);
  assert.equal(getR(cpu, 2), BigInt(0x300000 - 40), "IST stack, 16-byte aligned, 5 slots left after the pop");
  assert.equal(cpu.state.rip, 0x1009);
  assert.equal(cpu.state.activityState, ActivityState.HLT);
});

test("paging: 32-bit, PAE and 4-level walks set A/D and report #PF error codes", () => {
  // 32-bit paging, 4 KiB pages: map linear 0x400000 -> 0x5000 read-only user page
  const rig = makeRig();
  const { mem, cpu } = rig;
  writeBytes(mem, 0x1000, [0xa1, 0x00, 0x00, 0x40, 0x00, 0xa3, 0x00, 0x00, 0x40, 0x00, 0xf4]); // mov eax,[0x400000]; mov [0x400000],eax
  flat32(cpu, 0x1000);
  write32(mem, 0x20000, 0x00000083); // PDE 0: 4 MiB identity, PS
  write32(mem, 0x20004, 0x21000 | 0x5); // PDE 1 -> PT at 0x21000 (user, read-only)
  write32(mem, 0x21000, 0x5000 | 0x5); // PTE 0 -> 0x5000 user read-only
  write32(mem, 0x5000, 0xcafe);
  cpu.state.cr3 = 0x20000; cpu.state.cr4 = 0x10; cpu.state.cr0 = 0x80010011 | 0; // PG, WP
  cpu.state.idtrBase = 0x9000; cpu.state.idtrLimit = 0x7ff;
  writeGdt(mem, 0x8000, [[0, 0], segDesc(0, 0xfffff, 0x9b, 0xc), segDesc(0, 0xfffff, 0x93, 0xc)]);
  cpu.state.gdtrBase = 0x8000; cpu.state.gdtrLimit = 0x17;
  idtGate32(mem, 0x9000, 14, 0x08, 0x2000);
  writeBytes(mem, 0x2000, [0x5b, 0x0f, 0x20, 0xd1, 0xf4]); // pop ebx; mov ecx, cr2; hlt
  cpu.stateChanged();
  cpu.run(100);
  assert.equal(cpu.state.gpr[0], 0xcafe);
  assert.equal(cpu.state.gpr[6], 0x3, "write to a read-only page with WP: P|W");
  assert.equal(cpu.state.gpr[2], 0x400000);
  assert.equal(read32(mem, 0x21000) & 0x60, 0x20, "A set, D clear on the PTE");
  assert.equal(read32(mem, 0x20004) & 0x20, 0x20, "A set on the PDE");

  // PAE: PDPTE -> PD with a 2 MiB page at linear 0x40000000 -> 0x200000, NX + user fetch
  const r2 = makeRig();
  writeBytes(r2.mem, 0x1000, [0xc7, 0x05, 0x10, 0x00, 0x00, 0x40, 0x78, 0x56, 0x34, 0x12, 0xf4]); // mov dword [0x40000010], 0x12345678
  flat32(r2.cpu, 0x1000);
  write64(r2.mem, 0x20000, 0x21001, 0); // PDPTE 0 -> PD 0x21000
  write64(r2.mem, 0x20008, 0x22001, 0); // PDPTE 1 -> PD 0x22000
  write64(r2.mem, 0x21000, 0x000083, 0); // identity 2 MiB
  write64(r2.mem, 0x22000, 0x200083, 0);
  r2.cpu.state.cr3 = 0x20000; r2.cpu.state.cr4 = 0x20; r2.cpu.state.cr0 = 0x80000011 | 0;
  r2.cpu.stateChanged();
  r2.cpu.run(100);
  assert.equal(read32(r2.mem, 0x200010), 0x12345678);
  assert.equal(read32(r2.mem, 0x22000) & 0x60, 0x60, "A and D set on the 2 MiB PDE");

  // 4-level: reserved bit in a PDE -> RSVD error code
  const r3 = makeRig(8);
  writeBytes(r3.mem, 0x1000, [0x8b, 0x04, 0x25, 0x00, 0x00, 0x60, 0x00, 0xf4]); // mov eax,[0x600000]
  long64(r3.cpu, 0x1000);
  write64(r3.mem, 0x12000 + 3 * 8, 0x600083 | (1 << 13), 0); // 2 MiB PDE with reserved bit 13
  writeGdt(r3.mem, 0x8000, [[0, 0], segDesc(0, 0xfffff, 0x9b, 0xa), segDesc(0, 0xfffff, 0x93, 0xc)]);
  r3.cpu.state.gdtrBase = 0x8000; r3.cpu.state.gdtrLimit = 0x17;
  r3.cpu.state.idtrBase = 0x9000; r3.cpu.state.idtrLimit = 0xfff;
  idtGate64(r3.mem, 0x9000, 14, 0x08, 0x2000);
  writeBytes(r3.mem, 0x2000, [0x5b, 0xf4]);
  r3.cpu.run(100);
  assert.equal(getR(r3.cpu, 3), 0x9n, "P|RSVD");
});

test("paging: NX fetch, SMEP and user access faults carry I/D and U/S bits", () => {
  const rig = makeRig(8);
  const { mem, cpu } = rig;
  long64(cpu, 0x1000);
  writeGdt(mem, 0x8000, [[0, 0], segDesc(0, 0xfffff, 0x9b, 0xa), segDesc(0, 0xfffff, 0x93, 0xc)]);
  cpu.state.gdtrBase = 0x8000; cpu.state.gdtrLimit = 0x17; cpu.state.idtrBase = 0x9000; cpu.state.idtrLimit = 0xfff;
  idtGate64(mem, 0x9000, 14, 0x08, 0x2000);
  writeBytes(mem, 0x2000, [0x5b, 0x0f, 0x20, 0xd1, 0xf4]);
  write64(mem, 0x12000 + 8, 0x200087, 0x80000000); // 2 MiB page at 2 MiB: user, NX
  cpu.state.efer |= 0x800; // NXE
  writeBytes(mem, 0x1000, [0xe9, 0xfb, 0xff, 0x1f, 0x00]); // jmp 0x201000
  cpu.stateChanged();
  cpu.run(100);
  assert.equal(getR(cpu, 3), 0x11n, "P | I/D for an NX fetch");
  assert.equal(getR(cpu, 1), 0x201000n);
});

test("TF single-step traps after each instruction; DR0 instruction breakpoint", () => {
  const rig = pmMachine();
  const { mem, cpu } = rig;
  writeBytes(mem, 0x1000, [0x40, 0x40, 0x40, 0xf4]);
  idtGate32(mem, 0x9000, 1, 0x08, 0x2000);
  // #DB handler: inc ebx; iret
  writeBytes(mem, 0x2000, [0x43, 0xcf]);
  cpu.setRflags(0x102);
  cpu.run(100);
  assert.equal(cpu.state.gpr[0], 3);
  assert.equal(cpu.state.gpr[6], 3, "one #DB after each INC, none inside the handler (TF cleared on delivery)");
  assert.equal(cpu.state.dr[6] & 0x4000, 0x4000, "DR6.BS");

  const r2 = pmMachine();
  writeBytes(r2.mem, 0x1000, [0x40, 0x40, 0x40, 0xf4]);
  idtGate32(r2.mem, 0x9000, 1, 0x08, 0x2000);
  // handler: inc ebx; or dword [esp+8], 0x10000 (set RF in the saved EFLAGS); iret
  writeBytes(r2.mem, 0x2000, [0x43, 0x81, 0x4c, 0x24, 0x08, 0x00, 0x00, 0x01, 0x00, 0xcf]);
  r2.cpu.state.dr[0] = 0x1001; r2.cpu.state.dr[7] = 0x401;
  r2.cpu.stateChanged();
  r2.cpu.run(100);
  assert.equal(r2.cpu.state.gpr[0], 3);
  assert.equal(r2.cpu.state.gpr[6], 1, "breakpoint hit once, RF suppressed the repeat");
  assert.equal(r2.cpu.state.dr[6] & 0xf, 1, "DR6.B0");
});

test("CPUID, RDMSR/WRMSR (EFER, LSTAR canonical check), RDTSC, MOV CR4 reserved bit #GP", () => {
  const { cpu } = run64([0x31, 0xc0, 0x0f, 0xa2], () => undefined);
  const vendor = [cpu.state.gpr[6], cpu.state.gpr[4], cpu.state.gpr[2]].map((v) => String.fromCharCode(v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >>> 24) & 0xff)).join("");
  assert.equal(vendor, "GenuineIntel");
  const m = run64([0x0f, 0x32], (c) => { c.state.gpr[2] = 0xc0000080 | 0; });
  assert.equal(m.cpu.state.gpr[0], 0x500);
  const out = new Int32Array(2);
  assert.equal(m.cpu.writeMsr(0xc0000082, 0, 0x00008000), false, "non-canonical LSTAR");
  assert.equal(m.cpu.writeMsr(0xc0000082, 0x1000, 0xffff8000 | 0), true);
  assert.equal(m.cpu.readMsr(0xc0000082, out), true);
  assert.deepEqual([...out], [0x1000, 0xffff8000 | 0]);
  assert.equal(m.cpu.readMsr(0x12345, out), false);
  const t = run64([0x0f, 0x31], () => undefined);
  assert.equal(t.cpu.state.gpr[0], 1000, "TSC = 1000 ns at 1 GHz");
  // mov cr4, rax with a reserved bit: #GP -> no IDT -> shutdown via triple fault
  const g = run64([0x0f, 0x22, 0xe0], (c) => { setR(c, 0, 1n << 30n); c.state.idtrLimit = 0; });
  assert.equal(g.cpu.state.activityState, ActivityState.SHUTDOWN);
});

test("SYSCALL/SYSRET round trip and SWAPGS", () => {
  const rig = makeRig(8);
  const { mem, cpu } = rig;
  long64(cpu, 0x1000);
  cpu.writeMsr(0xc0000080, 0x501, 0); // SCE
  cpu.writeMsr(0xc0000081, 0, (0x10 << 16) | 0x08); // STAR: kernel CS 0x08, user base 0x10
  cpu.writeMsr(0xc0000082, 0x2000, 0);
  cpu.writeMsr(0xc0000102, 0x7000, 0); // KERNEL_GS_BASE
  writeBytes(mem, 0x1000, [0x0f, 0x05, 0xf4]);
  // kernel: swapgs; mov rax, 42; swapgs; sysretq -> back to user at 0x1002 (CPL 3) then hlt -> #GP... so check before
  writeBytes(mem, 0x2000, [0x0f, 0x01, 0xf8, 0x48, 0xc7, 0xc0, 42, 0, 0, 0, 0x0f, 0x01, 0xf8, 0x48, 0x0f, 0x07]);
  const n = cpu.run(5);
  assert.equal(n, 5);
  assert.equal(getR(cpu, 0), 42n);
  assert.equal(cpu.state.rip, 0x1002);
  assert.equal(cpu.cpl, 3);
  assert.equal(cpu.state.segSel[1], 0x23);
  assert.equal(getR(cpu, 1), 0x1002n, "RCX = return RIP");
});

test("unimplemented opcodes raise #UD and are recorded", () => {
  const rig = makeRig();
  writeBytes(rig.mem, 0x1000, [0xc5, 0xf8, 0x10, 0xc0]); // vmovups: AVX is not implemented (nor advertised)
  flat32(rig.cpu, 0x1000);
  rig.cpu.state.idtrLimit = 0;
  rig.cpu.run(10);
  assert.equal(rig.cpu.lastUnimplemented, 0x410, "VEX map 0F (4), opcode 0x10");
  assert.equal(rig.cpu.state.activityState, ActivityState.SHUTDOWN);
});

test("deliverEvent injects an external interrupt in each mode and wakes HLT", () => {
  const rig = makeRig();
  writeBytes(rig.mem, 0x1000, [0xf4, 0xf4]);
  write32(rig.mem, 0x30 * 4, 0x00002000);
  writeBytes(rig.mem, 0x2000, [0xbb, 0x99, 0x00, 0xcf]);
  realMode(rig.cpu, 0x1000);
  rig.cpu.run(10);
  assert.equal(rig.cpu.state.activityState, ActivityState.HLT);
  rig.cpu.deliverEvent(0x30, 0, -1, 0);
  assert.equal(rig.cpu.state.activityState, ActivityState.ACTIVE);
  rig.cpu.run(10);
  assert.equal(rig.cpu.state.gpr[6] & 0xffff, 0x99);
  assert.equal(rig.cpu.state.rip, 0x1002);
  assert.equal(rig.cpu.state.activityState, ActivityState.HLT);
});


test("#AC: misaligned access at CPL 3 with CR0.AM and EFLAGS.AC; aligned accesses pass", () => {
  const rig = makeRig(8);
  const { mem, cpu } = rig;
  long64(cpu, 0x1000);
  writeGdt(mem, 0x8000, [[0, 0], segDesc(0, 0xfffff, 0x9b, 0xa), segDesc(0, 0xfffff, 0x93, 0xc)]);
  cpu.state.gdtrBase = 0x8000; cpu.state.gdtrLimit = 0x17; cpu.state.idtrBase = 0x9000; cpu.state.idtrLimit = 0xfff;
  write64(mem, 0x20000 + 4, 0x70000, 0); // RSP0
  idtGate64(mem, 0x9000, 17, 0x08, 0x2000);
  writeBytes(mem, 0x2000, [0x5b, 0xf4]); // pop rbx (error code); hlt
  // user code: mov eax,[0x3000]; mov eax,[0x3001] -> #AC
  writeBytes(mem, 0x1000, [0x8b, 0x04, 0x25, 0x00, 0x30, 0, 0, 0x8b, 0x04, 0x25, 0x01, 0x30, 0, 0, 0xf4]);
  const st = cpu.state;
  st.segSel[1] = 0x2b; st.segAr[1] = 0xa0fb; st.segSel[2] = 0x33; st.segAr[2] = 0xc0f3;
  st.cr0 |= 1 << 18;
  cpu.setRflags(0x40002);
  cpu.stateChanged();
  assert.equal(cpu.cpl, 3);
  cpu.run(100);
  assert.equal(cpu.cpl, 0);
  assert.equal(cpu.state.rip, 0x2002);
  assert.equal(getR(cpu, 3), 0n, "#AC(0)");
  const saved = mem.read32(0x70000 - 40);
  assert.equal(saved, 0x1007, "faulting RIP is the misaligned load");
});

test("FSGSBASE instructions need CR4.FSGSBASE; WRGSBASE then RDGSBASE round-trips", () => {
  // wrgsbase rax; rdgsbase rbx
  const ok = run64([0xf3, 0x48, 0x0f, 0xae, 0xd8, 0xf3, 0x48, 0x0f, 0xae, 0xcb], (c) => {
    c.state.cr4 |= 1 << 16; c.stateChanged(); setR(c, 0, 0xffff888000001000n);
  });
  assert.equal(getR(ok.cpu, 3), 0xffff888000001000n);
  const ud = run64([0xf3, 0x48, 0x0f, 0xae, 0xd8], (c) => { c.state.idtrLimit = 0; });
  assert.equal(ud.cpu.state.activityState, ActivityState.SHUTDOWN, "#UD without CR4.FSGSBASE");
});

test("DR1 data write breakpoint traps after the store with DR6.B1", () => {
  const rig = makeRig();
  const { mem, cpu } = rig;
  // mov [0x3002], ax (inside the 4-byte watched range); inc ecx; hlt
  writeBytes(mem, 0x1000, [0x66, 0xa3, 0x02, 0x30, 0x00, 0x00, 0x41, 0xf4]);
  flat32(cpu, 0x1000);
  writeGdt(mem, 0x8000, [[0, 0], segDesc(0, 0xfffff, 0x9b, 0xc), segDesc(0, 0xfffff, 0x93, 0xc)]);
  cpu.state.gdtrBase = 0x8000; cpu.state.gdtrLimit = 0x17; cpu.state.idtrBase = 0x9000; cpu.state.idtrLimit = 0x7ff;
  idtGate32(mem, 0x9000, 1, 0x08, 0x2000);
  writeBytes(mem, 0x2000, [0x8b, 0x1c, 0x24, 0xf4]); // mov ebx,[esp] (saved EIP); hlt
  cpu.state.gpr[0] = 0x1234;
  cpu.state.dr[1] = 0x3000;
  cpu.state.dr[7] = 0x400 | (1 << 2) | (0xd << 20); // L1, R/W1 = 01 (write), LEN1 = 11 (4 bytes)
  cpu.stateChanged();
  cpu.run(100);
  assert.equal(mem.read8(0x3002), 0x34, "the store happened");
  assert.equal(cpu.state.gpr[6], 0x1006, "trap: saved EIP is the next instruction");
  assert.equal(cpu.state.dr[6] & 0xf, 2, "DR6.B1");
  assert.equal(cpu.state.gpr[2], 0, "INC not yet executed");
});

test("unreal mode: a 4 GiB DS limit cached in real mode survives and allows 32-bit offsets", () => {
  const rig = makeRig();
  const { mem, cpu } = rig;
  // mov eax, [esi] (67 prefix: 32-bit address) with ESI = 0x200000; hlt
  writeBytes(mem, 0x1000, [0x66, 0x67, 0x8b, 0x06, 0xf4]);
  write32(mem, 0x200000, 0xfeedface);
  realMode(cpu, 0x1000);
  cpu.state.segLimit[3] = 0xffffffff;
  cpu.stateChanged();
  cpu.state.gpr[12] = 0x200000;
  cpu.run(10);
  assert.equal(cpu.state.gpr[0] >>> 0, 0xfeedface);
  // with the normal 64 KiB limit the same access is #GP (real-mode IVT vector 13)
  const r2 = makeRig();
  writeBytes(r2.mem, 0x1000, [0x66, 0x67, 0x8b, 0x06, 0xf4]);
  write32(r2.mem, 13 * 4, 0x00002000);
  writeBytes(r2.mem, 0x2000, [0xbb, 0x0d, 0x00, 0xf4]);
  realMode(r2.cpu, 0x1000);
  r2.cpu.state.gpr[12] = 0x200000;
  r2.cpu.run(10);
  assert.equal(r2.cpu.state.gpr[6] & 0xffff, 13);
});

test("deliverEvent of a hardware exception (injection) leaves CR2 and DR6 as they are (SDM Vol. 3C 27.6.1.2)", () => {
  const rig = makeRig();
  realMode(rig.cpu, 0x1000);
  write32(rig.mem, 14 * 4, 0x00003000);
  write32(rig.mem, 1 * 4, 0x00003000);
  const st = rig.cpu.state;
  st.cr2 = 0x1234;
  st.dr[6] = 0xffff0ff0;
  rig.cpu.deliverEvent(14, 3, -1, 0);
  assert.equal(st.rip, 0x3000, "#PF delivered through the IVT");
  assert.equal(st.cr2, 0x1234, "CR2 untouched by the injected #PF");
  rig.cpu.deliverEvent(1, 3, -1, 0);
  assert.equal(st.dr[6], 0xffff0ff0, "DR6 untouched by the injected #DB");
});

test("MOV to CR4 with LA57 is #GP(0): 5-level paging is not advertised (CPUID.(7,0):ECX[16] = 0)", () => {
  const rig = makeRig();
  // mov $0x1000, %eax ; mov %eax, %cr4 ; hlt      (real mode; #GP handler at 0x3000: hlt)
  writeBytes(rig.mem, 0x1000, [0x66, 0xb8, 0x00, 0x10, 0x00, 0x00, 0x0f, 0x22, 0xe0, 0xf4]);
  realMode(rig.cpu, 0x1000);
  write32(rig.mem, 13 * 4, 0x00003000);
  writeBytes(rig.mem, 0x3000, [0xf4]);
  const out = new Int32Array(4);
  rig.cpu.cpuid(7, 0, out);
  assert.equal((out[2]! >>> 16) & 1, 0, "CPUID does not offer LA57");
  rig.cpu.run(10);
  assert.equal(rig.cpu.state.rip, 0x3001, "#GP taken at the MOV to CR4");
  assert.equal(rig.cpu.state.cr4 & 0x1000, 0);
});
