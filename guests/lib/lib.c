/* Serial output, checks and the exception dispatcher for library-based guests (lib.h). */
#include "lib.h"

int failures;
exc_hook_t exc_hooks[256];
volatile ulong last_vector, last_error, last_ip, exc_count, skip_len, resume_ip;

void putc(char c) { outb(SERIAL_PORT, (u8)c); }

void puts(const char *s)
{
	while (*s)
		putc(*s++);
}

void puthex(u64 v, int digits)
{
	for (int i = digits - 1; i >= 0; i--)
		putc("0123456789abcdef"[(v >> (i * 4)) & 0xf]);
}

void putdec(u64 v)
{
	char buf[24];
	int n = 0;
	do {
		buf[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		putc(buf[--n]);
}

void show(const char *name, u64 v)
{
	puts(name);
	puts(": ");
	puthex(v, 16);
	putc('\n');
}

void check(const char *name, u64 got, u64 want)
{
	if (got == want) {
		puts("ok ");
		puts(name);
		putc('\n');
		return;
	}
	failures++;
	puts("FAIL ");
	puts(name);
	puts(" got ");
	puthex(got, 16);
	puts(" want ");
	puthex(want, 16);
	putc('\n');
}

void guest_exit(int code)
{
	if (failures && !code)
		code = 1;
	puts(code ? "result: FAIL\n" : "result: PASS\n");
	outb(EXIT_PORT, (u8)code);
	for (;;)
		__asm__ volatile("hlt");
}

void exc_record(struct frame *f)
{
	last_vector = f->vector;
	last_error = f->error;
	last_ip = f->ip;
	exc_count++;
	if (resume_ip) {
		f->ip = resume_ip;
		resume_ip = 0;
	} else {
		f->ip += skip_len;
	}
}

void exc_dispatch(struct frame *f)
{
	if (f->vector < 256 && exc_hooks[f->vector]) {
		exc_hooks[f->vector](f);
		return;
	}
	puts("unhandled exception vector ");
	putdec(f->vector);
	puts(" error ");
	puthex(f->error, 8);
	puts(" ip ");
	puthex(f->ip, 16);
	puts(" cs ");
	puthex(f->cs, 4);
	putc('\n');
	failures++;
	guest_exit(2);
}

#ifndef __x86_64__
void set_intr_gate(u32 v, void *handler)
{
	struct { u16 limit; u32 base; } __attribute__((packed)) idtr;
	u16 cs;
	__asm__ volatile("sidt %0; mov %%cs, %1" : "=m"(idtr), "=r"(cs));
	u32 *g = (u32 *)(idtr.base + v * 8);
	g[0] = ((u32)cs << 16) | ((u32)handler & 0xffff);
	g[1] = ((u32)handler & 0xffff0000) | 0x8e00;
}
#endif
