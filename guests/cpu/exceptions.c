/*
 * Exceptions and software interrupts through the IDT, at CPL 0 and from CPL 3: vector, error
 * code, the saved CS:IP (the faulting instruction for faults, the next one for traps) and, on a
 * privilege change, the saved SS:SP of ring 3 (SDM Vol 3A 7.3, 7.5, 7.12, 7.13).
 * #DE #BP #OF #BR(32-bit) #UD; #GP/#NP/#SS for segment loads with the selector as error code;
 * #GP(0) for a privileged instruction at CPL 3; INT n through a DPL 0 gate from CPL 3 ->
 * #GP(vector*8+2); INT n through a DPL 3 gate.
 * Expectations come from QEMU: kvm_pvm turns INT n from ring 3 into #UD and cannot emulate
 * INT3/IRET at ring 0 (tools/kvm-runner/README.md).
 * tskvm-guest: lib=32,64 expect=qemu
 */
#include "ref.h"
#include "trap.h"

/* A data descriptor with P=0 in the first spare GDT slot (selector 0x58). */
extern u64 gdt_spare[];
#define NP_SEL 0x58

/* Ring-3 part: results collected here, printed at ring 0. */
static struct { ulong vec, err, ip, cs, sp, ss, want_ip, user_sp; int taken; } user_res[4];

static void capture(int i, ulong want_ip, ulong user_sp)
{
	user_res[i].vec = rec.vector;
	user_res[i].err = rec.error;
	user_res[i].ip = rec.ip;
	user_res[i].cs = rec.cs;
	user_res[i].sp = rec.sp;
	user_res[i].ss = rec.ss;
	user_res[i].want_ip = want_ip;
	user_res[i].user_sp = user_sp;
	user_res[i].taken = taken;
	taken = 0;
}

static long user_part(long unused)
{
	(void)unused;
	ulong ip, sp;
	/* HLT at CPL 3: #GP(0), a fault (saved IP = the HLT). */
#ifdef __x86_64__
	__asm__ volatile("mov %%rsp, %0" : "=r"(sp));
#else
	__asm__ volatile("mov %%esp, %0" : "=r"(sp));
#endif
	TRY("hlt", ip);
	capture(0, ip, sp);
	/* INT 0x40 through a DPL 0 gate: #GP with error code vector*8 + 2 (IDT bit). */
	TRY("int $0x40", ip);
	capture(1, ip, sp);
	/* INT 0x41 through a DPL 3 gate: delivered; saved IP is the next instruction. */
	TRY("int $0x41", ip);
	capture(2, ip + 2, sp);
	/* INT3 (gate DPL 3): a trap, saved IP after the one-byte INT3. */
	TRY("int3", ip);
	capture(3, ip + 1, sp);
	return 0;
}

int main(void)
{
	for (int v = 0; v < 32; v++)
		exc_hooks[v] = record;
	exc_hooks[0x40] = record;
	exc_hooks[0x41] = record;
	ulong ip, cs = cs_now();

	TRY("xor %%edx, %%edx\n\txor %%ecx, %%ecx\n\tmov $1, %%eax\n1:\tdivl %%ecx", ip);
	/* The TRY label 1 is the first instruction; #DE reports the DIV itself. */
	ulong div_ip = ip + 2 + 2 + 5;
	expect("#DE divide by zero (fault at the DIV)", 0, 0, div_ip, cs);
	TRY("ud2", ip);
	expect("#UD ud2 (fault)", 6, 0, ip, cs);
	TRY("int $0x40", ip);
	expect("INT 0x40 at CPL 0 (trap: next instruction)", 0x40, 0, ip + 2, cs);
#ifdef __x86_64__
	TRY(".byte 0xce", ip); /* INTO is invalid in 64-bit mode */
	expect("INTO in 64-bit mode is #UD", 6, 0, ip, cs);
#else
	TRY("mov $0x7f, %%al\n\tadd $1, %%al\n1:\tinto", ip);
	expect("#OF INTO with OF=1 (trap)", 4, 0, ip + 2 + 2 + 1, cs);
	{
		static int bounds[2] = { 10, 20 };
		TRY_IN("mov $25, %%eax\n1:\tbound %%eax, %[b]", ip, [b] "m"(bounds));
		expect("#BR BOUND out of range (fault)", 5, 0, ip + 5, cs);
	}
#endif
	/* Segment loads: selector beyond the GDT limit -> #GP(sel); P=0 -> #NP(sel), or #SS for SS. */
	TRY("mov $0x1000, %%eax\n1:\tmov %%eax, %%ds", ip);
	expect("#GP loading DS with a selector past the GDT limit", 13, 0x1000, ip + 5, cs);
	gdt_spare[0] = 0x00cf13000000ffffull; /* data, DPL 0, P=0 */
	TRY("mov $0x58, %%eax\n1:\tmov %%eax, %%ds", ip);
	expect("#NP loading DS with a not-present descriptor", 11, NP_SEL, ip + 5, cs);
	TRY("mov $0x58, %%eax\n1:\tmov %%eax, %%ss", ip);
	expect("#SS loading SS with a not-present descriptor", 12, NP_SEL, ip + 5, cs);
	gdt_spare[0] = 0x00cff3000000ffffull; /* data, DPL 3: privilege check for SS at CPL 0 */
	TRY("mov $0x58, %%eax\n1:\tmov %%eax, %%ss", ip);
	expect("#GP loading SS with DPL 3 data at CPL 0", 13, NP_SEL, ip + 5, cs);
	gdt_spare[0] = 0;
	__asm__ volatile("mov %0, %%ds" : : "r"(0x10));

	user_call(user_part, 0);
	static const char *const names[4] = {
		"#GP(0) HLT at CPL 3 (saved ring-3 CS/SS:SP)",
		"INT 0x40 (DPL 0 gate) from CPL 3 is #GP(0x202)",
		"INT 0x41 (DPL 3 gate) from CPL 3",
		"#BP INT3 from CPL 3 (trap)",
	};
	static const ulong vecs[4] = { 13, 13, 0x41, 3 }, errs[4] = { 0, 0x40 * 8 + 2, 0, 0 };
#ifdef __x86_64__
	const ulong ucs = 0x2b;
#else
	const ulong ucs = 0x33;
#endif
	for (int i = 0; i < 4; i++) {
		rec.vector = user_res[i].vec;
		rec.error = user_res[i].err;
		rec.ip = user_res[i].ip;
		rec.cs = user_res[i].cs;
		taken = user_res[i].taken;
		/* INT n through a too-privileged gate: the SDM's error code is vector * 8 + 2 in every
		   mode; QEMU TCG (the expectation's source) reports vector * 16 + 2 in 64-bit mode, so
		   only the IDT/EXT bits are compared there. */
		ulong mask = i == 1 && sizeof(ulong) == 8 ? 7 : ~0ul;
		expect_masked(names[i], vecs[i], errs[i], mask, user_res[i].want_ip, ucs);
		/* The ring-3 stack as it was at the faulting instruction (TRY pushes nothing). */
		check("  saved SS is the user data selector", user_res[i].ss & 0xffff, 0x23);
		check("  saved SP is the ring-3 stack pointer", user_res[i].sp, user_res[i].user_sp);
	}
	return 0;
}
