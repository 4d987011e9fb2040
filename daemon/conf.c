/* conf.c: the recd.conf parser.  Every error names the file and line and says
 * what was expected; nothing in the file is trusted to be short, printable or
 * well formed. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "daemon/conf.h"

#define CONF_SHOW_MAX 64   /* bytes of a bad key or value quoted in a message */

static const struct {
	const char *name;
	int level;
} conf_levels[] = {
	{ "err", LOG_ERR }, { "warning", LOG_WARNING }, { "notice", LOG_NOTICE },
	{ "info", LOG_INFO }, { "debug", LOG_DEBUG },
};

const char *conf_log_level_name(int level)
{
	for (size_t i = 0; i < sizeof conf_levels / sizeof conf_levels[0]; i++)
		if (conf_levels[i].level == level)
			return conf_levels[i].name;
	return "?";
}

void conf_defaults(struct recd_conf *c)
{
	memset(c, 0, sizeof *c);
	snprintf(c->state_dir, sizeof c->state_dir, "%s", CONF_DEFAULT_STATE_DIR);
	snprintf(c->runtime_dir, sizeof c->runtime_dir, "%s", CONF_DEFAULT_RUNTIME_DIR);
	c->log_level = LOG_INFO;
	c->max_clients = CONF_DEFAULT_MAX_CLIENTS;
	c->status_interval = CONF_DEFAULT_STATUS_INTERVAL;
	snprintf(c->spool_dir, sizeof c->spool_dir, "%s", CONF_DEFAULT_SPOOL_DIR);
	snprintf(c->spool_trusted_keys, sizeof c->spool_trusted_keys, "%s", CONF_DEFAULT_TRUSTED_KEYS);
	c->spool_rescan_interval = CONF_DEFAULT_SPOOL_RESCAN;
	c->spool_max_job_size = CONF_DEFAULT_SPOOL_MAX_JOB;
	c->spool_stale_age = CONF_DEFAULT_SPOOL_STALE;
	c->spool_workers = CONF_DEFAULT_SPOOL_WORKERS;
	c->spool_signature_max_age = CONF_DEFAULT_SPOOL_SIG_AGE;
	c->compact_threshold = CONF_DEFAULT_COMPACT_THRESHOLD;
	c->compact_max_age = CONF_DEFAULT_COMPACT_MAX_AGE;
}

/* Copies s (n bytes) into a short printable form for a message: at most
 * CONF_SHOW_MAX bytes, anything unprintable as '?', "..." when cut. */
static const char *conf_show(char *buf, size_t size, const char *s, size_t n)
{
	size_t i, o = 0;
	for (i = 0; i < n && i < CONF_SHOW_MAX && o + 1 < size; i++) {
		unsigned char ch = (unsigned char)s[i];
		buf[o++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
	}
	if (i < n && o + 4 < size) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

static int conf_why(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int conf_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* A whole value of decimal digits, no sign, no spaces, at most max. */
static int conf_number(const char *v, unsigned long long max, unsigned long long *out)
{
	unsigned long long n = 0;
	if (!*v)
		return -EINVAL;
	for (; *v; v++) {
		if (*v < '0' || *v > '9')
			return -EINVAL;
		if (n > (max - (unsigned)(*v - '0')) / 10)
			return -ERANGE;
		n = n * 10 + (unsigned)(*v - '0');
	}
	*out = n;
	return 0;
}

static int conf_path(const char *key, const char *v, size_t max, char *dst, size_t dstlen,
                     char *why, size_t whylen)
{
	char show[CONF_SHOW_MAX + 8];
	size_t n = strlen(v);

	if (n == 0)
		return conf_why(why, whylen, "%s: empty value", key);
	if (v[0] != '/')
		return conf_why(why, whylen, "%s: '%s' is not an absolute path", key,
		                conf_show(show, sizeof show, v, n));
	if (n > max)
		return conf_why(why, whylen, "%s: path longer than %zu bytes", key, max);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
			return conf_why(why, whylen, "%s: control character in path", key);
	snprintf(dst, dstlen, "%s", v);
	return 0;
}

static int conf_state_dir(struct recd_conf *c, const char *key, const char *v, char *why, size_t whylen)
{
	return conf_path(key, v, CONF_PATH_MAX, c->state_dir, sizeof c->state_dir, why, whylen);
}

static int conf_runtime_dir(struct recd_conf *c, const char *key, const char *v, char *why, size_t whylen)
{
	return conf_path(key, v, CONF_RUNTIME_DIR_MAX, c->runtime_dir, sizeof c->runtime_dir, why, whylen);
}

static int conf_log_level(struct recd_conf *c, const char *key, const char *v, char *why, size_t whylen)
{
	char show[CONF_SHOW_MAX + 8];
	for (size_t i = 0; i < sizeof conf_levels / sizeof conf_levels[0]; i++) {
		if (strcmp(v, conf_levels[i].name) == 0) {
			c->log_level = conf_levels[i].level;
			return 0;
		}
	}
	return conf_why(why, whylen, "%s: '%s' is not one of err, warning, notice, info, debug",
	                key, conf_show(show, sizeof show, v, strlen(v)));
}

static int conf_max_clients(struct recd_conf *c, const char *key, const char *v, char *why, size_t whylen)
{
	char show[CONF_SHOW_MAX + 8];
	unsigned long long n;
	if (conf_number(v, CONF_CLIENTS_MAX, &n) < 0 || n < 1)
		return conf_why(why, whylen, "%s: '%s' is not a number from 1 to %u", key,
		                conf_show(show, sizeof show, v, strlen(v)), CONF_CLIENTS_MAX);
	c->max_clients = (unsigned)n;
	return 0;
}

static int conf_status_interval(struct recd_conf *c, const char *key, const char *v, char *why, size_t whylen)
{
	char show[CONF_SHOW_MAX + 8];
	unsigned long long n;
	if (conf_number(v, CONF_STATUS_INTERVAL_MAX, &n) < 0)
		return conf_why(why, whylen, "%s: '%s' is not a number of seconds from 0 to %u", key,
		                conf_show(show, sizeof show, v, strlen(v)), CONF_STATUS_INTERVAL_MAX);
	c->status_interval = (unsigned)n;
	return 0;
}

/* The spool's keys (recd-spool(5)). */
static int conf_spool_dir(struct recd_conf *c, const char *key, const char *v, char *why, size_t whylen)
{
	return conf_path(key, v, CONF_SPOOL_DIR_MAX, c->spool_dir, sizeof c->spool_dir, why, whylen);
}

static int conf_spool_trusted_keys(struct recd_conf *c, const char *key, const char *v, char *why, size_t whylen)
{
	return conf_path(key, v, CONF_SPOOL_DIR_MAX, c->spool_trusted_keys, sizeof c->spool_trusted_keys,
	                 why, whylen);
}

static int conf_uint(const char *key, const char *v, unsigned lo, unsigned hi, const char *unit,
                     unsigned *out, char *why, size_t whylen)
{
	char show[CONF_SHOW_MAX + 8];
	unsigned long long n;
	if (conf_number(v, hi, &n) < 0 || n < lo)
		return conf_why(why, whylen, "%s: '%s' is not a number%s from %u to %u", key,
		                conf_show(show, sizeof show, v, strlen(v)), unit, lo, hi);
	*out = (unsigned)n;
	return 0;
}

static int conf_spool_rescan(struct recd_conf *c, const char *key, const char *v, char *why, size_t whylen)
{
	return conf_uint(key, v, 1, CONF_SPOOL_RESCAN_MAX, " of seconds", &c->spool_rescan_interval, why, whylen);
}

static int conf_spool_max_job(struct recd_conf *c, const char *key, const char *v, char *why, size_t whylen)
{
	return conf_uint(key, v, 64, CONF_SPOOL_MAX_JOB_MAX, " of bytes", &c->spool_max_job_size, why, whylen);
}

static int conf_spool_stale(struct recd_conf *c, const char *key, const char *v, char *why, size_t whylen)
{
	return conf_uint(key, v, 0, CONF_SPOOL_STALE_MAX, " of seconds", &c->spool_stale_age, why, whylen);
}

static int conf_spool_workers(struct recd_conf *c, const char *key, const char *v, char *why, size_t whylen)
{
	return conf_uint(key, v, 1, CONF_SPOOL_WORKERS_MAX, "", &c->spool_workers, why, whylen);
}

static int conf_spool_sig_age(struct recd_conf *c, const char *key, const char *v, char *why, size_t whylen)
{
	return conf_uint(key, v, 1, CONF_SPOOL_SIG_AGE_MAX, " of seconds", &c->spool_signature_max_age,
	                 why, whylen);
}

static int conf_spool_require_sig(struct recd_conf *c, const char *key, const char *v, char *why, size_t whylen)
{
	char show[CONF_SHOW_MAX + 8];
	if (strcmp(v, "yes") == 0 || strcmp(v, "no") == 0) {
		c->spool_require_signature = v[0] == 'y';
		return 0;
	}
	return conf_why(why, whylen, "%s: '%s' is not yes or no", key, conf_show(show, sizeof show, v, strlen(v)));
}

static int conf_compact_threshold(struct recd_conf *c, const char *key, const char *v, char *why, size_t whylen)
{
	return conf_uint(key, v, 0, CONF_COMPACT_THRESHOLD_MAX, " of events", &c->compact_threshold, why, whylen);
}

static int conf_compact_max_age(struct recd_conf *c, const char *key, const char *v, char *why, size_t whylen)
{
	return conf_uint(key, v, 0, CONF_COMPACT_MAX_AGE_MAX, " of seconds", &c->compact_max_age, why, whylen);
}

/* Resolves one user or group name through NSS.  Returns 0 with *id, -ENOENT
 * when there is no such name, or the lookup's own error. */
static int conf_lookup(int group, const char *name, uint32_t *id)
{
	size_t size = 16384;
	char *buf = NULL;
	int r;

	for (;;) {
		char *nb = realloc(buf, size);
		if (!nb) {
			r = -ENOMEM;
			goto out;
		}
		buf = nb;
		if (group) {
			struct group gr, *res = NULL;
			r = getgrnam_r(name, &gr, buf, size, &res);
			if (r == 0 && res)
				*id = (uint32_t)res->gr_gid;
			else if (r == 0)
				r = ENOENT;
		} else {
			struct passwd pw, *res = NULL;
			r = getpwnam_r(name, &pw, buf, size, &res);
			if (r == 0 && res)
				*id = (uint32_t)res->pw_uid;
			else if (r == 0)
				r = ENOENT;
		}
		/* A name some database entry is too long for: grow, up to 1 MiB. */
		if (r == ERANGE && size < (1u << 20)) {
			size *= 2;
			continue;
		}
		break;
	}
	/* getpwnam_r(3): these mean "not found" on some NSS modules. */
	if (r == ENOENT || r == ESRCH || r == EBADF || r == EPERM)
		r = -ENOENT;
	else if (r > 0)
		r = -r;
out:
	free(buf);
	return r;
}

static int conf_ids(const char *key, int group, const char *v, uint32_t *ids, size_t *n_ids,
                    char *why, size_t whylen)
{
	char show[CONF_SHOW_MAX + 8], word[CONF_LINE_MAX + 1];
	const char *what = group ? "group" : "user";
	size_t n = 0;

	while (*v) {
		size_t len = strcspn(v, ", \t");
		unsigned long long num;
		uint32_t id;
		int r;

		if (len == 0) {
			v++;
			continue;
		}
		memcpy(word, v, len);
		word[len] = '\0';
		v += len;
		if (isdigit((unsigned char)word[0])) {
			/* (uid_t)-1 means "no change" to chown(2): never a real id. */
			if (conf_number(word, UINT32_MAX - 1, &num) < 0)
				return conf_why(why, whylen, "%s: '%s' is not a valid %s id", key,
				                conf_show(show, sizeof show, word, len), what);
			id = (uint32_t)num;
		} else {
			r = conf_lookup(group, word, &id);
			if (r == -ENOENT)
				return conf_why(why, whylen, "%s: unknown %s '%s'", key, what,
				                conf_show(show, sizeof show, word, len));
			if (r < 0) {
				conf_why(why, whylen, "%s: cannot look up %s '%s': %s", key, what,
				         conf_show(show, sizeof show, word, len), strerror(-r));
				return r == -ENOMEM ? r : -EIO;
			}
		}
		size_t i;
		for (i = 0; i < n && ids[i] != id; i++)
			;
		if (i < n)
			continue;   /* named twice: once is enough */
		if (n == CONF_ALLOW_MAX)
			return conf_why(why, whylen, "%s: more than %u entries", key, CONF_ALLOW_MAX);
		ids[n++] = id;
	}
	*n_ids = n;
	return 0;
}

static int conf_allow_users(struct recd_conf *c, const char *key, const char *v, char *why, size_t whylen)
{
	uint32_t ids[CONF_ALLOW_MAX];
	size_t n;
	int r = conf_ids(key, 0, v, ids, &n, why, whylen);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		c->allow_uids[i] = (uid_t)ids[i];
	c->n_allow_uids = n;
	return 0;
}

static int conf_allow_groups(struct recd_conf *c, const char *key, const char *v, char *why, size_t whylen)
{
	uint32_t ids[CONF_ALLOW_MAX];
	size_t n;
	int r = conf_ids(key, 1, v, ids, &n, why, whylen);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		c->allow_gids[i] = (gid_t)ids[i];
	c->n_allow_gids = n;
	return 0;
}

static const struct conf_key {
	const char *name;
	int empty_ok;   /* an empty value is meaningful (an empty list) */
	int (*parse)(struct recd_conf *c, const char *key, const char *v, char *why, size_t whylen);
} conf_keys[] = {
	{ "state_dir",       0, conf_state_dir },
	{ "runtime_dir",     0, conf_runtime_dir },
	{ "log_level",       0, conf_log_level },
	{ "allow_users",     1, conf_allow_users },
	{ "allow_groups",    1, conf_allow_groups },
	{ "max_clients",     0, conf_max_clients },
	{ "status_interval", 0, conf_status_interval },
	{ "spool_dir",       0, conf_spool_dir },
	{ "spool_rescan_interval", 0, conf_spool_rescan },
	{ "spool_max_job_size", 0, conf_spool_max_job },
	{ "spool_stale_age", 0, conf_spool_stale },
	{ "spool_workers",   0, conf_spool_workers },
	{ "spool_require_signature", 0, conf_spool_require_sig },
	{ "spool_trusted_keys", 0, conf_spool_trusted_keys },
	{ "spool_signature_max_age", 0, conf_spool_sig_age },
	{ "compact_threshold", 0, conf_compact_threshold },
	{ "compact_max_age", 0, conf_compact_max_age },
};
#define CONF_NKEYS (sizeof conf_keys / sizeof conf_keys[0])

static int conf_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r';
}

int conf_parse(struct recd_conf *out, const char *name, const char *text, size_t len,
               char *err, size_t errlen)
{
	char line[CONF_LINE_MAX + 1], why[512], show[CONF_SHOW_MAX + 8];
	unsigned first_line[CONF_NKEYS] = { 0 };
	struct recd_conf c;
	const char *p = text, *end = text + len;
	unsigned lineno = 0;
	int r;

	conf_defaults(&c);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		char *s, *e, *eq, *key, *val;
		size_t k;

		lineno++;
		if (n > CONF_LINE_MAX) {
			r = conf_why(why, sizeof why, "line longer than %u bytes", CONF_LINE_MAX);
			goto fail;
		}
		if (memchr(p, '\0', n)) {
			r = conf_why(why, sizeof why, "NUL byte in line");
			goto fail;
		}
		memcpy(line, p, n);
		line[n] = '\0';
		p += n + (nl ? 1 : 0);

		for (s = line; conf_space(*s); s++)
			;
		for (e = s + strlen(s); e > s && conf_space(e[-1]); e--)
			;
		*e = '\0';
		if (*s == '\0' || *s == '#')
			continue;
		eq = strchr(s, '=');
		if (!eq || eq == s) {
			r = conf_why(why, sizeof why, "expected 'key = value', got '%s'",
			             conf_show(show, sizeof show, s, strlen(s)));
			goto fail;
		}
		for (e = eq; e > s && conf_space(e[-1]); e--)
			;
		*e = '\0';
		key = s;
		for (val = eq + 1; conf_space(*val); val++)
			;
		for (k = 0; k < CONF_NKEYS && strcmp(conf_keys[k].name, key) != 0; k++)
			;
		if (k == CONF_NKEYS) {
			r = conf_why(why, sizeof why, "unknown key '%s'",
			             conf_show(show, sizeof show, key, strlen(key)));
			goto fail;
		}
		/* A second setting would silently win over the first: refuse it. */
		if (first_line[k]) {
			r = conf_why(why, sizeof why, "duplicate key '%s' (first set on line %u)",
			             key, first_line[k]);
			goto fail;
		}
		first_line[k] = lineno;
		if (!*val && !conf_keys[k].empty_ok) {
			r = conf_why(why, sizeof why, "%s: empty value", key);
			goto fail;
		}
		if ((r = conf_keys[k].parse(&c, key, val, why, sizeof why)) < 0)
			goto fail;
	}
	*out = c;
	return 0;
fail:
	snprintf(err, errlen, "%s:%u: %s", name, lineno, why);
	return r;
}

int conf_load(struct recd_conf *out, const char *path, int missing_ok, char *err, size_t errlen)
{
	struct stat sb;
	char *text = NULL;
	size_t got = 0;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		r = -errno;
		if (r == -ENOENT && missing_ok) {
			conf_defaults(out);
			return 1;
		}
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fd, &sb) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		r = -EINVAL;
		snprintf(err, errlen, "%s: not a regular file", path);
		goto out;
	}
	if ((uint64_t)sb.st_size > CONF_FILE_MAX) {
		r = -EFBIG;
		snprintf(err, errlen, "%s: larger than %u bytes", path, CONF_FILE_MAX);
		goto out;
	}
	/* One byte more than allowed, so a file that grew since fstat is caught. */
	if (!(text = malloc(CONF_FILE_MAX + 1))) {
		r = -ENOMEM;
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, text + got, CONF_FILE_MAX + 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			snprintf(err, errlen, "%s: %s", path, strerror(-r));
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got > CONF_FILE_MAX) {
			r = -EFBIG;
			snprintf(err, errlen, "%s: larger than %u bytes", path, CONF_FILE_MAX);
			goto out;
		}
	}
	r = conf_parse(out, path, text, got, err, errlen);
out:
	free(text);
	close(fd);
	return r;
}

int conf_set_state_dir(struct recd_conf *c, const char *dir, char *err, size_t errlen)
{
	char tmp[CONF_PATH_MAX + 1];
	int r = conf_path("state_dir", dir, CONF_PATH_MAX, tmp, sizeof tmp, err, errlen);
	if (r < 0)
		return r;
	memcpy(c->state_dir, tmp, sizeof tmp);
	return 0;
}
