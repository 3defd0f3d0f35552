/*
 * String instructions: MOVS STOS LODS CMPS SCAS in every operand size with REP/REPE/REPNE,
 * both directions (DF), a zero count, and every address size the mode has (SDM Vol 1 7.3.9,
 * Vol 2B "REP/REPE/REPZ/REPNE/REPNZ"): 64-bit mode uses RSI/RDI/RCX or, with 0x67, ESI/EDI/ECX
 * (written zero-extended); 32-bit mode uses ESI/EDI/ECX or, with 0x67, SI/DI/CX (upper halves
 * kept, offsets wrapping at 64 KiB).
 * tskvm-guest: lib=32,64 expect=kvm
 */
#include "ref.h"

struct sregs { ulong si, di, cx, ax, fl; };

#define STR(name, insn)                                                                       \
	static void name(struct sregs *r)                                                     \
	{                                                                                     \
		ulong si = r->si, di = r->di, cx = r->cx, ax = r->ax, fl = r->fl;            \
		__asm__ volatile("push %[fl]\n\tpopf\n\t" insn "\n\tpushf\n\tpop %[fl]\n\tcld" \
				 : "+S"(si), "+D"(di), "+c"(cx), "+a"(ax), [fl] "+r"(fl)      \
				 : : "cc", "memory");                                          \
		r->si = si; r->di = di; r->cx = cx; r->ax = ax; r->fl = fl;                   \
	}
STR(rep_movsb, "rep movsb") STR(rep_movsw, "rep movsw") STR(rep_movsl, "rep movsl")
STR(rep_stosb, "rep stosb") STR(rep_stosw, "rep stosw") STR(rep_stosl, "rep stosl")
STR(lodsb, "lodsb") STR(lodsw, "lodsw") STR(lodsl, "lodsl")
STR(repe_cmpsb, "repe cmpsb") STR(repe_cmpsl, "repe cmpsl") STR(repne_scasb, "repne scasb")
STR(repne_scasw, "repne scasw")
#ifdef __x86_64__
STR(rep_movsq, "rep movsq") STR(rep_stosq, "rep stosq") STR(lodsq, "lodsq") STR(repe_cmpsq, "repe cmpsq")
STR(a32_rep_movsb, "addr32 rep movsb") STR(a32_repne_scasb, "addr32 repne scasb")
#else
STR(a16_rep_movsb, "addr16 rep movsb") STR(a16_rep_stosw, "addr16 rep stosw")
#endif

static u8 src[512] __attribute__((aligned(16)));
static u8 dst[512] __attribute__((aligned(16)));
static struct group g_movs, g_stos, g_lods, g_cmps, g_scas, g_zero, g_addr;

static void fill(u8 *p, unsigned n, unsigned seed)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (u8)(seed + i * 37 + (i >> 3));
}

static int same(const u8 *a, const u8 *b, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (a[i] != b[i])
			return 0;
	return 1;
}

static void check_regs(struct group *g, const struct sregs *r, ulong si, ulong di, ulong cx)
{
	group_check(g, r->si, r->di, r->cx, r->si ^ (r->di << 1) ^ (r->cx << 2), si ^ (di << 1) ^ (cx << 2), 0, 0);
}

static long run(long unused)
{
	(void)unused;
	struct sregs r;
	/* REP MOVS forward and backward in each size. */
	static void (*const movs[])(struct sregs *) = { rep_movsb, rep_movsw, rep_movsl,
#ifdef __x86_64__
		rep_movsq,
#endif
	};
	for (unsigned k = 0; k < sizeof movs / sizeof movs[0]; k++) {
		unsigned sz = 1u << k;
		for (int down = 0; down < 2; down++) {
			for (unsigned n = 1; n < 40; n += 7) {
				fill(src, sizeof src, n + k);
				fill(dst, sizeof dst, 200);
				ulong s0 = (ulong)(src + 64), d0 = (ulong)(dst + 64);
				/* Backward: start at the last element, so the same bytes are copied. */
				if (down) { s0 += (n - 1) * sz; d0 += (n - 1) * sz; }
				r = (struct sregs){ s0, d0, n, 0, 0x202 | (down ? FL_DF : 0) };
				movs[k](&r);
				long step = down ? -(long)(n * sz) : (long)(n * sz);
				check_regs(&g_movs, &r, s0 + step, d0 + step, 0);
				group_check(&g_movs, n, sz, down, same(src + 64, dst + 64, n * sz), 1, dst[63] == (u8)(200 + 63 * 37 + 7) , 1);
				group_check(&g_movs, n, sz, down, r.fl & FL_DF, down ? FL_DF : 0, 0, 0);
			}
		}
	}
	/* REP STOS: the low bytes of RAX repeated. */
	static void (*const stos[])(struct sregs *) = { rep_stosb, rep_stosw, rep_stosl,
#ifdef __x86_64__
		rep_stosq,
#endif
	};
	for (unsigned k = 0; k < sizeof stos / sizeof stos[0]; k++) {
		unsigned sz = 1u << k;
		fill(dst, sizeof dst, 1);
		ulong d0 = (ulong)(dst + 8);
		r = (struct sregs){ 0, d0, 11, (ulong)0x8877665544332211ull, 0x202 };
		stos[k](&r);
		check_regs(&g_stos, &r, 0, d0 + 11 * sz, 0);
		int ok = 1;
		for (unsigned i = 0; i < 11 * sz; i++)
			ok &= dst[8 + i] == (u8)(0x11 * (i % sz + 1));
		group_check(&g_stos, k, 0, 0, (u64)ok, 1, dst[8 + 11 * sz] == (u8)(1 + (8 + 11 * sz) * 37 + ((8 + 11 * sz) >> 3)), 1);
	}
	/* LODS: one element into the accumulator; the rest of RAX is kept for 8/16-bit. */
	static void (*const lods[])(struct sregs *) = { lodsb, lodsw, lodsl,
#ifdef __x86_64__
		lodsq,
#endif
	};
	for (unsigned k = 0; k < sizeof lods / sizeof lods[0]; k++) {
		unsigned sz = 1u << k;
		fill(src, 64, 5);
		u64 v = 0;
		for (unsigned i = 0; i < sz; i++)
			v |= (u64)src[16 + i] << (8 * i);
		ulong ax0 = (ulong)0xa5a5a5a5a5a5a5a5ull;
		for (int down = 0; down < 2; down++) {
			r = (struct sregs){ (ulong)(src + 16), 0, 7, ax0, 0x202 | (down ? FL_DF : 0) };
			lods[k](&r);
			/* 32-bit loads into EAX zero the upper half of RAX in 64-bit mode. */
			u64 want = sz == 1 ? (ax0 & ~0xffull) | v : sz == 2 ? (ax0 & ~0xffffull) | v : v;
			group_check(&g_lods, k, down, 0, r.ax, (ulong)want, r.si, (ulong)(src + 16) + (down ? -(long)sz : (long)sz));
			group_check(&g_lods, k, down, 1, r.cx, 7, 0, 0);
		}
	}
	/* REPE CMPS stops after the first difference; flags are those of that comparison. */
	for (unsigned at = 0; at < 20; at += 3) {
		fill(src, 64, 9);
		fill(dst, 64, 9);
		dst[at] ^= 0x81;
		r = (struct sregs){ (ulong)src, (ulong)dst, 32, 0, 0x202 };
		repe_cmpsb(&r);
		check_regs(&g_cmps, &r, (ulong)src + at + 1, (ulong)dst + at + 1, 32 - at - 1);
		u64 wf;
		ref_sub(src[at], dst[at], 0, 8, &wf);
		group_check(&g_cmps, at, src[at], dst[at], r.fl & FL_STATUS, wf, 0, 0);
		/* Dword compare of equal buffers: runs to the end, ZF=1. */
		r = (struct sregs){ (ulong)src + 32, (ulong)src + 32, 8, 0, 0x202 };
		repe_cmpsl(&r);
		check_regs(&g_cmps, &r, (ulong)src + 64, (ulong)src + 64, 0);
		group_check(&g_cmps, at, 0, 0, r.fl & FL_ZF, FL_ZF, 0, 0);
	}
#ifdef __x86_64__
	fill(src, 64, 3);
	fill(dst, 64, 3);
	dst[8 * 5 + 2] ^= 1;
	r = (struct sregs){ (ulong)src, (ulong)dst, 8, 0, 0x202 };
	repe_cmpsq(&r);
	check_regs(&g_cmps, &r, (ulong)src + 48, (ulong)dst + 48, 2);
#endif
	/* REPNE SCAS finds the first match of AL/AX. */
	for (unsigned at = 1; at < 30; at += 4) {
		fill(dst, 64, 0);
		for (unsigned i = 0; i < 64; i++)
			dst[i] = (u8)(i | 0x80);
		dst[at] = 0x42;
		r = (struct sregs){ 0, (ulong)dst, 50, 0x42, 0x202 };
		repne_scasb(&r);
		check_regs(&g_scas, &r, 0, (ulong)dst + at + 1, 50 - at - 1);
		group_check(&g_scas, at, 0, 0, r.fl & FL_STATUS, FL_ZF | FL_PF, 0, 0);
		/* Not found: runs out the count, flags from the last comparison. */
		dst[at] = 0x81;
		r = (struct sregs){ 0, (ulong)dst, 8, 0x4242, 0x202 | FL_DF };
		repne_scasw(&r);
		check_regs(&g_scas, &r, 0, (ulong)dst - 16, 0);
	}
	/* A zero count: nothing moves, no register or flag changes. */
	fill(dst, 64, 77);
	r = (struct sregs){ (ulong)src, (ulong)dst, 0, 0, 0x202 | FL_CF | FL_ZF };
	rep_movsb(&r);
	check_regs(&g_zero, &r, (ulong)src, (ulong)dst, 0);
	r = (struct sregs){ (ulong)src, (ulong)dst, 0, 0x55, 0x202 | FL_CF };
	repne_scasb(&r);
	group_check(&g_zero, 0, 0, 0, r.fl & FL_STATUS, FL_CF, r.di, (ulong)dst);
	/* Address size. */
#ifdef __x86_64__
	{
		fill(src, 64, 11);
		fill(dst, 64, 0);
		ulong hi = (ulong)0xdead000000000000ull;
		r = (struct sregs){ hi | (ulong)src, hi | (ulong)dst, hi | 5, 0, 0x202 };
		a32_rep_movsb(&r);
		/* ESI/EDI/ECX count and are written zero-extended. */
		check_regs(&g_addr, &r, (ulong)src + 5, (ulong)dst + 5, 0);
		group_check(&g_addr, 0, 0, 0, same(src, dst, 5), 1, dst[5], (u8)(5 * 37));
		dst[3] = 0x99;
		r = (struct sregs){ 0, hi | (ulong)dst, 0xffffffff00000010ull, 0x99, 0x202 };
		a32_repne_scasb(&r);
		check_regs(&g_addr, &r, 0, (ulong)dst + 4, 0x10 - 4);
	}
#else
	{
		/* SI/DI/CX only: the upper halves stay, offsets wrap within 64 KiB. */
		volatile u8 *low;
		__asm__("" : "=r"(low) : "0"(0)); /* physical address 0, hidden from the compiler */
		for (unsigned i = 0; i < 4; i++) {
			low[0xfffe + i > 0xffff ? i - 2 : 0xfffe + i] = (u8)(0x30 + i);
			low[0x7000 + i] = 0;
		}
		r = (struct sregs){ 0x12340000u | 0xfffe, 0x56780000u | 0x7000, 0xabcd0004u, 0, 0x202 };
		a16_rep_movsb(&r);
		check_regs(&g_addr, &r, 0x12340002u, 0x56787004u, 0xabcd0000u);
		int ok = 1;
		for (unsigned i = 0; i < 4; i++)
			ok &= low[0x7000 + i] == (u8)(0x30 + i);
		group_check(&g_addr, 0, 0, 0, (u64)ok, 1, 0, 0);
		r = (struct sregs){ 0, 0x9abc0000u | 0x7100, 0x00010003u, 0xbeef, 0x202 | FL_DF };
		a16_rep_stosw(&r);
		check_regs(&g_addr, &r, 0, 0x9abc0000u | (0x7100 - 6), 0x00010000u);
		group_check(&g_addr, 1, 0, 0, low[0x70fc] | (low[0x70fd] << 8), 0xbeef, low[0x7101], 0xbe);
	}
#endif
	return 0;
}

int main(void)
{
	g_movs.name = "rep movs (both directions, all sizes)";
	g_stos.name = "rep stos";
	g_lods.name = "lods";
	g_cmps.name = "repe cmps";
	g_scas.name = "repne scas";
	g_zero.name = "zero count";
#ifdef __x86_64__
	g_addr.name = "32-bit address size (0x67) in 64-bit mode";
#else
	g_addr.name = "16-bit address size (0x67) in 32-bit mode";
#endif
	RUN_CHECKS(run);
	group_print(&g_movs);
	group_print(&g_stos);
	group_print(&g_lods);
	group_print(&g_cmps);
	group_print(&g_scas);
	group_print(&g_zero);
	group_print(&g_addr);
	return 0;
}
