import { test } from "node:test";
import assert from "node:assert/strict";
import { makeRig, writeBytes, write32, flat32, idtGate32, writeGdt, segDesc, read32 } from "./helpers.js";
import { ActivityState, INTR_BLOCKING_STI } from "../../../src/hw/x86/state.js";

/** GDT: 08 code0, 10 data0, 18 code3, 20 data3, 28 TSS32 (base 0xa000), 30 call gate -> 08:0x2000 DPL3 (1 param), 38 LDT. */
function machine(): ReturnType<typeof makeRig> {
  const rig = makeRig();
  const { mem, cpu } = rig;
  const gate: [number, number] = [(0x08 << 16) | 0x2000, 0x0000ec01]; // present, DPL3, type C (32-bit call gate), 1 param
  writeGdt(mem, 0x8000, [
    [0, 0], segDesc(0, 0xfffff, 0x9b, 0xc), segDesc(0, 0xfffff, 0x93, 0xc),
    segDesc(0, 0xfffff, 0xfb, 0xc), segDesc(0, 0xfffff, 0xf3, 0xc), segDesc(0xa000, 0x2067, 0x89, 0),
    gate, segDesc(0xb000, 0x17, 0x82, 0),
  ]);
  write32(mem, 0xa000 + 4, 0x70000); write32(mem, 0xa000 + 8, 0x10);
  flat32(cpu, 0x1000);
  const st = cpu.state;
  st.gdtrBase = 0x8000; st.gdtrLimit = 0x3f; st.idtrBase = 0x9000; st.idtrLimit = 0x7ff;
  cpu.stateChanged();
  return rig;
}

function toRing3(rig: ReturnType<typeof makeRig>, esp: number): void {
  const st = rig.cpu.state;
  for (const s of [0, 2, 3, 4, 5]) { st.segSel[s] = 0x23; st.segAr[s] = 0xc0f3; }
  st.segSel[1] = 0x1b; st.segAr[1] = 0xc0fb;
  st.segSel[7] = 0x28; st.segBase[7] = 0xa000; st.segLimit[7] = 0x2067; st.segAr[7] = 0x8b;
  st.gpr[8] = esp;
  rig.cpu.stateChanged();
}

test("CALL through a call gate to ring 0 copies parameters; RETF n returns to ring 3", () => {
  const rig = machine();
  const { mem, cpu } = rig;
  // ring 3: push 0x55; call 0x30:0 ; mov ebx, esp ; hlt (faults at CPL3; the #GP handler halts)
  writeBytes(mem, 0x1000, [0x6a, 0x55, 0x9a, 0, 0, 0, 0, 0x30, 0x00, 0x89, 0xe3, 0xf4]);
  // ring 0 at 0x2000: mov eax,[esp+8] (the copied parameter); mov ecx, cs; retf 4
  writeBytes(mem, 0x2000, [0x8b, 0x44, 0x24, 0x08, 0x8c, 0xc9, 0xca, 0x04, 0x00]);
  idtGate32(mem, 0x9000, 13, 0x08, 0x3000);
  writeBytes(mem, 0x3000, [0xf4]);
  toRing3(rig, 0x60000);
  cpu.run(100);
  assert.equal(cpu.state.gpr[0], 0x55, "parameter copied to the inner stack");
  assert.equal(cpu.state.gpr[2] & 0xffff, 0x08, "ran in the gate's code segment");
  assert.equal(cpu.state.gpr[6], 0x60000, "RETF 4 popped the parameter from the outer stack");
  assert.equal(cpu.state.rip, 0x3001, "HLT at CPL 3 raised #GP into ring 0");
});

test("I/O permission bitmap decides port access at CPL 3", () => {
  const rig = machine();
  const { mem, cpu, io } = rig;
  write32(mem, 0xa000 + 0x64, 0x00680000); // I/O map base 0x68
  for (let i = 0; i < 0x2000; i += 4) write32(mem, 0xa068 + i, 0xffffffff);
  mem.write8(0xa068 + (0x3f8 >> 3), 0xfe); // allow port 0x3f8 only
  writeBytes(mem, 0x1000, [0x66, 0xba, 0xf8, 0x03, 0xb0, 0x41, 0xee, 0x66, 0xba, 0xf9, 0x03, 0xee, 0xf4]);
  idtGate32(mem, 0x9000, 13, 0x08, 0x3000);
  writeBytes(mem, 0x3000, [0x5b, 0x59, 0xf4]);
  toRing3(rig, 0x60000);
  cpu.run(100);
  assert.equal(io.text(), "A", "port 0x3f8 allowed");
  assert.equal(cpu.state.gpr[2], 0x100b, "OUT to 0x3f9 faulted with #GP");
});

test("LTR marks the TSS busy; LLDT, LAR, LSL, VERR/VERW, STR/SLDT", () => {
  const rig = machine();
  const { mem, cpu } = rig;
  // ltr ax(0x28); lldt cx(0x38); lar edx, ebx(0x18); lsl esi, ebx; verw bx -> ZF=0 (code); str edi; hlt
  writeBytes(mem, 0x1000, [0x0f, 0x00, 0xd8, 0x0f, 0x00, 0xd1, 0x0f, 0x02, 0xd3, 0x0f, 0x03, 0xf3, 0x0f, 0x00, 0xeb, 0x0f, 0x00, 0xcf, 0xf4]);
  cpu.state.gpr[0] = 0x28; cpu.state.gpr[2] = 0x38; cpu.state.gpr[6] = 0x18;
  cpu.run(100);
  assert.equal(cpu.state.segSel[7], 0x28);
  assert.equal((read32(mem, 0x8000 + 0x28 + 4) >>> 8) & 0xf, 0xb, "busy bit set in the GDT");
  assert.equal(cpu.state.segBase[6], 0xb000);
  assert.equal(cpu.state.gpr[4] >>> 0, 0x00c0fb00, "LAR: access rights and flags (bits 19:16 undefined, returned as 0)");
  assert.equal(cpu.state.gpr[12] >>> 0, 0xffffffff, "LSL: byte-granular limit");
  assert.equal(cpu.getRflags() & 0x40, 0, "VERW on a code segment: ZF=0");
  assert.equal(cpu.state.gpr[14], 0x28, "STR");
});

test("STI sets an interrupt shadow for one instruction; MOV SS likewise", () => {
  const rig = machine();
  const { mem, cpu } = rig;
  writeBytes(mem, 0x1000, [0xfb, 0x90, 0x90, 0xf4]);
  cpu.run(1);
  assert.equal(cpu.state.interruptibility & INTR_BLOCKING_STI, INTR_BLOCKING_STI);
  cpu.run(1);
  assert.equal(cpu.state.interruptibility & INTR_BLOCKING_STI, 0);
  assert.equal(cpu.getRflags() & 0x200, 0x200);
});

test("virtual-8086 mode: INT goes to the ring-0 handler (segments saved and nulled), IRET returns to v86", () => {
  const rig = machine();
  const { mem, cpu } = rig;
  // v86 code at 0x2000:0x0010 (linear 0x20010): int 0x21; mov bx, ds; hlt
  writeBytes(mem, 0x20010, [0xcd, 0x21, 0x8c, 0xdb, 0xf4]);
  idtGate32(mem, 0x9000, 0x21, 0x08, 0x4000, 3);
  // handler: mov eax,[esp+0x18] (saved DS); mov ecx, ds; iret
  writeBytes(mem, 0x4000, [0x8b, 0x44, 0x24, 0x18, 0x8c, 0xd9, 0xcf]);
  idtGate32(mem, 0x9000, 13, 0x08, 0x3000);
  writeBytes(mem, 0x3000, [0xf4]);
  const st = cpu.state;
  st.segSel[7] = 0x28; st.segBase[7] = 0xa000; st.segLimit[7] = 0x2067; st.segAr[7] = 0x8b;
  const sels = [0x1000, 0x2000, 0x3000, 0x1234, 0, 0];
  for (let s = 0; s < 6; s++) { st.segSel[s] = sels[s]; st.segBase[s] = sels[s] << 4; st.segLimit[s] = 0xffff; st.segAr[s] = s === 1 ? 0xfb : 0xf3; }
  st.rip = 0x10; st.gpr[8] = 0x100;
  cpu.setRflags(0x23202); // VM, IOPL 3, IF
  cpu.stateChanged();
  assert.equal(cpu.v86, 1);
  cpu.run(100);
  assert.equal(cpu.state.gpr[0], 0x1234, "saved DS on the ring-0 stack");
  assert.equal(cpu.state.gpr[2] & 0xffff, 0, "DS was nulled in the handler");
  assert.equal(cpu.state.gpr[6] & 0xffff, 0x1234, "DS restored on return to v86");
  assert.equal(cpu.state.activityState, ActivityState.HLT);
  assert.equal(cpu.state.rip, 0x3001, "HLT in v86 mode (CPL 3) raised #GP to ring 0");
  assert.equal(cpu.v86, 0);
});

test("IRET to an outer privilege level nulls DS/ES/FS/GS that the new CPL may not use (SDM IRET, RETURN-TO-OUTER-PRIVILEGE-LEVEL)", () => {
  const rig = machine();
  const { mem, cpu } = rig;
  // ring 0: DS=ES=0x10 (data DPL0), FS=0x23 (data DPL3), GS=0x08 (readable code DPL0); IRET to 0x1b:0x1100
  writeBytes(mem, 0x1000, [
    0x66, 0xb8, 0x10, 0x00, 0x8e, 0xd8, 0x8e, 0xc0, 0x66, 0xb8, 0x23, 0x00, 0x8e, 0xe0, 0x66, 0xb8, 0x08, 0x00, 0x8e, 0xe8,
    0x6a, 0x23, 0x68, 0x00, 0x00, 0x06, 0x00, 0x6a, 0x02, 0x6a, 0x1b, 0x68, 0x00, 0x11, 0x00, 0x00, 0xcf,
  ]);
  // ring 3: mov %ds,%eax ; mov %es,%ebx ; mov %fs,%ecx ; mov %gs,%edx ; hlt (#GP -> ring-0 handler halts)
  writeBytes(mem, 0x1100, [0x8c, 0xd8, 0x8c, 0xc3, 0x8c, 0xe1, 0x8c, 0xea, 0xf4]);
  idtGate32(mem, 0x9000, 13, 0x08, 0x3000);
  writeBytes(mem, 0x3000, [0xf4]);
  const st = cpu.state;
  st.segSel[7] = 0x28; st.segBase[7] = 0xa000; st.segLimit[7] = 0x2067; st.segAr[7] = 0x8b;
  st.gpr[8] = 0x50000;
  cpu.stateChanged();
  cpu.run(100);
  assert.equal(st.rip, 0x3001, "reached the ring-3 HLT and its #GP handler");
  assert.deepEqual([st.gpr[0]! & 0xffff, st.gpr[6]! & 0xffff, st.gpr[2]! & 0xffff, st.gpr[4]! & 0xffff], [0, 0, 0x23, 0],
    "DS, ES (DPL 0 data) and GS (DPL 0 code) nulled; FS (DPL 3) kept");
});

test("CR4.VME: INT n follows the TSS redirection bitmap; PUSHF/IRET/STI virtualise IF through VIF (SDM Vol. 3 20.3.3)", () => {
  const rig = machine();
  const { mem, cpu } = rig;
  // v86 at 0x2000:0x0010: int 0x21 (redirected) ; pushf ; pop bx ; int 0x22 (not redirected, IOPL 0: #GP)
  writeBytes(mem, 0x20010, [0xcd, 0x21, 0x9c, 0x5b, 0xcd, 0x22]);
  writeBytes(mem, 0x84, [0x00, 0x00, 0x00, 0x40]);           // IVT[0x21] = 0x4000:0000
  writeBytes(mem, 0x40000, [0x9c, 0x58, 0xfb, 0xcf]);         // 8086 handler: pushf ; pop ax ; sti ; iret
  writeBytes(mem, 0xa066, [0x88, 0x00]);                      // I/O map base 0x88: redirection bitmap at 0x68
  writeBytes(mem, 0xa068 + (0x22 >>> 3), [1 << (0x22 & 7)]);  // vector 0x22 not redirected
  idtGate32(mem, 0x9000, 13, 0x08, 0x3000);
  writeBytes(mem, 0x3000, [0xf4]);
  const st = cpu.state;
  st.segSel[7] = 0x28; st.segBase[7] = 0xa000; st.segLimit[7] = 0x2067; st.segAr[7] = 0x8b;
  const sels = [0x1000, 0x2000, 0x3000, 0x1234, 0, 0];
  for (let s = 0; s < 6; s++) { st.segSel[s] = sels[s]!; st.segBase[s] = sels[s]! << 4; st.segLimit[s] = 0xffff; st.segAr[s] = s === 1 ? 0xfb : 0xf3; }
  st.rip = 0x10; st.gpr[8] = 0x100;
  st.cr4 |= 1; // VME
  cpu.setRflags(0xa0202); // VM, VIF, IF, IOPL 0
  cpu.stateChanged();
  cpu.run(100);
  assert.equal(st.gpr[0]! & 0x3200, 0x3000, "in the 8086 handler PUSHF shows IF = VIF = 0 and IOPL 3");
  assert.equal(st.gpr[6]! & 0x3200, 0x3200, "after IRET VIF is set again (image IF = 1)");
  assert.equal(st.rip, 0x3001, "INT 0x22 with its bitmap bit set and IOPL < 3 raised #GP to ring 0");
  assert.equal(cpu.getRflags() & 0x200, 0, "the #GP went through an interrupt gate");
});
