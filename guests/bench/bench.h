/*
 * Shared by the bench guests in guests/bench/: the scale parameter the harness patches into
 * the image and the serial protocol bench/run.ts parses.
 *
 * Protocol (printed from ring 0; ring 3 cannot do port I/O on kvm_pvm):
 *   "@begin <phase>\n"          the timed region starts when this line's newline arrives
 *   "@end <phase> k=v ...\n"    it ends when this line's '@' arrives; k=v are analytic counts
 *                               (insns = retired instructions, units/unit = the workload's unit)
 */
#ifndef BENCH_H
#define BENCH_H
#include "lib.h"

/* "BNCHSCAL" then the scale word: bench/run.ts finds the marker in the flat image and writes
 * the scale (how many times the base amount of work to do) after it. Default 1. */
volatile u32 bench_param[3] __attribute__((aligned(4))) = { 0x48434e42, 0x4c414353, 1 };
#define SCALE ((u64)bench_param[2])

static void begin(const char *phase)
{
	puts("@begin ");
	puts(phase);
	putc('\n');
}

static void end(const char *phase)
{
	puts("@end ");
	puts(phase);
}

static void kv(const char *k, u64 v)
{
	putc(' ');
	puts(k);
	putc('=');
	putdec(v);
}

static void kvs(const char *k, const char *v)
{
	putc(' ');
	puts(k);
	putc('=');
	puts(v);
}

#endif
