/* test_seqrec.c: the sequence model's own checks: gradients of the whole
 * model (dropout on) against finite differences, the compact inference path
 * against the padded batch, top-K and influence, encoding store events,
 * checkpoints through memory, a file and the store, and the refusals of
 * bad checkpoints with their messages. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "model/seqrec.h"
#include "store/store.h"
#include "tests/test.h"

static uint64_t rng_state = 88172645463325252ull;
static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state % n);
}

static struct seqrec_config tiny_config(void)
{
	struct seqrec_config c;
	memset(&c, 0, sizeof c);
	c.V = 17; c.C = 8; c.NH = 2; c.L = 2; c.T = 6; c.F = 12;
	c.dropout = 0.25f;
	c.attn_dropout = 0.2f;
	c.act = SEQREC_ACT_GELU;
	c.features = SEQREC_FEAT_BIT(SEQREC_FEAT_ACTION) | SEQREC_FEAT_BIT(SEQREC_FEAT_GAP);
	c.scale_emb = 1;
	c.loss = SEQREC_LOSS_FULL;
	c.neg = 5;
	return c;
}

/* A random left-padded batch with next-item targets. */
static void random_batch(const struct seqrec_config *c, int B, int T, int32_t *in, int32_t *pad, int32_t *tg)
{
	int NI = seqrec_config_inputs(c);
	size_t N = (size_t)B * T;
	memset(in, 0, (size_t)NI * N * sizeof *in);
	memset(tg, 0, N * sizeof *tg);
	for (int b = 0; b < B; b++) {
		pad[b] = b == 0 ? 0 : (int)rnd((uint32_t)T);
		for (int t = pad[b]; t < T; t++) {
			in[(size_t)b * T + t] = 1 + (int32_t)rnd((uint32_t)c->V - 1);
			int slot = 1;
			for (int f = 0; f < SEQREC_FEAT_COUNT; f++)
				if (c->features & SEQREC_FEAT_BIT(f))
					in[(size_t)slot++ * N + (size_t)b * T + t] = (int32_t)rnd((uint32_t)seqrec_features[f].rows);
			tg[(size_t)b * T + t] = 1 + (int32_t)rnd((uint32_t)c->V - 1);
		}
	}
}

static double loss_at(struct seqrec *m, const struct seqrec_batch *bt)
{
	double loss;
	seqrec_zero_grad(m);
	CHECK_OK(seqrec_forward(m, bt, 1, &loss));
	return loss;
}

/* Every parameter tensor: a few entries, central differences in float32
 * with dropout on (its masks are a function of the seed, so the loss is a
 * smooth function of the parameters for a fixed seed). */
static void test_finite_differences(struct kern *k, enum seqrec_loss lossk, enum seqrec_block block)
{
	struct seqrec_config c = tiny_config();
	c.loss = lossk;
	c.block = block;
	int B = 3, T = c.T, NI = seqrec_config_inputs(&c);
	struct seqrec *m;
	CHECK_OK(seqrec_new(&m, &c, k, B));
	CHECK_OK(seqrec_train_alloc(m));
	seqrec_init(m, 7, 0.3f);
	size_t N = (size_t)B * T;
	int32_t *in = calloc((size_t)NI * N, sizeof *in), pad[3], *tg = calloc(N, sizeof *tg);
	random_batch(&c, B, T, in, pad, tg);
	struct seqrec_batch bt = { B, T, in, pad, tg, 12345, 0 };

	seqrec_zero_grad(m);
	double loss0;
	CHECK_OK(seqrec_forward(m, &bt, 1, &loss0));
	CHECK_OK(seqrec_backward(m));
	CHECK_EQ(seqrec_backward(m), -EINVAL);  /* the loss gradient was consumed */
	float *g = malloc(m->nparams * sizeof *g);
	memcpy(g, m->grad_mem, m->nparams * sizeof *g);

	double worst = 0.0;
	const char *worst_name = "";
	for (int ti = 0; ti < m->ntensors; ti++) {
		const struct seqrec_tensor *t = &m->tensors[ti];
		for (int trial = 0; trial < 6; trial++) {
			size_t i = t->off + rnd((uint32_t)t->n);
			/* rows of tables that this batch never reads have zero gradient: pick used ones too */
			float save = m->param_mem[i], h = 1e-2f;
			m->param_mem[i] = save + h;
			double lp = loss_at(m, &bt);
			m->param_mem[i] = save - h;
			double lm = loss_at(m, &bt);
			m->param_mem[i] = save;
			double fd = (lp - lm) / (2.0 * h), an = g[i];
			double err = fabs(fd - an) / fmax(1e-2, fabs(fd) + fabs(an));
			if (err > worst) {
				worst = err;
				worst_name = t->name;
			}
			if (err > 5e-2) {
				fprintf(stderr, "%s[%zu]: analytic %.6g, finite difference %.6g\n", t->name, i - t->off, an, fd);
				exit(1);
			}
		}
	}
	printf("finite differences (%s loss, %s block, dropout %.2f, attention dropout %.2f): worst relative error %.3g in %s\n",
	       lossk == SEQREC_LOSS_FULL ? "full" : "sampled", block == SEQREC_BLOCK_SASREC ? "sasrec" : "pre-LN",
	       (double)c.dropout, (double)c.attn_dropout, worst, worst_name);
	free(g);
	free(in);
	free(tg);
	seqrec_free(m);
}

/* The compact inference path (one sequence of n events) gives the padded
 * batch's last hidden state; top-K, scoring and influence agree with it. */
static void test_inference(struct kern *k)
{
	struct seqrec_config c = tiny_config();
	int B = 4, T = c.T, NI = seqrec_config_inputs(&c), C = c.C;
	struct seqrec *m;
	CHECK_OK(seqrec_new(&m, &c, k, B));
	seqrec_init(m, 3, 0.5f);
	size_t N = (size_t)B * T;
	int32_t *in = calloc((size_t)NI * N, sizeof *in), pad[4], *tg = calloc(N, sizeof *tg);
	random_batch(&c, B, T, in, pad, tg);
	pad[2] = T - 1;  /* a one-event row */
	struct seqrec_batch bt = { B, T, in, pad, NULL, 0, 0 };
	CHECK_OK(seqrec_forward(m, &bt, 0, NULL));
	float *hb = malloc(N * C * sizeof *hb);
	memcpy(hb, seqrec_hidden(m), N * C * sizeof *hb);

	for (int b = 0; b < B; b++) {
		int n = T - pad[b];
		if (n == 0)
			continue;
		int32_t one[64];
		for (int s = 0; s < NI; s++)
			for (int t = 0; t < n; t++)
				one[s * n + t] = in[(size_t)s * N + (size_t)b * T + pad[b] + t];
		float h[8];
		CHECK_OK(seqrec_user_repr(m, one, n, h));
		for (int j = 0; j < C; j++)
			CHECK(fabsf(h[j] - hb[((size_t)b * T + T - 1) * C + j]) < 1e-4f);

		float w[8], sum = 0.0f;
		CHECK_OK(seqrec_influence(m, n, w));
		for (int t = 0; t < n; t++) {
			CHECK(w[t] >= 0.0f);
			sum += w[t];
		}
		CHECK(fabsf(sum - 1.0f) < 1e-4f);

		/* top-K against a full sort of the scores */
		uint32_t items[16], excl[2] = { 3, 5 };
		float sc[16], all[17];
		int got;
		CHECK_OK(seqrec_topk(m, h, 16, excl, 2, items, sc, &got));
		CHECK_EQ(got, c.V - 1 - 2);
		int32_t cand[16];
		for (int i = 0; i < 16; i++)
			cand[i] = i + 1;
		CHECK_OK(seqrec_score(m, h, cand, 16, all + 1));
		for (int i = 0; i < got; i++) {
			CHECK(items[i] != 0 && items[i] != 3 && items[i] != 5);
			CHECK(fabsf(sc[i] - all[items[i]]) < 1e-5f);
			if (i > 0)
				CHECK(sc[i] <= sc[i - 1]);
		}
		CHECK_OK(seqrec_topk(m, h, 3, excl, 2, items, sc, &got));
		CHECK_EQ(got, 3);
		int32_t bad = 0;
		CHECK_EQ(seqrec_score(m, h, &bad, 1, sc), -EINVAL);
	}
	/* out-of-range inputs are refused before any kernel runs */
	int32_t save = in[0];
	in[0] = c.V;
	CHECK_EQ(seqrec_forward(m, &bt, 0, NULL), -EINVAL);
	in[0] = save;
	in[N] = 256;  /* the action feature has 256 rows */
	CHECK_EQ(seqrec_forward(m, &bt, 0, NULL), -EINVAL);
	printf("inference: compact path = padded batch, top-K, scores and influence agree\n");
	free(hb);
	free(in);
	free(tg);
	seqrec_free(m);
}

static void test_encode(void)
{
	struct seqrec_config c = tiny_config();
	int B = 2, T = c.T, NI = seqrec_config_inputs(&c);
	size_t N = (size_t)B * T;
	int32_t in[3 * 2 * 6], pad;
	int used;
	struct store_event ev[8];
	memset(ev, 0, sizeof ev);
	for (int i = 0; i < 8; i++) {
		ev[i].item = (uint32_t)(i + 1);
		ev[i].ts = 1000 + 100 * i;
		ev[i].action = (uint8_t)i;
	}
	ev[6].item = 99;  /* unknown to the model (V = 17): left out */
	CHECK_EQ(NI, 3);
	memset(in, 0x7f, sizeof in);
	seqrec_encode_events(&c, ev, 8, in, B, T, 1, &pad, &used);
	CHECK_EQ(pad, 0);
	CHECK_EQ(used, 6);
	/* the last six known events: items 2,3,4,5,6,8 */
	int want[6] = { 2, 3, 4, 5, 6, 8 };
	for (int t = 0; t < 6; t++) {
		CHECK_EQ(in[T + t], want[t]);
		CHECK_EQ(in[N + T + t], want[t] - 1);   /* action */
	}
	/* gap of 100 s: 2 + floor(log2(100)) = 8; after the skipped event 200 s: 9 */
	CHECK_EQ(in[2 * N + T + 0], 8);
	CHECK_EQ(in[2 * N + T + 5], 9);
	seqrec_encode_events(&c, ev, 2, in, B, T, 0, &pad, &used);
	CHECK_EQ(pad, 4);
	CHECK_EQ(used, 2);
	CHECK_EQ(in[0], 0);
	CHECK_EQ(in[4], 1);
	CHECK_EQ(in[5], 2);
	CHECK_EQ(in[2 * N + 4], 0);  /* the first event has no gap */
	struct store_event e = { .ts = -1 };
	CHECK_EQ(seqrec_features[SEQREC_FEAT_HOUR].index(&e, NULL), 23);
	CHECK_EQ(seqrec_features[SEQREC_FEAT_WEEKDAY].index(&e, NULL), 3);  /* 1969-12-31: Wednesday */
	CHECK_EQ(seqrec_feature_by_name("gap"), SEQREC_FEAT_GAP);
	CHECK_EQ(seqrec_feature_by_name("nope"), -ENOENT);
	printf("encoding store events: ok\n");
}

/* seqrec_user_repr_events = encoding + the compact forward pass */
static void test_repr_events(struct kern *k)
{
	struct seqrec_config c = tiny_config();
	struct seqrec *m;
	CHECK_OK(seqrec_new(&m, &c, k, 1));
	seqrec_init(m, 9, 0.3f);
	struct store_event ev[9];
	memset(ev, 0, sizeof ev);
	for (int i = 0; i < 9; i++) {
		ev[i].item = (uint32_t)(3 + i);
		ev[i].ts = 50 * i * i;
		ev[i].action = (uint8_t)(i % 3);
	}
	int32_t in[3 * 6], pad;
	int used;
	seqrec_encode_events(&c, ev, 9, in, 1, c.T, 0, &pad, &used);
	CHECK_EQ(pad, 0);
	float h1[8], h2[8];
	CHECK_OK(seqrec_user_repr(m, in, c.T, h1));
	CHECK_OK(seqrec_user_repr_events(m, ev, 9, h2, &used));
	CHECK_EQ(used, c.T);
	CHECK(memcmp(h1, h2, sizeof h1) == 0);
	/* three events: the compact path over three positions */
	seqrec_encode_events(&c, ev, 3, in, 1, c.T, 0, &pad, &used);
	CHECK_EQ(pad, 3);
	struct seqrec_batch bt = { 1, c.T, in, &pad, NULL, 0, 0 };
	CHECK_OK(seqrec_forward(m, &bt, 0, NULL));
	memcpy(h1, seqrec_hidden(m) + (size_t)(c.T - 1) * c.C, sizeof h1);
	CHECK_OK(seqrec_user_repr_events(m, ev, 3, h2, &used));
	CHECK_EQ(used, 3);
	for (int j = 0; j < c.C; j++)
		CHECK(fabsf(h1[j] - h2[j]) < 1e-4f);
	ev[0].item = 0;
	CHECK_EQ(seqrec_user_repr_events(m, ev, 1, h2, &used), -ENODATA);
	seqrec_free(m);
	printf("user representation from events: ok\n");
}

static void expect_refusal(struct kern *k, const void *buf, size_t len, int err, const char *msg)
{
	struct seqrec *m = NULL;
	char why[256] = "";
	int r = seqrec_deserialize(&m, k, 1, buf, len, why, sizeof why);
	if (r != err || !strstr(why, msg)) {
		fprintf(stderr, "expected %d \"%s\", got %d \"%s\"\n", err, msg, r, why);
		exit(1);
	}
	CHECK(m == NULL);
	printf("  refused: %s\n", why);
}

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

static void test_checkpoints(struct kern *k)
{
	struct seqrec_config c = tiny_config();
	struct seqrec *m, *m2;
	char why[256];
	CHECK_OK(seqrec_new(&m, &c, k, 2));
	seqrec_init(m, 11, 0.1f);
	size_t len = seqrec_ckpt_size(m);
	CHECK_EQ(len, SEQREC_CKPT_HEADER + m->nparams * 4);
	uint8_t *buf = malloc(len), *bad = malloc(len + 8);
	CHECK_EQ(seqrec_serialize(m, buf, len - 1), -ENOSPC);
	CHECK_OK(seqrec_serialize(m, buf, len));

	CHECK_OK(seqrec_deserialize(&m2, k, 3, buf, len, why, sizeof why));
	CHECK(memcmp(&m2->cfg, &m->cfg, sizeof c) == 0);
	CHECK(memcmp(m2->param_mem, m->param_mem, m->nparams * 4) == 0);
	CHECK_EQ(m2->B, 3);
	seqrec_free(m2);
	struct seqrec_config c2;
	CHECK_OK(seqrec_ckpt_config(buf, len, &c2, why, sizeof why));
	CHECK_EQ(c2.V, c.V);

	printf("bad checkpoints:\n");
	expect_refusal(k, buf, 10, -EINVAL, "truncated: 10 bytes");
	memcpy(bad, buf, len);
	bad[0] = 'X';
	expect_refusal(k, bad, len, -EPROTO, "bad magic");
	memcpy(bad, buf, len);
	put32(bad + 8, 3);
	expect_refusal(k, bad, len, -EPROTO, "format version 3, expected 1");
	memcpy(bad, buf, len);
	put32(bad + 16, 0);  /* C */
	expect_refusal(k, bad, len, -EINVAL, "config out of range: C is 0");
	memcpy(bad, buf, len);
	put32(bad + 20, 3);  /* NH does not divide C = 8 */
	expect_refusal(k, bad, len, -EINVAL, "not a multiple of NH");
	memcpy(bad, buf, len);
	put32(bad + 44, 1u << 20);  /* unknown feature */
	expect_refusal(k, bad, len, -EINVAL, "features");
	memcpy(bad, buf, len);
	float nanv = NAN;
	memcpy(bad + 60, &nanv, 4);
	expect_refusal(k, bad, len, -EINVAL, "dropout");
	memcpy(bad, buf, len);
	put32(bad + 104, 5);
	expect_refusal(k, bad, len, -EINVAL, "config out of range: block is 5, expected 0 to 1");
	memcpy(bad, buf, len);
	put32(bad + 28, 0x80000000u);  /* T */
	expect_refusal(k, bad, len, -EINVAL, "config out of range: T is 2147483648");
	memcpy(bad, buf, len);
	put32(bad + 64, 5);
	expect_refusal(k, bad, len, -EINVAL, "parameter count 5");
	char msg[96];
	snprintf(msg, sizeof msg, "truncated: %zu bytes, expected %zu", len - 4, len);
	expect_refusal(k, buf, len - 4, -EINVAL, msg);
	memcpy(bad, buf, len);
	memset(bad + len, 0, 8);
	expect_refusal(k, bad, len + 8, -EINVAL, "8 bytes after the parameters");
	memcpy(bad, buf, len);
	bad[len - 1] ^= 1;
	expect_refusal(k, bad, len, -EINVAL, "checksum mismatch");
	memcpy(bad, buf, len);
	bad[110] = 1;
	expect_refusal(k, bad, len, -EINVAL, "config out of range: pos is 65536");
	memcpy(bad, buf, len);
	memcpy(bad + 112, &nanv, 4);
	expect_refusal(k, bad, len, -EINVAL, "config out of range: attn_dropout is nan");
	memcpy(bad, buf, len);
	bad[118] = 1;
	expect_refusal(k, bad, len, -EINVAL, "reserved header byte 118");

	/* a file */
	char *dir = test_tmpdir(), path[4200];
	snprintf(path, sizeof path, "%s/model.ckpt", dir);
	CHECK_OK(seqrec_save_file(m, path, why, sizeof why));
	CHECK_OK(seqrec_load_file(&m2, k, 1, path, why, sizeof why));
	CHECK(memcmp(m2->param_mem, m->param_mem, m->nparams * 4) == 0);
	seqrec_free(m2);
	FILE *f = fopen(path, "r+b");
	CHECK(f);
	CHECK(fseek(f, 200, SEEK_SET) == 0);
	CHECK(fputc(0x55, f) != EOF);
	fclose(f);
	CHECK_EQ(seqrec_load_file(&m2, k, 1, path, why, sizeof why), -EINVAL);
	CHECK(strstr(why, "model.ckpt: checksum mismatch"));
	printf("  refused: %s\n", why);
	CHECK_EQ(seqrec_load_file(&m2, k, 1, dir, why, sizeof why), -EINVAL);
	CHECK(strstr(why, "not a regular file"));

	/* the store: two versions, the second with its parent */
	struct store *st;
	char sdir[4200];
	snprintf(sdir, sizeof sdir, "%s/store", dir);
	struct store_options so = { 0, -1, 0 };
	CHECK_OK(store_open(&st, sdir, &so));
	CHECK_EQ(seqrec_load_store(&m2, k, 1, st, 0, NULL, why, sizeof why), -ENOENT);
	struct store_model_meta meta;
	memset(&meta, 0, sizeof meta);
	snprintf(meta.metrics, sizeof meta.metrics, "{\"ndcg@10\":0.1}");
	CHECK_OK(seqrec_save_store(m, st, &meta, why, sizeof why));
	CHECK_EQ(meta.version, 1);
	m->param_mem[5] += 1.0f;
	struct store_model_meta meta2;
	memset(&meta2, 0, sizeof meta2);
	meta2.parent = meta.version;
	CHECK_OK(seqrec_save_store(m, st, &meta2, why, sizeof why));
	CHECK_EQ(meta2.version, 2);
	struct store_model_meta got;
	CHECK_OK(seqrec_load_store(&m2, k, 1, st, 0, &got, why, sizeof why));
	CHECK_EQ(got.version, 2);
	CHECK_EQ(got.parent, 1);
	CHECK(strcmp(got.kind, "sasrec") == 0);
	CHECK(memcmp(m2->param_mem, m->param_mem, m->nparams * 4) == 0);
	seqrec_free(m2);
	CHECK_OK(seqrec_load_store(&m2, k, 1, st, 1, &got, why, sizeof why));
	CHECK(strcmp(got.metrics, "{\"ndcg@10\":0.1}") == 0);
	CHECK(m2->param_mem[5] != m->param_mem[5]);
	seqrec_free(m2);
	CHECK_EQ(seqrec_load_store(&m2, k, 1, st, 7, NULL, why, sizeof why), -ENOENT);
	store_close(st);
	test_rmtree(dir);
	printf("checkpoints: memory, file and store round trips ok\n");
	free(buf);
	free(bad);
	seqrec_free(m);
}

/* A few steps on one batch lower its loss (the optimizer moves downhill),
 * and the presets are valid. */
/* The initialisation schemes: scaled keeps N(0, std) with the blocks'
 * output projections at std / sqrt(2L); torch leaves them at std and draws
 * the attention's input projection from U(-b, b), b = sqrt(6 / 4C).  The
 * checks are on sample moments of tensors of thousands of entries. */
static void tensor_moments(const struct seqrec *m, const char *name, double *sd, double *absmax)
{
	for (int i = 0; i < m->ntensors; i++) {
		const struct seqrec_tensor *t = &m->tensors[i];
		if (strcmp(t->name, name))
			continue;
		double s2 = 0, mx = 0;
		for (size_t j = 0; j < t->n; j++) {
			double v = m->param_mem[t->off + j];
			s2 += v * v;
			mx = fabs(v) > mx ? fabs(v) : mx;
		}
		*sd = sqrt(s2 / (double)t->n);
		*absmax = mx;
		return;
	}
	CHECK(!"no such tensor");
}

static void test_init_schemes(struct kern *k)
{
	struct seqrec_config c = tiny_config();
	c.C = 32; c.NH = 2; c.L = 4; c.F = 64; c.V = 300;
	struct seqrec *m;
	double sd, mx, b = sqrt(6.0 / (4.0 * c.C));
	CHECK_OK(seqrec_new(&m, &c, k, 2));

	seqrec_init_scheme(m, 5, 0.02f, SEQREC_INIT_SCALED);
	tensor_moments(m, "qkvw", &sd, &mx);
	CHECK(fabs(sd - 0.02) < 0.002);
	tensor_moments(m, "attprojw", &sd, &mx);
	CHECK(fabs(sd - 0.02 / sqrt(2.0 * c.L)) < 0.001);
	tensor_moments(m, "fcprojw", &sd, &mx);
	CHECK(fabs(sd - 0.02 / sqrt(2.0 * c.L)) < 0.001);

	seqrec_init_scheme(m, 5, 0.02f, SEQREC_INIT_TORCH);
	tensor_moments(m, "qkvw", &sd, &mx);
	CHECK(mx <= b + 1e-6 && mx > 0.95 * b);          /* uniform: fills (-b, b) */
	CHECK(fabs(sd - b / sqrt(3.0)) < 0.05 * b);       /* its standard deviation */
	tensor_moments(m, "attprojw", &sd, &mx);
	CHECK(fabs(sd - 0.02) < 0.002);
	tensor_moments(m, "fcprojw", &sd, &mx);
	CHECK(fabs(sd - 0.02) < 0.002);
	tensor_moments(m, "wte", &sd, &mx);
	CHECK(fabs(sd - 0.02) < 0.002);
	CHECK(m->param_mem[m->params.wte - m->param_mem] == 0.0f);  /* padding row */
	tensor_moments(m, "ln1w", &sd, &mx);
	CHECK(sd == 1.0 && mx == 1.0);

	CHECK_EQ(seqrec_init_by_name("torch"), SEQREC_INIT_TORCH);
	CHECK_EQ(seqrec_init_by_name("scaled"), SEQREC_INIT_SCALED);
	CHECK_EQ(seqrec_init_by_name("xavier"), -ENOENT);
	CHECK(!strcmp(seqrec_init_name(SEQREC_INIT_TORCH), "torch"));
	seqrec_free(m);
	printf("initialisation schemes: ok (torch qkv bound %.4f)\n", b);
}

static void test_training_steps(struct kern *k)
{
	struct seqrec_config c = tiny_config();
	c.dropout = 0.0f;
	c.attn_dropout = 0.0f;
	int B = 4, T = c.T, NI = seqrec_config_inputs(&c);
	struct seqrec *m;
	CHECK_OK(seqrec_new(&m, &c, k, B));
	CHECK_OK(seqrec_train_alloc(m));
	seqrec_init(m, 5, 0.05f);
	size_t N = (size_t)B * T;
	int32_t *in = calloc((size_t)NI * N, sizeof *in), pad[4], *tg = calloc(N, sizeof *tg);
	random_batch(&c, B, T, in, pad, tg);
	struct seqrec_batch bt = { B, T, in, pad, tg, 1, 0 };
	struct seqrec_optim o;
	seqrec_optim_default(&o);
	o.lr = 1e-2f;
	o.warmup = 2;
	double first = 0, loss = 0;
	for (int s = 0; s < 30; s++) {
		seqrec_zero_grad(m);
		CHECK_OK(seqrec_forward(m, &bt, 1, &loss));
		CHECK_OK(seqrec_backward(m));
		CHECK_OK(seqrec_step(m, &o, NULL, NULL));
		if (s == 0)
			first = loss;
	}
	printf("30 AdamW steps on one batch: loss %.4f -> %.4f\n", first, loss);
	CHECK(loss < 0.5 * first);
	free(in);
	free(tg);
	seqrec_free(m);

	struct seqrec_config p;
	char why[256];
	CHECK_OK(seqrec_preset("small", &p));
	p.V = 3417;
	CHECK_OK(seqrec_config_check(&p, why, sizeof why));
	CHECK(p.C == 64 && p.L == 2 && p.NH == 1 && p.T == 200 && p.F == 64 && p.act == SEQREC_ACT_RELU);
	CHECK_OK(seqrec_preset("large", &p));
	p.V = 3417;
	CHECK_OK(seqrec_config_check(&p, why, sizeof why));
	CHECK_EQ(p.L, 8);
	CHECK_EQ(seqrec_preset("huge", &p), -ENOENT);
}

int main(void)
{
	struct kern *k;
	CHECK_OK(kern_cpu_new(&k, 2));
	test_encode();
	test_finite_differences(k, SEQREC_LOSS_FULL, SEQREC_BLOCK_PRELN);
	test_finite_differences(k, SEQREC_LOSS_SAMPLED, SEQREC_BLOCK_PRELN);
	test_finite_differences(k, SEQREC_LOSS_FULL, SEQREC_BLOCK_SASREC);
	test_inference(k);
	test_repr_events(k);
	test_checkpoints(k);
	test_training_steps(k);
	test_init_schemes(k);
	kern_free(k);
	printf("ok\n");
	return 0;
}
