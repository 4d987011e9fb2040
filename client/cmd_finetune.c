/* cmd_finetune.c: recctl finetune — a stored model version continued on the
 * events that arrived since it was trained (model/finetune.h), in this
 * process, on the store directly; the result is a new version whose parent
 * is recorded. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "client/recctl.h"
#include "kernels/kernels.h"
#include "model/finetune.h"

#define FT_THREADS_MAX 256

struct ft_view {
	int tty, quiet;
};

static int ft_progress(const struct seqrec_progress *p, void *arg)
{
	const struct ft_view *v = arg;
	if (v->quiet)
		return 0;
	if (v->tty && !p->end_of_epoch) {
		/* a live bar over the run's steps (budget or epochs), redrawn in place */
		int w = 30, fill = p->steps > 0 ? (int)(w * p->step / p->steps) : 0;
		if (fill > w)
			fill = w;
		fprintf(stderr, "\repoch %3d/%d [%.*s%*s] step %lld/%lld loss %.4f  %.0f ex/s   ", p->epoch, p->epochs,
		        fill, "##############################", w - fill, "", (long long)p->step, (long long)p->steps,
		        p->loss, p->examples_per_s);
		return 0;
	}
	if (!p->end_of_epoch)
		return 0;
	if (v->tty)
		fputc('\r', stderr);
	fprintf(stderr, "epoch %3d/%d  step %lld/%lld  loss %.4f  %.0f ex/s  lr %.2g  %.0f s", p->epoch, p->epochs,
	        (long long)p->step, (long long)p->steps, p->loss, p->examples_per_s, p->lr, p->elapsed_s);
	if (!isnan(p->val_ndcg10))
		fprintf(stderr, "  valid NDCG@10 %.4f (best %.4f at epoch %d)", p->val_ndcg10, p->best_ndcg10, p->best_epoch);
	fprintf(stderr, "%s\n", v->tty ? "          " : "");
	return 0;
}

static void finetune_usage(FILE *f)
{
	fprintf(f,
	        "Usage: recctl [-d DIR] [--json] finetune [OPTIONS]\n"
	        "Continues a stored model version on the events that arrived since it was\n"
	        "trained (those after its recorded cut-off time) and stores the result as a new\n"
	        "version whose parent is recorded.  Items added since get new rows.  The same\n"
	        "leave-one-out split as train; parent and result are both evaluated on the test\n"
	        "targets of the users with new events and of the others (full ranking).\n"
	        "\n"
	        "  --from V           version to continue (default: the active one, else the latest)\n"
	        "  --users new|all    train on the users with new events (default) or on everyone\n"
	        "  --lr X             learning rate, constant (default 0.0003, 0.3 x train's)\n"
	        "  --beta2 B          Adam's second-moment decay, 0 to 0.99999 (default 0.98, as train)\n"
	        "  --clip N           clip the gradient's global norm to N; 0: no clipping (default 1)\n"
	        "  --epochs N         at most N passes over those users (default 5)\n"
	        "  --max-steps N      at most N optimizer steps (default: no budget)\n"
	        "  --patience N       stop after N validations without improvement (default 2; 0 never)\n"
	        "  --batch N          sequences per step (default 128)\n"
	        "  --seed N           batch order, dropout, new item rows (default 1)\n"
	        "  --valid-users N    validate on N evenly spread users (default all)\n"
	        "  --no-eval          skip the before/after test evaluation\n"
	        "  --activate         make the new version the active one (served by recd)\n"
	        "  --threads N        worker threads (default: the number of cores)\n"
	        "  -q, --quiet        no progress\n");
}

static json_object *metrics_obj(const struct seqrec_metrics *mt)
{
	char buf[1024];
	seqrec_metrics_json(mt, buf, sizeof buf);
	return json_tokener_parse(buf);
}

int cmd_finetune(struct recctl *ctl, int argc, char **argv)
{
	enum { O_FROM = 256, O_USERS, O_LR, O_EPOCHS, O_STEPS, O_PATIENCE, O_BATCH, O_SEED, O_VALID, O_NOEVAL,
	       O_ACTIVATE, O_THREADS, O_JSON, O_BETA2, O_CLIP };
	static const struct option opts[] = {
		{ "from", required_argument, NULL, O_FROM },         { "users", required_argument, NULL, O_USERS },
		{ "lr", required_argument, NULL, O_LR },             { "epochs", required_argument, NULL, O_EPOCHS },
		{ "max-steps", required_argument, NULL, O_STEPS },   { "patience", required_argument, NULL, O_PATIENCE },
		{ "batch", required_argument, NULL, O_BATCH },       { "seed", required_argument, NULL, O_SEED },
		{ "valid-users", required_argument, NULL, O_VALID }, { "no-eval", no_argument, NULL, O_NOEVAL },
		{ "activate", no_argument, NULL, O_ACTIVATE },       { "threads", required_argument, NULL, O_THREADS },
		{ "json", no_argument, NULL, O_JSON },               { "quiet", no_argument, NULL, 'q' },
		{ "beta2", required_argument, NULL, O_BETA2 },       { "clip", required_argument, NULL, O_CLIP },
		{ "help", no_argument, NULL, 'h' },                  { NULL, 0, NULL, 0 },
	};
	struct seqrec_finetune_opts fo;
	struct seqrec_finetune_result res;
	struct store *st = NULL;
	struct kern *k = NULL;
	char why[512], *end;
	long v, threads = 0;
	int c, r, status = RECCTL_EXIT_FAIL;

	seqrec_finetune_defaults(&fo);
	while ((c = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
		int bad = 0;
		switch (c) {
		case O_FROM:     bad = recctl_parse_long("finetune", "--from", optarg, 1, 0xfffffffe, &v); fo.parent = (uint32_t)v; break;
		case O_USERS:
			if (strcmp(optarg, "new") == 0)
				fo.users = SEQREC_FT_USERS_NEW;
			else if (strcmp(optarg, "all") == 0)
				fo.users = SEQREC_FT_USERS_ALL;
			else {
				recctl_err("finetune: --users: '%s' is not new or all", optarg);
				bad = 1;
			}
			break;
		case O_LR: {
			errno = 0;
			double x = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(x >= 1e-7 && x <= 1)) {
				recctl_err("finetune: --lr: '%s' is not a number from 1e-07 to 1", optarg);
				bad = 1;
			}
			fo.lr = (float)x;
			break;
		}
		case O_BETA2:
		case O_CLIP: {
			double hi = c == O_BETA2 ? 0.99999 : 1e6;
			const char *name = c == O_BETA2 ? "--beta2" : "--clip";
			errno = 0;
			double x = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(x >= 0 && x <= hi)) {
				recctl_err("finetune: %s: '%s' is not a number from 0 to %g", name, optarg, hi);
				bad = 1;
			} else if (c == O_BETA2) {
				fo.beta2 = (float)x;
			} else {
				fo.clip = (float)x;
			}
			break;
		}
		case O_EPOCHS:   bad = recctl_parse_long("finetune", "--epochs", optarg, 1, 10000, &v); fo.epochs = (int)v; break;
		case O_STEPS:    bad = recctl_parse_long("finetune", "--max-steps", optarg, 1, 0x7fffffff, &v); fo.max_steps = v; break;
		case O_PATIENCE: bad = recctl_parse_long("finetune", "--patience", optarg, 0, 10000, &v); fo.patience = (int)v; break;
		case O_BATCH:    bad = recctl_parse_long("finetune", "--batch", optarg, 1, 4096, &v); fo.batch = (int)v; break;
		case O_SEED:     bad = recctl_parse_long("finetune", "--seed", optarg, 0, 0x7fffffff, &v); fo.seed = (uint64_t)v; break;
		case O_VALID:    bad = recctl_parse_long("finetune", "--valid-users", optarg, 0, 100000000, &v); fo.valid_users = (uint32_t)v; break;
		case O_NOEVAL:   fo.evaluate = 0; break;
		case O_ACTIVATE: fo.activate = 1; break;
		case O_THREADS:  bad = recctl_parse_long("finetune", "--threads", optarg, 1, FT_THREADS_MAX, &threads); break;
		case O_JSON:     ctl->json = 1; break;
		case 'q':        ctl->quiet = 1; break;
		case 'h':        finetune_usage(stdout); return RECCTL_EXIT_OK;
		default:         finetune_usage(stderr); return RECCTL_EXIT_USAGE;
		}
		if (bad)
			return RECCTL_EXIT_USAGE;
	}
	if (optind < argc) {
		recctl_err("finetune: unexpected argument '%s'", argv[optind]);
		return RECCTL_EXIT_USAGE;
	}
	if (recctl_open_store(ctl, &st, 0) < 0)
		return RECCTL_EXIT_FAIL;
	if ((r = kern_cpu_new(&k, (int)threads)) < 0) {
		recctl_err("cannot start the CPU kernels: %s", strerror(-r));
		goto out;
	}
	struct ft_view view = { isatty(STDERR_FILENO), ctl->quiet };
	fo.progress = ft_progress;
	fo.progress_arg = &view;
	fo.report_every = view.tty ? 1 : 0;
	if ((r = seqrec_finetune(st, k, &fo, &res, why, sizeof why)) < 0) {
		recctl_err("finetune: %s", why);
		goto out;
	}
	if (ctl->json) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "version", json_object_new_int64(res.version));
		json_object_object_add(o, "parent", json_object_new_int64(res.parent));
		json_object_object_add(o, "users", json_object_new_string(fo.users == SEQREC_FT_USERS_NEW ? "new" : "all"));
		json_object_object_add(o, "parent_cutoff_ts", res.cutoff_known ? json_object_new_int64(res.parent_cutoff_ts) : NULL);
		json_object_object_add(o, "cutoff_ts", json_object_new_int64(res.cutoff_ts));
		json_object_object_add(o, "new_events", json_object_new_int64((int64_t)res.new_events));
		json_object_object_add(o, "new_users", json_object_new_int64(res.new_users));
		json_object_object_add(o, "trained_users", json_object_new_int64(res.trained_users));
		json_object_object_add(o, "new_items", json_object_new_int(res.items - res.parent_items));
		json_object_object_add(o, "epochs", json_object_new_int(res.train.epochs));
		json_object_object_add(o, "best_epoch", json_object_new_int(res.train.best_epoch));
		json_object_object_add(o, "steps", json_object_new_int64(res.train.steps));
		json_object_object_add(o, "train_seconds", json_object_new_double(res.train.seconds));
		json_object_object_add(o, "activated", json_object_new_boolean(fo.activate));
		if (res.evaluated) {
			json_object *e = json_object_new_object(), *p = json_object_new_object(), *ch = json_object_new_object();
			json_object_object_add(p, "new_users", metrics_obj(&res.parent_test[0]));
			json_object_object_add(p, "other_users", metrics_obj(&res.parent_test[1]));
			json_object_object_add(ch, "new_users", metrics_obj(&res.child_test[0]));
			json_object_object_add(ch, "other_users", metrics_obj(&res.child_test[1]));
			json_object_object_add(e, "parent", p);
			json_object_object_add(e, "finetuned", ch);
			json_object_object_add(o, "test", e);
		}
		recctl_print_json(o);
		json_object_put(o);
	} else {
		printf("stored model version %u (parent %u): %d epochs (best %d), %lld steps in %.1f s on %u users%s\n",
		       res.version, res.parent, res.train.epochs, res.train.best_epoch, (long long)res.train.steps,
		       res.train.seconds, res.trained_users, fo.activate ? "; now the active version" : "");
		if (res.cutoff_known)
			printf("%llu new events from %u users after the parent's cut-off (time %lld); %d new items\n",
			       (unsigned long long)res.new_events, res.new_users, (long long)res.parent_cutoff_ts,
			       res.items - res.parent_items);
		else
			printf("the parent recorded no cut-off: every event counted as new; %d new items\n",
			       res.items - res.parent_items);
		if (res.evaluated) {
			printf("%s, test split:\n", SEQREC_PROTOCOL_FULL);
			const char *grp[2] = { "users with new events", "other users" };
			for (int i = 0; i < 2; i++)
				printf("  %-22s %6llu users  HR@10 %.4f -> %.4f  NDCG@10 %.4f -> %.4f\n", grp[i],
				       (unsigned long long)res.child_test[i].users, res.parent_test[i].hr10,
				       res.child_test[i].hr10, res.parent_test[i].ndcg10, res.child_test[i].ndcg10);
		}
	}
	status = RECCTL_EXIT_OK;
out:
	kern_free(k);
	store_close(st);
	return status;
}
