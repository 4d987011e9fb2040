/* cmd_jobs.c: recctl's side of the spool (recd-spool(5)): submit (the
 * producer's half of the protocol: a unique name in staging/, O_EXCL, fsync,
 * rename into intake/), keygen and --sign (Ed25519 signature envelopes);
 * jobs and job (the records recd keeps in the store, read-only) and cancel
 * (a request file in the spool's cancel/ folder). */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <sodium.h>

#include "client/recctl.h"
#include "daemon/jobs.h"
#include "recd/recd.h"
#include "store/store.h"

#define JOBS_DEFAULT_SPOOL "/var/spool/recd"
#define JOBS_FILE_MAX      (1u << 30)    /* recd's own ceiling on spool_max_job_size */

static const char *jobs_spool_dir(const char *opt)
{
	const char *s = opt ? opt : getenv("RECD_SPOOL_DIR");
	return s && *s ? s : JOBS_DEFAULT_SPOOL;
}

static int read_file(const char *path, size_t max, char **out, size_t *len)
{
	int fd = strcmp(path, "-") == 0 ? dup(0) : open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	size_t cap = 65536, got = 0;
	char *buf = NULL;
	int r = 0;

	if (fd < 0)
		return -errno;
	for (;;) {
		if (got == cap || !buf) {
			if (buf)
				cap *= 2;
			char *nb = realloc(buf, cap + 1);
			if (!nb) {
				r = -ENOMEM;
				break;
			}
			buf = nb;
		}
		ssize_t n = read(fd, buf + got, cap - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got > max) {
			r = -EFBIG;
			break;
		}
	}
	close(fd);
	if (r < 0) {
		free(buf);
		return r;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	return 0;
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Signs the job: adds "id" and "created" when missing (the signature must
 * bind both), then wraps the exact text in the envelope. */
static int sign_job(const char *keyfile, const char *id, const char *text, size_t len, char **out,
                    size_t *outlen)
{
	unsigned char sk[crypto_sign_SECRETKEYBYTES], sig[crypto_sign_BYTES];
	char *kt = NULL, b64[sodium_base64_ENCODED_LEN(crypto_sign_BYTES, sodium_base64_VARIANT_ORIGINAL)];
	size_t kl, bin = 0;
	struct json_object *job, *env, *s;
	int r;

	if ((r = read_file(keyfile, 4096, &kt, &kl)) < 0) {
		recctl_err("submit: --sign %s: %s", keyfile, strerror(-r));
		return r;
	}
	while (kl && (kt[kl - 1] == '\n' || kt[kl - 1] == '\r'))
		kl--;
	r = sodium_hex2bin(sk, sizeof sk, kt, kl, NULL, &bin, NULL);
	sodium_memzero(kt, kl);
	free(kt);
	if (r < 0 || bin != sizeof sk) {
		recctl_err("submit: --sign %s: not a secret key written by recctl keygen", keyfile);
		return -EINVAL;
	}
	job = json_tokener_parse(text);
	if (!job || !json_object_is_type(job, json_type_object)) {
		recctl_err("submit: the job is not a JSON object; cannot sign it");
		json_object_put(job);
		return -EINVAL;
	}
	if (!json_object_object_get_ex(job, "id", NULL))
		json_object_object_add(job, "id", json_object_new_string(id));
	if (!json_object_object_get_ex(job, "created", NULL))
		json_object_object_add(job, "created", json_object_new_int64((int64_t)time(NULL)));
	const char *jt = json_object_to_json_string_ext(job, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	crypto_sign_detached(sig, NULL, (const unsigned char *)jt, strlen(jt), sk);
	sodium_memzero(sk, sizeof sk);
	sodium_bin2base64(b64, sizeof b64, sig, sizeof sig, sodium_base64_VARIANT_ORIGINAL);
	/* The key's name is the file's name without directory and ".key". */
	char name[256];
	const char *base = strrchr(keyfile, '/');
	snprintf(name, sizeof name, "%s", base ? base + 1 : keyfile);
	size_t nl = strlen(name);
	if (nl > 4 && strcmp(name + nl - 4, ".key") == 0)
		name[nl - 4] = '\0';
	env = json_object_new_object();
	s = json_object_new_object();
	json_object_object_add(s, "key", json_object_new_string(name));
	json_object_object_add(s, "sig", json_object_new_string(b64));
	json_object_object_add(env, "signature", s);
	json_object_object_add(env, "job", json_object_new_string(jt));
	json_object_put(job);
	const char *et = json_object_to_json_string_ext(env, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	*out = strdup(et);
	*outlen = strlen(et);
	json_object_put(env);
	return *out ? 0 : -ENOMEM;
}

static void submit_usage(FILE *f)
{
	fprintf(f, "Usage: recctl submit [--spool DIR] [--id ID] [--sign KEYFILE] FILE\n"
	           "Hands a job file (FILE, or - for standard input) to recd through its spool:\n"
	           "written under a unique name in DIR/staging, synced, renamed into DIR/intake.\n"
	           "Prints the job's ID; its result will be DIR/results/ID.jsonl.\n"
	           "  --spool DIR     the spool (default $RECD_SPOOL_DIR, else %s)\n"
	           "  --id ID         the job's ID (default: generated)\n"
	           "  --sign KEYFILE  sign it with a key from recctl keygen (NAME.key)\n"
	           "See recd-spool(5).\n", JOBS_DEFAULT_SPOOL);
}

int cmd_submit(struct recctl *ctl, int argc, char **argv)
{
	enum { O_SPOOL = 0x100, O_ID, O_SIGN };
	static const struct option opts[] = {
		{ "spool", required_argument, NULL, O_SPOOL }, { "id", required_argument, NULL, O_ID },
		{ "sign", required_argument, NULL, O_SIGN },   { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *spool = NULL, *id = NULL, *key = NULL;
	char gen[64], stage[PATH_MAX], intake[PATH_MAX], tmpname[128];
	char *text = NULL, *signed_text = NULL;
	size_t len;
	int c, r, fd = -1, rc = RECCTL_EXIT_FAIL;

	(void)ctl;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case O_SPOOL: spool = optarg; break;
		case O_ID:    id = optarg; break;
		case O_SIGN:  key = optarg; break;
		case 'h':     submit_usage(stdout); return RECCTL_EXIT_OK;
		default:      submit_usage(stderr); return RECCTL_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		submit_usage(stderr);
		return RECCTL_EXIT_USAGE;
	}
	spool = jobs_spool_dir(spool);
	if (sodium_init() < 0) {
		recctl_err("submit: libsodium failed to initialise");
		return RECCTL_EXIT_FAIL;
	}
	if (!id) {
		uint32_t rnd = randombytes_random();
		snprintf(gen, sizeof gen, "j%" PRId64 "-%08" PRIx32, (int64_t)time(NULL), rnd);
		id = gen;
	}
	size_t idl = strlen(id);
	if (idl == 0 || idl > JOBS_ID_MAX || id[0] == '.' || strchr(id, '/') || strstr(id, "..")) {
		recctl_err("submit: --id '%s': 1 to %d bytes, no '/', no '..', not starting with '.'", id, JOBS_ID_MAX);
		return RECCTL_EXIT_USAGE;
	}
	if ((r = read_file(argv[optind], JOBS_FILE_MAX, &text, &len)) < 0) {
		recctl_err("submit: %s: %s", argv[optind], strerror(-r));
		return RECCTL_EXIT_FAIL;
	}
	if (key) {
		if (sign_job(key, id, text, len, &signed_text, &len) < 0)
			goto out;
	}
	snprintf(tmpname, sizeof tmpname, "%ld.%08" PRIx32, (long)getpid(), randombytes_random());
	if (snprintf(stage, sizeof stage, "%s/staging/%s", spool, tmpname) >= (int)sizeof stage ||
	    snprintf(intake, sizeof intake, "%s/intake/%s", spool, id) >= (int)sizeof intake) {
		recctl_err("submit: %s: path too long", spool);
		goto out;
	}
	fd = open(stage, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0) {
		recctl_err("submit: %s: %s", stage, strerror(errno));
		goto out;
	}
	const char *p = signed_text ? signed_text : text;
	if ((r = write_all(fd, p, len)) < 0 || (fsync(fd) < 0 && (r = -errno))) {
		recctl_err("submit: %s: %s", stage, strerror(-r));
		unlink(stage);
		goto out;
	}
	close(fd);
	fd = -1;
	/* Never over a job of the same ID that recd has not taken yet. */
	if (renameat2(AT_FDCWD, stage, AT_FDCWD, intake, RENAME_NOREPLACE) < 0) {
		r = errno;
		unlink(stage);
		recctl_err("submit: %s: %s", intake, r == EEXIST ? "a job with this ID is waiting already" : strerror(r));
		goto out;
	}
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s/intake", spool);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd);
		close(dfd);
	}
	printf("%s\n", id);
	rc = RECCTL_EXIT_OK;
out:
	if (fd >= 0)
		close(fd);
	free(text);
	free(signed_text);
	return rc;
}

static void keygen_usage(FILE *f)
{
	fprintf(f, "Usage: recctl keygen [--dir DIR] NAME\n"
	           "Makes an Ed25519 key pair for signing jobs: DIR/NAME.key (secret, mode 0600)\n"
	           "and DIR/NAME.pub (copy it into recd's spool_trusted_keys folder).\n"
	           "NAME: letters, digits, '-' and '_'.  DIR defaults to the current directory.\n");
}

static int put_key(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	int r;
	if (fd < 0)
		return -errno;
	r = write_all(fd, text, strlen(text));
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	close(fd);
	if (r < 0)
		unlink(path);
	return r;
}

int cmd_keygen(struct recctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'D' }, { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	const char *dir = ".";
	unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
	char pkh[2 * sizeof pk + 2], skh[2 * sizeof sk + 2], path[PATH_MAX], pub[PATH_MAX];
	int c, r;

	(void)ctl;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'D': dir = optarg; break;
		case 'h': keygen_usage(stdout); return RECCTL_EXIT_OK;
		default:  keygen_usage(stderr); return RECCTL_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		keygen_usage(stderr);
		return RECCTL_EXIT_USAGE;
	}
	const char *name = argv[optind];
	size_t nl = strlen(name);
	if (nl == 0 || nl > 64 || strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != nl) {
		recctl_err("keygen: '%s' is not a key name (1 to 64 letters, digits, '-', '_')", name);
		return RECCTL_EXIT_USAGE;
	}
	if (sodium_init() < 0)
		return RECCTL_EXIT_FAIL;
	crypto_sign_keypair(pk, sk);
	sodium_bin2hex(pkh, sizeof pkh, pk, sizeof pk);
	sodium_bin2hex(skh, sizeof skh, sk, sizeof sk);
	sodium_memzero(sk, sizeof sk);
	strcat(pkh, "\n");
	strcat(skh, "\n");
	snprintf(path, sizeof path, "%s/%s.key", dir, name);
	snprintf(pub, sizeof pub, "%s/%s.pub", dir, name);
	if ((r = put_key(path, skh, 0600)) < 0) {
		sodium_memzero(skh, sizeof skh);
		recctl_err("keygen: %s: %s", path, strerror(-r));
		return RECCTL_EXIT_FAIL;
	}
	sodium_memzero(skh, sizeof skh);
	if ((r = put_key(pub, pkh, 0644)) < 0) {
		unlink(path);
		recctl_err("keygen: %s: %s", pub, strerror(-r));
		return RECCTL_EXIT_FAIL;
	}
	printf("%s\n%s\n", path, pub);
	return RECCTL_EXIT_OK;
}

/* --- jobs, job, cancel: the records recd keeps in the store ------------------ */
/* Seconds left for a running job: recd's estimate when it gave one (less
 * the time since its record), else from the pace since the job started;
 * < 0 when unknown. */
static double job_eta(const struct store_job *j)
{
	if (j->state != JOBS_RUNNING)
		return -1;
	if (j->updated_ms) {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		double since = ((double)now.tv_sec * 1e3 + (double)now.tv_nsec / 1e6 - (double)j->updated_ms) / 1e3;
		if (j->eta_s < 0)
			return -1;
		return j->eta_s > since ? j->eta_s - since : 0;
	}
	double el = j->started ? difftime(time(NULL), (time_t)j->started) : 0;
	if (j->done && j->done < j->total && el > 0)
		return el * (double)(j->total - j->done) / (double)j->done;
	return -1;
}

static void job_json(struct json_object *o, const char *id, size_t len, const struct store_job *j)
{
	json_object_object_add(o, "id", json_object_new_string_len(id, (int)len));
	json_object_object_add(o, "type", json_object_new_string(jobs_type_name(j->type)));
	json_object_object_add(o, "state", json_object_new_string(jobs_state_name(j->state)));
	json_object_object_add(o, "done", json_object_new_int64((int64_t)j->done));
	json_object_object_add(o, "total", json_object_new_int64((int64_t)j->total));
	json_object_object_add(o, "queued", json_object_new_int64(j->queued));
	json_object_object_add(o, "started", json_object_new_int64(j->started));
	json_object_object_add(o, "ended", json_object_new_int64(j->ended));
	if (j->epochs > 0) {   /* train, fine-tune: done/total are optimizer steps */
		json_object_object_add(o, "epoch", json_object_new_int(j->epoch));
		json_object_object_add(o, "epochs", json_object_new_int(j->epochs));
		if (isfinite(j->loss))
			json_object_object_add(o, "loss", json_object_new_double(j->loss));
	}
	double eta = job_eta(j);
	if (eta >= 0)
		json_object_object_add(o, "eta_s", json_object_new_double(eta));
	if (j->reason[0])
		json_object_object_add(o, "reason", json_object_new_string(j->reason));
}

static void job_time(char *buf, size_t len, int64_t t)
{
	struct tm tm;
	time_t tt = (time_t)t;
	if (!t || !gmtime_r(&tt, &tm))
		snprintf(buf, len, "-");
	else
		strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

struct jobs_list {
	struct recctl *ctl;
	struct json_object *arr;
	unsigned n;
};

static int jobs_list_one(const char *id, size_t len, const struct store_job *j, void *arg)
{
	struct jobs_list *l = arg;
	char q[32];
	if (l->arr) {
		struct json_object *o = json_object_new_object();
		job_json(o, id, len, j);
		json_object_array_add(l->arr, o);
	} else {
		job_time(q, sizeof q, j->queued);
		printf("%-24.*s %-10s %-9s %8" PRIu64 "/%-8" PRIu64 " %s%s%s\n", (int)len, id, jobs_type_name(j->type),
		       jobs_state_name(j->state), j->done, j->total, q, j->reason[0] ? "  " : "", j->reason);
	}
	l->n++;
	return 0;
}

int cmd_jobs(struct recctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' }, { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	struct store *st;
	struct store_txn *tx;
	int c, r;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'j': ctl->json = 1; break;
		case 'h': printf("Usage: recctl jobs [--json]\nThe batch jobs recd has run or is running "
		                 "(ended ones are kept 30 days).\n"); return RECCTL_EXIT_OK;
		default:  return RECCTL_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		recctl_err("jobs: unexpected argument '%s'", argv[optind]);
		return RECCTL_EXIT_USAGE;
	}
	if (recctl_open_store(ctl, &st, 1) < 0)
		return RECCTL_EXIT_FAIL;
	struct jobs_list l = { ctl, ctl->json ? json_object_new_array() : NULL, 0 };
	if ((r = store_read_begin(st, &tx)) == 0) {
		if (!l.arr)
			printf("%-24s %-10s %-9s %17s %s\n", "ID", "TYPE", "STATE", "DONE/TOTAL", "QUEUED");
		r = store_job_foreach(tx, jobs_list_one, &l);
		store_txn_end(tx);
	}
	if (r < 0) {
		recctl_err("jobs: %s", store_errmsg(st));
		json_object_put(l.arr);
		store_close(st);
		return RECCTL_EXIT_FAIL;
	}
	if (l.arr) {
		recctl_print_json(l.arr);
		json_object_put(l.arr);
	}
	store_close(st);
	return RECCTL_EXIT_OK;
}

static int job_read(struct store *st, const char *id, struct store_job *j)
{
	struct store_txn *tx;
	int r = store_read_begin(st, &tx);
	if (r < 0)
		return r;
	r = store_job_get(tx, id, strlen(id), j);
	store_txn_end(tx);
	return r;
}

void recctl_job_bar(char *buf, size_t len, uint64_t done, uint64_t total, int steps, int epoch, int epochs,
                    double loss, double eta)
{
	char bar[32], more[96] = "";
	double f = total ? (double)done / (double)total : 0;
	if (f > 1)
		f = 1;
	int w = 20, k = (int)(f * w + 0.5);
	for (int i = 0; i < w; i++)
		bar[i] = i < k ? '#' : '-';
	bar[w] = '\0';
	size_t o = 0;
	if (steps)
		o += (size_t)snprintf(more + o, sizeof more - o, " steps");
	if (epochs > 0 && o < sizeof more) {
		o += (size_t)snprintf(more + o, sizeof more - o, "  epoch %d/%d", epoch, epochs);
		if (isfinite(loss) && o < sizeof more)
			o += (size_t)snprintf(more + o, sizeof more - o, "  loss %.4f", loss);
	}
	if (eta >= 0 && o < sizeof more)
		snprintf(more + o, sizeof more - o, "  ETA %.0f s", eta);
	snprintf(buf, len, "[%s] %3.0f%%  %" PRIu64 "/%" PRIu64 "%s", bar, f * 100, done, total, more);
}

/* A store record's bar: train and fine-tune records have epochs. */
static void job_bar(char *buf, size_t len, const struct store_job *j)
{
	recctl_job_bar(buf, len, j->done, j->total, j->epochs > 0, j->epoch, j->epochs, j->loss, job_eta(j));
}

int cmd_job(struct recctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "watch", no_argument, NULL, 'w' }, { "json", no_argument, NULL, 'j' },
		{ "result", no_argument, NULL, 'r' }, { "chunk", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },  { NULL, 0, NULL, 0 },
	};
	struct store *st;
	struct store_job j;
	int c, r, watch = 0, result = 0;
	unsigned long chunk = 0;
	char *end;

	while ((c = getopt_long(argc, argv, "wh", opts, NULL)) != -1) {
		switch (c) {
		case 'w': watch = 1; break;
		case 'j': ctl->json = 1; break;
		case 'r': result = 1; break;
		case 'C':
			errno = 0;
			chunk = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || optarg[0] == '-' || chunk < 1 || chunk > RECD_JOB_CHUNK_MAX) {
				recctl_err("job: --chunk '%s' is not from 1 to %d", optarg, RECD_JOB_CHUNK_MAX);
				return RECCTL_EXIT_USAGE;
			}
			break;
		case 'h': printf("Usage: recctl job [--watch] [--json] ID\n"
		                 "       recctl job --result [--chunk BYTES] ID\n"
		                 "One batch job's state; --watch follows it to its end with a progress bar (plain\n"
		                 "lines when not a terminal).  From the running recd when its socket is reachable and\n"
		                 "-d is not given (as recommend), else from the store's records.  --result prints a\n"
		                 "finished job's result lines (from recd, read BYTES at a time).\n");
		          return RECCTL_EXIT_OK;
		default:  return RECCTL_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		recctl_err("job: expected one job ID");
		return RECCTL_EXIT_USAGE;
	}
	const char *id = argv[optind];
	if (strlen(id) == 0 || strlen(id) > JOBS_ID_MAX) {
		recctl_err("job: '%s' is not a job ID", id);
		return RECCTL_EXIT_USAGE;
	}
	/* Like recommend: recd's own view when it is reachable and -d is not given. */
	if (result)
		return recctl_daemon_job_result(ctl, id, chunk ? chunk : RECD_JOB_CHUNK_MAX);
	if (chunk) {
		recctl_err("job: --chunk goes with --result");
		return RECCTL_EXIT_USAGE;
	}
	if (recctl_via_daemon(ctl))
		return recctl_daemon_job(ctl, id, watch);
	if (recctl_open_store(ctl, &st, 1) < 0)
		return RECCTL_EXIT_FAIL;
	int tty = isatty(1), last_line = -1;
	for (;;) {
		if ((r = job_read(st, id, &j)) < 0) {
			recctl_err("job: %s", r == -ENOENT ? "no such job (recd has not taken it yet, or it "
			           "ended more than 30 days ago)" : store_errmsg(st));
			store_close(st);
			return RECCTL_EXIT_FAIL;
		}
		if (!watch || j.state >= JOBS_DONE)
			break;
		char bar[192];
		job_bar(bar, sizeof bar, &j);
		if (tty) {
			printf("\r%s %-9s %s\033[K", id, jobs_state_name(j.state), bar);
			fflush(stdout);
		} else if ((int)(j.total ? j.done * 10 / j.total : 0) != last_line) {
			last_line = (int)(j.total ? j.done * 10 / j.total : 0);
			printf("%s %s %s\n", id, jobs_state_name(j.state), bar);
			fflush(stdout);
		}
		/* The store is read afresh each time: LMDB readers see the
		 * latest commit. */
		struct timespec ts = { 0, 250 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	if (watch && tty)
		printf("\r\033[K");
	if (ctl->json) {
		struct json_object *o = json_object_new_object();
		job_json(o, id, strlen(id), &j);
		recctl_print_json(o);
		json_object_put(o);
	} else {
		char q[32], s[32], e[32], bar[192];
		job_time(q, sizeof q, j.queued);
		job_time(s, sizeof s, j.started);
		job_time(e, sizeof e, j.ended);
		job_bar(bar, sizeof bar, &j);
		printf("job       %s\ntype      %s\nstate     %s\nprogress  %s\nqueued    %s\nstarted   %s\nended     %s\n",
		       id, jobs_type_name(j.type), jobs_state_name(j.state), bar, q, s, e);
		if (j.reason[0])
			printf("reason    %s\n", j.reason);
	}
	store_close(st);
	return j.state == JOBS_DONE || !watch ? RECCTL_EXIT_OK : RECCTL_EXIT_FAIL;
}

int cmd_cancel(struct recctl *ctl, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "spool", required_argument, NULL, 'S' }, { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	const char *spool = NULL;
	char path[PATH_MAX];
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'S': spool = optarg; break;
		case 'h': printf("Usage: recctl cancel [--spool DIR] ID\nAsks recd to stop a queued or running "
		                 "job: it ends cancelled (a spool job in failed/ with the reason \"cancelled\").\n"
		                 "Through the running recd when its socket is reachable, -d and --spool are not\n"
		                 "given (as recommend); else with a request file in the spool's cancel/ folder.\n");
		          return RECCTL_EXIT_OK;
		default:  return RECCTL_EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		recctl_err("cancel: expected one job ID");
		return RECCTL_EXIT_USAGE;
	}
	const char *id = argv[optind];
	size_t n = strlen(id);
	if (n == 0 || n > JOBS_ID_MAX || id[0] == '.' || strchr(id, '/') || strstr(id, "..")) {
		recctl_err("cancel: '%s' is not a job ID", id);
		return RECCTL_EXIT_USAGE;
	}
	/* Without --spool, through recd when it is reachable (recctl(1)). */
	if (!spool && recctl_via_daemon(ctl))
		return recctl_daemon_cancel(ctl, id);
	snprintf(path, sizeof path, "%s/cancel/%s", jobs_spool_dir(spool), id);
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0) {
		recctl_err("cancel: %s: %s", path, strerror(errno));
		return RECCTL_EXIT_FAIL;
	}
	close(fd);
	printf("cancel requested for %s\n", id);
	return RECCTL_EXIT_OK;
}
