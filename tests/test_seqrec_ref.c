/* test_seqrec_ref.c: the sequence model against PyTorch, as llm.c's
 * test_gpt2.c: tests/data/seqrec_ref.bin (written by
 * model/reference/seqrec_ref.py, float64 PyTorch) holds tiny models, a batch,
 * the final hidden states, the loss, every parameter gradient and the
 * parameters after one clipped AdamW step; this test runs the C model on the
 * same parameters and batch and compares every tensor. */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "model/seqrec.h"
#include "tests/test.h"

/* |c - ref| <= ATOL + RTOL * max|ref| over the tensor.  The reference runs in
 * float64 and the C model in float32, so this is float32's accumulated error
 * over a few hundred operations, with headroom. */
#define RTOL 2e-5
#define ATOL 1e-6

struct reader {
	const uint8_t *p, *end;
};

static void rd(struct reader *r, void *dst, size_t n)
{
	if ((size_t)(r->end - r->p) < n) {
		fprintf(stderr, "seqrec_ref.bin: truncated\n");
		exit(1);
	}
	memcpy(dst, r->p, n);
	r->p += n;
}

static int failures;
static double worst_rel;
static char worst_name[96];

/* Compares one tensor, prints its line, remembers the worst. */
static void compare(const char *what, const char *name, const float *c, const float *ref, size_t n)
{
	double maxdiff = 0.0, scale = 0.0;
	size_t at = 0;
	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)c[i] - (double)ref[i]);
		if (!(d <= maxdiff)) {  /* NaN counts as worst */
			maxdiff = isnan(d) ? INFINITY : d;
			at = i;
		}
		if (fabs(ref[i]) > scale)
			scale = fabs(ref[i]);
	}
	double rel = maxdiff / (scale > 0 ? scale : 1.0);
	int ok = maxdiff <= ATOL + RTOL * scale;
	printf("  %-6s %-10s n=%-6zu max|ref|=%-10.4g max|diff|=%-10.3g rel=%-10.3g %s\n", what, name, n, scale,
	       maxdiff, rel, ok ? "ok" : "FAIL");
	if (!ok) {
		printf("         worst at %zu: C %.9g, reference %.9g\n", at, (double)c[at], (double)ref[at]);
		failures++;
	}
	if (rel > worst_rel) {
		worst_rel = rel;
		snprintf(worst_name, sizeof worst_name, "%s %s", what, name);
	}
}

static void run_case(struct kern *k, struct reader *r, int ci)
{
	int32_t hdr[16];
	float opt[8];
	rd(r, hdr, sizeof hdr);
	rd(r, opt, sizeof opt);

	struct seqrec_config cfg;
	memset(&cfg, 0, sizeof cfg);
	cfg.V = hdr[0]; cfg.C = hdr[1]; cfg.NH = hdr[2]; cfg.L = hdr[3]; cfg.T = hdr[4]; cfg.F = hdr[5];
	cfg.act = (enum seqrec_act)hdr[6];
	cfg.features = (uint32_t)hdr[7];
	cfg.scale_emb = hdr[8];
	cfg.block = (enum seqrec_block)hdr[13];
	cfg.pos = (enum seqrec_pos)hdr[14];
	cfg.dropout = 0.0f;
	cfg.loss = SEQREC_LOSS_FULL;
	int B = hdr[9], Tb = hdr[10], NI = hdr[11];
	size_t np = (size_t)hdr[12];
	char why[256] = "";
	if (seqrec_config_check(&cfg, why, sizeof why) < 0) {
		fprintf(stderr, "case %d: %s\n", ci, why);
		exit(1);
	}
	CHECK_EQ(NI, seqrec_config_inputs(&cfg));

	struct seqrec *m;
	CHECK_OK(seqrec_new(&m, &cfg, k, B));
	CHECK_EQ(m->nparams, np);
	CHECK_OK(seqrec_train_alloc(m));
	printf("case %d: V=%d C=%d NH=%d L=%d T=%d F=%d act=%s features=0x%x scale_emb=%d block=%s pos=%s B=%d T(batch)=%d, %zu parameters\n",
	       ci, cfg.V, cfg.C, cfg.NH, cfg.L, cfg.T, cfg.F, cfg.act == SEQREC_ACT_GELU ? "gelu" : "relu",
	       (unsigned)cfg.features, cfg.scale_emb, cfg.block == SEQREC_BLOCK_SASREC ? "sasrec" : "preln",
	       cfg.pos == SEQREC_POS_FIRST ? "first" : "last", B, Tb, np);

	size_t N = (size_t)B * Tb;
	int32_t *inputs = malloc((size_t)NI * N * sizeof *inputs), *pad = malloc((size_t)B * sizeof *pad);
	int32_t *targets = malloc(N * sizeof *targets);
	float *hidden = malloc(N * cfg.C * sizeof *hidden), *grads = malloc(np * sizeof *grads);
	float *after = malloc(np * sizeof *after);
	CHECK(inputs && pad && targets && hidden && grads && after);
	rd(r, m->param_mem, np * sizeof(float));
	rd(r, inputs, (size_t)NI * N * sizeof *inputs);
	rd(r, pad, (size_t)B * sizeof *pad);
	rd(r, targets, N * sizeof *targets);
	rd(r, hidden, N * cfg.C * sizeof *hidden);
	rd(r, grads, np * sizeof *grads);
	rd(r, after, np * sizeof *after);

	struct seqrec_batch bt = { B, Tb, inputs, pad, targets, 42, 0 };
	double loss;
	seqrec_zero_grad(m);
	CHECK_OK(seqrec_forward(m, &bt, 1, &loss));
	compare("hidden", "lnf", seqrec_hidden(m), hidden, N * cfg.C);
	float lossf = (float)loss;
	compare("loss", "xent", &lossf, &opt[6], 1);
	CHECK_OK(seqrec_backward(m));
	for (int i = 0; i < m->ntensors; i++)
		compare("grad", m->tensors[i].name, m->grad_mem + m->tensors[i].off, grads + m->tensors[i].off,
		        m->tensors[i].n);

	struct seqrec_optim o;
	seqrec_optim_default(&o);
	o.lr = o.lr_min = opt[0];
	o.beta1 = opt[1]; o.beta2 = opt[2]; o.eps = opt[3];
	o.weight_decay = opt[4];
	o.clip = opt[5];
	o.warmup = 0;
	o.total = 0;
	float gnorm, lr;
	CHECK_OK(seqrec_step(m, &o, &gnorm, &lr));
	CHECK(gnorm > o.clip);  /* the reference clips at half the norm */
	CHECK(fabsf(lr - opt[0]) <= 1e-9f);
	for (int i = 0; i < m->ntensors; i++)
		compare("step", m->tensors[i].name, m->param_mem + m->tensors[i].off, after + m->tensors[i].off,
		        m->tensors[i].n);

	/* the forward pass without train mode gives the same hidden states */
	CHECK_OK(seqrec_forward(m, &bt, 0, &loss));
	CHECK(isfinite(loss));

	free(inputs); free(pad); free(targets); free(hidden); free(grads); free(after);
	seqrec_free(m);
}

static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return buf;
}

int main(int argc, char **argv)
{
	char path[4096];
	const char *top = getenv("top_srcdir");
	if (argc > 1)
		snprintf(path, sizeof path, "%s", argv[1]);
	else
		snprintf(path, sizeof path, "%s/tests/data/seqrec_ref.bin", top && *top ? top : ".");
	size_t len;
	uint8_t *buf = slurp(path, &len);
	if (!buf) {
		perror(path);
		return 1;
	}
	struct reader r = { buf, buf + len };
	char magic[8];
	int32_t ncases;
	rd(&r, magic, 8);
	CHECK(memcmp(magic, "RSEQREF1", 8) == 0);
	rd(&r, &ncases, 4);
	CHECK(ncases >= 1 && ncases <= 16);

	/* two threads, as on the target machine, so the threaded paths run too */
	struct kern *k;
	CHECK_OK(kern_cpu_new(&k, 2));
	for (int c = 0; c < ncases; c++)
		run_case(k, &r, c);
	CHECK(r.p == r.end);
	kern_free(k);
	free(buf);
	printf("worst: %s, max|diff| / max|ref| = %.3g (tolerance %.0e relative)\n", worst_name, worst_rel, RTOL);
	if (failures) {
		printf("%d tensors differ from the PyTorch reference\n", failures);
		return 1;
	}
	printf("all tensors match the PyTorch reference\n");
	return 0;
}
