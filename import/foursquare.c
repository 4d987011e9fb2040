/* foursquare.c: Foursquare check-ins as processed by STAN: DIR/CITY_pois.tsv
 * (poi, lat, lon) and DIR/CITY_checkins.tsv (user, poi, time_min), both
 * tab-separated with a header.  time_min counts minutes from an unknown
 * origin and rows are not in time order: the store sorts each user's events.
 * The POIs are read first, so each check-in carries its POI's location.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "import/import_int.h"

enum { C_USER, C_POI, C_TIME };   /* checkins */
enum { C_PID, C_LAT, C_LON };     /* pois */

static const struct import_colspec checkin_cols[] = {
	{ "user|user_id", 1 }, { "poi|poi_id|item|venue", 1 }, { "time_min", 1 },
};
static const struct import_colspec poi_cols[] = {
	{ "poi|poi_id|item|venue", 1 }, { "lat|latitude", 1 }, { "lon|lng|longitude", 1 },
};

static int is_blank(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t')
			return 0;
	return 1;
}

/* Two floats in the POI table's 64-bit value. */
static uint64_t pack(float lat, float lon)
{
	uint32_t a, b;
	memcpy(&a, &lat, 4);
	memcpy(&b, &lon, 4);
	return (uint64_t)a << 32 | b;
}

static void unpack(uint64_t v, float *lat, float *lon)
{
	uint32_t a = (uint32_t)(v >> 32), b = (uint32_t)v;
	memcpy(lat, &a, 4);
	memcpy(lon, &b, 4);
}

static int poi_header(struct import_ctx *ctx, struct import_unit *u, const char *rec, size_t len)
{
	return import_header_columns(ctx, u, rec, len, poi_cols, sizeof(poi_cols) / sizeof(poi_cols[0]), 1);
}

static int poi_parse(struct import_ctx *ctx, struct import_unit *u, const char *p, size_t n,
                     struct import_rec *out)
{
	struct csv_field f[CSV_MAX_FIELDS];
	struct import_attrs a;
	float lat, lon;
	int rc;
	if (is_blank(p, n))
		return IMPORT_SKIP;
	if ((rc = import_split_fields(ctx, u, p, n, f)) < 0)
		return rc;
	const struct csv_field *id = &f[u->col[C_PID]], *la = &f[u->col[C_LAT]], *lo = &f[u->col[C_LON]];
	if ((rc = import_id(ctx, "poi", id->p, id->len, &out->item.item)) < 0 ||
	    (rc = import_lat_lon(ctx, la->p, la->len, lo->p, lo->len, &lat, &lon)) < 0)
		return rc;
	/* The file's own digits go into the attributes: no precision lost. */
	if ((rc = import_attrs_init(ctx, &a, la->len + lo->len + 16)) < 0 ||
	    (rc = import_attrs_add(ctx, &a, "lat", 3, la->p, la->len)) < 0 ||
	    (rc = import_attrs_add(ctx, &a, "lon", 3, lo->p, lo->len)) < 0)
		return rc;
	for (int c = 0; c < u->ncols; c++)
		if (u->attr_cols >> c & 1 &&
		    (rc = import_attrs_add(ctx, &a, u->hdr[c].p, u->hdr[c].len, f[c].p, f[c].len)) < 0)
			return rc;
	import_attrs_done(&a, &out->item.attrs);
	uint64_t *slot;
	int added;
	if ((rc = import_map_upsert(import_poi_map(ctx), id->p, id->len, &slot, &added)) < 0)
		return rc;
	*slot = pack(lat, lon);
	return 0;
}

static int checkin_header(struct import_ctx *ctx, struct import_unit *u, const char *rec, size_t len)
{
	return import_header_columns(ctx, u, rec, len, checkin_cols,
	                             sizeof(checkin_cols) / sizeof(checkin_cols[0]), 0);
}

static int checkin_parse(struct import_ctx *ctx, struct import_unit *u, const char *p, size_t n,
                         struct import_rec *out)
{
	struct csv_field f[CSV_MAX_FIELDS];
	uint64_t loc;
	int rc;
	if (is_blank(p, n))
		return IMPORT_SKIP;
	if ((rc = import_split_fields(ctx, u, p, n, f)) < 0)
		return rc;
	const struct csv_field *uf = &f[u->col[C_USER]], *pf = &f[u->col[C_POI]], *tf = &f[u->col[C_TIME]];
	if ((rc = import_id(ctx, "user", uf->p, uf->len, &out->ev.user)) < 0 ||
	    (rc = import_id(ctx, "poi", pf->p, pf->len, &out->ev.item)) < 0 ||
	    (rc = import_int64(ctx, "time_min", tf->p, tf->len, &out->ev.ev.ts)) < 0)
		return rc;
	out->ev.ev.action = STORE_ACTION_CHECKIN;
	if (import_map_get(import_poi_map(ctx), pf->p, pf->len, &loc) == 0) {
		unpack(loc, &out->ev.ev.lat, &out->ev.ev.lon);
		out->ev.ev.flags |= STORE_EV_LOC;
	}
	return 0;
}

/* DIR/NAME_SUFFIX: the one file in dir that ends with suffix. */
static int find_one(struct import_ctx *ctx, const char *dir, const char *suffix, char *path, size_t cap)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int found = 0;
	if (!d)
		return import_fail(ctx, -errno, "%s: %s", dir, strerror(errno));
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name), sl = strlen(suffix);
		if (len < sl || strcmp(de->d_name + len - sl, suffix) != 0)
			continue;
		if (found++) {
			closedir(d);
			return import_fail(ctx, -EINVAL, "%s: more than one *%s file", dir, suffix);
		}
		if ((size_t)snprintf(path, cap, "%s/%s", dir, de->d_name) >= cap) {
			closedir(d);
			return import_fail(ctx, -ENAMETOOLONG, "%s: path too long", dir);
		}
	}
	closedir(d);
	if (!found)
		snprintf(path, cap, "%s/nyc%s", dir, suffix);  /* reported as absent */
	return 0;
}

int import_fmt_foursquare(struct import_ctx *ctx)
{
	const struct import_options *opt = import_opts(ctx);
	char pois[4096], checkins[4096];
	struct import_unit *u;
	int rc;
	if (!opt->path)
		return import_fail(ctx, -EINVAL, "foursquare: no directory given");
	if ((rc = import_need_dir(ctx, opt->path)) < 0 ||
	    (rc = find_one(ctx, opt->path, "_pois.tsv", pois, sizeof(pois))) < 0 ||
	    (rc = find_one(ctx, opt->path, "_checkins.tsv", checkins, sizeof(checkins))) < 0)
		return rc;
	if ((rc = import_add_unit(ctx, pois, IMPORT_KIND_ITEMS, 0, &u)) < 0)
		return rc;
	u->has_header = 1;
	u->header = poi_header;
	u->parse = poi_parse;
	if ((rc = import_add_unit(ctx, checkins, IMPORT_KIND_EVENTS, 1, &u)) < 0)
		return rc;
	u->has_header = 1;
	u->header = checkin_header;
	u->parse = checkin_parse;
	import_set_time_unit(ctx, "minute");
	return import_set_default_dataset(ctx, opt->path, 0);
}
