/* cmd_model.c: recctl train, eval and recommend — the sequence model
 * trained, evaluated and queried in this process, on the store directly.
 * (The daemon serves the same model over its request interfaces.) */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "client/recctl.h"
#include "kernels/kernels.h"
#include "model/eval.h"
#include "model/finetune.h"
#include "model/seqrec.h"
#include "model/serve.h"
#include "model/train.h"

#define MODEL_K_MAX        1000   /* -k is bounded */
#define MODEL_THREADS_MAX  256
#define MODEL_EXPLAIN_TOP  5      /* history events shown by --explain */

static int opt_float(const char *cmd, const char *opt, const char *s, double lo, double hi, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= lo && v <= hi)) {
		recctl_err("%s: %s: '%s' is not a number from %g to %g", cmd, opt, s, lo, hi);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

/* --features action,hour,...: the enabled input features. */
static int opt_features(const char *s, uint32_t *out)
{
	char buf[256], *save = NULL;
	uint32_t f = 0;
	if (strlen(s) >= sizeof buf) {
		recctl_err("train: --features: list too long");
		return -EINVAL;
	}
	strcpy(buf, s);
	if (strcmp(buf, "none") == 0) {
		*out = 0;
		return 0;
	}
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int id = seqrec_feature_by_name(t);
		if (id < 0) {
			recctl_err("train: --features: unknown feature '%s' (known: action, hour, weekday, gap, device)", t);
			return -EINVAL;
		}
		f |= SEQREC_FEAT_BIT(id);
	}
	*out = f;
	return 0;
}

static int model_kern(int threads, struct kern **k)
{
	int r = kern_cpu_new(k, threads);
	if (r < 0)
		recctl_err("cannot start the CPU kernels: %s", strerror(-r));
	return r;
}

/* --- train ------------------------------------------------------------------ */

/* The process's peak resident set (VmHWM), in MiB; 0 when unknown. */
static double peak_rss_mb(void)
{
	char line[256];
	double kb = 0;
	FILE *f = fopen("/proc/self/status", "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmHWM: %lf kB", &kb) == 1)
			break;
	fclose(f);
	return kb / 1024.0;
}

struct train_view {
	int tty, quiet;
};

static int train_progress(const struct seqrec_progress *p, void *arg)
{
	const struct train_view *tv = arg;
	if (tv->quiet)
		return 0;
	if (tv->tty && !p->end_of_epoch) {
		/* A live bar over the epoch's steps, redrawn in place. */
		int64_t per = p->epochs ? p->steps / p->epochs : 0;
		int64_t in = per ? p->step - (int64_t)(p->epoch - 1) * per : 0;
		int w = 30, fill = per ? (int)(w * in / per) : 0;
		if (fill > w)
			fill = w;
		fprintf(stderr, "\repoch %3d/%d [%.*s%*s] loss %.4f  %.0f ex/s  ETA %.0f s   ",
		        p->epoch, p->epochs, fill, "##############################", w - fill, "",
		        p->loss, p->examples_per_s, p->eta_s);
		return 0;
	}
	if (!p->end_of_epoch)
		return 0;
	if (tv->tty)
		fputc('\r', stderr);
	fprintf(stderr, "epoch %3d/%d  loss %.4f  %.0f ex/s  lr %.2g  %.0f s", p->epoch, p->epochs,
	        p->loss, p->examples_per_s, p->lr, p->elapsed_s);
	if (!isnan(p->val_ndcg10))
		fprintf(stderr, "  valid NDCG@10 %.4f (best %.4f at epoch %d)", p->val_ndcg10, p->best_ndcg10, p->best_epoch);
	fprintf(stderr, "  ETA %.0f s%s\n", p->eta_s, tv->tty ? "          " : "");
	return 0;
}

static json_object *metrics_json(const struct seqrec_metrics *mt)
{
	char buf[1024];
	seqrec_metrics_json(mt, buf, sizeof buf);
	return json_tokener_parse(buf);
}

static void metrics_print(const struct seqrec_metrics *mt)
{
	printf("%s, %s split, %llu users:\n", mt->protocol, mt->split, (unsigned long long)mt->users);
	printf("  HR@10 %.4f  NDCG@10 %.4f  HR@50 %.4f  NDCG@50 %.4f  HR@200 %.4f  NDCG@200 %.4f  MRR %.4f\n",
	       mt->hr10, mt->ndcg10, mt->hr50, mt->ndcg50, mt->hr200, mt->ndcg200, mt->mrr);
}

static void train_usage(FILE *f)
{
	fprintf(f,
	        "Usage: recctl [-d DIR] [--json] train [OPTIONS]\n"
	        "Trains the sequence model on every user's events in the store (leave-one-out:\n"
	        "each user's last event is held out for testing, the one before for validation),\n"
	        "keeps the epoch with the best validation NDCG@10, evaluates it on the test\n"
	        "targets (full ranking) and stores it as a new model version.\n"
	        "\n"
	        "  --preset NAME      small (SASRec-sized, default) or large (8 blocks)\n"
	        "  --dim C, --blocks L, --heads NH, --maxlen T, --dropout P   override the preset\n"
	        "  --ffn F            feed-forward width (default: the preset's ratio to C times C)\n"
	        "  --attn-dropout P   dropout on the attention probabilities (default: the preset's;\n"
	        "                     follows --dropout where the preset uses it)\n"
	        "  --block W          block wiring: preln (GPT-2's) or sasrec (SASRec's reference code)\n"
	        "  --positions P      position rows counted from the window's first event (first,\n"
	        "                     the small preset's, as SASRec+) or back from the latest (last)\n"
	        "  --features LIST    input features besides the item: action,hour,weekday,gap,device\n"
	        "                     or none (default: action)\n"
	        "  --epochs N         at most N epochs (default 100)\n"
	        "  --patience N       stop after N validations without improvement (default 10; 0 never)\n"
	        "  --batch N          sequences per step (default 128)\n"
	        "  --lr X             peak learning rate (default 0.001)\n"
	        "  --lr-min X         decay to X along a cosine over the epochs (default: constant)\n"
	        "  --warmup N         raise the rate linearly over the first N steps (default 0)\n"
	        "  --init S           initialisation: scaled (GPT-2's, default) or torch (PyTorch's\n"
	        "                     module defaults, as SASRec+'s code trains)\n"
	        "  --beta2 B          Adam's second-moment decay, 0 to 0.99999 (default 0.98)\n"
	        "  --clip N           clip the gradient's global norm to N; 0: no clipping (default 1)\n"
	        "  --seed N           batch order, dropout and initialisation (default 1)\n"
	        "  --valid-users N    validate on N evenly spread users (default all)\n"
	        "  --eval-every N     validate every N epochs (default 1; 0: never, keep the last)\n"
	        "  --windows W        users longer than the maxlen: train on a window ending at a\n"
	        "                     point drawn each epoch (random, default) or the last one (last)\n"
	        "  --softmax S        each target's softmax: over the items its user has not had yet\n"
	        "                     in the window (unseen, default: ranking leaves the history\n"
	        "                     out) or over every item (all)\n"
	        "  --threads N        worker threads (default: the number of cores)\n"
	        "  -q, --quiet        no progress\n");
}

int cmd_train(struct recctl *ctl, int argc, char **argv)
{
	enum { O_PRESET = 256, O_DIM, O_BLOCKS, O_HEADS, O_MAXLEN, O_DROPOUT, O_FEATURES, O_EPOCHS,
	       O_PATIENCE, O_BATCH, O_LR, O_SEED, O_VALID, O_THREADS, O_JSON, O_EVAL_EVERY, O_WINDOWS, O_BLOCK,
	       O_POSITIONS, O_ATTN_DROPOUT, O_BETA2, O_CLIP, O_LR_MIN, O_WARMUP, O_INIT, O_FFN, O_SOFTMAX };
	static const struct option opts[] = {
		{ "preset", required_argument, NULL, O_PRESET },   { "dim", required_argument, NULL, O_DIM },
		{ "blocks", required_argument, NULL, O_BLOCKS },   { "heads", required_argument, NULL, O_HEADS },
		{ "maxlen", required_argument, NULL, O_MAXLEN },   { "dropout", required_argument, NULL, O_DROPOUT },
		{ "features", required_argument, NULL, O_FEATURES }, { "epochs", required_argument, NULL, O_EPOCHS },
		{ "patience", required_argument, NULL, O_PATIENCE }, { "batch", required_argument, NULL, O_BATCH },
		{ "lr", required_argument, NULL, O_LR },           { "seed", required_argument, NULL, O_SEED },
		{ "valid-users", required_argument, NULL, O_VALID }, { "threads", required_argument, NULL, O_THREADS },
		{ "json", no_argument, NULL, O_JSON },             { "quiet", no_argument, NULL, 'q' },
		{ "eval-every", required_argument, NULL, O_EVAL_EVERY }, { "windows", required_argument, NULL, O_WINDOWS },
		{ "block", required_argument, NULL, O_BLOCK },     { "positions", required_argument, NULL, O_POSITIONS },
		{ "attn-dropout", required_argument, NULL, O_ATTN_DROPOUT },
		{ "beta2", required_argument, NULL, O_BETA2 },     { "clip", required_argument, NULL, O_CLIP },
		{ "lr-min", required_argument, NULL, O_LR_MIN },   { "warmup", required_argument, NULL, O_WARMUP },
		{ "init", required_argument, NULL, O_INIT },       { "ffn", required_argument, NULL, O_FFN },
		{ "softmax", required_argument, NULL, O_SOFTMAX },
		{ "help", no_argument, NULL, 'h' },                { NULL, 0, NULL, 0 },
	};
	struct seqrec_config cfg;
	struct seqrec_train_opts to;
	struct seqrec_train_result res;
	struct seqrec_metrics test;
	struct store_model_meta meta;
	struct store *st = NULL;
	struct seqrec_data *data = NULL;
	struct seqrec *m = NULL;
	struct kern *k = NULL;
	char why[512];
	long v, threads = 0;
	double x;
	int c, r, status = RECCTL_EXIT_FAIL, attn_set = 0;
	double lr_min = -1;   /* --lr-min; < 0: the rate stays constant */
	const char *preset = "small";

	/* The preset first, so the other options override it in any order. */
	for (int i = 1; i < argc - 1; i++)
		if (strcmp(argv[i], "--preset") == 0)
			preset = argv[i + 1];
	if (seqrec_preset(preset, &cfg) < 0) {
		recctl_err("train: --preset: unknown preset '%s' (small, large)", preset);
		return RECCTL_EXIT_USAGE;
	}
	seqrec_train_defaults(&to);
	const int preset_C = cfg.C, preset_F = cfg.F;
	int ffn = 0;   /* --ffn; 0: F/C as the preset's */
	/* where the preset drops attention probabilities, at its dropout rate,
	 * --dropout moves both unless --attn-dropout is given */
	int attn_follows = cfg.attn_dropout > 0.0f && cfg.attn_dropout == cfg.dropout;
	while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
		int bad = 0;
		switch (c) {
		case O_PRESET: break;
		case O_DIM:      bad = recctl_parse_long("train", "--dim", optarg, 8, 1024, &v); cfg.C = (int)v; break;
		case O_BLOCKS:   bad = recctl_parse_long("train", "--blocks", optarg, 1, 48, &v); cfg.L = (int)v; break;
		case O_FFN:      bad = recctl_parse_long("train", "--ffn", optarg, 8, 16384, &v); ffn = (int)v; break;
		case O_HEADS:    bad = recctl_parse_long("train", "--heads", optarg, 1, 64, &v); cfg.NH = (int)v; break;
		case O_MAXLEN:   bad = recctl_parse_long("train", "--maxlen", optarg, 2, 4096, &v); cfg.T = (int)v; break;
		case O_DROPOUT:  bad = opt_float("train", "--dropout", optarg, 0, 0.9, &x); cfg.dropout = (float)x; break;
		case O_FEATURES: bad = opt_features(optarg, &cfg.features); break;
		case O_EPOCHS:   bad = recctl_parse_long("train", "--epochs", optarg, 1, 10000, &v); to.epochs = (int)v; break;
		case O_PATIENCE: bad = recctl_parse_long("train", "--patience", optarg, 0, 10000, &v); to.patience = (int)v; break;
		case O_BATCH:    bad = recctl_parse_long("train", "--batch", optarg, 1, 4096, &v); to.batch = (int)v; break;
		case O_LR:       bad = opt_float("train", "--lr", optarg, 1e-7, 1, &x); to.optim.lr = (float)x; break;
		case O_ATTN_DROPOUT:
			bad = opt_float("train", "--attn-dropout", optarg, 0, 0.9, &x);
			cfg.attn_dropout = (float)x;
			attn_set = 1;
			break;
		case O_BETA2:    bad = opt_float("train", "--beta2", optarg, 0, 0.99999, &x); to.optim.beta2 = (float)x; break;
		case O_LR_MIN:   bad = opt_float("train", "--lr-min", optarg, 0, 1, &x); lr_min = x; break;
		case O_WARMUP:   bad = recctl_parse_long("train", "--warmup", optarg, 0, 1000000, &v); to.optim.warmup = (int)v; break;
		case O_INIT:
			if ((r = seqrec_init_by_name(optarg)) < 0) {
				recctl_err("train: --init: '%s' is not scaled or torch", optarg);
				bad = 1;
			} else {
				to.init = (enum seqrec_init_scheme)r;
			}
			break;
		case O_CLIP:     bad = opt_float("train", "--clip", optarg, 0, 1e6, &x); to.optim.clip = (float)x; break;
		case O_SEED:     bad = recctl_parse_long("train", "--seed", optarg, 0, 0x7fffffff, &v); to.seed = (uint64_t)v; break;
		case O_VALID:    bad = recctl_parse_long("train", "--valid-users", optarg, 0, 100000000, &v); to.valid_users = (uint32_t)v; break;
		case O_THREADS:  bad = recctl_parse_long("train", "--threads", optarg, 1, MODEL_THREADS_MAX, &threads); break;
		case O_EVAL_EVERY: bad = recctl_parse_long("train", "--eval-every", optarg, 0, 10000, &v); to.eval_every = (int)v; break;
		case O_BLOCK:
			if (strcmp(optarg, "preln") == 0 || strcmp(optarg, "sasrec") == 0) {
				cfg.block = optarg[0] == 's' ? SEQREC_BLOCK_SASREC : SEQREC_BLOCK_PRELN;
			} else {
				recctl_err("train: --block: '%s' is not preln or sasrec", optarg);
				bad = 1;
			}
			break;
		case O_POSITIONS:
			if (strcmp(optarg, "first") == 0 || strcmp(optarg, "last") == 0) {
				cfg.pos = optarg[0] == 'f' ? SEQREC_POS_FIRST : SEQREC_POS_LAST;
			} else {
				recctl_err("train: --positions: '%s' is not first or last", optarg);
				bad = 1;
			}
			break;
		case O_SOFTMAX:
			if (strcmp(optarg, "all") == 0 || strcmp(optarg, "unseen") == 0) {
				to.mask_seen = optarg[0] == 'u';
			} else {
				recctl_err("train: --softmax: '%s' is not all or unseen", optarg);
				bad = 1;
			}
			break;
		case O_WINDOWS:
			if (strcmp(optarg, "last") == 0 || strcmp(optarg, "random") == 0) {
				to.windows = optarg[0] == 'r';
			} else {
				recctl_err("train: --windows: '%s' is not last or random", optarg);
				bad = 1;
			}
			break;
		case O_JSON:     ctl->json = 1; break;
		case 'q':        ctl->quiet = 1; break;
		case 'h':        train_usage(stdout); return RECCTL_EXIT_OK;
		default:         train_usage(stderr); return RECCTL_EXIT_USAGE;
		}
		if (bad)
			return RECCTL_EXIT_USAGE;
	}
	if (optind < argc) {
		recctl_err("train: unexpected argument '%s'", argv[optind]);
		return RECCTL_EXIT_USAGE;
	}
	if (attn_follows && !attn_set)
		cfg.attn_dropout = cfg.dropout;
	/* the feed-forward width keeps the preset's ratio to C unless --ffn sets it */
	cfg.F = ffn ? ffn : (int)((long)preset_F * cfg.C / preset_C);
	if (lr_min > to.optim.lr) {
		recctl_err("train: --lr-min %g is above the peak rate --lr %g", lr_min, (double)to.optim.lr);
		return RECCTL_EXIT_USAGE;
	}
	to.optim.lr_min = lr_min >= 0 ? (float)lr_min : to.optim.lr;
	if (recctl_open_store(ctl, &st, 0) < 0)
		return RECCTL_EXIT_FAIL;
	if (model_kern((int)threads, &k) < 0)
		goto out;
	if ((r = seqrec_data_load(&data, st, &cfg, why, sizeof why)) < 0) {
		recctl_err("train: reading the store: %s", why);
		goto out;
	}
	cfg.V = data->V;
	if (seqrec_config_check(&cfg, why, sizeof why) < 0) {
		recctl_err("train: %s", why);
		goto out;
	}
	if ((r = seqrec_new(&m, &cfg, k, to.batch)) < 0) {
		recctl_err("train: cannot create the model: %s", strerror(-r));
		goto out;
	}
	seqrec_init_scheme(m, to.seed, 0.02f, to.init);  /* N(0, 0.02): Xavier did no better on ML-1M */
	if (!ctl->quiet)
		fprintf(stderr, "training %s: C=%d F=%d L=%d heads=%d T=%d dropout=%.2f attention dropout=%.2f %s blocks, "
		        "positions from %s, %s windows, softmax over %s items, %s init, lr %g to %g (warm-up %d steps), Adam beta2 %g, clip %g "
		        "on %u users, %llu events, %d items, %d threads\n",
		        preset, cfg.C, cfg.F, cfg.L, cfg.NH, cfg.T, cfg.dropout, cfg.attn_dropout,
		        cfg.block == SEQREC_BLOCK_SASREC ? "sasrec" : "preln", cfg.pos == SEQREC_POS_FIRST ? "first" : "last",
		        to.windows ? "random" : "last", to.mask_seen ? "unseen" : "all", seqrec_init_name(to.init), (double)to.optim.lr,
		        (double)to.optim.lr_min, to.optim.warmup, (double)to.optim.beta2, (double)to.optim.clip, data->nusers,
		        (unsigned long long)data->nevents, cfg.V - 1, k->threads);
	struct train_view tv = { isatty(STDERR_FILENO), ctl->quiet };
	to.progress = train_progress;
	to.progress_arg = &tv;
	to.report_every = tv.tty ? 1 : 0;
	if ((r = seqrec_train(m, data, &to, &res, why, sizeof why)) < 0) {
		recctl_err("train: %s", why);
		goto out;
	}
	if ((r = seqrec_eval_full(m, data, SEQREC_SPLIT_TEST, 0, &test)) < 0) {
		recctl_err("train: evaluating: %s", strerror(-r));
		goto out;
	}
	memset(&meta, 0, sizeof meta);
	meta.snapshot_events = data->snapshot_events;
	snprintf(meta.metrics, sizeof meta.metrics,
	         "{\"protocol\":\"%s\",\"test_hr@10\":%.5f,\"test_ndcg@10\":%.5f,\"valid_ndcg@10\":%.5f,"
	         "\"epochs\":%d,\"best_epoch\":%d,\"train_seconds\":%.1f,\"" SEQREC_META_CUTOFF "\":%lld}",
	         test.protocol, test.hr10, test.ndcg10, isnan(res.best_ndcg10) ? 0.0 : res.best_ndcg10,
	         res.epochs, res.best_epoch, res.seconds, (long long)data->max_ts);
	if ((r = seqrec_save_store(m, st, &meta, why, sizeof why)) < 0) {
		recctl_err("train: saving the model: %s", why);
		goto out;
	}
	if (ctl->json) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "version", json_object_new_int64(meta.version));
		json_object_object_add(o, "epochs", json_object_new_int(res.epochs));
		json_object_object_add(o, "best_epoch", json_object_new_int(res.best_epoch));
		json_object_object_add(o, "train_seconds", json_object_new_double(res.seconds));
		json_object_object_add(o, "seconds_per_epoch", json_object_new_double(res.epochs ? res.seconds / res.epochs : 0));
		json_object_object_add(o, "peak_rss_mb", json_object_new_double(peak_rss_mb()));
		json_object_object_add(o, "valid_ndcg@10", json_object_new_double(isnan(res.best_ndcg10) ? 0 : res.best_ndcg10));
		json_object_object_add(o, "test", metrics_json(&test));
		recctl_print_json(o);
		json_object_put(o);
	} else {
		printf("stored model version %u: %d epochs (best %d) in %.1f s\n", meta.version, res.epochs,
		       res.best_epoch, res.seconds);
		metrics_print(&test);
	}
	status = RECCTL_EXIT_OK;
out:
	seqrec_free(m);
	seqrec_data_free(data);
	kern_free(k);
	store_close(st);
	return status;
}

/* --- eval ------------------------------------------------------------------- */

static void eval_usage(FILE *f)
{
	fprintf(f,
	        "Usage: recctl [-d DIR] [--json] eval [--model V] [--protocol full|sampled|both]\n"
	        "                                    [--split test|valid] [--threads N]\n"
	        "Leave-one-out evaluation of a stored model version (default: the latest) on the\n"
	        "store's data: full ranking (every item scored, the user's history excluded) or\n"
	        "the SASRec paper's 100 sampled negatives.\n");
}

int cmd_eval(struct recctl *ctl, int argc, char **argv)
{
	enum { O_MODEL = 256, O_PROTO, O_SPLIT, O_THREADS, O_JSON };
	static const struct option opts[] = {
		{ "model", required_argument, NULL, O_MODEL },   { "protocol", required_argument, NULL, O_PROTO },
		{ "split", required_argument, NULL, O_SPLIT },   { "threads", required_argument, NULL, O_THREADS },
		{ "json", no_argument, NULL, O_JSON },           { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct store *st = NULL;
	struct seqrec *m = NULL;
	struct seqrec_data *data = NULL;
	struct kern *k = NULL;
	struct store_model_meta meta;
	struct seqrec_metrics mt[2];
	int nmt = 0, c, r, full = 1, sampled = 0, status = RECCTL_EXIT_FAIL;
	enum seqrec_split split = SEQREC_SPLIT_TEST;
	long version = 0, threads = 0;
	char why[512];

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case O_MODEL:
			if (recctl_parse_long("eval", "--model", optarg, 1, 0xfffffffe, &version) < 0)
				return RECCTL_EXIT_USAGE;
			break;
		case O_PROTO:
			full = strcmp(optarg, "full") == 0 || strcmp(optarg, "both") == 0;
			sampled = strcmp(optarg, "sampled") == 0 || strcmp(optarg, "both") == 0;
			if (!full && !sampled) {
				recctl_err("eval: --protocol: '%s' is not full, sampled or both", optarg);
				return RECCTL_EXIT_USAGE;
			}
			break;
		case O_SPLIT:
			if (strcmp(optarg, "test") == 0)
				split = SEQREC_SPLIT_TEST;
			else if (strcmp(optarg, "valid") == 0)
				split = SEQREC_SPLIT_VALID;
			else {
				recctl_err("eval: --split: '%s' is not test or valid", optarg);
				return RECCTL_EXIT_USAGE;
			}
			break;
		case O_THREADS:
			if (recctl_parse_long("eval", "--threads", optarg, 1, MODEL_THREADS_MAX, &threads) < 0)
				return RECCTL_EXIT_USAGE;
			break;
		case O_JSON: ctl->json = 1; break;
		case 'h': eval_usage(stdout); return RECCTL_EXIT_OK;
		default:  eval_usage(stderr); return RECCTL_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		recctl_err("eval: unexpected argument '%s'", argv[optind]);
		return RECCTL_EXIT_USAGE;
	}
	if (recctl_open_store(ctl, &st, 1) < 0)
		return RECCTL_EXIT_FAIL;
	if (model_kern((int)threads, &k) < 0)
		goto out;
	if ((r = seqrec_load_store(&m, k, 1, st, (uint32_t)version, &meta, why, sizeof why)) < 0) {
		recctl_err("eval: %s", why);
		goto out;
	}
	if ((r = seqrec_data_load(&data, st, &m->cfg, why, sizeof why)) < 0) {
		recctl_err("eval: reading the store: %s", why);
		goto out;
	}
	if (data->V > m->cfg.V) {
		/* items added since the model was trained: zero rows, so they
		 * score 0 and the ranking is the model's own */
		struct seqrec *g;
		fprintf(stderr, "recctl: eval: note: the store has %d items, model %u knows %d; newer items score 0\n",
		        data->V - 1, meta.version, m->cfg.V - 1);
		if ((r = seqrec_grow(&g, m, data->V, 1, 0, 0.0f)) < 0)
			goto fail;
		seqrec_free(m);
		m = g;
	}
	if (full && (r = seqrec_eval_full(m, data, split, 0, &mt[nmt++])) < 0)
		goto fail;
	if (sampled && (r = seqrec_eval_sampled(m, data, split, 100, 1, &mt[nmt++])) < 0)
		goto fail;
	if (ctl->json) {
		json_object *o = json_object_new_object(), *arr = json_object_new_array();
		json_object_object_add(o, "model", json_object_new_int64(meta.version));
		for (int i = 0; i < nmt; i++)
			json_object_array_add(arr, metrics_json(&mt[i]));
		json_object_object_add(o, "results", arr);
		recctl_print_json(o);
		json_object_put(o);
	} else {
		printf("model version %u\n", meta.version);
		for (int i = 0; i < nmt; i++)
			metrics_print(&mt[i]);
	}
	status = RECCTL_EXIT_OK;
	goto out;
fail:
	recctl_err("eval: %s", strerror(-r));
out:
	seqrec_free(m);
	seqrec_data_free(data);
	kern_free(k);
	store_close(st);
	return status;
}

/* --- recommend ----------------------------------------------------------------- */

static void recommend_usage(FILE *f)
{
	fprintf(f,
	        "Usage: recctl [-d DIR] [--json] recommend [-k N] [--explain] [--include-seen]\n"
	        "              [--include ITEM,...] [--exclude ITEM,...] [--model V] USER\n"
	        "The top N items (default 10, at most %d) for USER from the active model version\n"
	        "(recctl model use; default: the latest), computed in this process by the same\n"
	        "serving code as recd, from the user's latest events.\n"
	        "Items the user already interacted with are left out unless --include-seen.\n"
	        "  --include ITEM,...  rank only these items (at most %d)\n"
	        "  --exclude ITEM,...  never these items (at most %d)\n"
	        "  --model V           this version instead of the active one\n"
	        "  --explain           the history events that weighed most (last block's attention)\n",
	        SERVE_K_MAX, SERVE_FILTER_MAX, SERVE_FILTER_MAX);
}

int recctl_local_score(const struct recctl *ctl, const char *user, const char *const *items, size_t n,
                       float *scores, uint32_t *version)
{
	struct store *st = NULL;
	struct serve *sv = NULL;
	struct serve_options so;
	char err[512];
	int r;

	if ((r = recctl_open_store(ctl, &st, 1)) < 0)
		return r;
	/* One thread, one context, no cache: a single request in this process. */
	serve_options_default(&so);
	so.threads = 1;
	so.contexts = 1;
	so.cache_users = 0;
	if ((r = serve_open(&sv, st, &so, err, sizeof err)) < 0 ||
	    (r = serve_score(sv, user, items, (int)n, scores, version, err, sizeof err)) < 0)
		recctl_err("score: %s", err);
	serve_close(sv);
	store_close(st);
	return r < 0 ? r : 0;
}

/* The item's title from the store (empty when it has none). */
static void item_title(struct store_txn *tx, const char *id, const char **title, int *len)
{
	struct store_item it = { 0 };
	uint32_t iid;
	*title = "";
	*len = 0;
	if (tx && store_item_lookup(tx, id, strlen(id), &iid) == 0 && store_item_get(tx, iid, &it) == 0 && it.title) {
		*title = it.title;
		*len = (int)it.title_len;
	}
}

int cmd_recommend(struct recctl *ctl, int argc, char **argv)
{
	enum { O_EXPLAIN = 256, O_SEEN, O_MODEL, O_JSON, O_INCLUDE, O_EXCLUDE };
	static const struct option opts[] = {
		{ "explain", no_argument, NULL, O_EXPLAIN },    { "include-seen", no_argument, NULL, O_SEEN },
		{ "model", required_argument, NULL, O_MODEL },  { "json", no_argument, NULL, O_JSON },
		{ "include", required_argument, NULL, O_INCLUDE }, { "exclude", required_argument, NULL, O_EXCLUDE },
		{ "help", no_argument, NULL, 'h' },             { NULL, 0, NULL, 0 },
	};
	struct store *st = NULL;
	struct store_txn *tx = NULL;
	struct serve *sv = NULL;
	struct serve_options so;
	struct serve_filter filt = { 0 };
	struct serve_item *items = NULL;
	struct serve_why why[MODEL_EXPLAIN_TOP];
	struct serve_result res;
	char *inc_buf = NULL, *exc_buf = NULL, err[512];
	const char **inc = NULL, **exc = NULL;
	long kk = 10, version = 0;
	int c, r, explain = 0, status = RECCTL_EXIT_FAIL;

	if (recctl_via_daemon(ctl))   /* client/cmd_daemon.c; the rule is in recctl.h */
		return cmd_daemon_recommend(ctl, argc, argv);
	while ((c = getopt_long(argc, argv, "k:h", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			if (recctl_parse_long("recommend", "-k", optarg, 1, SERVE_K_MAX, &kk) < 0)
				return RECCTL_EXIT_USAGE;
			break;
		case O_EXPLAIN: explain = 1; break;
		case O_SEEN:    filt.include_seen = 1; break;
		case O_MODEL:
			if (recctl_parse_long("recommend", "--model", optarg, 1, 0xfffffffe, &version) < 0)
				return RECCTL_EXIT_USAGE;
			break;
		case O_INCLUDE:
			if (recctl_split_list("recommend", "--include", optarg, SERVE_FILTER_MAX, &inc_buf, &inc,
			                      &filt.ninclude) < 0)
				goto usage_fail;
			break;
		case O_EXCLUDE:
			if (recctl_split_list("recommend", "--exclude", optarg, SERVE_FILTER_MAX, &exc_buf, &exc,
			                      &filt.nexclude) < 0)
				goto usage_fail;
			break;
		case O_JSON: ctl->json = 1; break;
		case 'h': recommend_usage(stdout); status = RECCTL_EXIT_OK; goto out;
		default:  recommend_usage(stderr); goto usage_fail;
		}
	}
	if (optind != argc - 1) {
		recommend_usage(stderr);
		goto usage_fail;
	}
	filt.include = inc;
	filt.exclude = exc;
	const char *user = argv[optind];
	if (recctl_open_store(ctl, &st, 1) < 0)
		goto out;
	/* One thread, one context, no cache: a single request in this process. */
	serve_options_default(&so);
	so.threads = 1;
	so.contexts = 1;
	so.cache_users = 0;
	so.version = (uint32_t)version;
	if ((r = serve_open(&sv, st, &so, err, sizeof err)) < 0) {
		recctl_err("recommend: %s", err);
		goto out;
	}
	if (!(items = calloc((size_t)kk, sizeof *items))) {
		recctl_err("recommend: out of memory");
		goto out;
	}
	struct serve_request rq = { user, (int)kk, &filt, explain ? why : NULL, explain ? MODEL_EXPLAIN_TOP : 0 };
	if ((r = serve_recommend(sv, &rq, items, &res, err, sizeof err)) < 0) {
		recctl_err("recommend: %s", err);
		goto out;
	}
	/* titles and action names for the output */
	if (store_read_begin(st, &tx) < 0)
		tx = NULL;
	json_object *o = ctl->json ? json_object_new_object() : NULL, *arr = NULL;
	if (o) {
		json_object_object_add(o, "user", json_object_new_string(user));
		json_object_object_add(o, "model", json_object_new_int64(res.version));
		arr = json_object_new_array();
	} else {
		printf("top %d for user %s (model version %u, from %d events):\n", res.n, user, res.version, res.used);
	}
	for (int i = 0; i < res.n; i++) {
		const char *title;
		int tl;
		item_title(tx, items[i].id, &title, &tl);
		if (o) {
			json_object *e = json_object_new_object();
			json_object_object_add(e, "item", json_object_new_string(items[i].id));
			json_object_object_add(e, "title", json_object_new_string_len(title, tl));
			json_object_object_add(e, "score", json_object_new_double(items[i].score));
			json_object_array_add(arr, e);
		} else {
			printf("  %2d. %-10s %7.3f  %.*s\n", i + 1, items[i].id, items[i].score, tl > 60 ? 60 : tl, title);
		}
	}
	if (o)
		json_object_object_add(o, "items", arr);
	if (explain) {
		json_object *ex = o ? json_object_new_array() : NULL;
		if (!o)
			printf("because of (share of the last block's attention):\n");
		for (int j = 0; j < res.nwhy; j++) {
			const char *title, *act = "?";
			size_t actl = 1;
			int tl;
			item_title(tx, why[j].item, &title, &tl);
			if (tx)
				store_action_name(tx, why[j].action, &act, &actl);
			if (ex) {
				json_object *x = json_object_new_object();
				json_object_object_add(x, "item", json_object_new_string(why[j].item));
				json_object_object_add(x, "title", json_object_new_string_len(title, tl));
				json_object_object_add(x, "action", json_object_new_string_len(act, (int)actl));
				json_object_object_add(x, "time", json_object_new_int64(why[j].ts));
				json_object_object_add(x, "weight", json_object_new_double(why[j].weight));
				json_object_array_add(ex, x);
			} else {
				printf("  %5.1f%%  %-8.*s %-10s %.*s\n", 100.0 * why[j].weight, (int)actl, act,
				       why[j].item, tl > 50 ? 50 : tl, title);
			}
		}
		if (o)
			json_object_object_add(o, "because", ex);
	}
	if (o) {
		recctl_print_json(o);
		json_object_put(o);
	}
	status = RECCTL_EXIT_OK;
	goto out;
usage_fail:
	status = RECCTL_EXIT_USAGE;
out:
	store_txn_end(tx);
	serve_close(sv);
	store_close(st);
	free(items);
	free(inc);
	free(exc);
	free(inc_buf);
	free(exc_buf);
	return status;
}
