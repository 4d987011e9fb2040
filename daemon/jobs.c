/* jobs.c: batch jobs.  The parser turns a job file (JSON, recd-spool(5))
 * into a checked struct jobs_job, unwrapping and verifying a signature
 * envelope; jobs_run() does what the job asks through the serving API and
 * the store, one result line per unit; the engine runs jobs on worker
 * threads, interactive before bulk, long ones (train, evaluate, fine-tune)
 * on their own low-priority thread so they never hold up the others. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <sodium.h>

#include "daemon/jobs.h"
#include "daemon/log.h"
#include "import/event.h"
#include "kernels/kernels.h"
#include "model/eval.h"
#include "model/finetune.h"
#include "model/serve.h"
#include "model/train.h"
#include "store/store.h"

static int jobs_why(char *why, size_t whylen, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int jobs_why(char *why, size_t whylen, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return err;
}

static int jobs_ends_with(const char *s, size_t n, const char *suffix)
{
	size_t m = strlen(suffix);
	return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

int jobs_name_check(const char *name, size_t len, char *why, size_t whylen)
{
	if (len == 0)
		return jobs_why(why, whylen, -EINVAL, "empty name");
	if (len > JOBS_ID_MAX)
		return jobs_why(why, whylen, -EINVAL, "name longer than %d bytes", JOBS_ID_MAX);
	if (!import_utf8_valid((const unsigned char *)name, len))
		return jobs_why(why, whylen, -EINVAL, "name is not valid UTF-8");
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c < 0x20 || c == 0x7f)
			return jobs_why(why, whylen, -EINVAL, "control character in name");
		if (c == '/')
			return jobs_why(why, whylen, -EINVAL, "'/' in name");
	}
	if (name[0] == '.')
		return jobs_why(why, whylen, -EINVAL, "name starts with '.'");
	if (memmem(name, len, "..", 2))
		return jobs_why(why, whylen, -EINVAL, "'..' in name");
	if (jobs_ends_with(name, len, ".error") || jobs_ends_with(name, len, ".tmp") ||
	    jobs_ends_with(name, len, ".jsonl"))
		return jobs_why(why, whylen, -EINVAL, "name ends in a suffix the spool uses (.error, .tmp, .jsonl)");
	return 0;
}

/* --- the parsed job ------------------------------------------------------ */
struct jobs_score_req {
	const char *user;
	const char **items;
	int nitems;
};

struct jobs_job {
	char id[JOBS_ID_MAX + 1];
	enum jobs_type type;
	struct json_object *root;    /* the job object (inside the envelope when signed) */
	int signed_by_key;           /* 1: a trusted key signed it */
	uint8_t content_hash[32];    /* BLAKE2b of the job text */
	int64_t created;             /* 0: not given */
	/* recommend */
	const char **users;
	size_t nusers;
	int k;
	struct serve_filter filter;
	const char **include, **exclude;
	/* score */
	struct jobs_score_req *reqs;
	size_t nreqs;
	/* ingest */
	struct json_object *events;  /* array, types checked */
	size_t nevents;
	/* train, fine-tune, evaluate */
	uint32_t model;              /* 0: the latest */
	int epochs, patience, protocol_full, protocol_sampled;
	int64_t max_steps;
	double lr;
	uint32_t max_users;
	uint64_t seed;
	enum jobs_activate activate; /* fine-tune: when the child becomes the served version */
};

enum jobs_type jobs_job_type(const struct jobs_job *j) { return j->type; }
const char *jobs_job_id(const struct jobs_job *j) { return j->id; }

size_t jobs_job_units(const struct jobs_job *j)
{
	switch (j->type) {
	case JOBS_RECOMMEND: return j->nusers;
	case JOBS_SCORE:     return j->nreqs;
	case JOBS_INGEST:    return j->nevents;
	default:             return 1;
	}
}

void jobs_job_free(struct jobs_job *j)
{
	if (!j)
		return;
	if (j->root)
		json_object_put(j->root);
	free(j->users);
	free(j->include);
	free(j->exclude);
	if (j->reqs)
		for (size_t i = 0; i < j->nreqs; i++)
			free(j->reqs[i].items);
	free(j->reqs);
	free(j);
}

int jobs_job_seen_key(const struct jobs_job *j, uint8_t key[32])
{
	static const char tag[] = "recd-spool-seen";
	crypto_generichash_state h;
	if (!j->signed_by_key)
		return -ENOENT;
	crypto_generichash_init(&h, NULL, 0, 32);
	crypto_generichash_update(&h, (const unsigned char *)tag, sizeof tag);
	crypto_generichash_update(&h, (const unsigned char *)j->id, strlen(j->id));
	crypto_generichash_final(&h, key, 32);
	return 0;
}

/* The exactly-once key of an ingest job: its ID and its content, so the
 * same file run again after a crash finds its mark, and a different job
 * that reuses a finished job's ID does not. */
static void jobs_ingest_key(const struct jobs_job *j, uint8_t key[32])
{
	static const char tag[] = "recd-spool-ingest";
	crypto_generichash_state h;
	crypto_generichash_init(&h, NULL, 0, 32);
	crypto_generichash_update(&h, (const unsigned char *)tag, sizeof tag);
	crypto_generichash_update(&h, (const unsigned char *)j->id, strlen(j->id) + 1);
	crypto_generichash_update(&h, j->content_hash, sizeof j->content_hash);
	crypto_generichash_final(&h, key, 32);
}

static const char *jobs_json_type(struct json_object *o)
{
	switch (json_object_get_type(o)) {
	case json_type_null:    return "null";
	case json_type_boolean: return "a boolean";
	case json_type_double:  return "a number";
	case json_type_int:     return "an integer";
	case json_type_object:  return "an object";
	case json_type_array:   return "an array";
	case json_type_string:  return "a string";
	}
	return "?";
}

/* Field getters: each checks the JSON type and bounds and names the field
 * (path) in why.  A missing optional field leaves *out alone and returns 1. */
static int jobs_get(struct json_object *obj, const char *key, int required, const char *path,
                    struct json_object **out, char *why, size_t whylen)
{
	struct json_object *v = NULL;
	if (!json_object_object_get_ex(obj, key, &v) || !v) {
		if (required)
			return jobs_why(why, whylen, -EINVAL, "%s%s: missing", path, key);
		return 1;
	}
	*out = v;
	return 0;
}

static int jobs_get_int(struct json_object *obj, const char *key, int required, const char *path,
                        int64_t lo, int64_t hi, int64_t *out, char *why, size_t whylen)
{
	struct json_object *v = NULL;
	int r = jobs_get(obj, key, required, path, &v, why, whylen);
	if (r)
		return r;
	if (!json_object_is_type(v, json_type_int))
		return jobs_why(why, whylen, -EINVAL, "%s%s: expected an integer, got %s", path, key,
		                jobs_json_type(v));
	errno = 0;
	int64_t x = json_object_get_int64(v);
	if (errno || x < lo || x > hi)
		return jobs_why(why, whylen, -EINVAL, "%s%s: %s is outside %" PRId64 "..%" PRId64, path, key,
		                json_object_to_json_string(v), lo, hi);
	*out = x;
	return 0;
}

static int jobs_get_num(struct json_object *obj, const char *key, const char *path, double lo, double hi,
                        double *out, char *why, size_t whylen)
{
	struct json_object *v = NULL;
	int r = jobs_get(obj, key, 0, path, &v, why, whylen);
	if (r)
		return r;
	if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
		return jobs_why(why, whylen, -EINVAL, "%s%s: expected a number, got %s", path, key, jobs_json_type(v));
	double x = json_object_get_double(v);
	if (!(x >= lo && x <= hi))
		return jobs_why(why, whylen, -EINVAL, "%s%s: %g is outside %g..%g", path, key, x, lo, hi);
	*out = x;
	return 0;
}

/* A string that is an ID: 1..max bytes, no NUL. */
static int jobs_str(struct json_object *v, const char *what, size_t max, const char **out,
                    char *why, size_t whylen)
{
	if (!json_object_is_type(v, json_type_string))
		return jobs_why(why, whylen, -EINVAL, "%s: expected a string, got %s", what, jobs_json_type(v));
	size_t n = (size_t)json_object_get_string_len(v);
	const char *s = json_object_get_string(v);
	if (n == 0)
		return jobs_why(why, whylen, -EINVAL, "%s: empty", what);
	if (n > max)
		return jobs_why(why, whylen, -EINVAL, "%s: longer than %zu bytes", what, max);
	if (strlen(s) != n)
		return jobs_why(why, whylen, -EINVAL, "%s: contains a NUL character", what);
	*out = s;
	return 0;
}

static int jobs_get_str(struct json_object *obj, const char *key, int required, const char *path,
                        size_t max, const char **out, char *why, size_t whylen)
{
	struct json_object *v = NULL;
	char what[128];
	int r = jobs_get(obj, key, required, path, &v, why, whylen);
	if (r)
		return r;
	snprintf(what, sizeof what, "%s%s", path, key);
	return jobs_str(v, what, max, out, why, whylen);
}

/* An array of ID strings, 0..max entries (min given). */
static int jobs_get_strs(struct json_object *obj, const char *key, int required, const char *path,
                         size_t min, size_t max, const char ***out, size_t *nout, char *why, size_t whylen)
{
	struct json_object *v = NULL;
	char what[160];
	int r = jobs_get(obj, key, required, path, &v, why, whylen);
	if (r)
		return r;
	if (!json_object_is_type(v, json_type_array))
		return jobs_why(why, whylen, -EINVAL, "%s%s: expected an array, got %s", path, key, jobs_json_type(v));
	size_t n = json_object_array_length(v);
	if (n < min || n > max)
		return jobs_why(why, whylen, -EINVAL, "%s%s: %zu entries, expected %zu to %zu", path, key, n, min, max);
	const char **a = calloc(n ? n : 1, sizeof *a);
	if (!a)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		snprintf(what, sizeof what, "%s%s[%zu]", path, key, i);
		if ((r = jobs_str(json_object_array_get_idx(v, i), what, SERVE_ID_MAX, &a[i], why, whylen)) < 0) {
			free(a);
			return r;
		}
	}
	*out = a;
	*nout = n;
	return 0;
}

/* Every key of obj must be one of names (NULL-terminated). */
static int jobs_known_keys(struct json_object *obj, const char *path, const char *const *names,
                           char *why, size_t whylen)
{
	json_object_object_foreach(obj, key, val) {
		(void)val;
		size_t i;
		for (i = 0; names[i] && strcmp(names[i], key) != 0; i++)
			;
		if (!names[i]) {
			char show[72];
			snprintf(show, sizeof show, "%s", key);
			for (char *c = show; *c; c++)
				if ((unsigned char)*c < 0x20 || *c == 0x7f)
					*c = '?';
			return jobs_why(why, whylen, -EINVAL, "%s%s: unknown field", path, show);
		}
	}
	return 0;
}

static int jobs_parse_json(const char *text, size_t len, struct json_object **out, char *why, size_t whylen)
{
	struct json_tokener *tok = json_tokener_new_ex(JOBS_JSON_DEPTH);
	struct json_object *o;
	enum json_tokener_error e;

	if (!tok)
		return -ENOMEM;
	if (len > INT32_MAX) {
		json_tokener_free(tok);
		return jobs_why(why, whylen, -EINVAL, "job: larger than 2 GiB");
	}
	if (memchr(text, '\0', len)) {
		json_tokener_free(tok);
		return jobs_why(why, whylen, -EINVAL, "job: NUL byte in the file at byte %zu",
		                (size_t)((const char *)memchr(text, '\0', len) - text));
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, text, (int)len);
	e = json_tokener_get_error(tok);
	if (!o && e == json_tokener_continue) {
		json_tokener_free(tok);
		return jobs_why(why, whylen, -EINVAL, "job: JSON ends early (truncated) after %zu bytes", len);
	}
	if (!o) {
		size_t at = json_tokener_get_parse_end(tok);
		json_tokener_free(tok);
		return jobs_why(why, whylen, -EINVAL, "job: not valid JSON at byte %zu: %s", at,
		                json_tokener_error_desc(e));
	}
	size_t end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	for (; end < len; end++) {
		char c = text[end];
		if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
			json_object_put(o);
			return jobs_why(why, whylen, -EINVAL, "job: text after the JSON object at byte %zu", end);
		}
	}
	if (!json_object_is_type(o, json_type_object)) {
		jobs_why(why, whylen, -EINVAL, "job: expected a JSON object, got %s", jobs_json_type(o));
		json_object_put(o);
		return -EINVAL;
	}
	*out = o;
	return 0;
}

/* A key file: 32 raw bytes, or 64 hex digits and an optional line end. */
static int jobs_load_key(const char *dir, const char *name, uint8_t pk[crypto_sign_PUBLICKEYBYTES],
                         char *why, size_t whylen)
{
	char path[1024], buf[130];
	struct stat sb;
	size_t got = 0;
	int fd, r;

	for (const char *c = name; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
		      *c == '-' || *c == '_'))
			return jobs_why(why, whylen, -EPERM, "signature.key: '%.64s' is not a key name "
			                "(letters, digits, '-', '_')", name);
	if (snprintf(path, sizeof path, "%s/%s.pub", dir, name) >= (int)sizeof path)
		return jobs_why(why, whylen, -EPERM, "signature.key: path too long");
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return jobs_why(why, whylen, -EPERM, "signature.key: no trusted key '%s' (%s: %s)", name, path,
		                strerror(errno));
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size > 129) {
		close(fd);
		return jobs_why(why, whylen, -EPERM, "signature.key: %s is not a key file", path);
	}
	while (got < sizeof buf) {
		ssize_t n = read(fd, buf + got, sizeof buf - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	while (got && (buf[got - 1] == '\n' || buf[got - 1] == '\r'))
		got--;
	if (got == crypto_sign_PUBLICKEYBYTES) {
		memcpy(pk, buf, got);
		return 0;
	}
	size_t bin = 0;
	r = sodium_hex2bin(pk, crypto_sign_PUBLICKEYBYTES, buf, got, NULL, &bin, NULL);
	if (r < 0 || bin != crypto_sign_PUBLICKEYBYTES || got != 2 * crypto_sign_PUBLICKEYBYTES)
		return jobs_why(why, whylen, -EPERM, "signature.key: %s is not a 32-byte Ed25519 public key", path);
	return 0;
}

/* {"signature": {"key": NAME, "sig": BASE64}, "job": "<job JSON text>"}:
 * the signature covers exactly the bytes of the "job" string. */
static int jobs_unwrap(struct json_object *env, const struct jobs_sig_policy *sig, struct json_object **job,
                       uint8_t hash[32], char *why, size_t whylen)
{
	static const char *const env_keys[] = { "signature", "job", NULL };
	static const char *const sig_keys[] = { "key", "sig", NULL };
	struct json_object *s = NULL, *jt = NULL;
	const char *key, *b64;
	uint8_t pk[crypto_sign_PUBLICKEYBYTES], sigbin[crypto_sign_BYTES];
	size_t siglen = 0;
	int r;

	if ((r = jobs_known_keys(env, "", env_keys, why, whylen)) < 0)
		return r;
	if ((r = jobs_get(env, "signature", 1, "", &s, why, whylen)) < 0 ||
	    (r = jobs_get(env, "job", 1, "", &jt, why, whylen)) < 0)
		return r;
	if (!json_object_is_type(s, json_type_object))
		return jobs_why(why, whylen, -EINVAL, "signature: expected an object, got %s", jobs_json_type(s));
	if (!json_object_is_type(jt, json_type_string))
		return jobs_why(why, whylen, -EINVAL, "job: expected a string (the signed job text), got %s",
		                jobs_json_type(jt));
	if ((r = jobs_known_keys(s, "signature.", sig_keys, why, whylen)) < 0 ||
	    (r = jobs_get_str(s, "key", 1, "signature.", 64, &key, why, whylen)) < 0 ||
	    (r = jobs_get_str(s, "sig", 1, "signature.", 128, &b64, why, whylen)) < 0)
		return r;
	if (!sig || !sig->keys_dir)
		return jobs_why(why, whylen, -EPERM, "signature: this spool has no trusted-keys folder");
	if (sodium_base642bin(sigbin, sizeof sigbin, b64, strlen(b64), NULL, &siglen, NULL,
	                      sodium_base64_VARIANT_ORIGINAL) < 0 || siglen != crypto_sign_BYTES)
		return jobs_why(why, whylen, -EPERM, "signature.sig: not a base64 Ed25519 signature");
	if ((r = jobs_load_key(sig->keys_dir, key, pk, why, whylen)) < 0)
		return r;
	const char *text = json_object_get_string(jt);
	size_t len = (size_t)json_object_get_string_len(jt);
	if (crypto_sign_verify_detached(sigbin, (const unsigned char *)text, len, pk) != 0)
		return jobs_why(why, whylen, -EPERM, "signature: bad signature by key '%s' (the job was altered "
		                "or signed with another key)", key);
	crypto_generichash(hash, 32, (const unsigned char *)text, len, NULL, 0);
	return jobs_parse_json(text, len, job, why, whylen);
}

static int jobs_parse_recommend(struct jobs_job *j, char *why, size_t whylen)
{
	static const char *const keys[] = { "format", "type", "id", "created", "users", "k", "include",
	                                    "exclude", "include_seen", NULL };
	struct json_object *o = j->root, *v = NULL;
	int64_t k = 10;
	size_t n;
	int r;

	if ((r = jobs_known_keys(o, "", keys, why, whylen)) < 0 ||
	    (r = jobs_get_strs(o, "users", 1, "", 1, JOBS_UNITS_MAX, &j->users, &j->nusers, why, whylen)) < 0 ||
	    (r = jobs_get_int(o, "k", 0, "", 1, SERVE_K_MAX, &k, why, whylen)) < 0 ||
	    (r = jobs_get_strs(o, "include", 0, "", 0, SERVE_FILTER_MAX, &j->include, &n, why, whylen)) < 0)
		return r;
	j->k = (int)k;
	if (j->include) {
		j->filter.include = j->include;
		j->filter.ninclude = n;
	}
	if ((r = jobs_get_strs(o, "exclude", 0, "", 0, SERVE_FILTER_MAX, &j->exclude, &n, why, whylen)) < 0)
		return r;
	if (j->exclude) {
		j->filter.exclude = j->exclude;
		j->filter.nexclude = n;
	}
	if ((r = jobs_get(o, "include_seen", 0, "", &v, why, whylen)) < 0)
		return r;
	if (r == 0) {
		if (!json_object_is_type(v, json_type_boolean))
			return jobs_why(why, whylen, -EINVAL, "include_seen: expected a boolean, got %s", jobs_json_type(v));
		j->filter.include_seen = json_object_get_boolean(v);
	}
	return 0;
}

static int jobs_parse_score(struct jobs_job *j, char *why, size_t whylen)
{
	static const char *const keys[] = { "format", "type", "id", "created", "requests", NULL };
	static const char *const req_keys[] = { "user", "items", NULL };
	struct json_object *a = NULL;
	char path[64];
	int r;

	if ((r = jobs_known_keys(j->root, "", keys, why, whylen)) < 0 ||
	    (r = jobs_get(j->root, "requests", 1, "", &a, why, whylen)) < 0)
		return r;
	if (!json_object_is_type(a, json_type_array))
		return jobs_why(why, whylen, -EINVAL, "requests: expected an array, got %s", jobs_json_type(a));
	size_t n = json_object_array_length(a);
	if (n < 1 || n > JOBS_UNITS_MAX)
		return jobs_why(why, whylen, -EINVAL, "requests: %zu entries, expected 1 to %d", n, JOBS_UNITS_MAX);
	if (!(j->reqs = calloc(n, sizeof *j->reqs)))
		return -ENOMEM;
	j->nreqs = n;
	for (size_t i = 0; i < n; i++) {
		struct json_object *q = json_object_array_get_idx(a, i);
		size_t ni = 0;
		snprintf(path, sizeof path, "requests[%zu].", i);
		if (!json_object_is_type(q, json_type_object))
			return jobs_why(why, whylen, -EINVAL, "requests[%zu]: expected an object, got %s", i,
			                jobs_json_type(q));
		if ((r = jobs_known_keys(q, path, req_keys, why, whylen)) < 0 ||
		    (r = jobs_get_str(q, "user", 1, path, SERVE_ID_MAX, &j->reqs[i].user, why, whylen)) < 0 ||
		    (r = jobs_get_strs(q, "items", 1, path, 1, SERVE_CAND_MAX, &j->reqs[i].items, &ni, why, whylen)) < 0)
			return r;
		j->reqs[i].nitems = (int)ni;
	}
	return 0;
}

static const char *const jobs_event_keys[IMPORT_EV_COUNT + 1] = {
	[IMPORT_EV_USER] = "user", [IMPORT_EV_ITEM] = "item", [IMPORT_EV_TIME] = "time",
	[IMPORT_EV_ACTION] = "action", [IMPORT_EV_VALUE] = "value", [IMPORT_EV_LAT] = "lat",
	[IMPORT_EV_LON] = "lon", [IMPORT_EV_DEVICE] = "device", [IMPORT_EV_TEXT] = "text",
	[IMPORT_EV_COUNT] = NULL,
};

/* Types only: values are the importer's to judge, per event, at run time. */
static int jobs_parse_ingest(struct jobs_job *j, char *why, size_t whylen)
{
	static const char *const keys[] = { "format", "type", "id", "created", "events", NULL };
	struct json_object *a = NULL;
	char path[64];
	int r;

	if ((r = jobs_known_keys(j->root, "", keys, why, whylen)) < 0 ||
	    (r = jobs_get(j->root, "events", 1, "", &a, why, whylen)) < 0)
		return r;
	if (!json_object_is_type(a, json_type_array))
		return jobs_why(why, whylen, -EINVAL, "events: expected an array, got %s", jobs_json_type(a));
	size_t n = json_object_array_length(a);
	if (n < 1 || n > JOBS_UNITS_MAX)
		return jobs_why(why, whylen, -EINVAL, "events: %zu entries, expected 1 to %d", n, JOBS_UNITS_MAX);
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(a, i);
		snprintf(path, sizeof path, "events[%zu].", i);
		if (!json_object_is_type(e, json_type_object))
			return jobs_why(why, whylen, -EINVAL, "events[%zu]: expected an object, got %s", i,
			                jobs_json_type(e));
		if ((r = jobs_known_keys(e, path, jobs_event_keys, why, whylen)) < 0)
			return r;
		json_object_object_foreach(e, key, val) {
			enum json_type t = json_object_get_type(val);
			int num = !strcmp(key, "value") || !strcmp(key, "lat") || !strcmp(key, "lon");
			int ts = !strcmp(key, "time");
			if (num && t != json_type_int && t != json_type_double)
				return jobs_why(why, whylen, -EINVAL, "%s%s: expected a number, got %s", path, key,
				                jobs_json_type(val));
			if (ts && t != json_type_int && t != json_type_string)
				return jobs_why(why, whylen, -EINVAL, "%s%s: expected an integer or a "
				                "YYYY-MM-DDTHH:MM:SS string, got %s", path, key, jobs_json_type(val));
			if (!num && !ts && t != json_type_string)
				return jobs_why(why, whylen, -EINVAL, "%s%s: expected a string, got %s", path, key,
				                jobs_json_type(val));
		}
	}
	j->events = a;
	j->nevents = n;
	return 0;
}

static int jobs_parse_model_job(struct jobs_job *j, char *why, size_t whylen)
{
	static const char *const train_keys[] = { "format", "type", "id", "created", "epochs", "patience",
	                                           "lr", "seed", NULL };
	static const char *const ft_keys[] = { "format", "type", "id", "created", "model", "epochs", "lr",
	                                       "max_steps", "seed", "activate", NULL };
	static const char *const eval_keys[] = { "format", "type", "id", "created", "model", "protocol",
	                                         "max_users", "seed", NULL };
	struct json_object *o = j->root;
	int64_t v;
	int r;

	j->epochs = j->type == JOBS_FINETUNE ? 1 : 20;
	j->patience = 3;
	j->lr = 0;
	j->seed = 1;
	if (j->type == JOBS_TRAIN)
		r = jobs_known_keys(o, "", train_keys, why, whylen);
	else if (j->type == JOBS_FINETUNE)
		r = jobs_known_keys(o, "", ft_keys, why, whylen);
	else
		r = jobs_known_keys(o, "", eval_keys, why, whylen);
	if (r < 0)
		return r;
	if ((r = jobs_get_int(o, "model", 0, "", 0, UINT32_MAX - 1, &v, why, whylen)) < 0)
		return r;
	if (r == 0)
		j->model = (uint32_t)v;
	if ((r = jobs_get_int(o, "epochs", 0, "", 1, 1000, &v, why, whylen)) < 0)
		return r;
	if (r == 0)
		j->epochs = (int)v;
	if ((r = jobs_get_int(o, "patience", 0, "", 0, 1000, &v, why, whylen)) < 0)
		return r;
	if (r == 0)
		j->patience = (int)v;
	if ((r = jobs_get_int(o, "max_steps", 0, "", 1, INT64_C(1) << 40, &v, why, whylen)) < 0)
		return r;
	if (r == 0)
		j->max_steps = v;
	if ((r = jobs_get_int(o, "max_users", 0, "", 0, UINT32_MAX, &v, why, whylen)) < 0)
		return r;
	if (r == 0)
		j->max_users = (uint32_t)v;
	if ((r = jobs_get_int(o, "seed", 0, "", 0, INT64_MAX, &v, why, whylen)) < 0)
		return r;
	if (r == 0)
		j->seed = (uint64_t)v;
	if ((r = jobs_get_num(o, "lr", "", 1e-7, 1.0, &j->lr, why, whylen)) < 0)
		return r;
	j->activate = JOBS_ACTIVATE_IF_BETTER;
	const char *a = NULL;
	if ((r = jobs_get_str(o, "activate", 0, "", 16, &a, why, whylen)) < 0)
		return r;
	if (a) {
		if (!strcmp(a, "always"))
			j->activate = JOBS_ACTIVATE_ALWAYS;
		else if (!strcmp(a, "never"))
			j->activate = JOBS_ACTIVATE_NEVER;
		else if (strcmp(a, "if-better"))
			return jobs_why(why, whylen, -EINVAL, "activate: '%s' is not if-better, always or never", a);
	}
	j->protocol_full = j->protocol_sampled = 1;
	const char *p = NULL;
	if ((r = jobs_get_str(o, "protocol", 0, "", 16, &p, why, whylen)) < 0)
		return r;
	if (p) {
		j->protocol_full = !strcmp(p, "full") || !strcmp(p, "both");
		j->protocol_sampled = !strcmp(p, "sampled") || !strcmp(p, "both");
		if (!j->protocol_full && !j->protocol_sampled)
			return jobs_why(why, whylen, -EINVAL, "protocol: '%s' is not full, sampled or both", p);
	}
	return 0;
}

int jobs_parse(const char *text, size_t len, const char *id, const struct jobs_sig_policy *sig,
               struct jobs_job **out, char *why, size_t whylen)
{
	static const struct {
		const char *name;
		enum jobs_type type;
	} types[] = {
		{ "recommend", JOBS_RECOMMEND }, { "score", JOBS_SCORE }, { "ingest", JOBS_INGEST },
		{ "train", JOBS_TRAIN }, { "evaluate", JOBS_EVALUATE }, { "fine-tune", JOBS_FINETUNE },
	};
	struct json_object *top = NULL, *inner = NULL;
	struct jobs_job *j;
	const char *type, *jid = NULL;
	int64_t format, created = 0;
	size_t t;
	int r;

	if (strlen(id) > JOBS_ID_MAX)
		return jobs_why(why, whylen, -EINVAL, "job ID longer than %d bytes", JOBS_ID_MAX);
	if (!(j = calloc(1, sizeof *j)))
		return -ENOMEM;
	snprintf(j->id, sizeof j->id, "%s", id);
	if ((r = jobs_parse_json(text, len, &top, why, whylen)) < 0)
		goto fail;
	if (json_object_object_get_ex(top, "signature", NULL)) {
		if ((r = jobs_unwrap(top, sig, &inner, j->content_hash, why, whylen)) < 0)
			goto fail;
		json_object_put(top);
		top = NULL;
		j->root = inner;
		j->signed_by_key = 1;
	} else {
		if (sig && sig->require) {
			r = jobs_why(why, whylen, -EPERM, "signature: the job is not signed and this spool "
			             "requires signatures (spool_require_signature = yes)");
			goto fail;
		}
		crypto_generichash(j->content_hash, 32, (const unsigned char *)text, len, NULL, 0);
		j->root = top;
		top = NULL;
	}
	if ((r = jobs_get_int(j->root, "format", 1, "", INT64_MIN, INT64_MAX, &format, why, whylen)) < 0)
		goto fail;
	if (format != JOBS_FORMAT_VERSION) {
		r = jobs_why(why, whylen, -EINVAL, "format: version %" PRId64 " is not supported (this recd "
		             "reads version %d)", format, JOBS_FORMAT_VERSION);
		goto fail;
	}
	if ((r = jobs_get_str(j->root, "type", 1, "", 32, &type, why, whylen)) < 0)
		goto fail;
	for (t = 0; t < sizeof types / sizeof types[0] && strcmp(types[t].name, type) != 0; t++)
		;
	if (t == sizeof types / sizeof types[0]) {
		char show[40];
		snprintf(show, sizeof show, "%s", type);
		for (char *c = show; *c; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f)
				*c = '?';
		r = jobs_why(why, whylen, -EINVAL, "type: unknown job type '%s' (expected recommend, score, "
		             "ingest, train, evaluate or fine-tune)", show);
		goto fail;
	}
	j->type = types[t].type;
	if ((r = jobs_get_str(j->root, "id", j->signed_by_key, "", JOBS_ID_MAX, &jid, why, whylen)) < 0)
		goto fail;
	if (jid && strcmp(jid, id) != 0) {
		r = jobs_why(why, whylen, j->signed_by_key ? -EPERM : -EINVAL,
		             "id: the job says it is '%.128s' but its file is named '%s'", jid, id);
		goto fail;
	}
	if ((r = jobs_get_int(j->root, "created", j->signed_by_key, "", 0, INT64_C(1) << 40, &created,
	                      why, whylen)) < 0)
		goto fail;
	j->created = created;
	if (j->signed_by_key) {
		int64_t now = sig->now ? sig->now : (int64_t)time(NULL);
		if (created < now - (int64_t)sig->max_age) {
			r = jobs_why(why, whylen, -EPERM, "created: the signed job expired (created %" PRId64
			             " s ago, spool_signature_max_age is %u s)", now - created, sig->max_age);
			goto fail;
		}
		if (created > now + (int64_t)sig->max_age) {
			r = jobs_why(why, whylen, -EPERM, "created: %" PRId64 " s in the future", created - now);
			goto fail;
		}
	}
	switch (j->type) {
	case JOBS_RECOMMEND: r = jobs_parse_recommend(j, why, whylen); break;
	case JOBS_SCORE:     r = jobs_parse_score(j, why, whylen); break;
	case JOBS_INGEST:    r = jobs_parse_ingest(j, why, whylen); break;
	default:             r = jobs_parse_model_job(j, why, whylen); break;
	}
	if (r < 0)
		goto fail;
	*out = j;
	return 0;
fail:
	if (top)
		json_object_put(top);
	jobs_job_free(j);
	return r;
}

/* --- running ------------------------------------------------------------- */
void jobs_buf_free(struct jobs_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

static int jobs_buf_add(struct jobs_buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t nc = b->cap ? b->cap : 4096;
		while (nc < b->len + n + 1)
			nc *= 2;
		char *p = realloc(b->p, nc);
		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = nc;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

/* Appends o as one line and drops it. */
static int jobs_line(struct jobs_buf *b, struct json_object *o)
{
	size_t n;
	int r;
	if (!o)
		return -ENOMEM;
	const char *s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN |
	                                                  JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	r = s ? jobs_buf_add(b, s, n) : -ENOMEM;
	if (r == 0)
		r = jobs_buf_add(b, "\n", 1);
	json_object_put(o);
	return r;
}

/* Scores as the float they are, in the shortest text that reads back the
 * same, so a result is byte-identical however often it is computed. */
static struct json_object *jobs_float(float f)
{
	char buf[32];
	if (!isfinite(f))
		return json_object_new_null();
	snprintf(buf, sizeof buf, "%.9g", (double)f);
	return json_object_new_double_s((double)f, buf);
}

static int jobs_unit_error(int r)
{
	/* What one unit can get wrong; anything else fails the job. */
	return r == -ENOENT || r == -ENODATA || r == -EINVAL || r == -E2BIG || r == -ERANGE;
}

static void jobs_tick(const struct jobs_run_env *env, size_t i, size_t n)
{
	if (env->progress && ((i & 15) == 0 || i == n)) {
		struct jobs_progress p = { i, n, 0, 0, NAN };
		env->progress(env->arg, &p);
	}
}

static int jobs_run_recommend(struct jobs_job *j, const struct jobs_run_env *env, struct jobs_buf *out,
                              char *why, size_t whylen)
{
	struct serve_item *items = calloc((size_t)j->k, sizeof *items);
	char err[512];
	int r = 0;

	if (!items)
		return -ENOMEM;
	for (size_t i = 0; i < j->nusers; i++) {
		struct serve_request rq = { j->users[i], j->k, &j->filter, NULL, 0 };
		struct serve_result res;
		struct json_object *o = json_object_new_object();

		if (env->cancel && *env->cancel) {
			json_object_put(o);
			r = -ECANCELED;
			break;
		}
		err[0] = '\0';
		r = serve_recommend(env->sv, &rq, items, &res, err, sizeof err);
		json_object_object_add(o, "user", json_object_new_string(j->users[i]));
		if (r == 0) {
			struct json_object *a = json_object_new_array();
			json_object_object_add(o, "model", json_object_new_int64(res.version));
			for (int x = 0; x < res.n; x++) {
				struct json_object *it = json_object_new_object();
				json_object_object_add(it, "item", json_object_new_string(items[x].id));
				json_object_object_add(it, "score", jobs_float(items[x].score));
				json_object_array_add(a, it);
			}
			json_object_object_add(o, "items", a);
		} else if (jobs_unit_error(r)) {
			json_object_object_add(o, "error", json_object_new_string(err[0] ? err : strerror(-r)));
			r = 0;
		} else {
			json_object_put(o);
			r = jobs_why(why, whylen, r, "users[%zu]: %s", i, err[0] ? err : strerror(-r));
			break;
		}
		if ((r = jobs_line(out, o)) < 0)
			break;
		jobs_tick(env, i + 1, j->nusers);
	}
	free(items);
	return r;
}

static int jobs_run_score(struct jobs_job *j, const struct jobs_run_env *env, struct jobs_buf *out,
                          char *why, size_t whylen)
{
	float *scores = malloc(SERVE_CAND_MAX * sizeof *scores);
	char err[512];
	int r = 0;

	if (!scores)
		return -ENOMEM;
	for (size_t i = 0; i < j->nreqs; i++) {
		const struct jobs_score_req *q = &j->reqs[i];
		struct json_object *o;
		uint32_t version = 0;

		if (env->cancel && *env->cancel) {
			r = -ECANCELED;
			break;
		}
		err[0] = '\0';
		r = serve_score(env->sv, q->user, q->items, q->nitems, scores, &version, err, sizeof err);
		o = json_object_new_object();
		json_object_object_add(o, "user", json_object_new_string(q->user));
		if (r == 0) {
			struct json_object *a = json_object_new_array();
			json_object_object_add(o, "model", json_object_new_int64(version));
			for (int x = 0; x < q->nitems; x++) {
				struct json_object *it = json_object_new_object();
				json_object_object_add(it, "item", json_object_new_string(q->items[x]));
				json_object_object_add(it, "score", jobs_float(scores[x]));
				json_object_array_add(a, it);
			}
			json_object_object_add(o, "scores", a);
		} else if (jobs_unit_error(r)) {
			json_object_object_add(o, "error", json_object_new_string(err[0] ? err : strerror(-r)));
			r = 0;
		} else {
			json_object_put(o);
			r = jobs_why(why, whylen, r, "requests[%zu]: %s", i, err[0] ? err : strerror(-r));
			break;
		}
		if ((r = jobs_line(out, o)) < 0)
			break;
		jobs_tick(env, i + 1, j->nreqs);
	}
	free(scores);
	return r;
}

struct jobs_ingest_txn {
	struct jobs_job *j;
	struct import_events *b;
	uint32_t *uids;
	uint8_t key[32];
	int already;   /* the mark was there: applied by an earlier run */
};

/* The events and the job's mark in one transaction: after a crash either
 * both are in the store or neither is. */
static int jobs_ingest_fn(struct store_txn *tx, void *arg)
{
	struct jobs_ingest_txn *t = arg;
	struct store_import_progress p;
	int r = store_import_get(tx, t->key, &p);

	t->already = 0;
	if (r == 0 && p.complete) {
		t->already = 1;
		return 0;
	}
	if (r < 0 && r != -ENOENT)
		return r;
	if ((r = import_events_apply(tx, t->b, IMPORT_EVENTS_APPEND, t->uids)) < 0)
		return r;
	memset(&p, 0, sizeof p);
	p.units_done = import_events_count(t->b);
	p.complete = 1;
	return store_import_put(tx, t->key, &p);
}

static int jobs_run_ingest(struct jobs_job *j, const struct jobs_run_env *env, struct jobs_buf *out,
                           char *why, size_t whylen)
{
	struct jobs_ingest_txn t = { .j = j };
	char **err = calloc(j->nevents, sizeof *err);
	char reason[512];
	int r;

	if (!err)
		return -ENOMEM;
	if ((r = import_events_new(&t.b, env->st)) < 0)
		goto out;
	for (size_t i = 0; i < j->nevents; i++) {
		struct json_object *e = json_object_array_get_idx(j->events, i);
		struct import_ev_text f[IMPORT_EV_COUNT];
		memset(f, 0, sizeof f);
		for (int k = 0; k < IMPORT_EV_COUNT; k++) {
			struct json_object *v = NULL;
			if (json_object_object_get_ex(e, jobs_event_keys[k], &v) && v) {
				/* Numbers as their JSON text: the importer reads text. */
				f[k].p = json_object_get_string(v);
				f[k].n = json_object_is_type(v, json_type_string) ?
				         (size_t)json_object_get_string_len(v) : strlen(f[k].p);
			}
		}
		r = import_events_add(t.b, f, reason, sizeof reason);
		if (r == -EINVAL) {
			if (!(err[i] = strdup(reason))) {
				r = -ENOMEM;
				goto out;
			}
		} else if (r < 0) {
			goto out;
		}
	}
	if (env->cancel && *env->cancel) {
		r = -ECANCELED;
		goto out;
	}
	size_t good = import_events_count(t.b);
	if (good) {
		if (!(t.uids = calloc(good, sizeof *t.uids))) {
			r = -ENOMEM;
			goto out;
		}
		jobs_ingest_key(j, t.key);
		if ((r = store_write(env->st, jobs_ingest_fn, &t)) < 0) {
			r = jobs_why(why, whylen, r, "events: applying them to the store: %s", store_errmsg(env->st));
			goto out;
		}
		if (!t.already && env->sv)
			for (size_t i = 0; i < good; i++)
				serve_invalidate(env->sv, t.uids[i]);
	}
	/* The same lines whether this run applied the events or an earlier,
	 * interrupted one did: the result depends on the job, not on crashes. */
	for (size_t i = 0; i < j->nevents; i++) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "event", json_object_new_int64((int64_t)i));
		if (err[i])
			json_object_object_add(o, "error", json_object_new_string(err[i]));
		else
			json_object_object_add(o, "ok", json_object_new_boolean(1));
		if ((r = jobs_line(out, o)) < 0)
			goto out;
	}
	jobs_tick(env, j->nevents, j->nevents);
	r = 0;
out:
	for (size_t i = 0; i < j->nevents; i++)
		free(err[i]);
	free(err);
	free(t.uids);
	import_events_free(t.b);
	return r;
}

static int jobs_train_cb(const struct seqrec_progress *p, void *arg)
{
	const struct jobs_run_env *env = arg;
	if (env->progress && p->steps > 0) {
		struct jobs_progress jp = { (uint64_t)(p->step < 0 ? 0 : p->step), (uint64_t)p->steps, p->epoch,
		                            p->epochs, p->loss };
		env->progress(env->arg, &jp);
	}
	return 0;
}

static struct json_object *jobs_metrics(const struct seqrec_metrics *mt)
{
	char buf[1024];
	seqrec_metrics_json(mt, buf, sizeof buf);
	return json_tokener_parse(buf);
}

/* Train and fine-tune jobs run inside recd, beside the served model, so
 * their activations (about 9 KB per position at the small preset, B x T
 * positions) are what its memory peak is made of: at batch 128 a fine-tune
 * of the ML-1M model took recd to 560 MiB, at 32 the fine-tune alone peaks
 * at about a third of that.  Batch 32 learned no worse on ML-1M (full
 * ranking test NDCG@10 0.1698 against 0.1695 at 128), in more, cheaper steps. */
enum { JOBS_TRAIN_BATCH = 32 };

/* train: a new model from scratch (the "small" preset, as recctl train),
 * stored as a new version.  One kernel thread: the serving threads keep the
 * rest of the machine. */
static int jobs_run_train(struct jobs_job *j, const struct jobs_run_env *env, struct jobs_buf *out,
                          char *why, size_t whylen)
{
	struct seqrec_config cfg;
	struct seqrec_train_opts to;
	struct seqrec_train_result res;
	struct seqrec_metrics test;
	struct store_model_meta meta;
	struct seqrec_data *data = NULL;
	struct seqrec *m = NULL;
	struct kern *k = NULL;
	int r;

	if ((r = seqrec_preset("small", &cfg)) < 0)
		return jobs_why(why, whylen, r, "type: no default model configuration");
	seqrec_train_defaults(&to);
	to.batch = JOBS_TRAIN_BATCH;
	to.epochs = j->epochs;
	to.patience = j->patience;
	to.seed = j->seed;
	if (j->lr > 0)
		to.optim.lr = (float)j->lr;
	if (j->max_steps)
		to.max_steps = j->max_steps;
	to.progress = jobs_train_cb;
	to.progress_arg = (void *)env;
	to.report_every = 1;   /* every step: the callback only stores numbers */
	to.cancel = env->cancel;
	if ((r = kern_cpu_new(&k, 1)) < 0) {
		jobs_why(why, whylen, r, "train: cannot start the CPU kernels: %s", strerror(-r));
		goto out;
	}
	if ((r = seqrec_data_load(&data, env->st, &cfg, why, whylen)) < 0)
		goto out;
	cfg.V = data->V;
	if ((r = seqrec_config_check(&cfg, why, whylen)) < 0 || (r = seqrec_new(&m, &cfg, k, to.batch)) < 0) {
		if (!why[0])
			jobs_why(why, whylen, r, "train: cannot create the model: %s", strerror(-r));
		goto out;
	}
	seqrec_init_scheme(m, to.seed, 0.02f, to.init);
	if ((r = seqrec_train(m, data, &to, &res, why, whylen)) < 0)
		goto out;
	if (env->cancel && *env->cancel) {
		r = -ECANCELED;
		goto out;
	}
	if ((r = seqrec_eval_full(m, data, SEQREC_SPLIT_TEST, 0, &test)) < 0) {
		jobs_why(why, whylen, r, "train: evaluating: %s", strerror(-r));
		goto out;
	}
	memset(&meta, 0, sizeof meta);
	meta.snapshot_events = data->snapshot_events;
	snprintf(meta.metrics, sizeof meta.metrics,
	         "{\"protocol\":\"%s\",\"test_hr@10\":%.5f,\"test_ndcg@10\":%.5f,\"valid_ndcg@10\":%.5f,"
	         "\"epochs\":%d,\"best_epoch\":%d,\"train_seconds\":%.1f,\"" SEQREC_META_CUTOFF "\":%lld,"
	         "\"job\":\"%s\"}",
	         test.protocol, test.hr10, test.ndcg10, isnan(res.best_ndcg10) ? 0.0 : res.best_ndcg10,
	         res.epochs, res.best_epoch, res.seconds, (long long)data->max_ts, j->id);
	if ((r = seqrec_save_store(m, env->st, &meta, why, whylen)) < 0)
		goto out;
	struct json_object *o = json_object_new_object();
	json_object_object_add(o, "model", json_object_new_int64(meta.version));
	json_object_object_add(o, "epochs", json_object_new_int(res.epochs));
	json_object_object_add(o, "best_epoch", json_object_new_int(res.best_epoch));
	json_object_object_add(o, "test", jobs_metrics(&test));
	r = jobs_line(out, o);
out:
	seqrec_free(m);
	seqrec_data_free(data);
	kern_free(k);
	return r;
}

/* evaluate: a stored version by leave-one-out on the test split. */
static int jobs_run_evaluate(struct jobs_job *j, const struct jobs_run_env *env, struct jobs_buf *out,
                             char *why, size_t whylen)
{
	struct store_model_meta meta;
	struct seqrec_metrics mt[2];
	struct seqrec_data *data = NULL;
	struct seqrec *m = NULL;
	struct kern *k = NULL;
	uint32_t version = j->model;
	int r, nmt = 0;

	if (!version) {
		struct store_txn *tx;
		if ((r = store_read_begin(env->st, &tx)) < 0)
			return jobs_why(why, whylen, r, "model: %s", store_errmsg(env->st));
		r = store_model_latest(tx, &version);
		store_txn_end(tx);
		if (r < 0)
			return jobs_why(why, whylen, r, "model: no model version stored");
	}
	if ((r = kern_cpu_new(&k, 1)) < 0) {
		jobs_why(why, whylen, r, "evaluate: cannot start the CPU kernels: %s", strerror(-r));
		goto out;
	}
	if ((r = seqrec_load_store(&m, k, 1, env->st, version, &meta, why, whylen)) < 0 ||
	    (r = seqrec_data_load(&data, env->st, &m->cfg, why, whylen)) < 0)
		goto out;
	if (data->V > m->cfg.V) {
		struct seqrec *g;
		if ((r = seqrec_grow(&g, m, data->V, 1, 0, 0.0f)) < 0) {
			jobs_why(why, whylen, r, "evaluate: %s", strerror(-r));
			goto out;
		}
		seqrec_free(m);
		m = g;
	}
	if (j->protocol_full && (r = seqrec_eval_full(m, data, SEQREC_SPLIT_TEST, j->max_users, &mt[nmt++])) < 0)
		goto fail;
	if (env->cancel && *env->cancel) {
		r = -ECANCELED;
		goto out;
	}
	if (j->protocol_sampled && (r = seqrec_eval_sampled(m, data, SEQREC_SPLIT_TEST, 100, j->seed, &mt[nmt++])) < 0)
		goto fail;
	struct json_object *o = json_object_new_object(), *a = json_object_new_array();
	json_object_object_add(o, "model", json_object_new_int64(version));
	for (int i = 0; i < nmt; i++)
		json_object_array_add(a, jobs_metrics(&mt[i]));
	json_object_object_add(o, "results", a);
	r = jobs_line(out, o);
	goto out;
fail:
	jobs_why(why, whylen, r, "evaluate: %s", strerror(-r));
out:
	seqrec_free(m);
	seqrec_data_free(data);
	kern_free(k);
	return r;
}

/* store_write callback: make *arg the active version unless one is chosen. */
static int jobs_pin_active(struct store_txn *tx, void *arg)
{
	uint32_t cur = 0;
	int r = store_model_active_get(tx, &cur);
	if (r < 0)
		return r;
	return cur ? 0 : store_model_active_set(tx, *(const uint32_t *)arg);
}

/* fine-tune: model/finetune.h's seqrec_finetune from a stored version on
 * the users with new events, at a lower rate, within a step budget. */
static int jobs_run_finetune(struct jobs_job *j, const struct jobs_run_env *env, struct jobs_buf *out,
                             char *why, size_t whylen)
{
	struct seqrec_finetune_opts o;
	struct seqrec_finetune_result res;
	struct kern *k = NULL;
	int r;

	seqrec_finetune_defaults(&o);
	o.batch = JOBS_TRAIN_BATCH;
	o.parent = j->model;
	o.epochs = j->epochs;
	o.seed = j->seed;
	if (j->lr > 0)
		o.lr = (float)j->lr;
	o.max_steps = j->max_steps;
	o.progress = jobs_train_cb;
	o.progress_arg = (void *)env;
	o.report_every = 1;
	o.cancel = env->cancel;
	if ((r = kern_cpu_new(&k, 1)) < 0)
		return jobs_why(why, whylen, r, "fine-tune: cannot start the CPU kernels: %s", strerror(-r));
	r = seqrec_finetune(env->st, k, &o, &res, why, whylen);
	kern_free(k);
	if (r < 0)
		return r;
	/* Serve the child?  if-better compares NDCG@10 on every user's held-out
	 * last event (the test split: the new users' and the others' weighted by
	 * their counts) with the parent's, and only when the parent is what recd
	 * serves now; serve_use persists the choice and swaps the model in
	 * without failing a request. */
	int activate = 0;
	char act_why[448];
	uint32_t serving = env->sv ? serve_version(env->sv) : 0;
	if (j->activate == JOBS_ACTIVATE_ALWAYS) {
		activate = 1;
		snprintf(act_why, sizeof act_why, "asked for (activate: always)");
	} else if (j->activate == JOBS_ACTIVATE_NEVER) {
		snprintf(act_why, sizeof act_why, "not asked for (activate: never)");
	} else if (!res.evaluated) {
		snprintf(act_why, sizeof act_why, "no evaluation to compare");
	} else if (serving != res.parent) {
		snprintf(act_why, sizeof act_why, "the served version %u is not the parent %u", serving, res.parent);
	} else {
		double pu = 0, cu = 0, n = 0;
		for (int g = 0; g < 2; g++) {
			pu += res.parent_test[g].ndcg10 * (double)res.parent_test[g].users;
			cu += res.child_test[g].ndcg10 * (double)res.child_test[g].users;
			n += (double)res.child_test[g].users;
		}
		pu = n > 0 ? pu / n : 0;
		cu = n > 0 ? cu / n : 0;
		activate = cu > pu;
		snprintf(act_why, sizeof act_why, "test NDCG@10 %.4f %s the parent's %.4f", cu,
		         activate ? "beats" : "does not beat", pu);
	}
	if (activate) {
		char err[256];
		r = env->sv ? serve_use(env->sv, res.version, err, sizeof err) : -ENODEV;
		if (r < 0) {
			activate = 0;
			snprintf(act_why, sizeof act_why, "activating version %u failed: %s", res.version,
			         env->sv ? err : "no serving engine");
		}
	}
	/* Not served: a store with no active version chosen serves the latest,
	 * which is now the child, at the next reload or start; pin the version
	 * served now so that "not activated" holds then too. */
	if (!activate && serving && (r = store_write(env->st, jobs_pin_active, &serving)) < 0)
		log_warning("fine-tune: keeping version %u active: %s", serving, store_errmsg(env->st));
	struct json_object *x = json_object_new_object();
	json_object_object_add(x, "model", json_object_new_int64(res.version));
	json_object_object_add(x, "parent", json_object_new_int64(res.parent));
	json_object_object_add(x, "activated", json_object_new_boolean(activate));
	json_object_object_add(x, "activation", json_object_new_string(act_why));
	json_object_object_add(x, "new_events", json_object_new_int64((int64_t)res.new_events));
	json_object_object_add(x, "trained_users", json_object_new_int64(res.trained_users));
	json_object_object_add(x, "epochs", json_object_new_int(res.train.epochs));
	json_object_object_add(x, "steps", json_object_new_int64(res.train.steps));
	if (res.evaluated) {
		json_object_object_add(x, "parent_test_new_users", jobs_metrics(&res.parent_test[0]));
		json_object_object_add(x, "test_new_users", jobs_metrics(&res.child_test[0]));
		json_object_object_add(x, "parent_test_other_users", jobs_metrics(&res.parent_test[1]));
		json_object_object_add(x, "test_other_users", jobs_metrics(&res.child_test[1]));
	}
	return jobs_line(out, x);
}

int jobs_run(struct jobs_job *j, const struct jobs_run_env *env, struct jobs_buf *out,
             char *why, size_t whylen)
{
	int r;
	why[0] = '\0';
	switch (j->type) {
	case JOBS_RECOMMEND: r = jobs_run_recommend(j, env, out, why, whylen); break;
	case JOBS_SCORE:     r = jobs_run_score(j, env, out, why, whylen); break;
	case JOBS_INGEST:    r = jobs_run_ingest(j, env, out, why, whylen); break;
	case JOBS_TRAIN:     r = jobs_run_train(j, env, out, why, whylen); break;
	case JOBS_EVALUATE:  r = jobs_run_evaluate(j, env, out, why, whylen); break;
	case JOBS_FINETUNE:  r = jobs_run_finetune(j, env, out, why, whylen); break;
	default:             r = jobs_why(why, whylen, -EINVAL, "type: unknown"); break;
	}
	if (r < 0 && !why[0])
		jobs_why(why, whylen, r, "%s", r == -ECANCELED ? "cancelled" : strerror(-r));
	return r;
}

/* --- the engine ---------------------------------------------------------- */
#define JOBS_TRACK_MAX 4096   /* ended jobs whose status is remembered */
#define JOBS_KEEP_S (30 * 86400)  /* ended jobs stay in the store this long */

struct jobs_entry {
	struct jobs_entry *next;      /* in its queue */
	struct jobs_job *job;         /* NULL once handed to done */
	void *origin;
	enum jobs_priority prio;
	enum jobs_state state;
	volatile int cancel;
	uint64_t done, total;
	struct timespec start;
	int in_use;
	char id[JOBS_ID_MAX + 1];
	enum jobs_type type;
	struct jobs *e;
	int64_t queued_at, started_at;  /* unix seconds, for the store's record */
	struct timespec last_write;     /* of a progress record */
	/* train and fine-tune (written by the worker, read with __atomic_load) */
	int epoch, epochs;
	double loss;
	uint64_t first_done;            /* steps at the first report, and when: the pace for the ETA */
	struct timespec first;
	int has_first;
	int unrecorded;                 /* ended; its result is being written (JOBS_DONE_LATER) */
};

struct jobs {
	struct jobs_options o;
	pthread_mutex_t lock;
	pthread_cond_t cond;          /* a job was queued, or stop */
	struct jobs_entry *q[2][2];   /* [long?][prio]: head */
	size_t queued;
	int stop;
	pthread_t *threads;
	unsigned nthreads;
	uint64_t next_id;
	/* Status of jobs seen: a fixed table; ended entries are reused oldest
	 * first (a ring of slots). */
	struct jobs_entry *track;
	size_t ntrack, track_next;
	/* Records for the store, written by one thread in batches (one
	 * transaction, one sync, for everything that changed in a while): a
	 * commit per state change would cost more than a short job itself. */
	pthread_mutex_t rlock;
	pthread_cond_t rcond;
	struct jobs_rec { char id[JOBS_ID_MAX + 1]; struct store_job rec; } *recs;
	size_t nrecs, caprecs;
	int rstop;
	pthread_t rthread;
	int rthread_started;
	int stopped;                  /* jobs_stop has run */
};

static int jobs_is_long(const struct jobs_job *j)
{
	return j->type == JOBS_TRAIN || j->type == JOBS_EVALUATE || j->type == JOBS_FINETUNE;
}

static double jobs_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) * 1e-9;
}

/* The store's record of a job (recctl jobs reads it).  Records are advisory:
 * a crash may lose the last 50 ms of them (jobs_open marks what was queued
 * or running as interrupted), and a failure to write them stops no job. */
#define JOBS_REC_DELAY_NS (50 * 1000 * 1000)
#define JOBS_REC_MAX      65536   /* pending records; beyond, the oldest state wins */

struct jobs_rec_batch {
	struct jobs_rec *v;
	size_t n;
};

static int jobs_rec_fn(struct store_txn *tx, void *arg)
{
	const struct jobs_rec_batch *b = arg;
	for (size_t i = 0; i < b->n; i++) {
		int r = store_job_put(tx, b->v[i].id, strlen(b->v[i].id), &b->v[i].rec);
		if (r < 0)
			return r;
	}
	return 0;
}

static void *jobs_rec_thread(void *arg)
{
	struct jobs *e = arg;
	pthread_mutex_lock(&e->rlock);
	for (;;) {
		while (!e->nrecs && !e->rstop)
			pthread_cond_wait(&e->rcond, &e->rlock);
		if (!e->nrecs && e->rstop)
			break;
		if (!e->rstop) {
			/* gather what else changes in the next moment */
			pthread_mutex_unlock(&e->rlock);
			struct timespec ts = { 0, JOBS_REC_DELAY_NS };
			nanosleep(&ts, NULL);
			pthread_mutex_lock(&e->rlock);
		}
		struct jobs_rec_batch b = { e->recs, e->nrecs };
		e->recs = NULL;
		e->nrecs = e->caprecs = 0;
		pthread_mutex_unlock(&e->rlock);
		(void)store_write(e->o.st, jobs_rec_fn, &b);
		free(b.v);
		pthread_mutex_lock(&e->rlock);
	}
	pthread_mutex_unlock(&e->rlock);
	return NULL;
}

static void jobs_rec_put(struct jobs *e, const char *id, const struct store_job *rec)
{
	pthread_mutex_lock(&e->rlock);
	/* The latest state of a job replaces an earlier one still pending. */
	for (size_t i = e->nrecs; i-- > 0;)
		if (strcmp(e->recs[i].id, id) == 0) {
			e->recs[i].rec = *rec;
			goto out;
		}
	if (e->nrecs == e->caprecs) {
		size_t nc = e->caprecs ? e->caprecs * 2 : 64;
		struct jobs_rec *nv = nc <= JOBS_REC_MAX ? realloc(e->recs, nc * sizeof *nv) : NULL;
		if (!nv)
			goto out;
		e->recs = nv;
		e->caprecs = nc;
	}
	snprintf(e->recs[e->nrecs].id, sizeof e->recs[e->nrecs].id, "%s", id);
	e->recs[e->nrecs++].rec = *rec;
	pthread_cond_signal(&e->rcond);
out:
	pthread_mutex_unlock(&e->rlock);
}

/* Seconds left for a running job: its pace since its first report (for
 * train and fine-tune, after loading the data) over what is left; < 0 when
 * it cannot be told yet. */
static double jobs_eta(const struct jobs_entry *x, uint64_t done, uint64_t total)
{
	if (x->state != JOBS_RUNNING || total < done)
		return -1;
	if (x->epochs > 0) {
		if (!__atomic_load_n(&x->has_first, __ATOMIC_ACQUIRE) || done <= x->first_done)
			return -1;
		return jobs_since(&x->first) * (double)(total - done) / (double)(done - x->first_done);
	}
	return done ? jobs_since(&x->start) * (double)(total - done) / (double)done : -1;
}

static void jobs_record(struct jobs *e, const struct jobs_entry *x, enum jobs_state st, const char *why)
{
	struct store_job rec;
	struct timespec now;
	double loss;
	if (!e->o.st)
		return;
	memset(&rec, 0, sizeof rec);
	rec.state = (uint8_t)st;
	rec.type = (uint8_t)x->type;
	rec.done = __atomic_load_n(&x->done, __ATOMIC_RELAXED);
	rec.total = __atomic_load_n(&x->total, __ATOMIC_RELAXED);
	rec.queued = x->queued_at;
	rec.started = x->started_at;
	if (st >= JOBS_DONE)
		rec.ended = (int64_t)time(NULL);
	if (why)
		snprintf(rec.reason, sizeof rec.reason, "%s", why);
	rec.epoch = __atomic_load_n(&x->epoch, __ATOMIC_RELAXED);
	rec.epochs = __atomic_load_n(&x->epochs, __ATOMIC_RELAXED);
	__atomic_load(&x->loss, &loss, __ATOMIC_RELAXED);
	rec.loss = rec.epochs ? (float)loss : NAN;
	rec.eta_s = st == JOBS_RUNNING ? (float)jobs_eta(x, rec.done, rec.total) : -1.0f;
	clock_gettime(CLOCK_REALTIME, &now);
	rec.updated_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	jobs_rec_put(e, x->id, &rec);
}

static void jobs_progress(void *arg, const struct jobs_progress *p)
{
	struct jobs_entry *x = arg;
	if (p->epochs > 0) {
		if (!x->has_first) {
			x->first_done = p->done;
			clock_gettime(CLOCK_MONOTONIC, &x->first);
			__atomic_store_n(&x->has_first, 1, __ATOMIC_RELEASE);
		}
		__atomic_store_n(&x->epoch, p->epoch, __ATOMIC_RELAXED);
		__atomic_store(&x->loss, &p->loss, __ATOMIC_RELAXED);
		__atomic_store_n(&x->epochs, p->epochs, __ATOMIC_RELAXED);
	}
	__atomic_store_n(&x->done, p->done, __ATOMIC_RELAXED);
	__atomic_store_n(&x->total, p->total, __ATOMIC_RELAXED);
	/* At most one record a second: short jobs never write one. */
	if (jobs_since(&x->last_write) >= 1.0) {
		clock_gettime(CLOCK_MONOTONIC, &x->last_write);
		jobs_record(x->e, x, JOBS_RUNNING, NULL);
	}
}

struct jobs_worker {
	struct jobs *e;
	int is_long;
};

static struct jobs_entry *jobs_pop(struct jobs *e, int is_long)
{
	for (int p = 0; p < 2; p++) {
		struct jobs_entry *x = e->q[is_long][p];
		if (x) {
			e->q[is_long][p] = x->next;
			x->next = NULL;
			e->queued--;
			return x;
		}
	}
	return NULL;
}

static void *jobs_thread(void *arg)
{
	struct jobs_worker *w = arg;
	struct jobs *e = w->e;
	int is_long = w->is_long;
	free(w);

	/* Long jobs yield to everything else on the host (setpriority on a
	 * thread ID sets that thread's nice value on Linux). */
	if (is_long)
		(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 10);
	pthread_mutex_lock(&e->lock);
	for (;;) {
		struct jobs_entry *x = NULL;
		while (!e->stop && !(x = jobs_pop(e, is_long)))
			pthread_cond_wait(&e->cond, &e->lock);
		if (e->stop)
			break;
		struct jobs_job *j = x->job;
		struct jobs_buf out = { 0 };
		char why[JOBS_WHY_MAX];
		enum jobs_state st;
		int r;

		if (x->cancel) {
			st = JOBS_CANCELLED;
			snprintf(why, sizeof why, "cancelled");
		} else {
			x->state = JOBS_RUNNING;
			clock_gettime(CLOCK_MONOTONIC, &x->start);
			x->last_write = x->start;
			x->started_at = (int64_t)time(NULL);
			x->total = jobs_job_units(j);
			pthread_mutex_unlock(&e->lock);
			struct jobs_run_env env = { e->o.st, e->o.sv, &x->cancel, jobs_progress, x };
			r = jobs_run(j, &env, &out, why, sizeof why);
			pthread_mutex_lock(&e->lock);
			st = r == 0 ? JOBS_DONE : r == -ECANCELED ? JOBS_CANCELLED : JOBS_FAILED;
		}
		x->state = st;
		x->job = NULL;
		x->unrecorded = st == JOBS_DONE;
		void *origin = x->origin;
		pthread_mutex_unlock(&e->lock);
		int later = e->o.done(e->o.done_arg, j, origin, st, &out, why);
		/* After the result is in place, so "done" in the store means the
		 * result can be read (a result written later: jobs_ended).  A job
		 * stopped by the engine's close stays queued in the record: the
		 * spool runs it again at the next start. */
		if (!(st == JOBS_DONE && later == JOBS_DONE_LATER)) {
			pthread_mutex_lock(&e->lock);
			x->unrecorded = 0;
			pthread_mutex_unlock(&e->lock);
			if (!(st == JOBS_CANCELLED && e->stop))
				jobs_record(e, x, st, st == JOBS_DONE ? NULL : why);
		}
		jobs_buf_free(&out);
		jobs_job_free(j);
		pthread_mutex_lock(&e->lock);
	}
	pthread_mutex_unlock(&e->lock);
	return NULL;
}

/* At start: jobs a previous recd had queued or running were cut short (the
 * spool's claimed ones run again and get a new record); ended records older
 * than JOBS_KEEP_S go, so the table stays bounded. */
struct jobs_tidy {
	int64_t now;
	char (*del)[JOBS_ID_MAX + 1];
	size_t ndel, capdel;
	char (*fix)[JOBS_ID_MAX + 1];
	size_t nfix, capfix;
};

static int jobs_tidy_add(char (**v)[JOBS_ID_MAX + 1], size_t *n, size_t *cap, const char *id, size_t len)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		char (*nv)[JOBS_ID_MAX + 1] = realloc(*v, nc * sizeof **v);
		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = nc;
	}
	memcpy((*v)[*n], id, len);
	(*v)[*n][len] = '\0';
	(*n)++;
	return 0;
}

static int jobs_tidy_each(const char *id, size_t len, const struct store_job *j, void *arg)
{
	struct jobs_tidy *t = arg;
	if (len > JOBS_ID_MAX)
		return 0;
	if (j->state < JOBS_DONE)
		return jobs_tidy_add(&t->fix, &t->nfix, &t->capfix, id, len);
	if (j->ended && t->now - j->ended > JOBS_KEEP_S)
		return jobs_tidy_add(&t->del, &t->ndel, &t->capdel, id, len);
	return 0;
}

static int jobs_tidy_fn(struct store_txn *tx, void *arg)
{
	struct jobs_tidy t = { .now = *(const time_t *)arg };
	int r = store_job_foreach(tx, jobs_tidy_each, &t);
	for (size_t i = 0; r == 0 && i < t.ndel; i++)
		r = store_job_del(tx, t.del[i], strlen(t.del[i]));
	for (size_t i = 0; r == 0 && i < t.nfix; i++) {
		struct store_job j;
		if ((r = store_job_get(tx, t.fix[i], strlen(t.fix[i]), &j)) < 0)
			break;
		j.state = JOBS_FAILED;
		j.ended = t.now;
		snprintf(j.reason, sizeof j.reason, "interrupted: recd stopped while the job was %s "
		         "(a spool job runs again from active/)", j.started ? "running" : "queued");
		r = store_job_put(tx, t.fix[i], strlen(t.fix[i]), &j);
	}
	free(t.del);
	free(t.fix);
	return r;
}

int jobs_open(struct jobs **out, const struct jobs_options *o)
{
	struct jobs *e = calloc(1, sizeof *e);
	int r = 0;

	if (!e)
		return -ENOMEM;
	e->o = *o;
	if (e->o.workers < 1)
		e->o.workers = 1;
	pthread_mutex_init(&e->lock, NULL);
	pthread_cond_init(&e->cond, NULL);
	pthread_mutex_init(&e->rlock, NULL);
	pthread_cond_init(&e->rcond, NULL);
	e->ntrack = JOBS_TRACK_MAX;
	e->track = calloc(e->ntrack, sizeof *e->track);
	e->threads = calloc(e->o.workers + 1, sizeof *e->threads);
	if (!e->track || !e->threads) {
		r = -ENOMEM;
		goto fail;
	}
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	e->next_id = (uint64_t)now.tv_sec * 1000;
	if (e->o.st) {
		(void)store_write(e->o.st, jobs_tidy_fn, &now.tv_sec);
		if ((r = -pthread_create(&e->rthread, NULL, jobs_rec_thread, e)) < 0)
			goto fail;
		e->rthread_started = 1;
	}
	for (unsigned i = 0; i <= e->o.workers; i++) {
		struct jobs_worker *w = malloc(sizeof *w);
		if (!w) {
			r = -ENOMEM;
			goto fail;
		}
		w->e = e;
		w->is_long = i == e->o.workers;   /* the last one takes long jobs */
		if ((r = -pthread_create(&e->threads[i], NULL, jobs_thread, w)) < 0) {
			free(w);
			goto fail;
		}
		e->nthreads++;
	}
	*out = e;
	return 0;
fail:
	jobs_close(e);
	return r;
}

static struct jobs_entry *jobs_find(struct jobs *e, const char *id);

void jobs_ended(struct jobs *e, const char *id)
{
	pthread_mutex_lock(&e->lock);
	struct jobs_entry *x = jobs_find(e, id);
	if (x && x->unrecorded) {
		x->unrecorded = 0;
		jobs_record(e, x, x->state, NULL);
	}
	pthread_mutex_unlock(&e->lock);
}

void jobs_stop(struct jobs *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&e->lock);
	if (e->stopped) {
		pthread_mutex_unlock(&e->lock);
		return;
	}
	e->stopped = 1;
	e->stop = 1;
	for (size_t i = 0; e->track && i < e->ntrack; i++)
		if (e->track[i].in_use && e->track[i].job)
			e->track[i].cancel = 1;
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->lock);
	for (unsigned i = 0; i < e->nthreads; i++)
		pthread_join(e->threads[i], NULL);
	/* Queued jobs end as cancelled while stopping: the spool leaves their
	 * files in active/, to run again at the next start, and frees what it
	 * gave with them. */
	for (int l = 0; l < 2; l++)
		for (int p = 0; p < 2; p++)
			for (struct jobs_entry *x = e->q[l][p]; x; x = x->next) {
				struct jobs_buf none = { 0 };
				if (e->o.done)
					e->o.done(e->o.done_arg, x->job, x->origin, JOBS_CANCELLED, &none,
					          "recd is stopping");
				jobs_job_free(x->job);
				x->job = NULL;
			}
}

void jobs_close(struct jobs *e)
{
	if (!e)
		return;
	jobs_stop(e);
	/* Last: the workers' final records are flushed. */
	if (e->rthread_started) {
		pthread_mutex_lock(&e->rlock);
		e->rstop = 1;
		pthread_cond_signal(&e->rcond);
		pthread_mutex_unlock(&e->rlock);
		pthread_join(e->rthread, NULL);
	}
	free(e->recs);
	pthread_cond_destroy(&e->rcond);
	pthread_mutex_destroy(&e->rlock);
	pthread_cond_destroy(&e->cond);
	pthread_mutex_destroy(&e->lock);
	free(e->track);
	free(e->threads);
	free(e);
}

/* A free status slot: never used, or the oldest ended one.  Under lock. */
static struct jobs_entry *jobs_slot(struct jobs *e)
{
	for (size_t n = 0; n < e->ntrack; n++) {
		struct jobs_entry *x = &e->track[e->track_next];
		e->track_next = (e->track_next + 1) % e->ntrack;
		if (!x->in_use || (x->state >= JOBS_DONE && !x->job && !x->unrecorded))
			return x;
	}
	return NULL;
}

static struct jobs_entry *jobs_find(struct jobs *e, const char *id)
{
	/* Newest first: an ID reused after a failure finds its latest run. */
	for (size_t n = 0; n < e->ntrack; n++) {
		size_t i = (e->track_next + e->ntrack - 1 - n) % e->ntrack;
		struct jobs_entry *x = &e->track[i];
		if (x->in_use && strcmp(x->id, id) == 0)
			return x;
	}
	return NULL;
}

int jobs_enqueue(struct jobs *e, struct jobs_job *j, enum jobs_priority prio, void *origin)
{
	struct jobs_entry *x, **tail;
	int is_long = jobs_is_long(j);

	pthread_mutex_lock(&e->lock);
	if (e->stop || e->queued >= JOBS_QUEUE_MAX || !(x = jobs_slot(e))) {
		int stop = e->stop;
		pthread_mutex_unlock(&e->lock);
		jobs_job_free(j);
		return stop ? -ESHUTDOWN : -EAGAIN;
	}
	memset(x, 0, sizeof *x);
	x->in_use = 1;
	x->job = j;
	x->origin = origin;
	x->prio = prio;
	x->state = JOBS_QUEUED;
	x->total = jobs_job_units(j);
	x->type = j->type;
	x->e = e;
	x->queued_at = (int64_t)time(NULL);
	snprintf(x->id, sizeof x->id, "%s", j->id);
	for (tail = &e->q[is_long][prio == JOBS_PRIO_INTERACTIVE ? 0 : 1]; *tail; tail = &(*tail)->next)
		;
	*tail = x;
	e->queued++;
	/* Recorded before a worker can take it, so a quick job's "done"
	 * always comes after its "queued". */
	jobs_record(e, x, JOBS_QUEUED, NULL);
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->lock);
	return 0;
}

int jobs_submit(struct jobs *e, const char *json, size_t len, enum jobs_priority prio,
                char *id, char *why, size_t whylen)
{
	struct jobs_job *j;
	char name[JOBS_ID_MAX + 1];
	int r;

	pthread_mutex_lock(&e->lock);
	snprintf(name, sizeof name, "r%" PRIu64, e->next_id++);
	pthread_mutex_unlock(&e->lock);
	if ((r = jobs_parse(json, len, name, NULL, &j, why, whylen)) < 0)
		return r;
	if ((r = jobs_enqueue(e, j, prio, NULL)) < 0)
		return jobs_why(why, whylen, r, "%s", r == -EAGAIN ? "the job queue is full" : "recd is stopping");
	snprintf(id, JOBS_ID_MAX + 1, "%s", name);
	return 0;
}

int jobs_status(struct jobs *e, const char *id, struct jobs_status *out)
{
	pthread_mutex_lock(&e->lock);
	struct jobs_entry *x = jobs_find(e, id);
	if (!x) {
		/* A job of an earlier run: its record in the store. */
		struct store_txn *tx;
		struct store_job rec;
		int r;
		pthread_mutex_unlock(&e->lock);
		if (!e->o.st || strlen(id) > JOBS_ID_MAX || (r = store_read_begin(e->o.st, &tx)) < 0)
			return -ENOENT;
		r = store_job_get(tx, id, strlen(id), &rec);
		store_txn_end(tx);
		if (r < 0)
			return r;
		memset(out, 0, sizeof *out);
		out->state = rec.state;
		out->type = rec.type;
		out->done = rec.done;
		out->total = rec.total;
		out->elapsed_s = rec.ended && rec.started ? (double)(rec.ended - rec.started) : 0;
		out->eta_s = -1;
		out->epoch = rec.epoch;
		out->epochs = rec.epochs;
		out->loss = rec.epochs ? rec.loss : NAN;
		return 0;
	}
	out->state = x->state;
	out->type = x->type;
	out->done = __atomic_load_n(&x->done, __ATOMIC_RELAXED);
	out->total = __atomic_load_n(&x->total, __ATOMIC_RELAXED);
	out->elapsed_s = x->state == JOBS_RUNNING ? jobs_since(&x->start) : 0;
	out->eta_s = jobs_eta(x, out->done, out->total);
	out->epoch = __atomic_load_n(&x->epoch, __ATOMIC_RELAXED);
	out->epochs = __atomic_load_n(&x->epochs, __ATOMIC_RELAXED);
	__atomic_load(&x->loss, &out->loss, __ATOMIC_RELAXED);
	if (!out->epochs)
		out->loss = NAN;
	pthread_mutex_unlock(&e->lock);
	return 0;
}

int jobs_cancel(struct jobs *e, const char *id)
{
	pthread_mutex_lock(&e->lock);
	struct jobs_entry *x = jobs_find(e, id);
	int r = x && x->state <= JOBS_RUNNING ? 0 : -ENOENT;
	if (r == 0)
		x->cancel = 1;
	pthread_mutex_unlock(&e->lock);
	return r;
}
