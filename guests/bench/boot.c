/* Boot latency: prints one line as soon as main() runs (after guests/lib's 32-bit entry,
 * long-mode switch and IDT setup). bench/run.ts times createVm() to the first serial byte.
 * tskvm-guest: lib=64 mem=0x400000 expect=kvm */
#include "bench.h"

int main(void)
{
	puts("@boot\n");
	return 0;
}
