/* Integer loop with a known instruction count, run at CPL 3 (kvm_pvm runs ring 3 natively).
 * Eight instructions per iteration: ALU, shift, LEA, IMUL and a counted branch.
 * tskvm-guest: lib=64 mem=0x800000 expect=kvm */
#include "bench.h"

#define ITERS_PER_SCALE 1000000ULL
#define INSNS_PER_ITER 8

static long intloop(long iters)
{
	long acc = 0x12345, k = 0x9e3779b97f4a7c15;
	__asm__ volatile(
		"1:\n\t"
		"add %[k], %[a]\n\t"
		"xor %[n], %[a]\n\t"
		"rol $7, %[a]\n\t"
		"lea 1(%[a],%[k],2), %[k]\n\t"
		"imul $33, %[a], %[a]\n\t"
		"sub %[n], %[k]\n\t"
		"dec %[n]\n\t"
		"jnz 1b\n\t"
		: [a] "+r"(acc), [k] "+r"(k), [n] "+r"(iters)
		:
		: "cc");
	return acc ^ k;
}

int main(void)
{
	u64 iters = ITERS_PER_SCALE * SCALE;
	begin("int");
	long r = user_call(intloop, (long)iters);
	end("int");
	kv("insns", iters * INSNS_PER_ITER);
	kv("units", iters);
	kvs("unit", "iter");
	kv("check", (u64)r & 0xffff);
	putc('\n');
	return 0;
}
