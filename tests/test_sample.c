/* test_sample.c: the synthetic dataset generator — determinism, exact
 * headers, referential integrity, RFC 4180 quoting, and the structure the
 * models rely on: rhythms, places, devices, popularity skew, interests,
 * funnels, series order and the knowledge graph. */
#include "config.h"

#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sample/sample.h"
#include "tests/test.h"

/* --- reading files back -------------------------------------------------- */
struct table {
	size_t nrows, ncols;   /* rows after the header */
	char **cell;           /* (nrows + 1) * ncols; row 0 is the header */
	char *arena;
};

static char *slurp(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) < 0) {
		perror(path);
		exit(1);
	}
	char *buf = malloc((size_t)sb.st_size + 1);
	CHECK(buf);
	size_t off = 0;
	while (off < (size_t)sb.st_size) {
		ssize_t n = read(fd, buf + off, (size_t)sb.st_size - off);
		CHECK(n > 0);
		off += (size_t)n;
	}
	close(fd);
	buf[off] = '\0';
	*len = off;
	return buf;
}

/* An independent reader: RFC 4180 for CSV (quoted fields, "" for a quote),
 * plain splitting for TSV.  Every row must have the header's field count and
 * end with a line end. */
static void table_read(struct table *t, const char *path, char sep)
{
	size_t len;
	char *src = slurp(path, &len);
	size_t cap = 1024, n = 0;
	char *out = malloc(len + 1);
	char **cells = malloc(cap * sizeof(*cells));
	size_t i = 0, o = 0, fields_in_row = 0;
	CHECK(out && cells);
	CHECK(len > 0 && src[len - 1] == '\n');
	t->ncols = 0;
	while (i < len) {
		if (n == cap) {
			cap *= 2;
			cells = realloc(cells, cap * sizeof(*cells));
			CHECK(cells);
		}
		cells[n++] = out + o;
		if (sep == ',' && src[i] == '"') {
			i++;
			for (;;) {
				CHECK(i < len);  /* unterminated quote */
				if (src[i] == '"') {
					if (i + 1 < len && src[i + 1] == '"') {
						out[o++] = '"';
						i += 2;
						continue;
					}
					i++;
					break;
				}
				out[o++] = src[i++];
			}
			CHECK(src[i] == sep || src[i] == '\n');  /* nothing after the closing quote */
		} else {
			while (src[i] != sep && src[i] != '\n') {
				CHECK(src[i] != '"' || sep != ',');  /* a bare quote must have been quoted */
				CHECK(src[i] != '\r');
				out[o++] = src[i++];
			}
		}
		out[o++] = '\0';
		fields_in_row++;
		if (src[i++] == '\n') {
			if (!t->ncols)
				t->ncols = fields_in_row;
			if (fields_in_row != t->ncols) {
				fprintf(stderr, "%s: row %zu has %zu fields, header %zu\n", path,
				        n / t->ncols, fields_in_row, t->ncols);
				exit(1);
			}
			fields_in_row = 0;
		}
	}
	free(src);
	t->cell = cells;
	t->arena = out;
	t->nrows = n / t->ncols - 1;
}

static const char *cell(const struct table *t, size_t row, size_t col)
{
	return t->cell[(row + 1) * t->ncols + col];
}

static void table_free(struct table *t)
{
	free(t->cell);
	free(t->arena);
}

static void check_header(const struct table *t, const char *expect)
{
	char got[512] = "";
	for (size_t c = 0; c < t->ncols; c++) {
		if (c)
			strcat(got, ",");
		strcat(got, t->cell[c]);
	}
	if (strcmp(got, expect) != 0) {
		fprintf(stderr, "header '%s', expected '%s'\n", got, expect);
		exit(1);
	}
}

/* "U00042" -> 41; -1 when malformed. */
static long parse_id(const char *s, char prefix)
{
	if (s[0] != prefix || strlen(s) < 6)
		return -1;
	long v = 0;
	for (const char *p = s + 1; *p; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (*p - '0');
	}
	return v - 1;
}

/* "-0.140000" -> -140000 */
static long parse_e6(const char *s)
{
	int neg = *s == '-';
	long ip = 0, fp = 0;
	const char *p = s + neg;
	while (*p >= '0' && *p <= '9')
		ip = ip * 10 + (*p++ - '0');
	CHECK(*p == '.');
	p++;
	int digits = 0;
	while (*p >= '0' && *p <= '9') {
		fp = fp * 10 + (*p++ - '0');
		digits++;
	}
	CHECK(digits == 6 && *p == '\0');
	long v = ip * 1000000 + fp;
	return neg ? -v : v;
}

/* Squared distance in metres^2, flat-earth (fine across one city). */
static double dist2_m(long lat1, long lon1, long lat2, long lon2)
{
	double dy = (lat1 - lat2) * 0.1113;       /* metres per microdegree of latitude */
	double dx = (lon1 - lon2) * 0.1113 * 0.631; /* times cos(50.82 deg) */
	return dx * dx + dy * dy;
}

static int files_equal(const char *a, const char *b)
{
	size_t la, lb;
	char *x = slurp(a, &la), *y = slurp(b, &lb);
	int eq = la == lb && memcmp(x, y, la) == 0;
	free(x);
	free(y);
	return eq;
}

/* FNV-1a over a file, to pin the exact output of one configuration. */
static uint64_t file_hash(const char *path)
{
	size_t len;
	char *s = slurp(path, &len);
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	free(s);
	return h;
}

static char root[4096];

static void path_of(char *buf, size_t cap, const char *sub, const char *file)
{
	snprintf(buf, cap, "%s/%s/%s", root, sub, file);
}

static void gen(const struct sample_opts *o, const char *sub, struct sample_stats *st)
{
	char dir[4200], why[256];
	snprintf(dir, sizeof dir, "%s/%s", root, sub);
	int r = sample_generate(o, dir, st, why, sizeof why);
	if (r < 0) {
		fprintf(stderr, "sample_generate: %s\n", why);
		exit(1);
	}
}

static const char *const event_files[] = { "events.csv", "items.csv", "users.csv",
                                            "triples.tsv", "links.csv", "README" };

/* --- options ----------------------------------------------------------- */
static void test_opts(void)
{
	struct sample_opts o;
	const char *bad = NULL;
	sample_opts_default(&o);
	CHECK_OK(sample_opts_check(&o, &bad));
	o.users = 0;
	CHECK_EQ(sample_opts_check(&o, &bad), -EINVAL);
	CHECK(strcmp(bad, "--users") == 0);
	sample_opts_default(&o);
	o.items = SAMPLE_ITEMS_MAX + 1;
	CHECK_EQ(sample_opts_check(&o, &bad), -EINVAL);
	CHECK(strcmp(bad, "--items") == 0);
	sample_opts_default(&o);
	o.days = 0;
	CHECK_EQ(sample_opts_check(&o, &bad), -EINVAL);
	CHECK(strcmp(bad, "--days") == 0);
	sample_opts_default(&o);
	o.events_per_user = SAMPLE_EVENTS_PER_USER_MAX + 1;
	CHECK_EQ(sample_opts_check(&o, &bad), -EINVAL);
	CHECK(strcmp(bad, "--events-per-user") == 0);

	/* A missing parent directory fails cleanly and says where. */
	struct sample_stats st;
	char dir[4200], why[256] = "";
	sample_opts_default(&o);
	snprintf(dir, sizeof dir, "%s/no/such/dir", root);
	CHECK_EQ(sample_generate(&o, dir, &st, why, sizeof why), -ENOENT);
	CHECK(strstr(why, "no/such/dir") != NULL);
}

/* --- determinism ------------------------------------------------------- */
static void test_determinism(const struct sample_opts *base)
{
	struct sample_opts o = *base;
	struct sample_stats s1, s2, s3;
	char a[4300], b[4300];
	gen(&o, "a", &s1);
	gen(&o, "b", &s2);
	CHECK_EQ(s1.events, s2.events);
	for (size_t k = 0; k < sizeof event_files / sizeof event_files[0]; k++) {
		path_of(a, sizeof a, "a", event_files[k]);
		path_of(b, sizeof b, "b", event_files[k]);
		if (!files_equal(a, b)) {
			fprintf(stderr, "%s differs between two runs with the same seed\n", event_files[k]);
			exit(1);
		}
	}
	/* Regenerating over an existing directory replaces its files. */
	gen(&o, "b", &s2);
	path_of(a, sizeof a, "a", "events.csv");
	path_of(b, sizeof b, "b", "events.csv");
	CHECK(files_equal(a, b));

	o.seed = base->seed + 1;
	gen(&o, "c", &s3);
	path_of(b, sizeof b, "c", "events.csv");
	CHECK(!files_equal(a, b));
	path_of(a, sizeof a, "a", "items.csv");
	path_of(b, sizeof b, "c", "items.csv");
	CHECK(!files_equal(a, b));

	/* No temporary files are left behind. */
	char tmp[4300];
	path_of(tmp, sizeof tmp, "a", ".events.csv.tmp");
	CHECK(access(tmp, F_OK) < 0);
}

/* The exact bytes of one small configuration.  A change here means every
 * dataset generated before looks different now: bump SAMPLE_GENERATOR_VERSION
 * and update the hashes.  It also catches a platform whose arithmetic would
 * give other bytes. */
#define GOLDEN_EVENTS  0x757d6e78a7661c79ULL
#define GOLDEN_ITEMS   0x7b0cf07db18ca555ULL
#define GOLDEN_USERS   0x00e1faae963d575eULL
#define GOLDEN_TRIPLES 0x0958465c9847c64aULL

static void test_golden(void)
{
	struct sample_opts o;
	struct sample_stats st;
	char p[4300];
	sample_opts_default(&o);
	o.seed = 7;
	o.users = 40;
	o.items = 60;
	o.days = 30;
	o.events_per_user = 20;
	gen(&o, "golden", &st);
	static const struct { const char *file; uint64_t hash; } golden[] = {
		{ "events.csv",  GOLDEN_EVENTS },
		{ "items.csv",   GOLDEN_ITEMS },
		{ "users.csv",   GOLDEN_USERS },
		{ "triples.tsv", GOLDEN_TRIPLES },
	};
	for (size_t k = 0; k < sizeof golden / sizeof golden[0]; k++) {
		path_of(p, sizeof p, "golden", golden[k].file);
		uint64_t h = file_hash(p);
		if (h != golden[k].hash) {
			fprintf(stderr, "%s: hash 0x%016llx, expected 0x%016llx (see test_golden)\n",
			        golden[k].file, (unsigned long long)h, (unsigned long long)golden[k].hash);
			exit(1);
		}
	}
}

/* --- content ----------------------------------------------------------- */
struct item_info {
	int genre;        /* index for sample_genre_name */
	int prev;         /* previous episode of its series, -1 if none */
	int seen;
};

static int genre_index(const char *name, size_t len)
{
	for (unsigned g = 0; sample_genre_name(g); g++)
		if (strlen(sample_genre_name(g)) == len && memcmp(sample_genre_name(g), name, len) == 0)
			return (int)g;
	return -1;
}

static void test_content(const struct sample_opts *o, const struct sample_stats *st)
{
	struct table ev, it, us, kg, ln;
	char p[4300];
	path_of(p, sizeof p, "a", "events.csv");  table_read(&ev, p, ',');
	path_of(p, sizeof p, "a", "items.csv");   table_read(&it, p, ',');
	path_of(p, sizeof p, "a", "users.csv");   table_read(&us, p, ',');
	path_of(p, sizeof p, "a", "triples.tsv"); table_read(&kg, p, '\t');
	path_of(p, sizeof p, "a", "links.csv");   table_read(&ln, p, ',');

	check_header(&ev, "user,item,time,action,value,lat,lon,device");
	check_header(&it, "item,title,text,categories,creator,place,price");
	check_header(&us, "user,age,gender,occupation,home_city");
	check_header(&kg, "head,relation,tail,head_type,tail_type");
	check_header(&ln, "item,entity");

	CHECK_EQ(us.nrows, o->users);
	CHECK_EQ(it.nrows, o->items);
	CHECK_EQ(ev.nrows, st->events);
	CHECK_EQ(kg.nrows, st->triples);
	CHECK_EQ(ln.nrows, o->items);
	CHECK_EQ(st->users, o->users);
	CHECK_EQ(st->items, o->items);

	/* Users and items: IDs in order, each once. */
	for (size_t r = 0; r < us.nrows; r++) {
		CHECK_EQ(parse_id(cell(&us, r, 0), 'U'), (long)r);
		int age = atoi(cell(&us, r, 1));
		CHECK(age >= 16 && age <= 90);
		CHECK(strlen(cell(&us, r, 4)) > 0);
	}
	struct item_info *info = calloc(it.nrows, sizeof(*info));
	CHECK(info);
	size_t comma_titles = 0, quoted_texts = 0;
	for (size_t r = 0; r < it.nrows; r++) {
		CHECK_EQ(parse_id(cell(&it, r, 0), 'I'), (long)r);
		const char *title = cell(&it, r, 1), *text = cell(&it, r, 2), *cats = cell(&it, r, 3);
		CHECK(strlen(title) > 0 && strlen(text) > 10);
		comma_titles += strchr(title, ',') != NULL;
		quoted_texts += strchr(text, '"') != NULL;
		const char *bar = strchr(cats, '|');
		CHECK(bar);  /* leaf|parent[|another leaf] */
		info[r].genre = genre_index(cats, (size_t)(bar - cats));
		CHECK(info[r].genre >= 0);
		info[r].prev = -1;
		const char *price = cell(&it, r, 6);
		CHECK(strchr(price, '.') && strlen(strchr(price, '.')) == 3);
	}
	/* Quoting is exercised and parses back: every row above had 7 fields. */
	CHECK(comma_titles > 0);
	CHECK(quoted_texts > 0);

	/* Knowledge graph: typed names, the relations promised, links to items. */
	size_t has_genre = 0, created_by = 0, located_in = 0, born_in = 0, subgenre = 0, followed = 0;
	unsigned char *item_has_genre = calloc(it.nrows, 1);
	CHECK(item_has_genre);
	for (size_t r = 0; r < kg.nrows; r++) {
		const char *h = cell(&kg, r, 0), *rel = cell(&kg, r, 1), *t = cell(&kg, r, 2);
		const char *ht = cell(&kg, r, 3), *tt = cell(&kg, r, 4);
		CHECK(strncmp(h, ht, strlen(ht)) == 0 && h[strlen(ht)] == ':' && h[strlen(ht) + 1]);
		CHECK(strncmp(t, tt, strlen(tt)) == 0 && t[strlen(tt)] == ':' && t[strlen(tt) + 1]);
		for (const char *q = h; *q; q++)
			CHECK(*q != ' ' && *q != ',');
		if (strcmp(rel, "has_genre") == 0) {
			long i = parse_id(h + 5, 'I');
			CHECK(i >= 0 && i < (long)it.nrows && strcmp(tt, "genre") == 0);
			CHECK(genre_index(t + 6, strlen(t + 6)) >= 0);
			if (genre_index(t + 6, strlen(t + 6)) == info[i].genre)
				item_has_genre[i] = 1;
			has_genre++;
		} else if (strcmp(rel, "created_by") == 0) {
			long i = parse_id(h + 5, 'I');
			CHECK(i >= 0 && strcmp(tt, "creator") == 0);
			/* the items file names the same creator */
			char slug[128];
			size_t n = 0;
			for (const char *q = cell(&it, (size_t)i, 4); *q && n + 1 < sizeof slug; q++)
				slug[n++] = *q == ' ' ? '-' : (char)(*q >= 'A' && *q <= 'Z' ? *q - 'A' + 'a' : *q);
			slug[n] = '\0';
			CHECK(strcmp(t + 8, slug) == 0);
			created_by++;
		} else if (strcmp(rel, "located_in") == 0) {
			located_in++;
		} else if (strcmp(rel, "born_in") == 0) {
			CHECK(strcmp(ht, "creator") == 0 && strcmp(tt, "place") == 0);
			born_in++;
		} else if (strcmp(rel, "subgenre_of") == 0) {
			subgenre++;
		} else if (strcmp(rel, "followed_by") == 0) {
			long a = parse_id(h + 5, 'I'), b = parse_id(t + 5, 'I');
			CHECK(a >= 0 && b == a + 1 && b < (long)it.nrows);
			info[b].prev = (int)a;
			followed++;
		} else {
			CHECK(strcmp(rel, "part_of") == 0);
		}
	}
	CHECK(has_genre >= it.nrows && created_by == it.nrows && located_in == it.nrows);
	CHECK(born_in > 0 && subgenre > 0 && followed > 0);
	for (size_t r = 0; r < it.nrows; r++)
		CHECK(item_has_genre[r]);
	for (size_t r = 0; r < ln.nrows; r++) {
		CHECK_EQ(parse_id(cell(&ln, r, 0), 'I'), (long)r);
		CHECK(strncmp(cell(&ln, r, 1), "item:", 5) == 0);
		CHECK(strcmp(cell(&ln, r, 1) + 5, cell(&ln, r, 0)) == 0);
	}

	/* Events. */
	uint64_t hour_all[24] = { 0 }, hour_wd[24] = { 0 }, hour_we[24] = { 0 };
	uint64_t n_wd = 0, n_we = 0;
	uint64_t *item_count = calloc(it.nrows, sizeof(*item_count));
	uint64_t *user_count = calloc(us.nrows, sizeof(*user_count));
	CHECK(item_count && user_count);
	uint64_t evening = 0, evening_home = 0, workhours = 0, workhours_home = 0;
	uint64_t in_interest = 0, tv = 0, tv_evening = 0, ep_clicks = 0, ep_in_order = 0;
	uint64_t actions[SAMPLE_ACTION_COUNT] = { 0 };
	long prev_user = -1;
	long long prev_time = 0;
	long prev_item = -1;
	int prev_action = -1;
	struct sample_user prof;
	unsigned devices_used = 0;
	unsigned char *clicked = calloc(it.nrows, 1);
	CHECK(clicked);
	const long long t0 = SAMPLE_START_TIME, t1 = t0 + (long long)o->days * 86400;

	for (size_t r = 0; r < ev.nrows; r++) {
		long u = parse_id(cell(&ev, r, 0), 'U'), i = parse_id(cell(&ev, r, 1), 'I');
		CHECK(u >= 0 && u < (long)us.nrows);  /* every event's user exists */
		CHECK(i >= 0 && i < (long)it.nrows);  /* and its item */
		long long t = atoll(cell(&ev, r, 2));
		CHECK(t >= t0 && t < t1);
		if (u != prev_user) {
			CHECK(u > prev_user);  /* users in order, each user's events together */
			if (prev_user >= 0)
				CHECK(__builtin_popcount(devices_used) <= 3);
			sample_user_profile(o, (uint32_t)u, &prof);
			memset(clicked, 0, it.nrows);
			devices_used = 0;
			prev_user = u;
			prev_item = -1;
			prev_action = -1;
		} else {
			CHECK(t > prev_time);  /* strictly increasing per user */
		}
		prev_time = t;
		user_count[u]++;
		item_count[i]++;

		int a = -1;
		for (int k = 0; k < SAMPLE_ACTION_COUNT; k++)
			if (strcmp(cell(&ev, r, 3), sample_action_name(k)) == 0)
				a = k;
		CHECK(a >= 0);
		actions[a]++;
		const char *value = cell(&ev, r, 4);
		if (a == SAMPLE_ACTION_RATE)
			CHECK(strlen(value) == 1 && value[0] >= '1' && value[0] <= '5');
		else
			CHECK(value[0] == '\0');
		/* Funnels: each step follows the one before on the same item. */
		if (a == SAMPLE_ACTION_CLICK)
			CHECK(prev_item == i && prev_action == SAMPLE_ACTION_VIEW);
		if (a == SAMPLE_ACTION_CART)
			CHECK(prev_item == i && prev_action == SAMPLE_ACTION_CLICK);
		if (a == SAMPLE_ACTION_PURCHASE)
			CHECK(prev_item == i && prev_action == SAMPLE_ACTION_CART);
		if (a == SAMPLE_ACTION_RATE)
			CHECK(prev_item == i && (prev_action == SAMPLE_ACTION_PURCHASE ||
			                         prev_action == SAMPLE_ACTION_CLICK));
		prev_item = i;
		prev_action = a;

		int dev = -1;
		for (int k = 0; k < SAMPLE_DEVICE_COUNT; k++)
			if (strcmp(cell(&ev, r, 7), sample_device_name(k)) == 0)
				dev = k;
		CHECK(dev >= 0);
		CHECK(prof.devices & (1u << dev));  /* only devices the user owns */
		devices_used |= 1u << dev;

		long lat = parse_e6(cell(&ev, r, 5)), lon = parse_e6(cell(&ev, r, 6));
		CHECK(dist2_m(lat, lon, SAMPLE_CITY_LAT_E6, SAMPLE_CITY_LON_E6) < 15000.0 * 15000.0);

		int hour = (int)((t % 86400) / 3600), wd = (int)((t / 86400 + 3) % 7);
		hour_all[hour]++;
		if (wd >= 5) {
			hour_we[hour]++;
			n_we++;
		} else {
			hour_wd[hour]++;
			n_wd++;
		}
		int near_home = dist2_m(lat, lon, prof.home_lat, prof.home_lon) < 1000.0 * 1000.0;
		if (hour >= 20) {
			evening++;
			evening_home += near_home;
		}
		if (wd < 5 && (prof.workdays & (1u << wd)) && prof.work_district != SAMPLE_NO_WORK &&
		    hour >= prof.work_start + 1 && hour < prof.work_end - 1 &&
		    dist2_m(prof.home_lat, prof.home_lon, prof.work_lat, prof.work_lon) > 3000.0 * 3000.0) {
			workhours++;
			workhours_home += near_home;
		}
		if (dev == SAMPLE_DEVICE_TV) {
			tv++;
			tv_evening += hour >= 19;
		}
		for (unsigned k = 0; k < prof.n_interests; k++)
			if (prof.interest[k] == info[i].genre) {
				in_interest++;
				break;
			}
		if (a == SAMPLE_ACTION_CLICK) {
			if (info[i].prev >= 0) {
				ep_clicks++;
				ep_in_order += clicked[info[i].prev];
			}
			clicked[i] = 1;
		}
	}
	uint64_t n = ev.nrows;
	CHECK(n > 0);

	printf("events %llu; night %.4f\n"
	       "evenings near home %.3f; working hours near home %.3f; tv in the evening %.3f\n",
	       (unsigned long long)n, (double)(hour_all[2] + hour_all[3] + hour_all[4] + hour_all[5]) / n,
	       (double)evening_home / evening, (double)workhours_home / workhours,
	       (double)tv_evening / tv);
	printf("in starting interests %.3f; episodes clicked in order %.3f of %llu\n",
	       (double)in_interest / n, (double)ep_in_order / ep_clicks, (unsigned long long)ep_clicks);

	/* Daily rhythm: far from uniform over the hours, almost nothing at 2-5 am. */
	uint64_t night = hour_all[2] + hour_all[3] + hour_all[4] + hour_all[5];
	CHECK(night * 100 < n * 2);
	double tvd = 0;
	for (int h = 0; h < 24; h++) {
		double d = (double)hour_all[h] / n - 1.0 / 24;
		tvd += d < 0 ? -d : d;
	}
	CHECK(tvd / 2 > 0.25);
	/* Weekly rhythm: weekends have another daily shape. */
	CHECK(n_wd > 0 && n_we > 0);
	double wtvd = 0;
	for (int h = 0; h < 24; h++) {
		double d = (double)hour_wd[h] / n_wd - (double)hour_we[h] / n_we;
		wtvd += d < 0 ? -d : d;
	}
	printf("hour TVD from uniform %.3f; weekday/weekend TVD %.3f\n", tvd / 2, wtvd / 2);
	CHECK(wtvd / 2 > 0.1);

	/* Places: evenings at home, working hours mostly elsewhere. */
	CHECK(evening > 100 && workhours > 100);
	CHECK(evening_home * 100 > evening * 70);
	CHECK(workhours_home * 100 < workhours * 40);
	/* Devices: the tv is an evening thing. */
	CHECK(tv > 0 && tv_evening * 100 > tv * 90);

	/* Popularity: the top 10% of items take more than 40% of the events. */
	uint64_t *sorted = malloc(it.nrows * sizeof(*sorted));
	CHECK(sorted);
	memcpy(sorted, item_count, it.nrows * sizeof(*sorted));
	for (size_t k = 1; k < it.nrows; k++) {  /* insertion sort, descending */
		uint64_t v = sorted[k];
		size_t j = k;
		while (j > 0 && sorted[j - 1] < v) {
			sorted[j] = sorted[j - 1];
			j--;
		}
		sorted[j] = v;
	}
	uint64_t top = 0;
	for (size_t k = 0; k < it.nrows / 10; k++)
		top += sorted[k];
	printf("top 10%% of items: %.3f of events\n", (double)top / n);
	CHECK(top * 100 > n * 40);

	/* Events per user: average near the option, long-tailed. */
	uint64_t maxc = 0, low = 0;
	for (size_t u = 0; u < us.nrows; u++) {
		CHECK(user_count[u] >= 1);
		maxc = user_count[u] > maxc ? user_count[u] : maxc;
		low += user_count[u] * 2 < o->events_per_user;
	}
	CHECK(n * 100 > (uint64_t)o->users * o->events_per_user * 80);
	CHECK(n * 100 < (uint64_t)o->users * o->events_per_user * 120);
	CHECK(maxc > 5 * o->events_per_user);
	CHECK(low * 10 > us.nrows);  /* a tenth of users have less than half the mean */

	/* Interests: most events are in the user's starting genres, though
	 * drift and exploration take some elsewhere. */
	CHECK(in_interest * 100 > n * 50);
	CHECK(in_interest * 100 < n * 98);
	/* Series: episodes are clicked after the one before them. */
	CHECK(ep_clicks > 20);
	CHECK(ep_in_order * 100 > ep_clicks * 80);
	/* Every action occurs. */
	for (int k = 0; k < SAMPLE_ACTION_COUNT; k++)
		CHECK(actions[k] > 0 && actions[k] == st->actions[k]);
	CHECK(actions[SAMPLE_ACTION_VIEW] > actions[SAMPLE_ACTION_CLICK]);
	CHECK(actions[SAMPLE_ACTION_CLICK] > actions[SAMPLE_ACTION_PURCHASE]);

	free(sorted);
	free(clicked);
	free(item_count);
	free(user_count);
	free(item_has_genre);
	free(info);
	table_free(&ev);
	table_free(&it);
	table_free(&us);
	table_free(&kg);
	table_free(&ln);
}

/* TSV gives the same data with tabs: the events byte for byte, the items
 * field for field. */
static void test_tsv(const struct sample_opts *base)
{
	struct sample_opts o = *base;
	struct sample_stats st;
	char a[4300], b[4300];
	o.format = SAMPLE_FORMAT_TSV;
	gen(&o, "tsv", &st);
	size_t la, lb;
	path_of(a, sizeof a, "a", "events.csv");
	path_of(b, sizeof b, "tsv", "events.tsv");
	char *x = slurp(a, &la), *y = slurp(b, &lb);
	CHECK_EQ(la, lb);
	for (size_t k = 0; k < la; k++)
		CHECK(x[k] == y[k] || (x[k] == ',' && y[k] == '\t'));
	free(x);
	free(y);

	struct table ic, it;
	path_of(a, sizeof a, "a", "items.csv");
	path_of(b, sizeof b, "tsv", "items.tsv");
	table_read(&ic, a, ',');
	table_read(&it, b, '\t');
	CHECK_EQ(ic.nrows, it.nrows);
	CHECK_EQ(ic.ncols, it.ncols);
	for (size_t k = 0; k < (ic.nrows + 1) * ic.ncols; k++)
		CHECK(strcmp(ic.cell[k], it.cell[k]) == 0);
	table_free(&ic);
	table_free(&it);
	path_of(b, sizeof b, "tsv", "users.tsv");
	CHECK(access(b, F_OK) == 0);
	path_of(b, sizeof b, "tsv", "links.tsv");
	CHECK(access(b, F_OK) == 0);
}

/* The ground truth is a function of the seed and the user alone. */
static void test_profile(const struct sample_opts *o)
{
	struct sample_user u1, u2;
	sample_user_profile(o, 5, &u1);
	sample_user_profile(o, 5, &u2);
	CHECK(memcmp(&u1, &u2, sizeof u1) == 0);
	unsigned ninterest[SAMPLE_INTERESTS_MAX + 1] = { 0 }, nodev = 0;
	for (uint32_t k = 0; k < o->users; k++) {
		sample_user_profile(o, k, &u1);
		CHECK(u1.n_interests >= 2 && u1.n_interests <= SAMPLE_INTERESTS_MAX);
		ninterest[u1.n_interests]++;
		CHECK(__builtin_popcount(u1.devices) >= 1 && __builtin_popcount(u1.devices) <= 3);
		nodev += !(u1.devices & 7);
		CHECK(u1.first_day < u1.last_day && u1.last_day <= o->days);
		CHECK(sample_district_name(u1.home_district) != NULL);
		CHECK(sample_occupation_name(u1.occupation) != NULL);
	}
	CHECK(ninterest[2] && ninterest[3] && ninterest[4]);
	CHECK_EQ(nodev, 0);
}

int main(void)
{
	struct sample_opts o;
	struct sample_stats st;
	char dir[4200];

	setvbuf(stdout, NULL, _IOLBF, 0);
	snprintf(root, sizeof root, "%s", test_tmpdir());
	test_opts();

	sample_opts_default(&o);
	/* SAMPLE_TEST_SEED runs the same checks on another seed. */
	const char *seed = getenv("SAMPLE_TEST_SEED");
	o.seed = seed && *seed ? strtoull(seed, NULL, 10) : 42;
	o.users = 800;
	o.items = 600;
	o.days = 60;
	o.events_per_user = 40;
	test_determinism(&o);
	snprintf(dir, sizeof dir, "%s/a", root);
	char why[256];
	CHECK_OK(sample_generate(&o, dir, &st, why, sizeof why));
	test_content(&o, &st);
	test_tsv(&o);
	test_profile(&o);
	test_golden();

	test_rmtree(root);
	printf("test_sample: ok\n");
	return 0;
}
