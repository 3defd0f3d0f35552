/*
 * Reference semantics for self-checking CPU guests: results and the status flags the SDM
 * defines for them (Vol 1 Appendix A "EFLAGS Cross-Reference", Vol 2 per-instruction "Flags
 * Affected"), computed in plain C so the guest compares the hardware against the manual.
 * Also: a recorder for per-group results filled at CPL 3 and printed at CPL 0.
 */
#ifndef GUEST_REF_H
#define GUEST_REF_H
#include "lib.h"

static inline u64 ref_mask(int bits) { return bits == 64 ? ~0ull : (1ull << bits) - 1; }
static inline u64 ref_sign(u64 v, int bits) { return (v >> (bits - 1)) & 1; }

static inline u64 ref_szp(u64 r, int bits)
{
	u64 f = 0;
	r &= ref_mask(bits);
	if (!r)
		f |= FL_ZF;
	if (ref_sign(r, bits))
		f |= FL_SF;
	u8 p = (u8)r;
	p ^= p >> 4;
	p ^= p >> 2;
	p ^= p >> 1;
	if (!(p & 1))
		f |= FL_PF;
	return f;
}

/* a + b + cin */
static inline u64 ref_add(u64 a, u64 b, int cin, int bits, u64 *flags)
{
	u64 m = ref_mask(bits);
	a &= m;
	b &= m;
	u64 r = (a + b + (u64)cin) & m;
	int carry = bits == 64 ? (r < a || (cin && r == a)) : (int)((a + b + (u64)cin) >> bits);
	u64 f = ref_szp(r, bits);
	if (carry) f |= FL_CF;
	if (ref_sign((a ^ r) & (b ^ r), bits)) f |= FL_OF;
	if ((a ^ b ^ r) & 0x10) f |= FL_AF;
	*flags = f;
	return r;
}

/* a - b - cin */
static inline u64 ref_sub(u64 a, u64 b, int cin, int bits, u64 *flags)
{
	u64 m = ref_mask(bits);
	a &= m;
	b &= m;
	u64 r = (a - b - (u64)cin) & m;
	int borrow = a < b || (cin && a == b);
	u64 f = ref_szp(r, bits);
	if (borrow) f |= FL_CF;
	if (ref_sign((a ^ b) & (a ^ r), bits)) f |= FL_OF;
	if ((a ^ b ^ r) & 0x10) f |= FL_AF;
	*flags = f;
	return r;
}

/* Results of one group of checks, filled where the checks run (possibly CPL 3). */
struct group {
	const char *name;
	u32 cases, fails;
	u64 a, b, c, got, want, gotf, wantf; /* the first failure */
};

static inline void group_check(struct group *g, u64 a, u64 b, u64 c, u64 got, u64 want, u64 gotf, u64 wantf)
{
	g->cases++;
	if (got == want && gotf == wantf)
		return;
	if (!g->fails++) {
		g->a = a; g->b = b; g->c = c;
		g->got = got; g->want = want; g->gotf = gotf; g->wantf = wantf;
	}
}

static inline void group_print(const struct group *g)
{
	if (!g->fails) {
		puts("ok ");
		puts(g->name);
		puts(" (");
		putdec(g->cases);
		puts(" cases)\n");
		return;
	}
	failures++;
	puts("FAIL ");
	puts(g->name);
	puts(": ");
	putdec(g->fails);
	puts(" of ");
	putdec(g->cases);
	puts(", first a=");
	puthex(g->a, 16);
	puts(" b=");
	puthex(g->b, 16);
	puts(" c=");
	puthex(g->c, 2);
	puts(" got ");
	puthex(g->got, 16);
	puts("/");
	puthex(g->gotf, 3);
	puts(" want ");
	puthex(g->want, 16);
	puts("/");
	puthex(g->wantf, 3);
	putc('\n');
}

/* Run fn at CPL 3 where there is one (64-bit guests: native speed on kvm_pvm), else here. */
#ifdef __x86_64__
#define RUN_CHECKS(fn) user_call(fn, 0)
#else
#define RUN_CHECKS(fn) fn(0)
#endif

/* main() of a guest whose results are nsizes x nops groups (groups[s * nops + op]) named
 * "<op>/<bits>": name them, run the checks, print every group. */
#define SIZED_GROUPS_MAX_OPS 16
static inline int run_sized_groups(struct group *groups, int nsizes, int nops, const char *const *op_names,
				   long (*run)(long))
{
	static const char *const size_names[4] = { "/8", "/16", "/32", "/64" };
	static char names[4 * SIZED_GROUPS_MAX_OPS][12];
	if (nops > SIZED_GROUPS_MAX_OPS || nsizes > 4)
		return 1;
	for (int s = 0; s < nsizes; s++)
		for (int op = 0; op < nops; op++) {
			char *n = names[s * nops + op];
			int k = 0;
			for (const char *p = op_names[op]; *p; p++) n[k++] = *p;
			for (const char *p = size_names[s]; *p; p++) n[k++] = *p;
			n[k] = 0;
			groups[s * nops + op].name = n;
		}
	RUN_CHECKS(run);
	for (int i = 0; i < nsizes * nops; i++)
		group_print(&groups[i]);
	return 0;
}

/* Operands at every width's sign and carry boundaries (low nibble 0xf for AF), plus two mixed
 * patterns: 15 values, so a binary operation is 450 cases per size with both carry-ins. */
static const u64 ref_values[] = {
	0, 1, 0xf, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff,
	0x8000000000000000ull, 0xffffffffffffffffull, 0x123456789abcdef0ull,
};
#define REF_NVALUES (sizeof ref_values / sizeof ref_values[0])

#endif
