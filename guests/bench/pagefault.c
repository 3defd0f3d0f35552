/* Page-fault-heavy: CPL 3 writes one byte to every 4 KiB page of never-touched guest RAM, at
 * two sizes (8 MiB, then a separate 32 MiB). The guest maps RAM with 2 MiB pages, so the
 * faults are the hypervisor's (EPT violations on tskvm, host/shadow faults on kvm_pvm): one
 * per 4 KiB host page. The unit is one page touched.
 * tskvm-guest: lib=64 mem=0x3000000 expect=kvm */
#include "bench.h"

#define SMALL_BASE 0x00800000UL /* 8 MiB .. 16 MiB */
#define SMALL_SIZE 0x00800000UL
#define LARGE_BASE 0x01000000UL /* 16 MiB .. 48 MiB */
#define LARGE_SIZE 0x02000000UL

static long touch(long base_and_size)
{
	ulong size = (ulong)base_and_size;
	ulong base = size == SMALL_SIZE ? SMALL_BASE : LARGE_BASE;
	for (ulong a = base; a < base + size; a += 4096) *(volatile u8 *)a = 1;
	return (long)(size / 4096);
}

static void run(const char *phase, ulong size)
{
	begin(phase);
	long pages = user_call(touch, (long)size);
	end(phase);
	kv("units", (u64)pages);
	kvs("unit", "page");
	putc('\n');
}

int main(void)
{
	run("pf-8M", SMALL_SIZE);
	run("pf-32M", LARGE_SIZE);
	return 0;
}
