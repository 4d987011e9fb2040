/* movielens.c: the MovieLens-1M formats.  ml1m-seq reads "user item" lines
 * whose order within a user is the time order (no timestamps); ml1m reads
 * the GroupLens ".dat" files of a directory and the Satori knowledge graph
 * beside them (MKR's kg/ folder).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "import/import_int.h"

static int is_blank(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t')
			return 0;
	return 1;
}

/* --- ml1m-seq ------------------------------------------------------------ */
static int seq_parse(struct import_ctx *ctx, struct import_unit *u, const char *p, size_t n,
                     struct import_rec *out)
{
	struct csv_field f[3];
	size_t nf = 0, i = 0;
	int rc;

	/* Fields are separated by runs of blanks; only two may be there. */
	while (i < n) {
		while (i < n && (p[i] == ' ' || p[i] == '\t'))
			i++;
		if (i == n)
			break;
		size_t s = i;
		while (i < n && p[i] != ' ' && p[i] != '\t')
			i++;
		if (nf == 3)
			break;
		f[nf].p = p + s;
		f[nf].len = i - s;
		nf++;
	}
	if (nf == 0)
		return IMPORT_SKIP;
	if (nf != 2)
		return import_bad(ctx, "expected 2 fields (user item), found %s", nf == 3 ? "more" : "1");
	if ((rc = import_id(ctx, "user", f[0].p, f[0].len, &out->ev.user)) < 0 ||
	    (rc = import_id(ctx, "item", f[1].p, f[1].len, &out->ev.item)) < 0)
		return rc;
	out->ev.ev.action = STORE_ACTION_RATE;
	return import_seq_next(ctx, &out->ev.user, &out->ev.ev.ts);
}

int import_fmt_ml1m_seq(struct import_ctx *ctx)
{
	const struct import_options *opt = import_opts(ctx);
	struct import_unit *u;
	int rc;
	if (!opt->path)
		return import_fail(ctx, -EINVAL, "ml1m-seq: no file given");
	if ((rc = import_add_unit(ctx, opt->path, IMPORT_KIND_EVENTS, 1, &u)) < 0)
		return rc;
	u->parse = seq_parse;
	u->time_order = 1;
	import_set_time_unit(ctx, "order");
	return import_set_default_dataset(ctx, opt->path, 1);
}

/* --- ml1m ------------------------------------------------------------------ */
/* Splits a GroupLens line at "::" into exactly n fields. */
static int dat_split(struct import_ctx *ctx, const char *p, size_t len, struct csv_field *f, size_t n)
{
	size_t k = 0, s = 0;
	for (size_t i = 0; i + 1 < len; i++) {
		if (p[i] != ':' || p[i + 1] != ':')
			continue;
		if (k + 1 == n)
			return import_bad(ctx, "expected %zu fields separated by '::', found more", n);
		f[k].p = p + s;
		f[k].len = i - s;
		k++;
		i++;
		s = i + 1;
	}
	f[k].p = p + s;
	f[k].len = len - s;
	k++;
	if (k != n)
		return import_bad(ctx, "expected %zu fields separated by '::', found %zu", n, k);
	return 0;
}

static int movies_parse(struct import_ctx *ctx, struct import_unit *u, const char *p, size_t n,
                        struct import_rec *out)
{
	struct csv_field f[3];
	int rc;
	if (is_blank(p, n))
		return IMPORT_SKIP;
	/* A title could hold "::"; the ID ends at the first, the genres
	 * start after the last. */
	const char *first = NULL, *last = NULL;
	for (size_t i = 0; i + 1 < n; i++) {
		if (p[i] == ':' && p[i + 1] == ':') {
			if (!first)
				first = p + i;
			last = p + i;
			i++;
		}
	}
	if (!first || first == last)
		return import_bad(ctx, "expected MovieID::Title::Genres");
	f[0].p = p;
	f[0].len = (size_t)(first - p);
	f[1].p = first + 2;
	f[1].len = (size_t)(last - first - 2);
	f[2].p = last + 2;
	f[2].len = (size_t)(p + n - last - 2);
	if ((rc = import_id(ctx, "MovieID", f[0].p, f[0].len, &out->item.item)) < 0 ||
	    (rc = import_text(ctx, "Title", f[1].p, f[1].len, 1, &out->item.title)) < 0 ||
	    (rc = import_text(ctx, "Genres", f[2].p, f[2].len, 1, &out->item.categories)) < 0)
		return rc;
	/* "Title (1995)": the year also becomes an attribute. */
	const char *t = f[1].p;
	size_t tn = f[1].len;
	if (tn >= 6 && t[tn - 1] == ')' && t[tn - 6] == '(') {
		int year = 1;
		for (size_t i = tn - 5; i < tn - 1; i++)
			year &= t[i] >= '0' && t[i] <= '9';
		if (year) {
			struct import_attrs a;
			if ((rc = import_attrs_init(ctx, &a, 16)) < 0 ||
			    (rc = import_attrs_add(ctx, &a, "year", 4, t + tn - 5, 4)) < 0)
				return rc;
			import_attrs_done(&a, &out->item.attrs);
		}
	}
	return 0;
}

static int users_parse(struct import_ctx *ctx, struct import_unit *u, const char *p, size_t n,
                       struct import_rec *out)
{
	static const char *const names[4] = { "gender", "age", "occupation", "zip" };
	struct csv_field f[5];
	struct import_attrs a;
	int rc;
	if (is_blank(p, n))
		return IMPORT_SKIP;
	if ((rc = dat_split(ctx, p, n, f, 5)) < 0 ||
	    (rc = import_id(ctx, "UserID", f[0].p, f[0].len, &out->user.user)) < 0 ||
	    (rc = import_attrs_init(ctx, &a, n + 32)) < 0)
		return rc;
	for (int i = 0; i < 4; i++)
		if ((rc = import_attrs_add(ctx, &a, names[i], strlen(names[i]), f[i + 1].p, f[i + 1].len)) < 0)
			return rc;
	import_attrs_done(&a, &out->user.attrs);
	return 0;
}

static int ratings_parse(struct import_ctx *ctx, struct import_unit *u, const char *p, size_t n,
                         struct import_rec *out)
{
	struct csv_field f[4];
	int rc;
	if (is_blank(p, n))
		return IMPORT_SKIP;
	if ((rc = dat_split(ctx, p, n, f, 4)) < 0 ||
	    (rc = import_id(ctx, "UserID", f[0].p, f[0].len, &out->ev.user)) < 0 ||
	    (rc = import_id(ctx, "MovieID", f[1].p, f[1].len, &out->ev.item)) < 0 ||
	    (rc = import_float(ctx, "Rating", f[2].p, f[2].len, &out->ev.ev.value)) < 0 ||
	    (rc = import_int64(ctx, "Timestamp", f[3].p, f[3].len, &out->ev.ev.ts)) < 0)
		return rc;
	out->ev.ev.action = STORE_ACTION_RATE;
	out->ev.ev.flags = STORE_EV_VALUE;
	return 0;
}

/* Splits a tab-separated line into exactly n fields. */
static int tab_split(struct import_ctx *ctx, const char *p, size_t len, struct csv_field *f, size_t n)
{
	size_t k = 0, s = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && p[i] != '\t')
			continue;
		if (k == n)
			return import_bad(ctx, "expected %zu tab-separated fields, found more", n);
		f[k].p = p + s;
		f[k].len = i - s;
		k++;
		s = i + 1;
	}
	if (k != n)
		return import_bad(ctx, "expected %zu tab-separated fields, found %zu", n, k);
	return 0;
}

static int kg_parse(struct import_ctx *ctx, struct import_unit *u, const char *p, size_t n,
                    struct import_rec *out)
{
	struct csv_field f[3];
	int rc;
	if (is_blank(p, n))
		return IMPORT_SKIP;
	if ((rc = tab_split(ctx, p, n, f, 3)) < 0 ||
	    (rc = import_id(ctx, "head", f[0].p, f[0].len, &out->triple.head)) < 0 ||
	    (rc = import_id(ctx, "relation", f[1].p, f[1].len, &out->triple.rel)) < 0 ||
	    (rc = import_id(ctx, "tail", f[2].p, f[2].len, &out->triple.tail)) < 0)
		return rc;
	return 0;
}

static int links_parse(struct import_ctx *ctx, struct import_unit *u, const char *p, size_t n,
                       struct import_rec *out)
{
	struct csv_field f[2];
	int rc;
	if (is_blank(p, n))
		return IMPORT_SKIP;
	if ((rc = tab_split(ctx, p, n, f, 2)) < 0 ||
	    (rc = import_id(ctx, "MovieID", f[0].p, f[0].len, &out->link.item)) < 0 ||
	    (rc = import_id(ctx, "entity", f[1].p, f[1].len, &out->link.entity)) < 0)
		return rc;
	return 0;
}

static int ml1m_add(struct import_ctx *ctx, const char *dir, const char *name,
                    enum import_kind kind, import_parse_fn parse)
{
	char path[4096];
	struct import_unit *u;
	int rc;
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		return import_fail(ctx, -ENAMETOOLONG, "%s: path too long", dir);
	if ((rc = import_add_unit(ctx, path, kind, 0, &u)) < 0)
		return rc;
	u->parse = parse;
	return 0;
}

int import_fmt_ml1m(struct import_ctx *ctx)
{
	const struct import_options *opt = import_opts(ctx);
	char path[4096];
	int rc;
	if (!opt->path)
		return import_fail(ctx, -EINVAL, "ml1m: no directory given");
	if ((rc = import_need_dir(ctx, opt->path)) < 0)
		return rc;
	/* The full ratings.dat wins over the partial file when both are there. */
	const char *ratings = "ratings.dat";
	snprintf(path, sizeof(path), "%s/ratings.dat", opt->path);
	if (access(path, F_OK) != 0)
		ratings = "ratings_users1-2999.dat";
	if ((rc = ml1m_add(ctx, opt->path, "movies.dat", IMPORT_KIND_ITEMS, movies_parse)) < 0 ||
	    (rc = ml1m_add(ctx, opt->path, "users.dat", IMPORT_KIND_USERS, users_parse)) < 0 ||
	    (rc = ml1m_add(ctx, opt->path, "kg/item_index2entity_id.txt", IMPORT_KIND_LINKS, links_parse)) < 0 ||
	    (rc = ml1m_add(ctx, opt->path, "kg/kg.txt", IMPORT_KIND_TRIPLES, kg_parse)) < 0 ||
	    (rc = ml1m_add(ctx, opt->path, ratings, IMPORT_KIND_EVENTS, ratings_parse)) < 0)
		return rc;
	import_set_time_unit(ctx, "second");
	return import_set_default_dataset(ctx, opt->path, 0);
}
