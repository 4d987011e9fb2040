/* import.c: the import driver.  Reads each file of an import in large blocks,
 * cuts records, lets the format parse them outside any transaction (so a
 * bad-line message is printed once even when store_write re-runs a batch),
 * and applies each batch in one write transaction that also records the
 * file's progress under a key derived from its content.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <sodium.h>

#include "import/event.h"
#include "import/import_int.h"

#define IMPORT_READ_BUF     (8u << 20)  /* read block; holds several whole lines */
#define IMPORT_ARENA_CHUNK  (1u << 20)
#define IMPORT_ARENA_BATCH  (64u << 20) /* a batch ends early past this much copied text */
#define IMPORT_NAME_MAX     64          /* custom action and device names */
#define IMPORT_CUSTOM_ACTIONS (256 - STORE_ACTION_BUILTIN_COUNT)
#define IMPORT_DEVICES_MAX  65535

/* --- formats -------------------------------------------------------- */
struct import_format {
	const char *name;
	const char *key_name;  /* aliases share it, and so their progress keys */
	int (*setup)(struct import_ctx *ctx);
};

static const struct import_format import_formats[] = {
	{ "ml1m-seq",   "ml1m-seq",   import_fmt_ml1m_seq },
	{ "ml1m",       "ml1m",       import_fmt_ml1m },
	{ "ml100k",     "recbole",    import_fmt_recbole },
	{ "recbole",    "recbole",    import_fmt_recbole },
	{ "foursquare", "foursquare", import_fmt_foursquare },
	{ "amazon",     "amazon",     import_fmt_amazon },
	{ "generic",    "generic",    import_fmt_generic },
};

const char *const import_format_names[] = {
	"ml1m-seq", "ml1m", "ml100k", "recbole", "foursquare", "amazon", "generic", NULL,
};

const char *import_kind_name(enum import_kind kind)
{
	static const char *const names[IMPORT_KIND_COUNT] = {
		"items", "users", "links", "triples", "events",
	};
	return (unsigned)kind < IMPORT_KIND_COUNT ? names[kind] : "?";
}

/* --- arena: batch memory, freed in one go ---------------------------- */
struct import_chunk {
	struct import_chunk *next;
	size_t cap, used;
	char data[];
};

struct import_arena {
	struct import_chunk *head;
	size_t total;      /* bytes handed out since the last reset */
};

static void *arena_alloc(struct import_arena *a, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	struct import_chunk *c = a->head;
	if (!c || c->cap - c->used < n) {
		size_t cap = n > IMPORT_ARENA_CHUNK ? n : IMPORT_ARENA_CHUNK;
		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->cap = cap;
		c->used = 0;
		c->next = a->head;
		a->head = c;
	}
	void *p = c->data + c->used;
	c->used += n;
	a->total += n;
	return p;
}

/* Keeps one chunk so that steady batches do not malloc at all. */
static void arena_reset(struct import_arena *a)
{
	struct import_chunk *c = a->head;
	if (c) {
		struct import_chunk *rest = c->next;
		while (rest) {
			struct import_chunk *n = rest->next;
			free(rest);
			rest = n;
		}
		c->next = NULL;
		c->used = 0;
	}
	a->total = 0;
}

static void arena_free(struct import_arena *a)
{
	arena_reset(a);
	free(a->head);
	a->head = NULL;
}

/* --- string map ------------------------------------------------------ */
struct import_map_ent {
	uint64_t hash;
	const char *key;   /* NULL: empty slot */
	uint32_t len;
	uint64_t val;
};

struct import_map {
	struct import_map_ent *ents;
	size_t cap, count;     /* cap is a power of two */
	struct import_arena keys;
};

static uint64_t map_hash(const char *k, size_t n)
{
	/* FNV-1a, then a final mix so that the low bits used as the slot
	 * index depend on every byte. */
	uint64_t h = 0xcbf29ce484222325u;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)k[i];
		h *= 0x100000001b3u;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdu;
	h ^= h >> 33;
	return h;
}

int import_map_new(struct import_map **out)
{
	struct import_map *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->cap = 1024;
	m->ents = calloc(m->cap, sizeof(*m->ents));
	if (!m->ents) {
		free(m);
		return -ENOMEM;
	}
	*out = m;
	return 0;
}

void import_map_free(struct import_map *m)
{
	if (!m)
		return;
	arena_free(&m->keys);
	free(m->ents);
	free(m);
}

void import_map_clear(struct import_map *m)
{
	memset(m->ents, 0, m->cap * sizeof(*m->ents));
	m->count = 0;
	arena_reset(&m->keys);
}

static struct import_map_ent *map_find(const struct import_map *m, uint64_t h, const char *k, size_t n)
{
	size_t mask = m->cap - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		struct import_map_ent *e = &m->ents[i];
		if (!e->key || (e->hash == h && e->len == n && memcmp(e->key, k, n) == 0))
			return e;
	}
}

static int map_grow(struct import_map *m)
{
	size_t ncap = m->cap * 2;
	struct import_map_ent *ne = calloc(ncap, sizeof(*ne));
	if (!ne)
		return -ENOMEM;
	for (size_t i = 0; i < m->cap; i++) {
		struct import_map_ent *e = &m->ents[i];
		if (!e->key)
			continue;
		size_t j = e->hash & (ncap - 1);
		while (ne[j].key)
			j = (j + 1) & (ncap - 1);
		ne[j] = *e;
	}
	free(m->ents);
	m->ents = ne;
	m->cap = ncap;
	return 0;
}

int import_map_upsert(struct import_map *m, const char *k, size_t n, uint64_t **val, int *added)
{
	uint64_t h = map_hash(k, n);
	struct import_map_ent *e = map_find(m, h, k, n);
	if (e->key) {
		*val = &e->val;
		*added = 0;
		return 0;
	}
	if ((m->count + 1) * 4 > m->cap * 3) {
		int rc = map_grow(m);
		if (rc < 0)
			return rc;
		e = map_find(m, h, k, n);
	}
	char *copy = arena_alloc(&m->keys, n ? n : 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, k, n);
	e->hash = h;
	e->key = copy;
	e->len = (uint32_t)n;
	e->val = 0;
	m->count++;
	*val = &e->val;
	*added = 1;
	return 0;
}

int import_map_get(const struct import_map *m, const char *k, size_t n, uint64_t *val)
{
	const struct import_map_ent *e = map_find(m, map_hash(k, n), k, n);
	if (!e->key)
		return -ENOENT;
	*val = e->val;
	return 0;
}

/* --- the reader -------------------------------------------------------- */
struct import_reader {
	int fd;
	char *buf;
	size_t cap, pos, end;  /* unread bytes are buf[pos..end) */
	int eof;
	int skipping;          /* dropping the rest of an over-long line */
	uint64_t line;         /* lines consumed */
	uint64_t bytes;        /* bytes consumed */
	enum import_split split;
	char delim;
	int quoting;
};

enum {
	RD_EOF = 0,
	RD_RECORD,
	RD_NEED_READ,   /* no whole record left in the buffer: refill first */
	RD_TOO_LONG,    /* a record over IMPORT_LINE_MAX was dropped */
};

static int reader_fill(struct import_reader *r)
{
	if (r->pos > 0) {
		memmove(r->buf, r->buf + r->pos, r->end - r->pos);
		r->end -= r->pos;
		r->pos = 0;
	}
	while (r->end < r->cap && !r->eof) {
		ssize_t n = read(r->fd, r->buf + r->end, r->cap - r->end);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			r->eof = 1;
		r->end += (size_t)n;
	}
	return 0;
}

/* Records point into the read buffer: they stay valid until reader_fill. */
static int reader_next(struct import_reader *r, const char **rec, size_t *len, uint64_t *first_line)
{
	for (;;) {
		size_t avail = r->end - r->pos;
		const char *p = r->buf + r->pos;
		if (r->skipping) {
			const char *nl = memchr(p, '\n', avail);
			if (!nl) {
				r->bytes += avail;
				r->pos = r->end;
				if (r->eof) {
					r->skipping = 0;
					r->line++;
					return RD_EOF;
				}
				return RD_NEED_READ;
			}
			size_t k = (size_t)(nl - p) + 1;
			r->bytes += k;
			r->pos += k;
			r->line++;
			r->skipping = 0;
			continue;
		}
		if (avail == 0)
			return r->eof ? RD_EOF : RD_NEED_READ;
		/* Look no further than one longest line (and its "\r\n"). */
		size_t lim = avail < IMPORT_LINE_MAX + 2 ? avail : IMPORT_LINE_MAX + 2;
		size_t rl, next;
		unsigned inner = 0;
		int found;
		if (r->split == IMPORT_SPLIT_CSV) {
			found = csv_record_end(p, lim, r->delim, r->quoting, &rl, &next, &inner);
		} else {
			const char *nl = memchr(p, '\n', lim);
			found = nl != NULL;
			if (found) {
				rl = (size_t)(nl - p);
				next = rl + 1;
				if (rl > 0 && p[rl - 1] == '\r')
					rl--;
			}
		}
		if (found) {
			*first_line = r->line + 1;
			r->line += 1 + inner;
			r->pos += next;
			r->bytes += next;
			if (rl > IMPORT_LINE_MAX)
				return RD_TOO_LONG;
			*rec = p;
			*len = rl;
			return RD_RECORD;
		}
		if (avail >= lim && lim == IMPORT_LINE_MAX + 2) {
			/* Over-long: drop it up to the next line end, whatever
			 * quotes it holds. */
			*first_line = r->line + 1;
			r->skipping = 1;
			return RD_TOO_LONG;
		}
		if (!r->eof)
			return RD_NEED_READ;
		/* The last record, without a line end. */
		if (r->split == IMPORT_SPLIT_CSV) {
			csv_record_last(p, avail, &rl, &inner);
		} else {
			rl = avail;
			if (p[rl - 1] == '\r')
				rl--;
		}
		*first_line = r->line + 1;
		r->line += 1 + inner;
		r->pos = r->end;
		r->bytes += avail;
		if (rl > IMPORT_LINE_MAX)
			return RD_TOO_LONG;
		*rec = p;
		*len = rl;
		return RD_RECORD;
	}
}

/* --- the context ------------------------------------------------------ */
struct import_ctx {
	struct store *st;
	struct import_options opt;
	const struct import_format *fmt;
	char errmsg[1024];
	char why[512];
	char dataset[IMPORT_DATASET_MAX + 1];
	char time_unit[16];
	struct import_unit units[IMPORT_FILES_MAX];
	size_t nunits;
	struct import_result res;
	struct import_arena arena;
	struct import_rec *recs;
	size_t nrecs, caprecs;
	struct import_map *seq, *poi, *actions, *devices;
	const char *seq_last;  /* key of the user import_seq_next saw last */
	uint32_t seq_last_n;
	uint64_t *seq_last_val;
	uint64_t msgs;          /* bad lines seen in this pass (messages shown: up to 20) */
	int pass;               /* 1: --strict's second pass, which repeats no warning */
	int ran;                /* import_run was called: a context runs once */
	void *fmt_state;
	void (*fmt_state_free)(void *);
	uint8_t whole_key[32];
};

const struct import_options *import_opts(const struct import_ctx *ctx)
{
	return &ctx->opt;
}

const char *import_errmsg(const struct import_ctx *ctx)
{
	return ctx->errmsg[0] ? ctx->errmsg : "unknown error";
}

void import_set_fmt_state(struct import_ctx *ctx, void *state, void (*free_fn)(void *))
{
	ctx->fmt_state = state;
	ctx->fmt_state_free = free_fn;
}

void *import_fmt_state(struct import_ctx *ctx)
{
	return ctx->fmt_state;
}

struct import_map *import_poi_map(struct import_ctx *ctx)
{
	return ctx->poi;
}

void import_set_time_unit(struct import_ctx *ctx, const char *unit)
{
	snprintf(ctx->time_unit, sizeof(ctx->time_unit), "%s", unit);
}

int import_fail(struct import_ctx *ctx, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ctx->errmsg, sizeof(ctx->errmsg), fmt, ap);
	va_end(ap);
	return err;
}

int import_bad(struct import_ctx *ctx, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ctx->why, sizeof(ctx->why), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

const char *import_why(const struct import_ctx *ctx)
{
	return ctx->why;
}

static void import_emit(struct import_ctx *ctx, const char *msg)
{
	if (ctx->opt.message)
		ctx->opt.message(ctx->opt.cb_arg, msg);
	else
		fprintf(stderr, "%s\n", msg);
}

void import_warn(struct import_ctx *ctx, const struct import_unit *u, const char *fmt, ...)
{
	char body[512], msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	snprintf(msg, sizeof(msg), "%s: warning: %s", u->label, body);
	import_emit(ctx, msg);
}

void *import_alloc(struct import_ctx *ctx, size_t n)
{
	return arena_alloc(&ctx->arena, n);
}

/* Quotes a field's text for a message: printable ASCII as is, the rest as
 * \xNN, cut after 40 bytes. */
static const char *import_quote(char *buf, size_t cap, const char *p, size_t n)
{
	size_t o = 0;
	buf[o++] = '"';
	for (size_t i = 0; i < n && o + 8 < cap; i++) {
		unsigned char c = (unsigned char)p[i];
		if (i == 40) {
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (c == '"' || c == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else if (c >= 0x20 && c < 0x7f) {
			buf[o++] = (char)c;
		} else {
			o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
		}
	}
	buf[o++] = '"';
	buf[o] = 0;
	return buf;
}

/* --- field checks ------------------------------------------------------- */
int import_id(struct import_ctx *ctx, const char *field, const char *p, size_t n,
              struct imp_str *out)
{
	if (n == 0)
		return import_bad(ctx, "field '%s': empty", field);
	if (n > STORE_ID_MAX_LEN)
		return import_bad(ctx, "field '%s': longer than %d bytes", field, STORE_ID_MAX_LEN);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c < 0x20 || c == 0x7f) {
			char q[128];
			return import_bad(ctx, "field '%s': control character in ID: %s", field,
			                  import_quote(q, sizeof(q), p, n));
		}
	}
	out->p = p;
	out->n = (uint32_t)n;
	return 0;
}

int import_utf8_valid(const unsigned char *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = p[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t k;
		uint32_t cp;
		if (c >= 0xc2 && c <= 0xdf) {
			k = 1; cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2; cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3; cp = c & 0x07;
		} else {
			return 0;
		}
		if (n - i <= k)
			return 0;
		for (size_t j = 1; j <= k; j++) {
			if ((p[i + j] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i + j] & 0x3f);
		}
		if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += k + 1;
	}
	return 1;
}

int import_text(struct import_ctx *ctx, const char *field, const char *p, size_t n,
                int empty_is_null, struct imp_str *out)
{
	if (n == 0) {
		out->p = empty_is_null ? NULL : "";
		out->n = 0;
		return 0;
	}
	if (memchr(p, 0, n))
		return import_bad(ctx, "field '%s': contains a NUL byte", field);
	if (import_utf8_valid((const unsigned char *)p, n)) {
		if (n > STORE_TEXT_MAX_LEN)
			return import_bad(ctx, "field '%s': longer than %u bytes", field, STORE_TEXT_MAX_LEN);
		out->p = p;
		out->n = (uint32_t)n;
		return 0;
	}
	/* Not UTF-8: ISO-8859-1, where byte b is code point b. */
	size_t extra = 0;
	for (size_t i = 0; i < n; i++)
		extra += (unsigned char)p[i] >= 0x80;
	if (n + extra > STORE_TEXT_MAX_LEN)
		return import_bad(ctx, "field '%s': longer than %u bytes", field, STORE_TEXT_MAX_LEN);
	char *o = import_alloc(ctx, n + extra);
	if (!o)
		return -ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c < 0x80) {
			o[k++] = (char)c;
		} else {
			o[k++] = (char)(0xc0 | c >> 6);
			o[k++] = (char)(0x80 | (c & 0x3f));
		}
	}
	out->p = o;
	out->n = (uint32_t)k;
	return 0;
}

/* Copies a number's text into buf without surrounding blanks.  0, or -1
 * when it is empty or too long to be a number. */
static int num_text(char *buf, size_t cap, const char *p, size_t n)
{
	while (n > 0 && (*p == ' ' || *p == '\t')) {
		p++;
		n--;
	}
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	if (n == 0 || n >= cap)
		return -1;
	memcpy(buf, p, n);
	buf[n] = 0;
	return 0;
}

int import_double(struct import_ctx *ctx, const char *field, const char *p, size_t n,
                  double *out)
{
	char buf[64], q[128];
	if (n == 0)
		return import_bad(ctx, "field '%s': empty", field);
	if (num_text(buf, sizeof(buf), p, n) < 0)
		return import_bad(ctx, "field '%s': not a number: %s", field, import_quote(q, sizeof(q), p, n));
	char *end;
	errno = 0;
	double v = strtod(buf, &end);
	/* strtod takes "nan", "inf" and hex floats; a rating is none of them. */
	if (*end || end == buf || !isfinite(v) || errno == ERANGE ||
	    strpbrk(buf, "xXnN") || strpbrk(buf, "iI"))
		return import_bad(ctx, "field '%s': not a number: %s", field, import_quote(q, sizeof(q), p, n));
	*out = v;
	return 0;
}

int import_float(struct import_ctx *ctx, const char *field, const char *p, size_t n,
                 float *out)
{
	double v;
	int rc = import_double(ctx, field, p, n, &v);
	if (rc < 0)
		return rc;
	if (fabs(v) > 3.0e38) {
		char q[128];
		return import_bad(ctx, "field '%s': out of range: %s", field, import_quote(q, sizeof(q), p, n));
	}
	*out = (float)v;
	return 0;
}

static int parse_i64(const char *p, size_t n, int64_t *out)
{
	size_t i = 0;
	int neg = 0;
	if (n == 0)
		return -1;
	if (p[0] == '-' || p[0] == '+') {
		neg = p[0] == '-';
		i = 1;
	}
	if (i == n)
		return -1;
	uint64_t v = 0;
	for (; i < n; i++) {
		unsigned d = (unsigned char)p[i] - '0';
		if (d > 9)
			return -1;
		if (v > (UINT64_C(1) << 63) / 10)
			return -1;
		v = v * 10 + d;
		if (v > (UINT64_C(1) << 63) - (neg ? 0 : 1))
			return -1;
	}
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return 0;
}

int import_int64(struct import_ctx *ctx, const char *field, const char *p, size_t n,
                 int64_t *out)
{
	char buf[64], q[128];
	int64_t v;
	if (n == 0)
		return import_bad(ctx, "field '%s': empty", field);
	if (num_text(buf, sizeof(buf), p, n) < 0 || parse_i64(buf, strlen(buf), &v) < 0)
		return import_bad(ctx, "field '%s': not an integer: %s", field, import_quote(q, sizeof(q), p, n));
	*out = v;
	return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil), so no time zone or libc table is involved. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char *p, size_t n, unsigned *out)
{
	unsigned v = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned char)p[i] - '0';
		if (d > 9)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int import_time(struct import_ctx *ctx, const char *field, const char *p, size_t n,
                int64_t *out)
{
	char buf[64], q[128];
	int64_t v;
	if (n == 0)
		return import_bad(ctx, "field '%s': empty", field);
	if (num_text(buf, sizeof(buf), p, n) < 0)
		goto bad;
	size_t len = strlen(buf);
	if (parse_i64(buf, len, &v) == 0) {
		*out = v;
		return 0;
	}
	/* YYYY-MM-DDTHH:MM:SS[Z] */
	if (len == 20 && buf[19] == 'Z')
		len = 19;
	if (len != 19 || buf[4] != '-' || buf[7] != '-' || buf[10] != 'T' || buf[13] != ':' ||
	    buf[16] != ':')
		goto bad;
	unsigned y, mo, d, h, mi, s;
	if (digits(buf, 4, &y) || digits(buf + 5, 2, &mo) || digits(buf + 8, 2, &d) ||
	    digits(buf + 11, 2, &h) || digits(buf + 14, 2, &mi) || digits(buf + 17, 2, &s))
		goto bad;
	static const unsigned mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) ||
	    h > 23 || mi > 59 || s > 59)
		goto bad;
	*out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
	return 0;
bad:
	return import_bad(ctx, "field '%s': not a Unix time or YYYY-MM-DDTHH:MM:SS[Z]: %s", field,
	                  import_quote(q, sizeof(q), p, n));
}

int import_lat_lon(struct import_ctx *ctx, const char *lat, size_t lat_n,
                   const char *lon, size_t lon_n, float *out_lat, float *out_lon)
{
	double a, o;
	char q[128];
	int rc = import_double(ctx, "lat", lat, lat_n, &a);
	if (rc < 0)
		return rc;
	rc = import_double(ctx, "lon", lon, lon_n, &o);
	if (rc < 0)
		return rc;
	if (a < -90 || a > 90)
		return import_bad(ctx, "field 'lat': outside [-90, 90]: %s", import_quote(q, sizeof(q), lat, lat_n));
	if (o < -180 || o > 180)
		return import_bad(ctx, "field 'lon': outside [-180, 180]: %s", import_quote(q, sizeof(q), lon, lon_n));
	*out_lat = (float)a;
	*out_lon = (float)o;
	return 0;
}

static int name_ok(const char *p, size_t n)
{
	if (n == 0 || n > IMPORT_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
			return 0;
	return 1;
}

int import_action(struct import_ctx *ctx, const char *p, size_t n, uint8_t *id,
                  struct imp_str *custom)
{
	char q[128];
	for (unsigned a = 0; a < STORE_ACTION_BUILTIN_COUNT; a++) {
		const char *name = store_action_builtin_name(a);
		if (name && strlen(name) == n && strncasecmp(name, p, n) == 0) {
			*id = (uint8_t)a;
			custom->p = NULL;
			custom->n = 0;
			return 0;
		}
	}
	if (!name_ok(p, n))
		return import_bad(ctx, "field 'action': not an action name (1 to %d bytes, no control characters): %s",
		                  IMPORT_NAME_MAX, import_quote(q, sizeof(q), p, n));
	uint64_t *slot;
	int added, rc = import_map_upsert(ctx->actions, p, n, &slot, &added);
	if (rc < 0)
		return rc;
	if (added && ctx->actions->count > IMPORT_CUSTOM_ACTIONS)
		return import_bad(ctx, "field 'action': more than %d distinct custom actions: %s",
		                  IMPORT_CUSTOM_ACTIONS, import_quote(q, sizeof(q), p, n));
	*id = STORE_ACTION_NONE;
	custom->p = p;
	custom->n = (uint32_t)n;
	return 0;
}

int import_device(struct import_ctx *ctx, const char *p, size_t n, struct imp_str *out)
{
	char q[128];
	if (!name_ok(p, n))
		return import_bad(ctx, "field 'device': not a device name (1 to %d bytes, no control characters): %s",
		                  IMPORT_NAME_MAX, import_quote(q, sizeof(q), p, n));
	uint64_t *slot;
	int added, rc = import_map_upsert(ctx->devices, p, n, &slot, &added);
	if (rc < 0)
		return rc;
	if (added && ctx->devices->count > IMPORT_DEVICES_MAX)
		return import_bad(ctx, "field 'device': more than %d distinct devices", IMPORT_DEVICES_MAX);
	out->p = p;
	out->n = (uint32_t)n;
	return 0;
}

int import_seq_next(struct import_ctx *ctx, const struct imp_str *user, int64_t *pos)
{
	/* Sources without timestamps list each user's events together, so
	 * the last user seen saves most lookups. */
	if (!ctx->seq_last || ctx->seq_last_n != user->n ||
	    memcmp(ctx->seq_last, user->p, user->n) != 0) {
		uint64_t *slot;
		int added, rc = import_map_upsert(ctx->seq, user->p, user->n, &slot, &added);
		if (rc < 0)
			return rc;
		struct import_map_ent *e = (struct import_map_ent *)((char *)slot - offsetof(struct import_map_ent, val));
		ctx->seq_last = e->key;
		ctx->seq_last_n = e->len;
		ctx->seq_last_val = slot;
	}
	*pos = (int64_t)(*ctx->seq_last_val)++;
	return 0;
}

static void seq_reset(struct import_ctx *ctx)
{
	import_map_clear(ctx->seq);
	ctx->seq_last = NULL;
	ctx->seq_last_n = 0;
	ctx->seq_last_val = NULL;
}

/* --- attributes ------------------------------------------------------- */
int import_attrs_init(struct import_ctx *ctx, struct import_attrs *a, size_t cap)
{
	a->buf = import_alloc(ctx, cap ? cap : 1);
	if (!a->buf)
		return -ENOMEM;
	a->len = 0;
	a->cap = cap;
	return 0;
}

int import_attrs_add(struct import_ctx *ctx, struct import_attrs *a, const char *key, size_t key_n,
                     const char *val, size_t val_n)
{
	struct imp_str v;
	if (val_n == 0)
		return 0;
	int rc = import_text(ctx, "attribute", val, val_n, 1, &v);
	if (rc < 0)
		return rc;
	size_t need = (a->len ? 1 : 0) + key_n + 1 + v.n;
	if (a->len + need > a->cap || a->len + need > STORE_TEXT_MAX_LEN) {
		if (a->len + need > STORE_TEXT_MAX_LEN)
			return import_bad(ctx, "attributes: longer than %u bytes together", STORE_TEXT_MAX_LEN);
		size_t ncap = (a->len + need) * 2;
		char *nb = import_alloc(ctx, ncap);
		if (!nb)
			return -ENOMEM;
		memcpy(nb, a->buf, a->len);
		a->buf = nb;
		a->cap = ncap;
	}
	if (a->len)
		a->buf[a->len++] = '\n';
	/* '=' ends the key and '\n' ends the pair: neither may hide in a name. */
	for (size_t i = 0; i < key_n; i++) {
		char c = key[i];
		a->buf[a->len++] = (c == '=' || c == '\n' || c == '\r') ? '_' : c;
	}
	a->buf[a->len++] = '=';
	for (size_t i = 0; i < v.n; i++) {
		char c = v.p[i];
		a->buf[a->len++] = (c == '\n' || c == '\r') ? ' ' : c;
	}
	return 0;
}

void import_attrs_done(const struct import_attrs *a, struct imp_str *out)
{
	out->p = a->len ? a->buf : NULL;
	out->n = (uint32_t)a->len;
}

/* --- headers --------------------------------------------------------------- */
static int name_matches(const char *names, const char *p, size_t n)
{
	/* names: "user|user_id"; the header field may carry ":type". */
	const char *colon = memchr(p, ':', n);
	if (colon)
		n = (size_t)(colon - p);
	while (n > 0 && *p == ' ') {
		p++;
		n--;
	}
	while (n > 0 && p[n - 1] == ' ')
		n--;
	for (const char *s = names; *s;) {
		const char *bar = strchr(s, '|');
		size_t k = bar ? (size_t)(bar - s) : strlen(s);
		if (k == n && strncasecmp(s, p, n) == 0)
			return 1;
		if (!bar)
			break;
		s = bar + 1;
	}
	return 0;
}

int import_header_columns(struct import_ctx *ctx, struct import_unit *u, const char *rec,
                          size_t len, const struct import_colspec *spec, size_t nspec,
                          int rest_are_attrs)
{
	size_t errf = 0;
	/* A UTF-8 byte order mark would hide the first column's name. */
	if (len >= 3 && memcmp(rec, "\xef\xbb\xbf", 3) == 0) {
		rec += 3;
		len -= 3;
	}
	free(u->hdr_buf);
	u->hdr_buf = malloc(len * 2 + 1);
	if (!u->hdr_buf)
		return import_fail(ctx, -ENOMEM, "out of memory");
	memcpy(u->hdr_buf, rec, len);
	int n = csv_split(u->hdr_buf, len, u->delim, u->quoting, u->hdr, CSV_MAX_FIELDS,
	                  u->hdr_buf + len, &errf);
	if (n == -E2BIG)
		return import_fail(ctx, -EINVAL, "%s:1: header: more than %d columns", u->label, CSV_MAX_FIELDS);
	if (n < 0)
		return import_fail(ctx, -EINVAL, "%s:1: header: bad quoting in column %zu", u->label, errf);
	u->ncols = n;
	u->attr_cols = 0;
	for (size_t s = 0; s < nspec; s++)
		u->col[s] = -1;
	char unknown[256] = "";
	size_t ulen = 0;
	for (int c = 0; c < n; c++) {
		size_t s;
		for (s = 0; s < nspec; s++)
			if (name_matches(spec[s].names, u->hdr[c].p, u->hdr[c].len))
				break;
		if (s < nspec) {
			if (u->col[s] >= 0)
				return import_fail(ctx, -EINVAL, "%s:1: header: column '%.*s' appears twice",
				                   u->label, (int)u->hdr[c].len, u->hdr[c].p);
			u->col[s] = c;
			continue;
		}
		if (u->hdr[c].len == 0)
			return import_fail(ctx, -EINVAL, "%s:1: header: column %d has no name", u->label, c + 1);
		if (rest_are_attrs) {
			u->attr_cols |= UINT64_C(1) << c;
		} else if (ulen + u->hdr[c].len + 3 < sizeof(unknown)) {
			ulen += (size_t)snprintf(unknown + ulen, sizeof(unknown) - ulen, "%s'%.*s'",
			                         ulen ? ", " : "", (int)u->hdr[c].len, u->hdr[c].p);
		}
	}
	for (size_t s = 0; s < nspec; s++) {
		if (spec[s].required && u->col[s] < 0) {
			const char *bar = strchr(spec[s].names, '|');
			int k = bar ? (int)(bar - spec[s].names) : (int)strlen(spec[s].names);
			return import_fail(ctx, -EINVAL, "%s:1: header: no '%.*s' column", u->label, k,
			                   spec[s].names);
		}
	}
	if (ulen && ctx->pass == 0)
		import_warn(ctx, u, "ignoring unknown columns %s", unknown);
	return 0;
}

int import_split_fields(struct import_ctx *ctx, const struct import_unit *u, const char *rec,
                        size_t len, struct csv_field *f)
{
	char *scratch = NULL;
	size_t errf = 0;
	if (u->quoting && memchr(rec, '"', len)) {
		scratch = import_alloc(ctx, len ? len : 1);
		if (!scratch)
			return -ENOMEM;
	}
	int n = csv_split(rec, len, u->delim, u->quoting, f, CSV_MAX_FIELDS, scratch, &errf);
	if (n == -E2BIG)
		return import_bad(ctx, "more than %d fields", CSV_MAX_FIELDS);
	if (n < 0)
		return import_bad(ctx, "field %zu: bad quoting", errf);
	if (n != u->ncols)
		return import_bad(ctx, "expected %d fields, found %d", u->ncols, n);
	return n;
}

int import_attr_columns(struct import_ctx *ctx, const struct import_unit *u,
                        const struct csv_field *f, struct imp_str *out)
{
	struct import_attrs a;
	size_t cap = 0;
	int rc;
	if (!u->attr_cols) {
		out->p = NULL;
		out->n = 0;
		return 0;
	}
	for (int c = 0; c < u->ncols; c++)
		if (u->attr_cols >> c & 1)
			cap += u->hdr[c].len + f[c].len + 2;
	if ((rc = import_attrs_init(ctx, &a, cap)) < 0)
		return rc;
	for (int c = 0; c < u->ncols; c++) {
		if (!(u->attr_cols >> c & 1))
			continue;
		const char *k = u->hdr[c].p;
		size_t kn = u->hdr[c].len;
		const char *colon = memchr(k, ':', kn);  /* RecBole's name:type */
		if (colon)
			kn = (size_t)(colon - k);
		if ((rc = import_attrs_add(ctx, &a, k, kn, f[c].p, f[c].len)) < 0)
			return rc;
	}
	import_attrs_done(&a, out);
	return 0;
}

/* --- setting up ------------------------------------------------------------ */
int import_add_unit(struct import_ctx *ctx, const char *path, enum import_kind kind,
                    int required, struct import_unit **out)
{
	struct stat sb;
	if (ctx->nunits == IMPORT_FILES_MAX)
		return import_fail(ctx, -E2BIG, "too many files");
	if (strlen(path) >= sizeof(ctx->units[0].path))
		return import_fail(ctx, -ENAMETOOLONG, "%s: path too long", path);
	struct import_unit *u = &ctx->units[ctx->nunits];
	memset(u, 0, sizeof(*u));
	snprintf(u->path, sizeof(u->path), "%s", path);
	u->label = u->path;
	u->kind = kind;
	u->delim = '\t';
	if (stat(path, &sb) == 0) {
		if (!S_ISREG(sb.st_mode))
			return import_fail(ctx, -EINVAL, "%s: not a regular file", path);
		u->present = 1;
	} else if (errno != ENOENT || required) {
		return import_fail(ctx, -errno, "%s: %s", path, strerror(errno));
	}
	ctx->nunits++;
	*out = u;
	return 0;
}

int import_need_dir(struct import_ctx *ctx, const char *path)
{
	struct stat sb;
	if (stat(path, &sb) < 0)
		return import_fail(ctx, -errno, "%s: %s", path, strerror(errno));
	if (!S_ISDIR(sb.st_mode))
		return import_fail(ctx, -ENOTDIR, "%s: not a directory", path);
	return 0;
}

int import_set_default_dataset(struct import_ctx *ctx, const char *path, int strip_ext)
{
	if (ctx->opt.dataset)
		return 0;
	size_t n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		n--;
	const char *b = path;
	for (size_t i = 0; i < n; i++)
		if (path[i] == '/' && i + 1 < n)
			b = path + i + 1;
	n -= (size_t)(b - path);
	if (strip_ext) {
		for (size_t i = n; i > 1; i--) {
			if (b[i - 1] == '.') {
				n = i - 1;
				break;
			}
		}
	}
	/* "/", "." and ".." say nothing about the data: use the format's name */
	if (n == 0 || (n == 1 && (*b == '.' || *b == '/')) || (n == 2 && b[0] == '.' && b[1] == '.'))
		return 0;
	if (n > IMPORT_DATASET_MAX)
		n = IMPORT_DATASET_MAX;
	snprintf(ctx->dataset, sizeof(ctx->dataset), "%.*s", (int)n, b);
	return 0;
}

int import_new(struct import_ctx **out, struct store *st, const struct import_options *opt)
{
	struct import_ctx *ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	ctx->st = st;
	ctx->opt = *opt;
	if (import_map_new(&ctx->seq) < 0 || import_map_new(&ctx->poi) < 0 ||
	    import_map_new(&ctx->actions) < 0 || import_map_new(&ctx->devices) < 0) {
		import_free(ctx);
		return -ENOMEM;
	}
	*out = ctx;
	return 0;
}

void import_free(struct import_ctx *ctx)
{
	if (!ctx)
		return;
	for (size_t i = 0; i < ctx->nunits; i++)
		free(ctx->units[i].hdr_buf);
	if (ctx->fmt_state_free)
		ctx->fmt_state_free(ctx->fmt_state);
	import_map_free(ctx->seq);
	import_map_free(ctx->poi);
	import_map_free(ctx->actions);
	import_map_free(ctx->devices);
	arena_free(&ctx->arena);
	free(ctx->recs);
	free(ctx);
}

/* Checks the options and lets the format add its files. */
static int import_prepare(struct import_ctx *ctx)
{
	const struct import_options *opt = &ctx->opt;
	int rc;
	if (!ctx->opt.batch_lines)
		ctx->opt.batch_lines = IMPORT_BATCH_DEFAULT;
	if (ctx->opt.batch_lines > IMPORT_BATCH_MAX)
		return import_fail(ctx, -EINVAL, "batch size: at most %u lines", IMPORT_BATCH_MAX);
	for (size_t i = 0; i < sizeof(import_formats) / sizeof(import_formats[0]); i++)
		if (opt->format && strcmp(opt->format, import_formats[i].name) == 0)
			ctx->fmt = &import_formats[i];
	if (!ctx->fmt)
		return import_fail(ctx, -EINVAL, "unknown format '%s'", opt->format ? opt->format : "");
	if (opt->dataset) {
		size_t n = strlen(opt->dataset);
		if (n == 0 || n > IMPORT_DATASET_MAX)
			return import_fail(ctx, -EINVAL, "dataset name: 1 to %u bytes", IMPORT_DATASET_MAX);
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)opt->dataset[i] < 0x20 || opt->dataset[i] == 0x7f)
				return import_fail(ctx, -EINVAL, "dataset name: no control characters");
		snprintf(ctx->dataset, sizeof(ctx->dataset), "%s", opt->dataset);
	}
	import_set_time_unit(ctx, "second");
	if ((rc = ctx->fmt->setup(ctx)) < 0)
		return rc;
	size_t present = 0;
	for (size_t i = 0; i < ctx->nunits; i++)
		present += ctx->units[i].present;
	if (!present)
		return import_fail(ctx, -ENOENT, "%s: none of the files of format '%s' was found",
		                   opt->path ? opt->path : "(no path)", ctx->fmt->name);
	if (!ctx->dataset[0])
		snprintf(ctx->dataset, sizeof(ctx->dataset), "%s", ctx->fmt->name);
	return 0;
}

/* --- content identity -------------------------------------------------- */
/* The key of a file's progress: BLAKE2b over the format, the file's role and
 * its bytes.  Options that do not change what is applied (dataset name,
 * batch size, --strict) stay out, so that no variant of the same import
 * can apply a file twice. */
static int unit_key(struct import_ctx *ctx, struct import_unit *u)
{
	crypto_generichash_state hs;
	uint8_t *buf = NULL;
	int rc = 0;
	int fd = open(u->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return import_fail(ctx, -errno, "%s: %s", u->path, strerror(errno));
	buf = malloc(1u << 20);
	if (!buf) {
		rc = import_fail(ctx, -ENOMEM, "out of memory");
		goto out;
	}
	crypto_generichash_init(&hs, NULL, 0, sizeof(u->file_hash));
	for (;;) {
		ssize_t n = read(fd, buf, 1u << 20);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = import_fail(ctx, -errno, "%s: %s", u->path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		crypto_generichash_update(&hs, buf, (unsigned long long)n);
	}
	crypto_generichash_final(&hs, u->file_hash, sizeof(u->file_hash));

	static const char tag[] = "recd-import-file-1";
	uint8_t kind = (uint8_t)u->kind;
	crypto_generichash_init(&hs, NULL, 0, sizeof(u->key));
	crypto_generichash_update(&hs, (const uint8_t *)tag, sizeof(tag));
	crypto_generichash_update(&hs, (const uint8_t *)ctx->fmt->key_name, strlen(ctx->fmt->key_name) + 1);
	crypto_generichash_update(&hs, &kind, 1);
	crypto_generichash_update(&hs, u->file_hash, sizeof(u->file_hash));
	crypto_generichash_final(&hs, u->key, sizeof(u->key));
out:
	free(buf);
	close(fd);
	return rc;
}

/* The import as a whole: all its files' keys, in order. */
static void whole_key(struct import_ctx *ctx)
{
	crypto_generichash_state hs;
	static const char tag[] = "recd-import-1";
	crypto_generichash_init(&hs, NULL, 0, sizeof(ctx->whole_key));
	crypto_generichash_update(&hs, (const uint8_t *)tag, sizeof(tag));
	crypto_generichash_update(&hs, (const uint8_t *)ctx->fmt->key_name, strlen(ctx->fmt->key_name) + 1);
	for (size_t i = 0; i < ctx->nunits; i++) {
		const struct import_unit *u = &ctx->units[i];
		uint8_t b[2] = { (uint8_t)u->kind, (uint8_t)u->present };
		crypto_generichash_update(&hs, b, 2);
		if (u->present)
			crypto_generichash_update(&hs, u->key, sizeof(u->key));
	}
	crypto_generichash_final(&hs, ctx->whole_key, sizeof(ctx->whole_key));
}

static int progress_get(struct import_ctx *ctx, const uint8_t key[32], struct store_import_progress *p)
{
	struct store_txn *tx;
	int rc = store_read_begin(ctx->st, &tx);
	if (rc < 0)
		return import_fail(ctx, rc, "store: %s", store_errmsg(ctx->st));
	rc = store_import_get(tx, key, p);
	if (rc == -ENOENT) {
		memset(p, 0, sizeof(*p));
		rc = 0;
	} else if (rc < 0) {
		rc = import_fail(ctx, rc, "store: %s", store_errmsg(ctx->st));
	}
	store_txn_end(tx);
	return rc;
}

static int counts_get(struct import_ctx *ctx, struct store_counts *c)
{
	struct store_txn *tx;
	int rc = store_read_begin(ctx->st, &tx);
	if (rc < 0)
		return import_fail(ctx, rc, "store: %s", store_errmsg(ctx->st));
	rc = store_counts(tx, c);
	if (rc < 0)
		rc = import_fail(ctx, rc, "store: %s", store_errmsg(ctx->st));
	store_txn_end(tx);
	return rc;
}

/* --- applying a batch ------------------------------------------------------ */
struct import_apply {
	struct import_ctx *ctx;
	const struct import_unit *u;          /* NULL: no records */
	const uint8_t *key;                   /* progress to record */
	const struct store_import_progress *prog;
	const struct store_import_progress *expect; /* what the store must hold before */
	uint64_t events, triples, links;      /* counted again on every run of fn */
	uint64_t fail_line;
	int conflict;
};

static int apply_event(struct store_txn *tx, const struct import_rec *r, int append, uint32_t *last_uid,
                       const struct imp_str **last_user)
{
	uint32_t uid, iid;
	int rc;
	const struct imp_str *lu = *last_user;
	if (lu && lu->n == r->ev.user.n && memcmp(lu->p, r->ev.user.p, lu->n) == 0) {
		uid = *last_uid;
	} else {
		if ((rc = store_user_get_or_add(tx, r->ev.user.p, r->ev.user.n, &uid)) < 0)
			return rc;
		*last_uid = uid;
		*last_user = &r->ev.user;
	}
	if ((rc = store_item_get_or_add(tx, r->ev.item.p, r->ev.item.n, &iid)) < 0)
		return rc;
	struct store_event ev = r->ev.ev;
	ev.item = iid;
	if (r->ev.action.p && (rc = store_action_id(tx, r->ev.action.p, r->ev.action.n, &ev.action)) < 0)
		return rc;
	if (r->ev.device.p && (rc = store_device_id(tx, r->ev.device.p, r->ev.device.n, &ev.device)) < 0)
		return rc;
	if (append)
		return store_event_append(tx, uid, &ev, r->ev.text.p, r->ev.text.n);
	return store_event_add(tx, uid, &ev, r->ev.text.p, r->ev.text.n);
}

int import_apply_event(struct store_txn *tx, const struct import_rec *r, int append,
                       uint32_t *last_uid, const struct imp_str **last_user)
{
	return apply_event(tx, r, append, last_uid, last_user);
}

static int apply_item(struct store_txn *tx, const struct import_rec *r)
{
	uint32_t id;
	int rc = store_item_get_or_add(tx, r->item.item.p, r->item.item.n, &id);
	if (rc < 0)
		return rc;
	if (!r->item.title.p && !r->item.text.p && !r->item.categories.p && !r->item.attrs.p)
		return 0;
	struct store_item it = {
		.title = r->item.title.p, .title_len = r->item.title.n,
		.text = r->item.text.p, .text_len = r->item.text.n,
		.categories = r->item.categories.p, .categories_len = r->item.categories.n,
		.attrs = r->item.attrs.p, .attrs_len = r->item.attrs.n,
	};
	return store_item_update(tx, id, &it);
}

static int apply_user(struct store_txn *tx, const struct import_rec *r)
{
	uint32_t id;
	int rc = store_user_get_or_add(tx, r->user.user.p, r->user.user.n, &id);
	if (rc < 0 || !r->user.attrs.p)
		return rc;
	return store_user_set_attrs(tx, id, r->user.attrs.p, r->user.attrs.n);
}

static int apply_triple(struct store_txn *tx, const struct import_rec *r, int *added)
{
	uint32_t h, rel, t;
	int rc;
	if ((rc = store_entity_get_or_add(tx, r->triple.head.p, r->triple.head.n, r->triple.head_type.p,
	                                  r->triple.head_type.n, &h)) < 0 ||
	    (rc = store_relation_get_or_add(tx, r->triple.rel.p, r->triple.rel.n, &rel)) < 0 ||
	    (rc = store_entity_get_or_add(tx, r->triple.tail.p, r->triple.tail.n, r->triple.tail_type.p,
	                                  r->triple.tail_type.n, &t)) < 0)
		return rc;
	return store_triple_add(tx, h, rel, t, added);
}

static int apply_link(struct store_txn *tx, const struct import_rec *r)
{
	uint32_t item, ent;
	int rc;
	if ((rc = store_item_get_or_add(tx, r->link.item.p, r->link.item.n, &item)) < 0 ||
	    (rc = store_entity_get_or_add(tx, r->link.entity.p, r->link.entity.n, NULL, 0, &ent)) < 0)
		return rc;
	return store_item_link(tx, item, ent);
}

static int apply_fn(struct store_txn *tx, void *arg)
{
	struct import_apply *a = arg;
	struct import_ctx *ctx = a->ctx;
	uint32_t last_uid = 0;
	const struct imp_str *last_user = NULL;
	int rc = 0;

	a->events = a->triples = a->links = 0;
	a->fail_line = 0;
	a->conflict = 0;
	if (a->expect) {
		/* Two runs of the same import at once would both apply the same
		 * lines: the one whose view of the progress is stale stops. */
		struct store_import_progress cur;
		rc = store_import_get(tx, a->key, &cur);
		if (rc == -ENOENT)
			memset(&cur, 0, sizeof(cur));
		else if (rc < 0)
			return rc;
		if (cur.units_done != a->expect->units_done || cur.complete != a->expect->complete) {
			a->conflict = 1;
			return -EBUSY;
		}
	}
	for (size_t i = 0; a->u && i < ctx->nrecs; i++) {
		const struct import_rec *r = &ctx->recs[i];
		int added = 0;
		switch (a->u->kind) {
		case IMPORT_KIND_EVENTS:
			rc = apply_event(tx, r, 0, &last_uid, &last_user);
			a->events += rc == 0;
			break;
		case IMPORT_KIND_ITEMS:
			rc = apply_item(tx, r);
			break;
		case IMPORT_KIND_USERS:
			rc = apply_user(tx, r);
			break;
		case IMPORT_KIND_TRIPLES:
			rc = apply_triple(tx, r, &added);
			a->triples += added != 0;
			break;
		case IMPORT_KIND_LINKS:
			rc = apply_link(tx, r);
			a->links += rc == 0;
			break;
		default:
			rc = -EINVAL;
		}
		if (rc < 0) {
			a->fail_line = r->line;
			return rc;
		}
	}
	if (a->key && (rc = store_import_put(tx, a->key, a->prog)) < 0)
		return rc;
	return 0;
}

static int apply_batch(struct import_ctx *ctx, struct import_unit *u,
                       const struct store_import_progress *expect,
                       const struct store_import_progress *prog)
{
	struct import_apply a = { .ctx = ctx, .u = u, .key = u->key, .prog = prog, .expect = expect };
	int rc = store_write(ctx->st, apply_fn, &a);
	if (rc < 0) {
		if (a.conflict)
			return import_fail(ctx, rc, "%s: another import of the same file changed the store meanwhile; "
			                   "run this import again to finish it", u->label);
		if (a.fail_line)
			return import_fail(ctx, rc, "%s:%llu: store: %s", u->label,
			                   (unsigned long long)a.fail_line, store_errmsg(ctx->st));
		return import_fail(ctx, rc, "%s: store: %s", u->label, store_errmsg(ctx->st));
	}
	ctx->res.events_added += a.events;
	ctx->res.triples_added += a.triples;
	ctx->res.links_added += a.links;
	return 0;
}

/* Groups a batch of events by user, keeping each user's events in file
 * order.  Sources sorted by time interleave users; the store then moves to
 * a different user's list for every event, while grouped events append to
 * one list after another.  Only the arrival order among one user's events
 * is visible in the store (it breaks ties of equal times), and a stable
 * grouping keeps it.  Batches that are grouped already are left alone. */
struct import_order {
	uint64_t hash;
	uint32_t idx;
};

static int order_cmp(const void *a, const void *b)
{
	const struct import_order *x = a, *y = b;
	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static void group_by_user(struct import_ctx *ctx)
{
	size_t n = ctx->nrecs, changes = 0;
	for (size_t i = 1; i < n; i++) {
		const struct imp_str *a = &ctx->recs[i - 1].ev.user, *b = &ctx->recs[i].ev.user;
		changes += a->n != b->n || memcmp(a->p, b->p, a->n) != 0;
	}
	if (changes * 8 < n)
		return;
	struct import_order *ord = malloc(n * sizeof(*ord));
	struct import_rec *tmp = malloc(n * sizeof(*tmp));
	if (!ord || !tmp) {
		free(ord);
		free(tmp);
		return;  /* only slower without it */
	}
	/* Equal hashes of different users merely share a group; each user's
	 * events still keep their order, which is all that matters. */
	for (size_t i = 0; i < n; i++) {
		ord[i].hash = map_hash(ctx->recs[i].ev.user.p, ctx->recs[i].ev.user.n);
		ord[i].idx = (uint32_t)i;
	}
	qsort(ord, n, sizeof(*ord), order_cmp);
	for (size_t i = 0; i < n; i++)
		tmp[i] = ctx->recs[ord[i].idx];
	memcpy(ctx->recs, tmp, n * sizeof(*tmp));
	free(ord);
	free(tmp);
}

/* --- reading a file ----------------------------------------------------- */
static void bad_line(struct import_ctx *ctx, struct import_unit *u, uint64_t line, const char *why)
{
	ctx->res.bad_lines++;
	u->res->bad_lines++;
	if (ctx->msgs < IMPORT_MESSAGES_MAX) {
		char msg[4096 + 700];
		snprintf(msg, sizeof(msg), "%s:%llu: %s", u->label, (unsigned long long)line, why);
		import_emit(ctx, msg);
	}
	ctx->msgs++;
}

static struct import_rec *rec_slot(struct import_ctx *ctx)
{
	if (ctx->nrecs == ctx->caprecs) {
		size_t ncap = ctx->caprecs ? ctx->caprecs * 2 : 1024;
		struct import_rec *n = realloc(ctx->recs, ncap * sizeof(*n));
		if (!n)
			return NULL;
		ctx->recs = n;
		ctx->caprecs = ncap;
	}
	return &ctx->recs[ctx->nrecs];
}

/* Reads one file.  With apply, the records past the file's recorded
 * progress are applied in batches; without, it only parses (--strict's
 * first pass).  Records before the progress are parsed all the same: the
 * sequence positions of later records depend on them. */
static int run_unit(struct import_ctx *ctx, struct import_unit *u, int apply)
{
	struct import_reader r = { .fd = -1 };
	struct store_import_progress prog = { 0 }, committed;
	struct stat sb;
	const char *p;
	size_t len;
	uint64_t line;
	int rc, eof = 0;

	u->res->lines = u->res->records = u->res->bad_lines = u->res->applied_lines = 0;
	if (apply && (rc = progress_get(ctx, u->key, &prog)) < 0)
		return rc;
	if (apply && (prog.units_done || prog.complete))
		ctx->res.resumed = 1;
	committed = prog;
	r.fd = open(u->path, O_RDONLY | O_CLOEXEC);
	if (r.fd < 0)
		return import_fail(ctx, -errno, "%s: %s", u->path, strerror(errno));
	if (fstat(r.fd, &sb) < 0) {
		rc = import_fail(ctx, -errno, "%s: %s", u->path, strerror(errno));
		goto out;
	}
	r.cap = IMPORT_READ_BUF;
	r.buf = malloc(r.cap);
	if (!r.buf) {
		rc = import_fail(ctx, -ENOMEM, "out of memory");
		goto out;
	}
	r.split = u->split;
	r.delim = u->delim;
	r.quoting = u->quoting;
	if (u->kind == IMPORT_KIND_EVENTS)
		seq_reset(ctx);

	if (u->has_header) {
		arena_reset(&ctx->arena);
		while ((rc = reader_next(&r, &p, &len, &line)) == RD_NEED_READ)
			if ((rc = reader_fill(&r)) < 0) {
				rc = import_fail(ctx, rc, "%s: %s", u->path, strerror(-rc));
				goto out;
			}
		if (rc == RD_EOF) {
			rc = import_fail(ctx, -EINVAL, "%s: empty file: no header line", u->label);
			goto out;
		}
		if (rc == RD_TOO_LONG) {
			rc = import_fail(ctx, -EINVAL, "%s:1: header longer than %u bytes", u->label, IMPORT_LINE_MAX);
			goto out;
		}
		if ((rc = u->header(ctx, u, p, len)) < 0)
			goto out;
		/* The header may have decided how the rest is split. */
		r.split = u->split;
		r.delim = u->delim;
		r.quoting = u->quoting;
	}

	while (!eof) {
		arena_reset(&ctx->arena);
		ctx->nrecs = 0;
		while (ctx->nrecs < ctx->opt.batch_lines && ctx->arena.total < IMPORT_ARENA_BATCH) {
			rc = reader_next(&r, &p, &len, &line);
			if (rc == RD_NEED_READ) {
				if (ctx->nrecs)
					break;  /* records point into the buffer: apply them first */
				if ((rc = reader_fill(&r)) < 0) {
					rc = import_fail(ctx, rc, "%s: %s", u->path, strerror(-rc));
					goto out;
				}
				continue;
			}
			if (rc == RD_EOF) {
				eof = 1;
				break;
			}
			if (rc == RD_TOO_LONG) {
				char why[64];
				snprintf(why, sizeof(why), "line longer than %u bytes", IMPORT_LINE_MAX);
				bad_line(ctx, u, line, why);
				continue;
			}
			struct import_rec *rec = rec_slot(ctx);
			if (!rec) {
				rc = import_fail(ctx, -ENOMEM, "out of memory");
				goto out;
			}
			memset(rec, 0, sizeof(*rec));
			rec->line = line;
			rc = u->parse(ctx, u, p, len, rec);
			if (rc == IMPORT_SKIP)
				continue;
			if (rc == -EINVAL) {
				bad_line(ctx, u, line, ctx->why);
				continue;
			}
			if (rc < 0) {
				import_fail(ctx, rc, "%s:%llu: %s", u->label, (unsigned long long)line, strerror(-rc));
				goto out;
			}
			u->res->records++;
			if (apply && !prog.complete && r.line > prog.units_done)
				ctx->nrecs++;
		}
		u->res->lines = r.line;
		if (apply && !prog.complete && (ctx->nrecs || eof)) {
			if (u->kind == IMPORT_KIND_EVENTS)
				group_by_user(ctx);
			struct store_import_progress np = { .units_done = r.line, .complete = (uint32_t)eof };
			if (np.units_done < prog.units_done)
				np.units_done = prog.units_done;
			if ((rc = apply_batch(ctx, u, &committed, &np)) < 0)
				goto out;
			committed = np;
			u->res->applied_lines = r.line > prog.units_done ? r.line - prog.units_done : 0;
		}
		if (ctx->opt.progress)
			ctx->opt.progress(ctx->opt.cb_arg, u->label, r.line, r.bytes, (uint64_t)sb.st_size);
	}
	rc = 0;
out:
	free(r.buf);
	if (r.fd >= 0)
		close(r.fd);
	return rc;
}

/* --- the dataset record ---------------------------------------------------- */
/* The dataset's description: where it came from, its time unit, what its
 * files held, and the store's totals once it was in. */
static int dataset_json(struct import_ctx *ctx, const struct store_counts *sc, char **out)
{
	json_object *o = json_object_new_object(), *src = json_object_new_array(),
	            *counts = json_object_new_object(), *recs = json_object_new_object(),
	            *tot = json_object_new_object();
	uint64_t per_kind[IMPORT_KIND_COUNT] = { 0 };
	int has_kind[IMPORT_KIND_COUNT] = { 0 };
	char when[32];
	time_t now = time(NULL);
	struct tm tm;
	int rc = 0;

	if (!o || !src || !counts || !recs || !tot) {
		json_object_put(o);
		json_object_put(src);
		json_object_put(counts);
		json_object_put(recs);
		json_object_put(tot);
		return import_fail(ctx, -ENOMEM, "out of memory");
	}
	json_object_object_add(o, "format", json_object_new_string(ctx->fmt->key_name));
	for (size_t i = 0; i < ctx->nunits; i++) {
		const struct import_unit *u = &ctx->units[i];
		if (!u->present)
			continue;
		char *abs = realpath(u->path, NULL);
		json_object_array_add(src, json_object_new_string(abs ? abs : u->path));
		free(abs);
		per_kind[u->kind] += u->res->records;
		has_kind[u->kind] = 1;
	}
	json_object_object_add(o, "sources", src);
	json_object_object_add(o, "time_unit", json_object_new_string(ctx->time_unit));
	json_object_object_add(counts, "lines", json_object_new_int64((int64_t)ctx->res.lines));
	json_object_object_add(counts, "bad_lines", json_object_new_int64((int64_t)ctx->res.bad_lines));
	for (int k = 0; k < IMPORT_KIND_COUNT; k++)
		if (has_kind[k])
			json_object_object_add(recs, import_kind_name((enum import_kind)k),
			                       json_object_new_int64((int64_t)per_kind[k]));
	json_object_object_add(counts, "records", recs);
	json_object_object_add(o, "counts", counts);
	json_object_object_add(tot, "users", json_object_new_int64((int64_t)sc->users));
	json_object_object_add(tot, "items", json_object_new_int64((int64_t)sc->items));
	json_object_object_add(tot, "events", json_object_new_int64((int64_t)sc->events));
	json_object_object_add(tot, "entities", json_object_new_int64((int64_t)sc->entities));
	json_object_object_add(tot, "triples", json_object_new_int64((int64_t)sc->triples));
	json_object_object_add(o, "store_after", tot);
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_object_add(o, "imported_at", json_object_new_string(when));
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	*out = s ? strdup(s) : NULL;
	if (!*out)
		rc = import_fail(ctx, -ENOMEM, "out of memory");
	json_object_put(o);
	return rc;
}

static int finish_fn(struct store_txn *tx, void *arg)
{
	struct import_ctx *ctx = arg;
	struct store_import_progress prog = { .units_done = ctx->res.lines, .complete = 1 };
	struct store_counts sc;
	char *json = NULL;
	int rc;
	if ((rc = store_counts(tx, &sc)) < 0 || (rc = dataset_json(ctx, &sc, &json)) < 0)
		return rc;
	if ((rc = store_dataset_put(tx, ctx->dataset, json)) == 0)
		rc = store_import_put(tx, ctx->whole_key, &prog);
	free(json);
	return rc;
}

/* Records the dataset and marks the import as a whole complete, in one
 * transaction: a later run of the same import then applies nothing. */
static int import_finish(struct import_ctx *ctx)
{
	ctx->errmsg[0] = 0;
	int rc = store_write(ctx->st, finish_fn, ctx);
	if (rc < 0 && !ctx->errmsg[0])
		rc = import_fail(ctx, rc, "store: %s", store_errmsg(ctx->st));
	return rc;
}

static void more_messages(struct import_ctx *ctx)
{
	if (ctx->msgs > IMPORT_MESSAGES_MAX) {
		char msg[128];
		snprintf(msg, sizeof(msg), "... and %llu more bad lines",
		         (unsigned long long)(ctx->msgs - IMPORT_MESSAGES_MAX));
		import_emit(ctx, msg);
	}
}

/* One pass over all files; pass 0 may be --strict's parse-only pass. */
static int run_pass(struct import_ctx *ctx, int apply)
{
	int rc;
	ctx->res.lines = ctx->res.bad_lines = 0;
	ctx->msgs = 0;
	import_map_clear(ctx->poi);
	import_map_clear(ctx->actions);
	import_map_clear(ctx->devices);
	for (size_t i = 0; i < ctx->nunits; i++) {
		struct import_unit *u = &ctx->units[i];
		if (!u->present)
			continue;
		if ((rc = run_unit(ctx, u, apply)) < 0)
			return rc;
		ctx->res.lines += u->res->lines;
	}
	more_messages(ctx);
	return 0;
}

int import_run(struct import_ctx *ctx, struct import_result *out)
{
	struct timespec t0, t1;
	struct store_import_progress whole;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (ctx->ran++)
		return import_fail(ctx, -EINVAL, "an import context runs only once");
	if (sodium_init() < 0)
		return import_fail(ctx, -EIO, "libsodium failed to initialise");
	if ((rc = import_prepare(ctx)) < 0)
		return rc;
	memset(&ctx->res, 0, sizeof(ctx->res));
	snprintf(ctx->res.dataset, sizeof(ctx->res.dataset), "%s", ctx->dataset);
	ctx->res.nfiles = ctx->nunits;
	for (size_t i = 0; i < ctx->nunits; i++) {
		struct import_unit *u = &ctx->units[i];
		struct import_file_result *fr = &ctx->res.files[i];
		u->res = fr;
		snprintf(fr->path, sizeof(fr->path), "%s", u->path);
		fr->kind = u->kind;
		fr->present = u->present;
		if (u->present && (rc = unit_key(ctx, u)) < 0)
			return rc;
	}
	whole_key(ctx);
	if ((rc = counts_get(ctx, &ctx->res.before)) < 0 ||
	    (rc = progress_get(ctx, ctx->whole_key, &whole)) < 0)
		return rc;
	if (whole.complete) {
		ctx->res.already_done = 1;
		ctx->res.lines = whole.units_done;
		ctx->res.after = ctx->res.before;
		goto done;
	}
	if (ctx->opt.strict) {
		ctx->pass = 0;
		if ((rc = run_pass(ctx, 0)) < 0)
			return rc;
		if (ctx->res.bad_lines)
			return import_fail(ctx, -EINVAL, "%llu bad line%s: nothing was imported (--strict)",
			                   (unsigned long long)ctx->res.bad_lines,
			                   ctx->res.bad_lines == 1 ? "" : "s");
		ctx->pass = 1;
	}
	if ((rc = run_pass(ctx, 1)) < 0)
		return rc;
	if ((rc = import_finish(ctx)) < 0 || (rc = counts_get(ctx, &ctx->res.after)) < 0)
		return rc;
done:
	snprintf(ctx->res.time_unit, sizeof(ctx->res.time_unit), "%s", ctx->time_unit);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ctx->res.seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
	*out = ctx->res;
	return 0;
}
