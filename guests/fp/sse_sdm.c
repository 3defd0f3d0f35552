/*
 * SSE exception rules this machine's kvm_pvm cannot judge, checked against the SDM: a misaligned
 * m128 operand of an arithmetic instruction is #GP(0) (Vol 1 11.4.1; kvm_pvm's emulator turns it
 * into #UD), an unmasked SIMD floating-point exception is #UD when CR4.OSXMMEXCPT = 0 (Vol 1
 * 11.5.3), and an SSE instruction is #UD when CR4.OSFXSR = 0 (Vol 3A 2.5; kvm_pvm emulates ring 0,
 * so the guest's CR4 does not reach its ring-3 code). The expectation is kept by hand (expect=sdm).
 * tskvm-guest: lib=64 expect=sdm
 */
#include "lib.h"

static volatile u64 res[4];

static long run_exc(long);

static ulong read_cr4(void) { ulong v; __asm__ volatile("mov %%cr4, %0" : "=r"(v)); return v; }
static void write_cr4(ulong v) { __asm__ volatile("mov %0, %%cr4" ::"r"(v)); }


int main(void)
{
	sse_enable();
	exc_hooks[6] = exc_record;
	exc_hooks[13] = exc_record;
	exc_hooks[19] = exc_record;
	user_call(run_exc, 0);
	check("addps misaligned m128: #GP", res[0], 13);
	write_cr4(read_cr4() & ~(1UL << 10));
	user_call(run_exc, 1);
	check("unmasked ZE without OSXMMEXCPT: #UD", res[1], 6);
	write_cr4(read_cr4() & ~(1UL << 9));
	user_call(run_exc, 2);
	check("addps without OSFXSR: #UD", res[2], 6);
	write_cr4(read_cr4() | (1UL << 9) | (1UL << 10));
	return failures ? 1 : 0;
}

#pragma GCC push_options
#pragma GCC target("sse4.2")

static long run_exc(long phase)
{
	static float buf[8] __attribute__((aligned(16))) = { 1, 2, 3, 4, 5, 6, 7, 8 };
	const char *mis = (const char *)buf + 4;
	if (phase == 0) {
		TRY_EXC("addps (%[p]), %%xmm1", : [p] "r"(mis) : "rax", "xmm1");
	} else if (phase == 1) {
		u32 mx = 0x1f80 & ~0x200, def = 0x1f80;
		float one = 1.0f, zero = 0.0f;
		__asm__ volatile("ldmxcsr %0" ::"m"(mx));
		TRY_EXC("divss %[z], %[o]", , [o] "+x"(one) : [z] "x"(zero) : "rax");
		__asm__ volatile("ldmxcsr %0" ::"m"(def));
	} else {
		TRY_EXC("addps %%xmm2, %%xmm1", : : "rax", "xmm1");
	}
	res[phase] = last_vector;
	return 0;
}

#pragma GCC pop_options
