/* cmd_ringjobs.c: batch jobs through the running recd's request socket
 * (librecd's recd_job_*): run-job (submit, optionally wait with a progress
 * bar and print the result lines), and the daemon side of job and cancel. */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "client/recctl.h"
#include "recd/recd.h"

#define RUNJOB_POLL_MS     250      /* status polls while waiting */
#define RUNJOB_ENDING_S    60       /* the most an ended job's result may take to appear */

static void rj_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* recd's status as a bar: train and fine-tune count optimizer steps; the
 * ETA while running. */
static void rj_bar(char *buf, size_t len, const struct recd_job_status *s)
{
	int steps = !strcmp(s->type, "train") || !strcmp(s->type, "fine-tune");
	double eta = s->state == RECD_JOB_RUNNING && s->done < s->total ? s->eta_s : -1;
	recctl_job_bar(buf, len, s->done, s->total, steps, (int)s->epoch, (int)s->epochs, s->loss, eta);
}

/* Polls id until it ends; with show, a progress bar on a terminal (plain
 * lines at each tenth otherwise) on stream out. */
static int rj_wait(struct recd_conn *c, const char *cmd, const char *id, int show, FILE *out,
                   struct recd_job_status *s)
{
	int tty = show && isatty(fileno(out)), last = -1, r;
	for (;;) {
		if ((r = recd_job_status(c, id, s)) < 0)
			return recctl_daemon_fail(c, cmd, r);
		if (s->state >= RECD_JOB_DONE)
			break;
		if (show) {
			char bar[192];
			rj_bar(bar, sizeof bar, s);
			if (tty) {
				fprintf(out, "\r%s %-9s %s\033[K", id, s->state_name, bar);
				fflush(out);
			} else if ((int)(s->total ? s->done * 10 / s->total : 0) != last) {
				last = (int)(s->total ? s->done * 10 / s->total : 0);
				fprintf(out, "%s %s %s\n", id, s->state_name, bar);
				fflush(out);
			}
		}
		rj_sleep_ms(RUNJOB_POLL_MS);
	}
	if (tty)
		fprintf(out, "\r\033[K");
	return 0;
}

/* Writes the whole result of job id to stdout in chunks of chunk bytes.
 * ended: the job is known to have ended, so -EINPROGRESS means its result
 * is being written: wait for it (a while). */
static int rj_result(struct recd_conn *c, const char *cmd, const char *id, size_t chunk, int ended)
{
	char *buf = malloc(chunk);
	uint64_t off = 0, total = 0;
	int r, tries = 0, first = 1;

	if (!buf) {
		recctl_err("%s: out of memory", cmd);
		return RECCTL_EXIT_FAIL;
	}
	for (;;) {
		size_t got = 0;
		uint64_t t = 0;
		r = recd_job_result(c, id, off, buf, chunk, &got, &t);
		if (r == -EINPROGRESS && ended && first && tries++ < RUNJOB_ENDING_S * 10) {
			rj_sleep_ms(100);   /* the job has ended; its result is being written */
			continue;
		}
		if (r < 0) {
			free(buf);
			return recctl_daemon_fail(c, cmd, r);
		}
		if (first)
			total = t;
		else if (t != total) {
			free(buf);
			recctl_err("%s: job %s: its result changed while it was read (%" PRIu64 " bytes, now %" PRIu64 ")",
			           cmd, id, total, t);
			return RECCTL_EXIT_FAIL;
		}
		first = 0;
		if (got && fwrite(buf, 1, got, stdout) != got) {
			free(buf);
			recctl_err("%s: writing the result: %s", cmd, strerror(errno));
			return RECCTL_EXIT_FAIL;
		}
		off += got;
		if (off >= total)
			break;
		if (got == 0) {
			free(buf);
			recctl_err("%s: job %s: recd returned no bytes at offset %" PRIu64 " of %" PRIu64, cmd, id, off,
			           total);
			return RECCTL_EXIT_FAIL;
		}
	}
	free(buf);
	if (fflush(stdout) != 0) {
		recctl_err("%s: writing the result: %s", cmd, strerror(errno));
		return RECCTL_EXIT_FAIL;
	}
	return RECCTL_EXIT_OK;
}

static int rj_read_file(const char *path, char **out, size_t *len)
{
	int fd = strcmp(path, "-") == 0 ? dup(0) : open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	size_t cap = RECD_JOB_JSON_MAX + 1, got = 0;
	char *buf;

	if (fd < 0)
		return -errno;
	if (!(buf = malloc(cap))) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		ssize_t n = read(fd, buf + got, cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			close(fd);
			free(buf);
			return -e;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got == cap) {   /* one byte more than a request may carry */
			close(fd);
			free(buf);
			return -EFBIG;
		}
	}
	close(fd);
	*out = buf;
	*len = got;
	return 0;
}

static void run_job_usage(FILE *f)
{
	fprintf(f, "Usage: recctl [--socket PATH] run-job [--wait] [--json] [--chunk BYTES] FILE\n"
	        "Submits the job in FILE ('-' = standard input; JSON as in recd-spool(5), at most %d bytes)\n"
	        "to the running recd over its socket, at interactive priority, and prints its ID.\n"
	        "  -w, --wait      follow it to its end (a progress bar on standard error when that is a\n"
	        "                  terminal) and print its result lines instead\n"
	        "      --json      without --wait: {\"id\": ..., \"state\": ...} instead of the bare ID\n"
	        "      --chunk N   read the result N bytes at a time (1 to %d; default the most)\n"
	        "Interrupting --wait leaves the job running: recctl cancel ID stops it.\n",
	        RECD_JOB_JSON_MAX, RECD_JOB_CHUNK_MAX);
}

int cmd_run_job(struct recctl *ctl, int argc, char **argv)
{
	enum { O_JSON = 256, O_CHUNK };
	static const struct option opts[] = {
		{ "wait", no_argument, NULL, 'w' }, { "json", no_argument, NULL, O_JSON },
		{ "chunk", required_argument, NULL, O_CHUNK }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cmd = "run-job";
	unsigned long chunk = RECD_JOB_CHUNK_MAX;
	char id[RECD_JOB_ID_MAX + 1], *json = NULL, *end;
	struct recd_job_status s;
	struct recd_conn *c;
	size_t len = 0;
	int o, r, wait = 0;

	while ((o = getopt_long(argc, argv, "wh", opts, NULL)) != -1) {
		switch (o) {
		case 'w': wait = 1; break;
		case O_JSON: ctl->json = 1; break;
		case O_CHUNK:
			errno = 0;
			chunk = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || optarg[0] == '-' || chunk < 1 || chunk > RECD_JOB_CHUNK_MAX) {
				recctl_err("%s: --chunk '%s' is not from 1 to %d", cmd, optarg, RECD_JOB_CHUNK_MAX);
				return RECCTL_EXIT_USAGE;
			}
			break;
		case 'h': run_job_usage(stdout); return RECCTL_EXIT_OK;
		default:  run_job_usage(stderr); return RECCTL_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		recctl_err("%s: expected one job file", cmd);
		run_job_usage(stderr);
		return RECCTL_EXIT_USAGE;
	}
	const char *path = argv[optind];
	if ((r = rj_read_file(path, &json, &len)) < 0) {
		if (r == -EFBIG)
			recctl_err("%s: %s: larger than %d bytes (one request); submit it through the spool "
			           "(recctl submit)", cmd, path, RECD_JOB_JSON_MAX);
		else
			recctl_err("%s: %s: %s", cmd, path, strerror(-r));
		return RECCTL_EXIT_FAIL;
	}
	if (len == 0) {
		recctl_err("%s: %s: the file is empty", cmd, path);
		free(json);
		return RECCTL_EXIT_FAIL;
	}
	if (!(c = recctl_daemon_connect(ctl, cmd))) {
		free(json);
		return RECCTL_EXIT_FAIL;
	}
	r = recd_job_submit(c, json, len, id, sizeof id);
	free(json);
	if (r < 0) {
		const char *why = recd_conn_error(c);
		recctl_err("%s: %s: %s", cmd, path, why && *why ? why : recd_strerror(r));
		recd_close(c);
		return RECCTL_EXIT_FAIL;
	}
	if (!wait) {
		if (ctl->json) {
			struct json_object *j = json_object_new_object();
			json_object_object_add(j, "id", json_object_new_string(id));
			json_object_object_add(j, "state", json_object_new_string("queued"));
			recctl_print_json(j);
			json_object_put(j);
		} else {
			printf("%s\n", id);
		}
		recd_close(c);
		return RECCTL_EXIT_OK;
	}
	if (!ctl->quiet)
		fprintf(stderr, "recctl: %s: job %s submitted\n", cmd, id);
	if ((r = rj_wait(c, cmd, id, !ctl->quiet && isatty(2), stderr, &s)) != 0) {
		recd_close(c);
		return r;
	}
	r = rj_result(c, cmd, id, chunk, 1);
	recd_close(c);
	return r;
}

int recctl_daemon_job(struct recctl *ctl, const char *id, int watch)
{
	const char *cmd = "job";
	struct recd_job_status s;
	struct recd_conn *c = recctl_daemon_connect(ctl, cmd);
	int r;

	if (!c)
		return RECCTL_EXIT_FAIL;
	if (watch)
		r = rj_wait(c, cmd, id, 1, stdout, &s);
	else if ((r = recd_job_status(c, id, &s)) < 0)
		r = recctl_daemon_fail(c, cmd, r);
	if (r != 0) {
		recd_close(c);
		return r;
	}
	char reason[RECD_ERR_MAX] = "";
	if (s.state == RECD_JOB_FAILED || s.state == RECD_JOB_CANCELLED) {
		char one[1];
		for (int tries = 0; tries < RUNJOB_ENDING_S * 10; tries++) {
			r = recd_job_result(c, id, 0, one, sizeof one, NULL, NULL);
			if (r != -EINPROGRESS)
				break;
			rj_sleep_ms(100);
		}
		if (r == -EREMOTEIO || r == -ECANCELED) {
			/* "job ID failed: REASON" or "job ID was cancelled: REASON" */
			const char *e = recd_conn_error(c), *p = strstr(e, ": ");
			snprintf(reason, sizeof reason, "%s", p ? p + 2 : e);
		}
	}
	recd_close(c);
	if (ctl->json) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "id", json_object_new_string(id));
		json_object_object_add(o, "type", json_object_new_string(s.type));
		json_object_object_add(o, "state", json_object_new_string(s.state_name));
		json_object_object_add(o, "done", json_object_new_int64((int64_t)s.done));
		json_object_object_add(o, "total", json_object_new_int64((int64_t)s.total));
		json_object_object_add(o, "elapsed_s", json_object_new_double(s.elapsed_s));
		if (s.eta_s >= 0)
			json_object_object_add(o, "eta_s", json_object_new_double(s.eta_s));
		if (s.epochs) {
			json_object_object_add(o, "epoch", json_object_new_int((int)s.epoch));
			json_object_object_add(o, "epochs", json_object_new_int((int)s.epochs));
			if (isfinite(s.loss))
				json_object_object_add(o, "loss", json_object_new_double(s.loss));
		}
		if (reason[0])
			json_object_object_add(o, "reason", json_object_new_string(reason));
		recctl_print_json(o);
		json_object_put(o);
	} else {
		char bar[192];
		rj_bar(bar, sizeof bar, &s);
		printf("job       %s\ntype      %s\nstate     %s\nprogress  %s\n", id, s.type, s.state_name, bar);
		if (s.state == RECD_JOB_RUNNING)
			printf("elapsed   %.0f s\n", s.elapsed_s);
		if (reason[0])
			printf("reason    %s\n", reason);
	}
	return s.state == RECD_JOB_DONE || !watch ? RECCTL_EXIT_OK : RECCTL_EXIT_FAIL;
}

int recctl_daemon_job_result(struct recctl *ctl, const char *id, size_t chunk)
{
	struct recd_conn *c = recctl_daemon_connect(ctl, "job");
	if (!c)
		return RECCTL_EXIT_FAIL;
	struct recd_job_status s;
	int r = recd_job_status(c, id, &s);
	if (r == -ENOTSUP || r == -EINVAL) {
		r = recctl_daemon_fail(c, "job", r);
		recd_close(c);
		return r;
	}
	/* Unknown to the engine may still have a result (a spool job of long ago). */
	r = rj_result(c, "job", id, chunk, r == 0 && s.state >= RECD_JOB_DONE);
	recd_close(c);
	return r;
}

int recctl_daemon_cancel(struct recctl *ctl, const char *id)
{
	struct recd_conn *c = recctl_daemon_connect(ctl, "cancel");
	int r;
	if (!c)
		return RECCTL_EXIT_FAIL;
	if ((r = recd_job_cancel(c, id)) < 0) {
		r = recctl_daemon_fail(c, "cancel", r);
		recd_close(c);
		return r;
	}
	recd_close(c);
	printf("cancel requested for %s\n", id);
	return RECCTL_EXIT_OK;
}
