/* Memory-bound pointer chase at CPL 3 over a 32 MiB working set: one node per 256 bytes,
 * visited in a single-cycle order that jumps across pages (TLB and cache pressure). The ring
 * is built at CPL 3 too (untimed), so kvm_pvm does not emulate it.
 * tskvm-guest: lib=64 mem=0x3000000 expect=kvm */
#include "bench.h"

#define AREA_BASE 0x01000000UL /* 16 MiB: above the image */
#define AREA_SIZE 0x02000000UL /* 32 MiB */
#define NODE 256UL
#define NODES (AREA_SIZE / NODE)
#define STEP 0x9e3779UL /* odd: k * STEP mod NODES (a power of two) visits every node once */
#define LOADS_PER_SCALE 1000000ULL
#define INSNS_PER_LOAD 3

static long build(long unused)
{
	(void)unused;
	ulong cur = 0;
	for (ulong k = 0; k < NODES; k++) {
		ulong next = ((k + 1) * STEP) & (NODES - 1);
		*(volatile ulong *)(AREA_BASE + cur * NODE) = AREA_BASE + next * NODE;
		cur = next;
	}
	return 0;
}

static long chase(long loads)
{
	ulong p = AREA_BASE;
	__asm__ volatile(
		"1:\n\t"
		"mov (%[p]), %[p]\n\t"
		"dec %[n]\n\t"
		"jnz 1b\n\t"
		: [p] "+r"(p), [n] "+r"(loads)
		:
		: "cc", "memory");
	return (long)p;
}

int main(void)
{
	u64 loads = LOADS_PER_SCALE * SCALE;
	user_call(build, 0);
	begin("mem");
	long p = user_call(chase, (long)loads);
	end("mem");
	kv("insns", loads * INSNS_PER_LOAD);
	kv("units", loads);
	kvs("unit", "load");
	kv("check", ((u64)p - AREA_BASE) / NODE);
	putc('\n');
	return 0;
}
