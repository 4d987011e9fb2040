/* recbole.c: RecBole's atomic files (format ml100k, alias recbole): DIR/NAME.inter,
 * .item, .user, .kg and .link, tab-separated, each with a typed header line
 * ("item_id:token").  Columns are found by name, never by position.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "import/import_int.h"

enum { C_USER, C_ITEM, C_RATING, C_TIME };            /* .inter */
enum { C_IID, C_TITLE, C_CLASS, C_TEXT };              /* .item */
enum { C_HEAD, C_REL, C_TAIL };                        /* .kg */
enum { C_LITEM, C_ENTITY };                            /* .link */

static const struct import_colspec inter_cols[] = {
	{ "user_id", 1 }, { "item_id", 1 }, { "rating", 0 }, { "timestamp", 0 },
};
static const struct import_colspec item_cols[] = {
	{ "item_id", 1 }, { "movie_title|title", 0 }, { "class|genre|categories", 0 },
	{ "description|text", 0 },
};
static const struct import_colspec user_cols[] = { { "user_id", 1 } };
static const struct import_colspec kg_cols[] = {
	{ "head_id", 1 }, { "relation_id", 1 }, { "tail_id", 1 },
};
static const struct import_colspec link_cols[] = { { "item_id", 1 }, { "entity_id", 1 } };

#define NCOLS(a) (sizeof(a) / sizeof((a)[0]))

static int inter_header(struct import_ctx *ctx, struct import_unit *u, const char *rec, size_t len)
{
	int rc = import_header_columns(ctx, u, rec, len, inter_cols, NCOLS(inter_cols), 0);
	if (rc < 0)
		return rc;
	u->time_order = u->col[C_TIME] < 0;
	import_set_time_unit(ctx, u->time_order ? "order" : "second");
	return 0;
}

static int is_blank(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t')
			return 0;
	return 1;
}

static int inter_parse(struct import_ctx *ctx, struct import_unit *u, const char *p, size_t n,
                       struct import_rec *out)
{
	struct csv_field f[CSV_MAX_FIELDS];
	int rc;
	if (is_blank(p, n))
		return IMPORT_SKIP;
	if ((rc = import_split_fields(ctx, u, p, n, f)) < 0)
		return rc;
	const struct csv_field *uf = &f[u->col[C_USER]], *itf = &f[u->col[C_ITEM]];
	if ((rc = import_id(ctx, "user_id", uf->p, uf->len, &out->ev.user)) < 0 ||
	    (rc = import_id(ctx, "item_id", itf->p, itf->len, &out->ev.item)) < 0)
		return rc;
	if (u->col[C_RATING] >= 0) {
		const struct csv_field *r = &f[u->col[C_RATING]];
		if ((rc = import_float(ctx, "rating", r->p, r->len, &out->ev.ev.value)) < 0)
			return rc;
		out->ev.ev.flags |= STORE_EV_VALUE;
		out->ev.ev.action = STORE_ACTION_RATE;
	}
	if (u->time_order)
		return import_seq_next(ctx, &out->ev.user, &out->ev.ev.ts);
	/* RecBole types timestamps as float; they are whole seconds. */
	const struct csv_field *t = &f[u->col[C_TIME]];
	double ts;
	if ((rc = import_double(ctx, "timestamp", t->p, t->len, &ts)) < 0)
		return rc;
	if (ts < -9.2e18 || ts > 9.2e18)
		return import_bad(ctx, "field 'timestamp': out of range");
	out->ev.ev.ts = (int64_t)ts;
	return 0;
}

static int item_header(struct import_ctx *ctx, struct import_unit *u, const char *rec, size_t len)
{
	return import_header_columns(ctx, u, rec, len, item_cols, NCOLS(item_cols), 1);
}

static int item_parse(struct import_ctx *ctx, struct import_unit *u, const char *p, size_t n,
                      struct import_rec *out)
{
	struct csv_field f[CSV_MAX_FIELDS];
	int rc;
	if (is_blank(p, n))
		return IMPORT_SKIP;
	if ((rc = import_split_fields(ctx, u, p, n, f)) < 0)
		return rc;
	const struct csv_field *idf = &f[u->col[C_IID]];
	if ((rc = import_id(ctx, "item_id", idf->p, idf->len, &out->item.item)) < 0)
		return rc;
	if (u->col[C_TITLE] >= 0) {
		const struct csv_field *t = &f[u->col[C_TITLE]];
		if ((rc = import_text(ctx, "movie_title", t->p, t->len, 1, &out->item.title)) < 0)
			return rc;
	}
	if (u->col[C_TEXT] >= 0) {
		const struct csv_field *t = &f[u->col[C_TEXT]];
		if ((rc = import_text(ctx, "description", t->p, t->len, 1, &out->item.text)) < 0)
			return rc;
	}
	if (u->col[C_CLASS] >= 0) {
		/* token_seq: genres separated by spaces; the store wants '|'. */
		const struct csv_field *c = &f[u->col[C_CLASS]];
		struct imp_str cats;
		if ((rc = import_text(ctx, "class", c->p, c->len, 1, &cats)) < 0)
			return rc;
		if (cats.p) {
			char *o = import_alloc(ctx, cats.n);
			size_t k = 0;
			if (!o)
				return -ENOMEM;
			for (uint32_t i = 0; i < cats.n; i++) {
				if (cats.p[i] == ' ') {
					if (k && o[k - 1] != '|')
						o[k++] = '|';
				} else {
					o[k++] = cats.p[i];
				}
			}
			while (k && o[k - 1] == '|')
				k--;
			out->item.categories.p = k ? o : NULL;
			out->item.categories.n = (uint32_t)k;
		}
	}
	return import_attr_columns(ctx, u, f, &out->item.attrs);
}

static int user_header(struct import_ctx *ctx, struct import_unit *u, const char *rec, size_t len)
{
	return import_header_columns(ctx, u, rec, len, user_cols, NCOLS(user_cols), 1);
}

static int user_parse(struct import_ctx *ctx, struct import_unit *u, const char *p, size_t n,
                      struct import_rec *out)
{
	struct csv_field f[CSV_MAX_FIELDS];
	int rc;
	if (is_blank(p, n))
		return IMPORT_SKIP;
	if ((rc = import_split_fields(ctx, u, p, n, f)) < 0)
		return rc;
	const struct csv_field *idf = &f[u->col[0]];
	if ((rc = import_id(ctx, "user_id", idf->p, idf->len, &out->user.user)) < 0)
		return rc;
	return import_attr_columns(ctx, u, f, &out->user.attrs);
}

static int kg_header(struct import_ctx *ctx, struct import_unit *u, const char *rec, size_t len)
{
	return import_header_columns(ctx, u, rec, len, kg_cols, NCOLS(kg_cols), 0);
}

static int kg_parse(struct import_ctx *ctx, struct import_unit *u, const char *p, size_t n,
                    struct import_rec *out)
{
	struct csv_field f[CSV_MAX_FIELDS];
	int rc;
	if (is_blank(p, n))
		return IMPORT_SKIP;
	if ((rc = import_split_fields(ctx, u, p, n, f)) < 0)
		return rc;
	const struct csv_field *h = &f[u->col[C_HEAD]], *r = &f[u->col[C_REL]], *t = &f[u->col[C_TAIL]];
	if ((rc = import_id(ctx, "head_id", h->p, h->len, &out->triple.head)) < 0 ||
	    (rc = import_id(ctx, "relation_id", r->p, r->len, &out->triple.rel)) < 0 ||
	    (rc = import_id(ctx, "tail_id", t->p, t->len, &out->triple.tail)) < 0)
		return rc;
	return 0;
}

static int link_header(struct import_ctx *ctx, struct import_unit *u, const char *rec, size_t len)
{
	return import_header_columns(ctx, u, rec, len, link_cols, NCOLS(link_cols), 0);
}

static int link_parse(struct import_ctx *ctx, struct import_unit *u, const char *p, size_t n,
                      struct import_rec *out)
{
	struct csv_field f[CSV_MAX_FIELDS];
	int rc;
	if (is_blank(p, n))
		return IMPORT_SKIP;
	if ((rc = import_split_fields(ctx, u, p, n, f)) < 0)
		return rc;
	const struct csv_field *i = &f[u->col[C_LITEM]], *e = &f[u->col[C_ENTITY]];
	if ((rc = import_id(ctx, "item_id", i->p, i->len, &out->link.item)) < 0 ||
	    (rc = import_id(ctx, "entity_id", e->p, e->len, &out->link.entity)) < 0)
		return rc;
	return 0;
}

/* The files' common name: DIR's own name ("ml-100k/ml-100k.inter"), else
 * the one NAME with a NAME.inter (or, failing that, NAME.item) in DIR. */
static int recbole_name(struct import_ctx *ctx, const char *dir, char *name, size_t cap)
{
	char path[4096];
	size_t n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		n--;
	size_t b = n;
	while (b > 0 && dir[b - 1] != '/')
		b--;
	snprintf(name, cap, "%.*s", (int)(n - b), dir + b);
	snprintf(path, sizeof(path), "%s/%s.inter", dir, name);
	if (name[0] && access(path, F_OK) == 0)
		return 0;
	static const char *const exts[] = { ".inter", ".item" };
	for (size_t e = 0; e < 2; e++) {
		DIR *d = opendir(dir);
		struct dirent *de;
		int found = 0;
		if (!d)
			return import_fail(ctx, -errno, "%s: %s", dir, strerror(errno));
		while ((de = readdir(d))) {
			size_t len = strlen(de->d_name), el = strlen(exts[e]);
			if (len <= el || strcmp(de->d_name + len - el, exts[e]) != 0)
				continue;
			if (found++) {
				closedir(d);
				return import_fail(ctx, -EINVAL, "%s: more than one *%s file; name the dataset's directory after one",
				                   dir, exts[e]);
			}
			snprintf(name, cap, "%.*s", (int)(len - el), de->d_name);
		}
		closedir(d);
		if (found)
			return 0;
	}
	return import_fail(ctx, -ENOENT, "%s: no RecBole atomic files (NAME.inter, NAME.item, ...)", dir);
}

int import_fmt_recbole(struct import_ctx *ctx)
{
	static const struct {
		const char *ext;
		enum import_kind kind;
		import_header_fn header;
		import_parse_fn parse;
	} files[] = {
		{ "item", IMPORT_KIND_ITEMS, item_header, item_parse },
		{ "user", IMPORT_KIND_USERS, user_header, user_parse },
		{ "link", IMPORT_KIND_LINKS, link_header, link_parse },
		{ "kg", IMPORT_KIND_TRIPLES, kg_header, kg_parse },
		{ "inter", IMPORT_KIND_EVENTS, inter_header, inter_parse },
	};
	const struct import_options *opt = import_opts(ctx);
	char name[256], path[4096];
	int rc;
	if (!opt->path)
		return import_fail(ctx, -EINVAL, "%s: no directory given", opt->format);
	if ((rc = import_need_dir(ctx, opt->path)) < 0 ||
	    (rc = recbole_name(ctx, opt->path, name, sizeof(name))) < 0)
		return rc;
	for (size_t i = 0; i < NCOLS(files); i++) {
		struct import_unit *u;
		if ((size_t)snprintf(path, sizeof(path), "%s/%s.%s", opt->path, name, files[i].ext) >= sizeof(path))
			return import_fail(ctx, -ENAMETOOLONG, "%s: path too long", opt->path);
		if ((rc = import_add_unit(ctx, path, files[i].kind, 0, &u)) < 0)
			return rc;
		u->has_header = 1;
		u->delim = '\t';
		u->header = files[i].header;
		u->parse = files[i].parse;
	}
	return import_set_default_dataset(ctx, name, 0);
}
