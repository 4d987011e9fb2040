/* sample.c: the synthetic dataset behind recctl generate and the tests.
 * A catalog pass writes items, links and the knowledge graph; a user pass
 * then draws each user's profile and events and writes them before moving on,
 * so memory grows with the catalog, never with the number of events.
 *
 * Everything that reaches a file is computed with integers from our own PRNG
 * (xoshiro256** seeded through splitmix64): no rand(), no libm, no floating
 * point, so the bytes are the same on every machine and compiler.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sample/sample.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define DAY 86400LL

/* --- PRNG -------------------------------------------------------------- */
/* One independent stream per purpose and index, so that a user's events do
 * not depend on how many users came before it, and the ground truth
 * (sample_user_profile) can be recomputed for any user on its own. */
enum {
	STREAM_CATALOG = 1, STREAM_PROFILE, STREAM_EVENTS, STREAM_CREATOR,
};

struct rng { uint64_t s[4]; };

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void rng_seed(struct rng *r, uint64_t seed, uint64_t stream, uint64_t index)
{
	uint64_t x = seed;
	x = splitmix64(&x) ^ (stream * 0xd1b54a32d192ed03ULL);
	x = splitmix64(&x) ^ index;
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl64(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static inline uint64_t rng_next(struct rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl64(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl64(s[3], 45);
	return result;
}

/* Uniform in [0, n) by Lemire's multiply-shift; n = 0 gives 0. */
static inline uint32_t rng_below(struct rng *r, uint32_t n)
{
	return (uint32_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

static inline int rng_pct(struct rng *r, unsigned pct)
{
	return rng_below(r, 100) < pct;
}

/* Uniform in [lo, hi]. */
static inline int32_t rng_range(struct rng *r, int32_t lo, int32_t hi)
{
	return lo + (int32_t)rng_below(r, (uint32_t)(hi - lo + 1));
}

/* Picks an index with probability proportional to w[i]. */
static unsigned rng_weighted(struct rng *r, const uint32_t *w, unsigned n)
{
	uint32_t total = 0;
	for (unsigned i = 0; i < n; i++)
		total += w[i];
	uint32_t x = rng_below(r, total);
	for (unsigned i = 0; i < n; i++) {
		if (x < w[i])
			return i;
		x -= w[i];
	}
	return n - 1;
}

/* --- tables ------------------------------------------------------------ */
struct parent_def {
	const char *name;
	const char *kind;          /* how the item text starts */
	uint32_t price_lo, price_hi; /* cents */
};

static const struct parent_def parents[] = {
	{ "drama",           "A drama",                   399, 1499 },
	{ "comedy",          "A comedy",                  399, 1299 },
	{ "thriller",        "A thriller",                499, 1499 },
	{ "science-fiction", "A science-fiction film",    499, 1599 },
	{ "fantasy",         "A fantasy novel",           899, 2499 },
	{ "horror",          "A horror film",             399, 1299 },
	{ "documentary",     "A documentary",             299, 999  },
	{ "music",           "An album",                  799, 1599 },
	{ "kids",            "An animated film",          299, 999  },
	{ "food",            "A cookbook",                1299, 3499 },
	{ "travel",          "A travel guide",            999, 2499 },
	{ "sports",          "A sports documentary",      299, 999  },
};
#define N_PARENTS ARRAY_LEN(parents)

struct genre_def {
	const char *name;
	uint8_t parent;
	uint8_t weight;  /* share of the catalog */
};

enum { P_DRAMA, P_COMEDY, P_THRILLER, P_SCIFI, P_FANTASY, P_HORROR, P_DOC,
       P_MUSIC, P_KIDS, P_FOOD, P_TRAVEL, P_SPORTS };

static const struct genre_def genres[] = {
	{ "family-drama", P_DRAMA, 8 },           { "legal-drama", P_DRAMA, 4 },
	{ "period-drama", P_DRAMA, 6 },           { "medical-drama", P_DRAMA, 3 },
	{ "romantic-comedy", P_COMEDY, 7 },       { "satire", P_COMEDY, 3 },
	{ "sitcom", P_COMEDY, 6 },                { "stand-up", P_COMEDY, 2 },
	{ "crime-thriller", P_THRILLER, 9 },      { "spy-thriller", P_THRILLER, 4 },
	{ "psychological-thriller", P_THRILLER, 5 }, { "heist", P_THRILLER, 2 },
	{ "space-opera", P_SCIFI, 5 },            { "cyberpunk", P_SCIFI, 3 },
	{ "time-travel", P_SCIFI, 3 },            { "dystopia", P_SCIFI, 4 },
	{ "high-fantasy", P_FANTASY, 5 },         { "urban-fantasy", P_FANTASY, 3 },
	{ "fairy-tale", P_FANTASY, 2 },
	{ "ghost-story", P_HORROR, 3 },           { "folk-horror", P_HORROR, 2 },
	{ "slasher", P_HORROR, 2 },
	{ "nature-documentary", P_DOC, 5 },       { "history-documentary", P_DOC, 4 },
	{ "true-crime", P_DOC, 5 },               { "science-documentary", P_DOC, 3 },
	{ "jazz", P_MUSIC, 3 },                   { "folk", P_MUSIC, 3 },
	{ "electronic", P_MUSIC, 4 },             { "classical", P_MUSIC, 3 },
	{ "hip-hop", P_MUSIC, 4 },                { "rock", P_MUSIC, 5 },
	{ "animation", P_KIDS, 5 },               { "kids-adventure", P_KIDS, 3 },
	{ "learning", P_KIDS, 2 },
	{ "baking", P_FOOD, 3 },                  { "street-food", P_FOOD, 2 },
	{ "regional-cooking", P_FOOD, 3 },
	{ "city-guide", P_TRAVEL, 3 },            { "hiking", P_TRAVEL, 2 },
	{ "road-trip", P_TRAVEL, 2 },
	{ "football", P_SPORTS, 4 },              { "cycling", P_SPORTS, 2 },
	{ "sailing", P_SPORTS, 1 },
};
#define N_GENRES ARRAY_LEN(genres)

/* Which parents catch whose eye: tenths, by age band (<25, 25-34, 35-49,
 * 50-64, 65+), so that demographics carry some signal about taste. */
static const uint8_t age_taste[5][N_PARENTS] = {
	/* dra com thr sci fan hor doc mus kid foo tra spo */
	{  6, 14,  8, 20, 16, 20,  5, 25,  3,  5,  8, 12 },
	{  8, 12, 12, 14, 10, 12,  8, 14,  8, 10, 12, 10 },
	{ 10, 10, 12, 10,  8,  8, 10,  8, 30, 12, 10, 10 },
	{ 14,  8, 12,  6,  6,  5, 16,  8,  8, 14, 14, 10 },
	{ 20,  8, 10,  4,  4,  3, 22,  8,  6, 12, 16,  8 },
};

struct district_def {
	const char *name;
	int32_t dlat, dlon;     /* microdegrees from the city centre */
	uint8_t homes, offices; /* weights: where people live, where they work */
};

#define UNIVERSITY_DISTRICT 3
static const struct district_def districts[] = {
	{ "Harbor District",     -21000,   8000, 6, 5 },
	{ "Old Town",              3000,  -4000, 5, 6 },
	{ "Riverside",            14000,  26000, 8, 2 },
	{ "University Quarter",   19000, -22000, 6, 4 },
	{ "Market Square",        -2000,   5000, 3, 9 },
	{ "Northgate",            41000,   3000, 9, 2 },
	{ "Eastfield",             9000,  55000, 9, 3 },
	{ "Westbrook",            -6000, -61000, 8, 2 },
	{ "Hillcrest",            33000, -41000, 7, 1 },
	{ "Lakeside",            -29000, -37000, 6, 2 },
	{ "Station Quarter",       7000,  16000, 3, 8 },
	{ "Ironworks",           -17000,  39000, 2, 7 },
	{ "Greenpark",            26000,  38000, 7, 2 },
	{ "Southbank",           -37000,  -9000, 7, 3 },
	{ "Mill End",            -44000,  30000, 5, 2 },
	{ "Airport Park",        -52000, -70000, 1, 6 },
};
#define N_DISTRICTS ARRAY_LEN(districts)
#define CITY_NAME "Porthaven"

static const char *const towns[] = {
	"Northwick", "Eastmere", "Saltcombe", "Kingsbridge", "Ashford Vale",
	"Port Elwin", "Greystone", "Marlow Bay",
};
#define N_TOWNS ARRAY_LEN(towns)

enum sched { SCHED_OFFICE, SCHED_EARLY, SCHED_SHIFT, SCHED_STUDENT, SCHED_HOME, SCHED_NONE };

struct occupation_def {
	const char *name;
	uint8_t sched, weight, age_lo, age_hi;
};

static const struct occupation_def occupations[] = {
	{ "engineer",       SCHED_OFFICE,  8, 23, 64 },
	{ "accountant",     SCHED_OFFICE,  4, 24, 64 },
	{ "manager",        SCHED_OFFICE,  5, 28, 64 },
	{ "designer",       SCHED_OFFICE,  4, 22, 55 },
	{ "analyst",        SCHED_OFFICE,  4, 23, 60 },
	{ "lawyer",         SCHED_OFFICE,  2, 26, 66 },
	{ "civil-servant",  SCHED_OFFICE,  4, 22, 65 },
	{ "sales",          SCHED_OFFICE,  5, 20, 62 },
	{ "teacher",        SCHED_EARLY,   5, 24, 65 },
	{ "nurse",          SCHED_SHIFT,   5, 22, 64 },
	{ "chef",           SCHED_SHIFT,   3, 19, 60 },
	{ "driver",         SCHED_SHIFT,   4, 21, 66 },
	{ "retail-worker",  SCHED_SHIFT,   5, 17, 64 },
	{ "student",        SCHED_STUDENT, 12, 17, 27 },
	{ "artist",         SCHED_HOME,    3, 19, 75 },
	{ "writer",         SCHED_HOME,    2, 22, 80 },
	{ "homemaker",      SCHED_HOME,    3, 22, 70 },
	{ "retired",        SCHED_NONE,   10, 63, 88 },
};
#define N_OCCUPATIONS ARRAY_LEN(occupations)

static const char *const gender_names[] = { "female", "male", "nonbinary" };

static const char *const action_names[SAMPLE_ACTION_COUNT] = {
	"view", "click", "cart", "purchase", "rate",
};
static const char *const device_names[SAMPLE_DEVICE_COUNT] = {
	"phone", "tablet", "laptop", "tv",
};

static const char *const adjectives[] = {
	"Quiet", "Silver", "Hidden", "Last", "Broken", "Golden", "Distant", "Northern",
	"Burning", "Silent", "Crimson", "Hollow", "Wandering", "Forgotten", "Endless",
	"Little", "Wild", "Secret", "Midnight", "Paper", "Glass", "Iron", "Winter",
	"Summer", "Electric", "Velvet", "Bitter", "Gentle", "Restless", "Lonely",
	"Bright", "Copper", "Amber", "Salted", "Sleeping", "Borrowed", "Falling",
	"Painted", "Drowned", "Invisible",
};
static const char *const nouns[] = {
	"Harbor", "Garden", "River", "Lighthouse", "Orchard", "Station", "Letter",
	"Mirror", "Kingdom", "Island", "Tide", "Engine", "Crown", "Lantern", "Compass",
	"Forest", "Bridge", "Voyage", "Promise", "Echo", "Storm", "Feather", "Theory",
	"Season", "Signal", "Archive", "Market", "Horizon", "Ballad", "Orbit", "Kitchen",
	"Map", "Window", "Bell", "Road", "Clock", "Shore", "Furnace", "Choir", "Atlas",
};
static const char *const plurals[] = {
	"Tides", "Ghosts", "Strangers", "Stars", "Rivers", "Birds", "Wolves", "Letters",
	"Islands", "Machines", "Secrets", "Lanterns", "Summers", "Sisters", "Kings",
	"Roads", "Voices", "Mountains", "Gardens", "Thieves",
};
static const char *const abstracts[] = {
	"Salt", "Smoke", "Silence", "Bread", "Roses", "Rain", "Dust", "Honey", "Ash",
	"Thunder", "Lace", "Wine", "Fire", "Snow", "Stone", "Music", "Blood", "Sugar",
};
static const char *const subjects[] = {
	"a retired lighthouse keeper", "two estranged sisters", "a young chef",
	"an exiled astronomer", "a night-shift nurse", "a stubborn detective",
	"a travelling circus", "three old friends", "a reluctant heir",
	"a small-town band", "a forgotten painter", "a family of beekeepers",
	"a grieving widower", "a runaway robot", "an ambitious lawyer",
	"a ferry captain", "a schoolteacher", "a pair of rival bakers",
	"a deep-sea diver", "an aging boxer", "a street musician", "a cartographer",
	"a teenage hacker", "a village doctor", "a lost expedition", "a jazz pianist",
	"a mountain guide", "a cycling team", "a fox", "a dragon who hates gold",
	"the last tram driver", "a family restaurant", "a brilliant forger",
	"a choir of fishermen", "an orphaned inventor", "a city at night",
};
static const char *const predicates[] = {
	"who found an old map", "searching for a lost brother",
	"on the last night of summer", "who must win back a rival",
	"hiding a dangerous secret", "who inherited a crumbling hotel",
	"racing against the winter", "who heard voices in the radio static",
	"at the edge of the world", "who refused to leave home",
	"chasing a stolen painting", "learning to start again",
	"who cooked for a whole village", "over one long weekend",
	"caught between two cities", "who kept a list of promises",
	"in a town that forgot its name", "who counted the stars",
	"on a journey along the coast", "during a storm that never ends",
	"who trained for one final race", "after the factory closes",
};
static const char *const first_names[] = {
	"Ada", "Ben", "Chiara", "Dmitri", "Elif", "Farah", "Gustavo", "Hana", "Ines",
	"Jonas", "Kofi", "Leila", "Mateo", "Nadia", "Oskar", "Priya", "Quentin", "Rosa",
	"Samir", "Tove", "Umar", "Vera", "Wen", "Ximena", "Yusuf", "Zofia", "Amara",
	"Bruno", "Camille", "Diego", "Emeka", "Freya", "Goran", "Helga", "Ivan", "Jun",
	"Kamala", "Luca", "Mei", "Nikolai", "Olga", "Pablo", "Rania", "Sven", "Tariq",
	"Ulla", "Valentina", "Wanjiru", "Yara", "Zaid", "Aiko", "Bilal", "Clara",
	"Dario", "Esther", "Felix", "Greta", "Hamza", "Ingrid", "Jamal", "Keiko", "Lars",
	"Marta", "Nour", "Omar", "Paula", "Rafael", "Sana", "Tomas", "Ugo", "Vivian",
	"Wiktor", "Yasmin", "Zeynep", "Anders", "Beatriz", "Cyrus", "Dalia", "Enzo",
	"Fatima", "Giorgio", "Hiro", "Isla", "Joaquin", "Kira", "Leon", "Maya", "Nico",
	"Ona", "Pedro", "Ruth", "Soren", "Tamar", "Ulrich", "Vikram", "Wilma", "Xavier",
	"Yoko", "Zara", "Arjun",
};
static const char *const last_names[] = {
	"Okafor", "Lindqvist", "Moreau", "Tanaka", "Kowalski", "Haddad", "Ferreira",
	"Novak", "Osei", "Petrov", "Rossi", "Schmidt", "Adeyemi", "Bergstrom", "Castillo",
	"Dubois", "Eriksen", "Fischer", "Garcia", "Hansen", "Ivanova", "Jensen", "Kim",
	"Larsen", "Mensah", "Nakamura", "Olsen", "Park", "Quinn", "Romero", "Sato",
	"Torres", "Usman", "Vargas", "Weber", "Yilmaz", "Zhang", "Abbott", "Baker",
	"Costa", "Dias", "Evans", "Fontaine", "Grant", "Horvath", "Ito", "Jovanovic",
	"Keller", "Lopez", "Mazur", "Nielsen", "Ortega", "Popescu", "Reyes", "Silva",
	"Tran", "Ueda", "Varga", "Wright", "Young", "Alvarez", "Brennan", "Chen",
	"Dahl", "Ekwueme", "Falk", "Gallo", "Holm", "Iqbal", "Juarez", "Kaplan", "Lund",
	"Mendes", "Nguyen", "Oduya", "Perez", "Quist", "Rahman", "Strand", "Toivonen",
	"Urban", "Voss", "Wolff", "Yamada", "Zielinski", "Achebe", "Bianchi", "Carlsen",
	"Devi", "Engel", "Fox", "Galan", "Hart", "Iversen", "Jaramillo", "Kuznetsov",
	"Lima", "Moss", "Nowak", "Ozturk",
};
#define N_FIRST ARRAY_LEN(first_names)
#define N_LAST  ARRAY_LEN(last_names)

#define PICK(r, list) ((list)[rng_below((r), ARRAY_LEN(list))])

_Static_assert(N_GENRES < 255 && N_DISTRICTS < 255 && N_OCCUPATIONS < 255,
               "indexes are stored in bytes");

/* --- public names ------------------------------------------------------ */
const char *sample_genre_name(unsigned g)
{
	if (g < N_GENRES)
		return genres[g].name;
	if (g - N_GENRES < N_PARENTS)
		return parents[g - N_GENRES].name;
	return NULL;
}

const char *sample_district_name(unsigned d)
{
	return d < N_DISTRICTS ? districts[d].name : NULL;
}

const char *sample_occupation_name(unsigned o)
{
	return o < N_OCCUPATIONS ? occupations[o].name : NULL;
}

const char *sample_gender_name(unsigned g)
{
	return g < ARRAY_LEN(gender_names) ? gender_names[g] : NULL;
}

const char *sample_action_name(enum sample_action a)
{
	return (unsigned)a < SAMPLE_ACTION_COUNT ? action_names[a] : NULL;
}

const char *sample_device_name(enum sample_device d)
{
	return (unsigned)d < SAMPLE_DEVICE_COUNT ? device_names[d] : NULL;
}

const char *sample_file_name(enum sample_format fmt, enum sample_file f)
{
	static const char *const csv[SAMPLE_FILE_COUNT] = {
		"items.csv", "links.csv", "triples.tsv", "users.csv", "events.csv", "README" };
	static const char *const tsv[SAMPLE_FILE_COUNT] = {
		"items.tsv", "links.tsv", "triples.tsv", "users.tsv", "events.tsv", "README" };
	if ((unsigned)f >= SAMPLE_FILE_COUNT)
		return NULL;
	return fmt == SAMPLE_FORMAT_TSV ? tsv[f] : csv[f];
}

void sample_opts_default(struct sample_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->seed = SAMPLE_DEFAULT_SEED;
	o->users = SAMPLE_DEFAULT_USERS;
	o->items = SAMPLE_DEFAULT_ITEMS;
	o->days = SAMPLE_DEFAULT_DAYS;
	o->events_per_user = SAMPLE_DEFAULT_EVENTS_PER_USER;
	o->format = SAMPLE_FORMAT_CSV;
}

int sample_opts_check(const struct sample_opts *o, const char **bad_option)
{
	const char *bad = NULL;
	if (o->users < 1 || o->users > SAMPLE_USERS_MAX)
		bad = "--users";
	else if (o->items < 1 || o->items > SAMPLE_ITEMS_MAX)
		bad = "--items";
	else if (o->days < 1 || o->days > SAMPLE_DAYS_MAX)
		bad = "--days";
	else if (o->events_per_user < 1 || o->events_per_user > SAMPLE_EVENTS_PER_USER_MAX)
		bad = "--events-per-user";
	else if (o->format != SAMPLE_FORMAT_CSV && o->format != SAMPLE_FORMAT_TSV)
		bad = "--format";
	if (!bad)
		return 0;
	if (bad_option)
		*bad_option = bad;
	return -EINVAL;
}

/* --- output ------------------------------------------------------------ */
/* A buffered file with a sticky error: rows are appended without checks (a
 * row is far shorter than OUT_ROW_MAX) and the error is looked at once per
 * user and when the file is closed. */
#define OUT_BUF_SIZE (1u << 20)
#define OUT_ROW_MAX  (16u << 10)

struct out {
	int fd;
	int err;             /* first write error, negative errno */
	char sep;            /* ',' or '\t' */
	char *buf;
	size_t len;
	uint64_t rows, bytes;
};

static void out_flush(struct out *w)
{
	size_t off = 0;
	while (off < w->len && !w->err) {
		ssize_t n = write(w->fd, w->buf + off, w->len - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			w->err = -errno;
		} else {
			off += (size_t)n;
		}
	}
	w->bytes += w->len;
	w->len = 0;
}

/* Makes room for one row; rows are counted by their line ends. */
static inline void out_row(struct out *w)
{
	if (w->len > OUT_BUF_SIZE - OUT_ROW_MAX)
		out_flush(w);
}

static inline void out_mem(struct out *w, const char *s, size_t n)
{
	memcpy(w->buf + w->len, s, n);
	w->len += n;
}

static inline void out_str(struct out *w, const char *s)
{
	out_mem(w, s, strlen(s));
}

static inline void out_ch(struct out *w, char c)
{
	w->buf[w->len++] = c;
}

static inline void out_sep(struct out *w)
{
	out_ch(w, w->sep);
}

static inline void out_nl(struct out *w)
{
	out_ch(w, '\n');
	w->rows++;
}

static inline void out_u64(struct out *w, uint64_t v)
{
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		out_ch(w, tmp[--n]);
}

/* v zero-padded to at least width digits. */
static inline void out_u64_pad(struct out *w, uint64_t v, int width)
{
	char tmp[24];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n < width)
		tmp[n++] = '0';
	while (n)
		out_ch(w, tmp[--n]);
}

/* External IDs: U00001, I00042 (1-based, at least five digits). */
static inline void out_id(struct out *w, char prefix, uint32_t index)
{
	out_ch(w, prefix);
	out_u64_pad(w, (uint64_t)index + 1, 5);
}

/* Microdegrees as degrees with six decimals. */
static inline void out_coord(struct out *w, int32_t e6)
{
	uint32_t a = e6 < 0 ? (uint32_t)(-(int64_t)e6) : (uint32_t)e6;
	if (e6 < 0)
		out_ch(w, '-');
	out_u64(w, a / 1000000);
	out_ch(w, '.');
	out_u64_pad(w, a % 1000000, 6);
}

/* Cents as units with two decimals. */
static inline void out_price(struct out *w, uint32_t cents)
{
	out_u64(w, cents / 100);
	out_ch(w, '.');
	out_u64_pad(w, cents % 100, 2);
}

/* A free-text field: RFC 4180 quoting in CSV when it holds a comma, a quote
 * or a line end.  Nothing the generator writes holds a tab or a line end, so
 * TSV needs no quoting; a stray one would become a space rather than break
 * the row. */
static void out_field(struct out *w, const char *s)
{
	size_t n = strlen(s);
	if (w->sep == '\t') {
		for (size_t i = 0; i < n; i++)
			out_ch(w, (s[i] == '\t' || s[i] == '\n' || s[i] == '\r') ? ' ' : s[i]);
		return;
	}
	if (!strpbrk(s, ",\"\r\n")) {
		out_mem(w, s, n);
		return;
	}
	out_ch(w, '"');
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '"')
			out_ch(w, '"');
		out_ch(w, s[i]);
	}
	out_ch(w, '"');
}

/* A header or a row of plain cells, given with ',' between them. */
static void out_header(struct out *w, const char *cells)
{
	out_row(w);
	for (const char *p = cells; *p; p++)
		out_ch(w, *p == ',' ? w->sep : *p);
	out_nl(w);
}

/* --- small text helpers ----------------------------------------------- */
/* "Harbor District" -> "harbor-district"; "Ada Okafor 2" -> "ada-okafor-2". */
static void slugify(char *dst, size_t cap, const char *src)
{
	size_t n = 0;
	int dash = 0;
	for (const char *p = src; *p && n + 2 < cap; p++) {
		char c = *p;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
			if (dash && n)
				dst[n++] = '-';
			dash = 0;
			dst[n++] = c;
		} else {
			dash = 1;
		}
	}
	dst[n] = '\0';
}

/* Appends formatted text to a fixed buffer, truncating quietly: every
 * template here fits the buffers it is used with. */
__attribute__((format(printf, 3, 4)))
static void cat(char *buf, size_t cap, const char *fmt, ...)
{
	size_t n = strlen(buf);
	if (n + 1 >= cap)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf + n, cap - n, fmt, ap);
	va_end(ap);
}

/* Creator c's display name.  c -> (first, last) is a bijection on
 * [0, N_FIRST * N_LAST) (for a fixed first name, the last name index runs
 * through all values as q does), so names are unique; beyond that a number
 * is appended. */
static void creator_name(char *buf, size_t cap, uint32_t c)
{
	uint32_t a = c % N_FIRST, q = c / N_FIRST;
	uint32_t b = (q + 7 * a) % N_LAST;
	uint32_t round = c / (N_FIRST * N_LAST);
	if (round)
		snprintf(buf, cap, "%s %s %u", first_names[a], last_names[b], round + 1);
	else
		snprintf(buf, cap, "%s %s", first_names[a], last_names[b]);
}

/* --- catalog ----------------------------------------------------------- */
struct item_meta {
	uint8_t genre;   /* leaf genre */
	uint8_t genre2;  /* second leaf genre, or 0xff */
	uint8_t ep;      /* position in its series, 0 for the first or a single item */
	uint8_t slen;    /* series length, 1 for a single item */
	uint8_t place;   /* district */
	int8_t  quality; /* -1, 0, +1: shifts its ratings */
};

struct catalog {
	uint32_t n;
	struct item_meta *meta;  /* [n] */
	uint32_t *order;         /* [n] item indexes grouped by leaf genre */
	uint32_t *cum;           /* [n] running popularity within each genre's run of order */
	uint32_t gstart[N_GENRES + 1];
	uint32_t gmass[N_GENRES];  /* total popularity of a genre */
	uint32_t ncreators;
	uint8_t *creator_used;   /* bitmap */
	uint64_t series, series_items;
};

static void catalog_free(struct catalog *c)
{
	free(c->meta);
	free(c->order);
	free(c->cum);
	free(c->creator_used);
	memset(c, 0, sizeof(*c));
}

static unsigned pick_leaf_genre(struct rng *r)
{
	uint32_t w[N_GENRES];
	for (unsigned g = 0; g < N_GENRES; g++)
		w[g] = genres[g].weight;
	return rng_weighted(r, w, N_GENRES);
}

/* Another leaf, under the same parent half of the time. */
static unsigned pick_related_genre(struct rng *r, unsigned g)
{
	for (int tries = 0; tries < 8; tries++) {
		unsigned h = pick_leaf_genre(r);
		if (h == g)
			continue;
		if (genres[h].parent == genres[g].parent || !rng_pct(r, 50))
			return h;
	}
	return (g + 1) % N_GENRES;
}

static unsigned pick_district(struct rng *r, int offices)
{
	uint32_t w[N_DISTRICTS];
	for (unsigned d = 0; d < N_DISTRICTS; d++)
		w[d] = offices ? districts[d].offices : districts[d].homes + districts[d].offices;
	return rng_weighted(r, w, N_DISTRICTS);
}

static void make_title(struct rng *r, char *t, size_t cap)
{
	unsigned k = rng_below(r, 100);
	if (k < 30)
		snprintf(t, cap, "The %s %s", PICK(r, adjectives), PICK(r, nouns));
	else if (k < 45)
		snprintf(t, cap, "%s of the %s %s", PICK(r, nouns), PICK(r, adjectives), PICK(r, nouns));
	else if (k < 60)
		snprintf(t, cap, "%s %s", PICK(r, adjectives), PICK(r, plurals));
	else if (k < 70) {
		const char *a = PICK(r, abstracts), *b = PICK(r, abstracts), *c = PICK(r, abstracts);
		snprintf(t, cap, "%s, %s and %s", a, b, c);
	} else if (k < 80)
		snprintf(t, cap, "A %s for %s", PICK(r, nouns), PICK(r, first_names));
	else if (k < 90)
		snprintf(t, cap, "%s's %s", PICK(r, first_names), PICK(r, nouns));
	else
		snprintf(t, cap, "Night at the %s", PICK(r, nouns));
}

static uint32_t isqrt64(uint64_t x)
{
	uint64_t r = 0, bit = 1ULL << 62;
	while (bit > x)
		bit >>= 2;
	while (bit) {
		if (x >= r + bit) {
			x -= r + bit;
			r = (r >> 1) + bit;
		} else {
			r >>= 1;
		}
		bit >>= 2;
	}
	return (uint32_t)r;
}

/* Popularity of the item ranked rank (0 = most popular): Zipf-like,
 * 2^28 / (rank + ZIPF_OFFSET)^1.5, at least 1.  The sum over 10^7 items
 * stays below 2^32, so running sums fit 32 bits. */
#define ZIPF_OFFSET 2
static uint32_t zipf_weight(uint32_t rank)
{
	uint64_t q = (uint64_t)rank + ZIPF_OFFSET;
	uint64_t w = (((uint64_t)1 << 36) / q) / isqrt64(q << 16);
	return w ? (uint32_t)w : 1;
}

/* Assigns each item its genre, series and place, and its popularity
 * (zipf_weight over a random ranking, so IDs say nothing about it). */
static int catalog_build(struct catalog *c, const struct sample_opts *o)
{
	uint32_t n = o->items;
	uint32_t *rank = NULL;
	int ret = -ENOMEM;
	struct rng r;

	memset(c, 0, sizeof(*c));
	c->n = n;
	c->meta = calloc(n, sizeof(*c->meta));
	c->order = malloc((size_t)n * sizeof(*c->order));
	c->cum = malloc((size_t)n * sizeof(*c->cum));
	rank = malloc((size_t)n * sizeof(*rank));
	c->ncreators = n / 5 > 2 * N_PARENTS ? n / 5 : 2 * N_PARENTS;
	c->creator_used = calloc(c->ncreators / 8 + 1, 1);
	if (!c->meta || !c->order || !c->cum || !rank || !c->creator_used)
		goto out;

	rng_seed(&r, o->seed, STREAM_CATALOG, 0);
	for (uint32_t i = 0; i < n; i++)
		rank[i] = i;
	for (uint32_t i = n - 1; i > 0; i--) {
		uint32_t j = rng_below(&r, i + 1);
		uint32_t t = rank[i];
		rank[i] = rank[j];
		rank[j] = t;
	}

	/* Units of one item or a series of 2..10 consecutive items sharing a
	 * genre and a place. */
	for (uint32_t i = 0; i < n; ) {
		uint32_t left = n - i, len = 1;
		if (left >= 2 && rng_pct(&r, 6)) {
			uint32_t maxlen = left < 10 ? left : 10;
			len = 2 + rng_below(&r, maxlen - 1);
			c->series++;
			c->series_items += len;
		}
		uint8_t g = (uint8_t)pick_leaf_genre(&r);
		uint8_t place = (uint8_t)pick_district(&r, 0);
		for (uint32_t k = 0; k < len; k++) {
			struct item_meta *m = &c->meta[i + k];
			m->genre = g;
			m->genre2 = rng_pct(&r, 30) ? (uint8_t)pick_related_genre(&r, g) : 0xff;
			m->ep = (uint8_t)k;
			m->slen = (uint8_t)len;
			m->place = place;
			m->quality = (int8_t)(rng_pct(&r, 25) ? -1 : rng_pct(&r, 33) ? 1 : 0);
		}
		i += len;
	}

	/* Counting sort by genre, then running weights within each genre. */
	uint32_t fill[N_GENRES];
	memset(c->gstart, 0, sizeof(c->gstart));
	for (uint32_t i = 0; i < n; i++)
		c->gstart[c->meta[i].genre + 1]++;
	for (unsigned g = 0; g < N_GENRES; g++) {
		c->gstart[g + 1] += c->gstart[g];
		fill[g] = c->gstart[g];
	}
	for (uint32_t i = 0; i < n; i++)
		c->order[fill[c->meta[i].genre]++] = i;
	for (unsigned g = 0; g < N_GENRES; g++) {
		uint32_t run = 0;
		for (uint32_t k = c->gstart[g]; k < c->gstart[g + 1]; k++) {
			run += zipf_weight(rank[c->order[k]]);
			c->cum[k] = run;
		}
		c->gmass[g] = run;
	}
	ret = 0;
out:
	free(rank);
	if (ret)
		catalog_free(c);
	return ret;
}

/* An item of genre g by popularity; an empty genre falls back to the whole
 * catalog. */
static uint32_t catalog_pick_global(const struct catalog *c, struct rng *r);

static uint32_t catalog_pick_in(const struct catalog *c, struct rng *r, unsigned g)
{
	if (!c->gmass[g])
		return catalog_pick_global(c, r);
	uint32_t x = rng_below(r, c->gmass[g]);
	uint32_t lo = c->gstart[g], hi = c->gstart[g + 1] - 1;
	while (lo < hi) {  /* first k with cum[k] > x */
		uint32_t mid = lo + (hi - lo) / 2;
		if (c->cum[mid] > x)
			hi = mid;
		else
			lo = mid + 1;
	}
	return c->order[lo];
}

static uint32_t catalog_pick_global(const struct catalog *c, struct rng *r)
{
	/* Genre by its mass, then within it: the same as one draw over the
	 * whole catalog by popularity. */
	unsigned g = rng_weighted(r, c->gmass, N_GENRES);
	return catalog_pick_in(c, r, g);
}

/* --- catalog files ----------------------------------------------------- */
struct gen {
	const struct sample_opts *o;
	struct catalog cat;
	struct out f[SAMPLE_FILE_COUNT];
	struct sample_stats st;
	int64_t *starts;    /* per-user scratch: session start times */
	uint16_t *budgets;  /* per-user scratch: events per session */
	size_t scratch_cap;
};

static void triple(struct out *w, const char *hp, const char *h, const char *rel,
                   const char *tp, const char *t, const char *htype, const char *ttype)
{
	out_row(w);
	out_str(w, hp); out_str(w, h); out_ch(w, '\t');
	out_str(w, rel); out_ch(w, '\t');
	out_str(w, tp); out_str(w, t); out_ch(w, '\t');
	out_str(w, htype); out_ch(w, '\t');
	out_str(w, ttype);
	out_nl(w);
}

static void write_item_text(struct rng *r, char *text, size_t cap, const struct item_meta *m,
                            const char *setting)
{
	text[0] = '\0';
	cat(text, cap, "%s about %s %s", parents[genres[m->genre].parent].kind,
	    PICK(r, subjects), PICK(r, predicates));
	if (rng_pct(r, 40))
		cat(text, cap, ", set in %s", setting);
	cat(text, cap, ".");
	if (m->slen > 1)
		cat(text, cap, " Part %u of %u.", m->ep + 1u, (unsigned)m->slen);
	unsigned k = rng_below(r, 100);
	if (k < 12) {
		char t[96];
		make_title(r, t, sizeof(t));
		cat(text, cap, " Based on the novel \"%s\".", t);
	} else if (k < 22) {
		cat(text, cap, " Narrated by %s %s.", PICK(r, first_names), PICK(r, last_names));
	} else if (k < 30) {
		cat(text, cap, " With %s %s and %s %s.", PICK(r, first_names), PICK(r, last_names),
		    PICK(r, first_names), PICK(r, last_names));
	}
}

static void write_catalog(struct gen *g)
{
	const struct catalog *c = &g->cat;
	struct out *items = &g->f[SAMPLE_FILE_ITEMS];
	struct out *links = &g->f[SAMPLE_FILE_LINKS];
	struct out *kg = &g->f[SAMPLE_FILE_TRIPLES];
	struct rng r;
	char base[96] = "", title[128], text[768], cats[160], creator[64], cslug[80];
	char pslug[48], series[24], iid[16], prev_iid[16] = "";
	uint32_t creator_id = 0, series_no = 0;
	uint8_t towns_used[N_TOWNS] = { 0 };

	/* A stream of its own, so the files' text does not shift the catalog's
	 * structure drawn in catalog_build. */
	rng_seed(&r, g->o->seed, STREAM_CATALOG, 1);

	out_header(items, "item,title,text,categories,creator,place,price");
	out_header(links, "item,entity");
	out_header(kg, "head,relation,tail,head_type,tail_type");
	uint32_t price = 0;
	for (uint32_t i = 0; i < c->n; i++) {
		const struct item_meta *m = &c->meta[i];
		const struct parent_def *p = &parents[genres[m->genre].parent];
		if (m->ep == 0) {
			/* Creators specialise: creator k works in parent k % N_PARENTS,
			 * and prolific ones (low k) are drawn more often. */
			uint32_t par = genres[m->genre].parent;
			uint32_t nc = (c->ncreators - par + N_PARENTS - 1) / N_PARENTS;
			uint32_t k = (uint32_t)(((uint64_t)rng_below(&r, nc) * rng_below(&r, nc)) / nc);
			creator_id = par + (uint32_t)N_PARENTS * k;
			c->creator_used[creator_id / 8] |= (uint8_t)(1u << (creator_id % 8));
			creator_name(creator, sizeof(creator), creator_id);
			slugify(cslug, sizeof(cslug), creator);
			make_title(&r, base, sizeof(base));
			price = p->price_lo + 100 * rng_below(&r, (p->price_hi - p->price_lo) / 100 + 1);
			if (m->slen > 1)
				snprintf(series, sizeof(series), "S%05u", ++series_no);
		}
		if (m->slen > 1)
			snprintf(title, sizeof(title), "%s, Part %u", base, m->ep + 1u);
		else
			snprintf(title, sizeof(title), "%s", base);
		const char *place = districts[m->place].name;
		slugify(pslug, sizeof(pslug), place);
		write_item_text(&r, text, sizeof(text), m, place);
		snprintf(cats, sizeof(cats), "%s|%s", genres[m->genre].name, p->name);
		if (m->genre2 != 0xff)
			cat(cats, sizeof(cats), "|%s", genres[m->genre2].name);
		snprintf(iid, sizeof(iid), "I%05u", i + 1);

		out_row(items);
		out_str(items, iid); out_sep(items);
		out_field(items, title); out_sep(items);
		out_field(items, text); out_sep(items);
		out_field(items, cats); out_sep(items);
		out_field(items, creator); out_sep(items);
		out_field(items, place); out_sep(items);
		out_price(items, price);
		out_nl(items);

		out_row(links);
		out_str(links, iid); out_sep(links);
		out_str(links, "item:"); out_str(links, iid);
		out_nl(links);

		triple(kg, "item:", iid, "has_genre", "genre:", genres[m->genre].name, "item", "genre");
		if (m->genre2 != 0xff)
			triple(kg, "item:", iid, "has_genre", "genre:", genres[m->genre2].name, "item", "genre");
		triple(kg, "item:", iid, "created_by", "creator:", cslug, "item", "creator");
		triple(kg, "item:", iid, "located_in", "place:", pslug, "item", "place");
		if (m->slen > 1) {
			triple(kg, "item:", iid, "part_of", "series:", series, "item", "series");
			if (m->ep > 0)
				triple(kg, "item:", prev_iid, "followed_by", "item:", iid, "item", "item");
		}
		memcpy(prev_iid, iid, sizeof(iid));
		if ((i & 1023) == 1023 && items->err)
			return;
	}

	/* The graph above the items: genre tree, city districts, creators. */
	for (unsigned k = 0; k < N_GENRES; k++)
		triple(kg, "genre:", genres[k].name, "subgenre_of", "genre:",
		       parents[genres[k].parent].name, "genre", "genre");
	for (unsigned d = 0; d < N_DISTRICTS; d++) {
		slugify(pslug, sizeof(pslug), districts[d].name);
		triple(kg, "place:", pslug, "part_of", "place:", "porthaven", "place", "place");
	}
	for (uint32_t k = 0; k < c->ncreators; k++) {
		if (!(c->creator_used[k / 8] & (1u << (k % 8))))
			continue;
		struct rng cr;
		rng_seed(&cr, g->o->seed, STREAM_CREATOR, k);
		creator_name(creator, sizeof(creator), k);
		slugify(cslug, sizeof(cslug), creator);
		if (rng_pct(&cr, 60)) {
			slugify(pslug, sizeof(pslug), districts[pick_district(&cr, 0)].name);
		} else {
			unsigned t = rng_below(&cr, N_TOWNS);
			towns_used[t] = 1;
			slugify(pslug, sizeof(pslug), towns[t]);
		}
		triple(kg, "creator:", cslug, "born_in", "place:", pslug, "creator", "place");
		g->st.creators++;
	}

	g->st.items = c->n;
	g->st.links = c->n;
	g->st.series = c->series;
	g->st.series_items = c->series_items;
	g->st.genres = N_GENRES + N_PARENTS;
	g->st.places = N_DISTRICTS + 1;
	for (unsigned t = 0; t < N_TOWNS; t++)
		g->st.places += towns_used[t];
	g->st.entities = g->st.items + g->st.series + g->st.genres + g->st.places + g->st.creators;
	g->st.triples = kg->rows - 1;
}

/* --- users ------------------------------------------------------------- */
/* Events per user: log-normal-like, median/mean about 2/3, from 1/30 to 15
 * times the mean.  exp2 is drawn in fixed point: the exponent is a sum of
 * four uniforms (close to a normal with sd 1.3 in log2 units) and 2^frac is
 * taken as 1 + frac, which keeps it integer and exactly reproducible. */
#define COUNT_MEAN_FACTOR_Q16 101527u  /* mean of the factor below, measured over 2e7 draws */

static uint32_t draw_target_events(struct rng *r, uint32_t mean)
{
	int64_t s = 0;
	for (int k = 0; k < 4; k++)
		s += rng_below(r, 65536);
	/* s - 2*65536 has sd 65536*sqrt(4/12) = 37837; scale to sd 1.3 in Q16. */
	int64_t e = (s - 131072) * 13 * 65536 / (37837 * 10);
	int64_t ip = e >= 0 ? e / 65536 : -((-e + 65535) / 65536);
	int64_t frac = e - ip * 65536;
	uint64_t f = 65536 + (uint64_t)frac; /* Q16 of 2^frac, roughly */
	f = ip >= 0 ? f << ip : f >> -ip;
	/* target = mean * f / mean_factor, both Q16 */
	uint64_t t = ((uint64_t)mean * f + COUNT_MEAN_FACTOR_Q16 / 2) / COUNT_MEAN_FACTOR_Q16;
	return t ? (uint32_t)t : 1;
}

static uint8_t pick_hour(struct rng *r, const uint8_t *cands, unsigned n)
{
	return cands[rng_below(r, n)];
}

void sample_user_profile(const struct sample_opts *o, uint32_t user, struct sample_user *u)
{
	struct rng r;
	rng_seed(&r, o->seed, STREAM_PROFILE, user);
	memset(u, 0, sizeof(*u));

	uint32_t ow[N_OCCUPATIONS];
	for (unsigned k = 0; k < N_OCCUPATIONS; k++)
		ow[k] = occupations[k].weight;
	u->occupation = (uint8_t)rng_weighted(&r, ow, N_OCCUPATIONS);
	const struct occupation_def *oc = &occupations[u->occupation];
	/* Ages bunch towards the lower middle of the occupation's range. */
	uint32_t span = oc->age_hi - oc->age_lo + 1u;
	u->age = (uint8_t)(oc->age_lo + (rng_below(&r, span) + rng_below(&r, span)) / 2);
	unsigned gk = rng_below(&r, 100);
	u->gender = gk < 49 ? 0 : gk < 97 ? 1 : 2;

	u->home_district = (uint8_t)pick_district(&r, 0);
	const struct district_def *hd = &districts[u->home_district];
	u->home_lat = SAMPLE_CITY_LAT_E6 + hd->dlat + rng_range(&r, -7000, 7000);
	u->home_lon = SAMPLE_CITY_LON_E6 + hd->dlon + rng_range(&r, -10000, 10000);

	u->work_district = SAMPLE_NO_WORK;
	u->workdays = 0;
	static const uint8_t evening[] = { 20, 21, 21, 22 };
	switch (oc->sched) {
	case SCHED_OFFICE:
	case SCHED_EARLY:
		u->work_start = (uint8_t)(oc->sched == SCHED_EARLY ? 7 + rng_below(&r, 2) : 8 + rng_below(&r, 2));
		u->work_end = (uint8_t)(u->work_start + 8 + rng_below(&r, 2));
		u->workdays = 0x1f;
		{
			uint8_t day[] = { (uint8_t)(u->work_start - 1), 12, u->work_end };
			u->peak_hour[0] = pick_hour(&r, evening, ARRAY_LEN(evening));
			u->peak_hour[1] = pick_hour(&r, day, ARRAY_LEN(day));
		}
		break;
	case SCHED_SHIFT: {
		static const uint8_t starts[] = { 6, 10, 14 };
		u->work_start = starts[rng_below(&r, 3)];
		u->work_end = (uint8_t)(u->work_start + 8);
		/* Five days a week, two days off drawn anywhere in the week. */
		u->workdays = 0x7f;
		unsigned off1 = rng_below(&r, 7), off2 = (off1 + 1 + rng_below(&r, 6)) % 7;
		u->workdays &= (uint8_t)~((1u << off1) | (1u << off2));
		u->peak_hour[0] = (uint8_t)(u->work_start == 14 ? 11 : 21);
		u->peak_hour[1] = (uint8_t)(u->work_start == 6 ? 16 : u->work_start == 10 ? 8 : 23);
		break;
	}
	case SCHED_STUDENT:
		u->work_start = 9;
		u->work_end = (uint8_t)(14 + rng_below(&r, 3));
		u->workdays = 0x1f;
		u->peak_hour[0] = (uint8_t)(22 + rng_below(&r, 2));
		u->peak_hour[1] = (uint8_t)(16 + rng_below(&r, 2));
		break;
	default: {
		static const uint8_t day[] = { 9, 10, 11, 14, 15 };
		u->peak_hour[0] = (uint8_t)(19 + rng_below(&r, 3));
		u->peak_hour[1] = pick_hour(&r, day, ARRAY_LEN(day));
		break;
	}
	}
	if (u->workdays) {
		u->work_district = oc->sched == SCHED_STUDENT ? UNIVERSITY_DISTRICT
		                                              : (uint8_t)pick_district(&r, 1);
		const struct district_def *wd = &districts[u->work_district];
		u->work_lat = SAMPLE_CITY_LAT_E6 + wd->dlat + rng_range(&r, -3000, 3000);
		u->work_lon = SAMPLE_CITY_LON_E6 + wd->dlon + rng_range(&r, -4500, 4500);
	} else {
		u->work_lat = u->home_lat;
		u->work_lon = u->home_lon;
	}
	u->weekend_peak = (uint8_t)(10 + rng_below(&r, 7));
	for (unsigned d = 0; d < 7; d++)
		if (rng_pct(&r, d >= 5 ? 90 : 70))
			u->active_days |= (uint8_t)(1u << d);
	if (!u->active_days)
		u->active_days = 0x60;

	/* Devices: a phone is near universal; at most three; always one that can
	 * leave the house or sit on a desk. */
	if (rng_pct(&r, 93))
		u->devices |= 1u << SAMPLE_DEVICE_PHONE;
	if (rng_pct(&r, oc->sched <= SCHED_EARLY || oc->sched == SCHED_STUDENT ? 80 : 45))
		u->devices |= 1u << SAMPLE_DEVICE_LAPTOP;
	if (rng_pct(&r, 50))
		u->devices |= 1u << SAMPLE_DEVICE_TV;
	if (rng_pct(&r, 30))
		u->devices |= 1u << SAMPLE_DEVICE_TABLET;
	if (__builtin_popcount(u->devices) > 3)
		u->devices &= (uint8_t)~(1u << SAMPLE_DEVICE_TABLET);
	if (!(u->devices & ((1u << SAMPLE_DEVICE_PHONE) | (1u << SAMPLE_DEVICE_TABLET) |
	                    (1u << SAMPLE_DEVICE_LAPTOP))))
		u->devices |= 1u << SAMPLE_DEVICE_PHONE;

	/* Interests: leaf genres weighted by catalog share and by age. */
	unsigned band = u->age < 25 ? 0 : u->age < 35 ? 1 : u->age < 50 ? 2 : u->age < 65 ? 3 : 4;
	uint32_t gw[N_GENRES];
	for (unsigned g = 0; g < N_GENRES; g++)
		gw[g] = (uint32_t)genres[g].weight * age_taste[band][genres[g].parent];
	u->n_interests = (uint8_t)(2 + rng_below(&r, SAMPLE_INTERESTS_MAX - 1));
	for (unsigned k = 0; k < u->n_interests; k++) {
		unsigned g = 0;
		for (int tries = 0; tries < 16; tries++) {
			if (k > 0 && rng_pct(&r, 50))
				g = pick_related_genre(&r, u->interest[rng_below(&r, k)]);
			else
				g = rng_weighted(&r, gw, N_GENRES);
			unsigned dup = 0;
			for (unsigned j = 0; j < k; j++)
				dup |= u->interest[j] == g;
			if (!dup)
				break;
		}
		u->interest[k] = (uint8_t)g;
		u->interest_w[k] = (uint16_t)(100 / (k + 1) + rng_below(&r, 30));
	}

	/* Activity window: a third were there from day 0, the rest join during
	 * the first 70% of the span; one in five leaves early. */
	uint32_t days = o->days;
	u->first_day = rng_pct(&r, 35) ? 0 : rng_below(&r, days * 7 / 10 + 1);
	if (u->first_day >= days)
		u->first_day = days - 1;
	u->last_day = days;
	if (rng_pct(&r, 20) && days - u->first_day > 14)
		u->last_day = u->first_day + 14 + rng_below(&r, days - u->first_day - 14);
	u->target_events = draw_target_events(&r, o->events_per_user);
}

/* --- events ------------------------------------------------------------ */
enum ctx { CTX_HOME, CTX_WORK, CTX_COMMUTE, CTX_OUT };

#define SERIES_SLOTS 4
#define RECENT_SLOTS 16

struct ustate {
	struct rng r;
	const struct sample_user *p;
	uint8_t interest[SAMPLE_INTERESTS_MAX];
	uint32_t iw[SAMPLE_INTERESTS_MAX];
	unsigned cur;  /* index of the current interest */
	struct { uint32_t first; uint8_t next; } series[SERIES_SLOTS];
	unsigned nseries;
	uint32_t recent[RECENT_SLOTS];
	unsigned nrecent;
	int32_t lat, lon;       /* where the session happens */
	int32_t dlat, dlon;     /* movement per event (commuting) */
	uint8_t device;
	uint32_t left;          /* events left in the session's budget */
	int64_t t;
	char uid[16];
	size_t uid_len;
};

static int weekday_of(int64_t t)
{
	/* 1970-01-01 was a Thursday; 0 = Monday. */
	return (int)(((t / DAY) + 3) % 7);
}

static int hour_of(int64_t t)
{
	return (int)((t % DAY) / 3600);
}

/* When a session starts: a day in the user's window, preferring its active
 * weekdays; an hour around its peaks, different on weekends. */
static int64_t plan_start(struct rng *r, const struct sample_user *p)
{
	uint32_t span = p->last_day - p->first_day;
	uint32_t day = p->first_day + rng_below(r, span);
	for (int tries = 0; tries < 6; tries++) {
		int wd = (int)((day + 3) % 7);  /* day 0 is a Thursday */
		if ((p->active_days & (1u << wd)) || rng_pct(r, 12))
			break;
		day = p->first_day + rng_below(r, span);
	}
	int wd = (int)((day + 3) % 7);
	int workday = (p->workdays >> wd) & 1;
	int hour;
	unsigned k = rng_below(r, 100);
	if (k < 2) {
		hour = rng_range(r, 0, 23);  /* insomnia, night shifts, jet lag */
	} else if (!workday && wd >= 5) {
		if (k < 45)
			hour = p->weekend_peak + rng_range(r, -2, 2);
		else if (k < 85)
			hour = rng_range(r, 19, 23);
		else
			hour = rng_range(r, 9, 23);
	} else {
		if (k < 40)
			hour = p->peak_hour[0] + rng_range(r, -1, 1);
		else if (k < 75)
			hour = p->peak_hour[1] + rng_range(r, -1, 1);
		else if (k < 93)
			hour = rng_range(r, 18, 23);
		else
			hour = rng_range(r, 7, 23);
	}
	if (hour > 23)
		hour = 23;
	if (hour < 0)
		hour = 0;
	return SAMPLE_START_TIME + (int64_t)day * DAY + hour * 3600LL + rng_below(r, 3600);
}

static uint16_t draw_budget(struct rng *r)
{
	uint32_t b = 1 + rng_below(r, 4) + rng_below(r, 4);
	if (rng_pct(r, 25))
		b += rng_below(r, 12);
	return (uint16_t)b;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static int owns(const struct sample_user *p, unsigned d)
{
	return (p->devices >> d) & 1;
}

/* The first owned device in order of preference. */
static uint8_t device_pref(const struct sample_user *p, const uint8_t *pref, unsigned n)
{
	for (unsigned k = 0; k < n; k++)
		if (owns(p, pref[k]))
			return pref[k];
	return SAMPLE_DEVICE_PHONE;
}

static int in_interests(const struct ustate *s, const struct item_meta *m)
{
	for (unsigned k = 0; k < s->p->n_interests; k++)
		if (s->interest[k] == m->genre || s->interest[k] == m->genre2)
			return 1;
	return 0;
}

static int series_slot(const struct ustate *s, uint32_t first)
{
	for (unsigned k = 0; k < s->nseries; k++)
		if (s->series[k].first == first)
			return (int)k;
	return -1;
}

/* The user watched episode ep of a series: the next one is due. */
static void series_advance(struct ustate *s, uint32_t item, const struct item_meta *m)
{
	if (m->slen < 2)
		return;
	uint32_t first = item - m->ep;
	int k = series_slot(s, first);
	if (m->ep + 1 >= m->slen) {
		if (k >= 0)
			s->series[k] = s->series[--s->nseries];
		return;
	}
	if (k < 0) {
		if (s->nseries == SERIES_SLOTS)
			s->series[0] = s->series[--s->nseries];
		k = (int)s->nseries++;
		s->series[k].first = first;
		s->series[k].next = 0;
	}
	if (m->ep + 1 > s->series[k].next)
		s->series[k].next = (uint8_t)(m->ep + 1);
}

static int recently_seen(const struct ustate *s, uint32_t item)
{
	unsigned n = s->nrecent < RECENT_SLOTS ? s->nrecent : RECENT_SLOTS;
	for (unsigned k = 0; k < n; k++)
		if (s->recent[k] == item)
			return 1;
	return 0;
}

static uint32_t pick_item(struct gen *g, struct ustate *s, int first_touch)
{
	const struct catalog *c = &g->cat;
	struct rng *r = &s->r;
	uint32_t item = 0;

	/* Series are followed in order: an open series is often resumed. */
	if (s->nseries && rng_pct(r, first_touch ? 60 : 35)) {
		unsigned k = rng_below(r, s->nseries);
		return s->series[k].first + s->series[k].next;
	}
	for (int tries = 0; tries < 4; tries++) {
		if (rng_pct(r, 85))
			item = catalog_pick_in(c, r, s->interest[s->cur]);
		else
			item = catalog_pick_global(c, r);  /* exploring */
		const struct item_meta *m = &c->meta[item];
		/* Nobody starts a series in the middle, and a series begun goes on
		 * where it was left, nearly always. */
		if (m->slen > 1 && rng_pct(r, 92)) {
			int k = series_slot(s, item - m->ep);
			item = item - m->ep + (k >= 0 ? s->series[k].next : 0);
		}
		if (!recently_seen(s, item))
			break;
	}
	return item;
}

static void emit(struct gen *g, struct ustate *s, uint32_t item, enum sample_action a, unsigned value)
{
	struct out *w = &g->f[SAMPLE_FILE_EVENTS];
	struct rng *r = &s->r;
	out_row(w);
	out_mem(w, s->uid, s->uid_len); out_sep(w);
	out_id(w, 'I', item); out_sep(w);
	out_u64(w, (uint64_t)s->t); out_sep(w);
	out_str(w, action_names[a]); out_sep(w);
	if (a == SAMPLE_ACTION_RATE)
		out_ch(w, (char)('0' + value));
	out_sep(w);
	/* GPS-like noise of a few tens of metres around the session's spot. */
	out_coord(w, s->lat + rng_range(r, -150, 150)); out_sep(w);
	out_coord(w, s->lon + rng_range(r, -220, 220)); out_sep(w);
	out_str(w, device_names[s->device]);
	out_nl(w);
	s->lat += s->dlat;
	s->lon += s->dlon;
	s->left--;
	g->st.events++;
	g->st.actions[a]++;
}

/* One item touched: view, then maybe click, cart, purchase and a rating, each
 * a little later than the one before, while the session's budget lasts. */
static void touch(struct gen *g, struct ustate *s, uint32_t item)
{
	const struct item_meta *m = &g->cat.meta[item];
	struct rng *r = &s->r;
	int liked = in_interests(s, m);
	int resumed = m->ep > 0 && series_slot(s, item - m->ep) >= 0;

	s->recent[s->nrecent++ % RECENT_SLOTS] = item;
	emit(g, s, item, SAMPLE_ACTION_VIEW, 0);
	if (!s->left || !rng_pct(r, resumed ? 80 : liked ? 45 : 20))
		return;
	s->t += rng_range(r, 5, 60);
	emit(g, s, item, SAMPLE_ACTION_CLICK, 0);
	series_advance(s, item, m);
	if (!s->left)
		return;
	if (!rng_pct(r, liked ? 35 : 20)) {
		/* Watched or read without buying: sometimes rated all the same. */
		if (rng_pct(r, 12))
			goto rate;
		return;
	}
	s->t += rng_range(r, 30, 300);
	emit(g, s, item, SAMPLE_ACTION_CART, 0);
	if (!s->left || !rng_pct(r, 55))
		return;
	s->t += rng_range(r, 20, 200);
	emit(g, s, item, SAMPLE_ACTION_PURCHASE, 0);
	if (!s->left || !rng_pct(r, 45))
		return;
rate:
	s->t += rng_range(r, 60, 900);
	int v = (liked ? 4 : 3) + m->quality;
	unsigned k = rng_below(r, 100);
	v += k < 20 ? -1 : k >= 80 ? 1 : 0;
	v = v < 1 ? 1 : v > 5 ? 5 : v;
	emit(g, s, item, SAMPLE_ACTION_RATE, (unsigned)v);
}

/* Markov switch of the current interest, and now and then a slow drift of
 * the interests themselves. */
static void interest_step(struct ustate *s)
{
	struct rng *r = &s->r;
	unsigned n = s->p->n_interests;
	if (rng_pct(r, 25))
		s->cur = rng_weighted(r, s->iw, n);
	if (rng_pct(r, 3)) {
		unsigned k = rng_below(r, n);
		if (k == s->cur)
			k = (k + 1) % n;
		unsigned ng = pick_related_genre(r, s->interest[s->cur]);
		unsigned dup = 0;
		for (unsigned j = 0; j < n; j++)
			dup |= s->interest[j] == ng;
		if (!dup)
			s->interest[k] = (uint8_t)ng;
	}
}

/* Where the session happens and on which device, from the time and the
 * user's routine. */
static void session_place(struct gen *g, struct ustate *s, uint32_t first_item)
{
	const struct sample_user *p = s->p;
	struct rng *r = &s->r;
	int wd = weekday_of(s->t), hour = hour_of(s->t);
	int workday = (p->workdays >> wd) & 1;
	enum ctx ctx = CTX_HOME;

	if (workday && hour >= p->work_start && hour < p->work_end && rng_pct(r, 85))
		ctx = CTX_WORK;
	else if (workday && (hour == p->work_start - 1 || hour == p->work_end) && rng_pct(r, 80))
		ctx = CTX_COMMUTE;
	else if (!workday && hour >= 10 && hour < 19 && rng_pct(r, 40))
		ctx = CTX_OUT;
	else if (hour >= 10 && hour < 18 && rng_pct(r, 10))
		ctx = CTX_OUT;

	s->dlat = s->dlon = 0;
	static const uint8_t work_pref[] = { SAMPLE_DEVICE_LAPTOP, SAMPLE_DEVICE_PHONE, SAMPLE_DEVICE_TABLET };
	static const uint8_t move_pref[] = { SAMPLE_DEVICE_PHONE, SAMPLE_DEVICE_TABLET, SAMPLE_DEVICE_LAPTOP };
	static const uint8_t home_pref[] = { SAMPLE_DEVICE_TABLET, SAMPLE_DEVICE_LAPTOP, SAMPLE_DEVICE_PHONE };
	switch (ctx) {
	case CTX_WORK:
		s->lat = p->work_lat + rng_range(r, -300, 300);
		s->lon = p->work_lon + rng_range(r, -450, 450);
		s->device = rng_pct(r, 80) ? device_pref(p, work_pref, 3) : device_pref(p, move_pref, 3);
		break;
	case CTX_COMMUTE: {
		/* Somewhere on the way, moving towards the destination. */
		int to_work = hour < 12;
		int32_t f = rng_range(r, 100, 700);
		int32_t alat = to_work ? p->home_lat : p->work_lat, alon = to_work ? p->home_lon : p->work_lon;
		int32_t blat = to_work ? p->work_lat : p->home_lat, blon = to_work ? p->work_lon : p->home_lon;
		s->lat = alat + (int32_t)((int64_t)(blat - alat) * f / 1000);
		s->lon = alon + (int32_t)((int64_t)(blon - alon) * f / 1000);
		s->dlat = (blat - alat) / 40;
		s->dlon = (blon - alon) / 40;
		s->device = device_pref(p, move_pref, 3);
		break;
	}
	case CTX_OUT: {
		/* Out in town, where the first thing looked at is. */
		const struct district_def *d = &districts[g->cat.meta[first_item].place];
		s->lat = SAMPLE_CITY_LAT_E6 + d->dlat + rng_range(r, -3500, 3500);
		s->lon = SAMPLE_CITY_LON_E6 + d->dlon + rng_range(r, -5000, 5000);
		s->device = device_pref(p, move_pref, 3);
		break;
	}
	case CTX_HOME:
		s->lat = p->home_lat;
		s->lon = p->home_lon;
		if (owns(p, SAMPLE_DEVICE_TV) && hour >= 19 && rng_pct(r, 65))
			s->device = SAMPLE_DEVICE_TV;
		else if (rng_pct(r, 30))
			s->device = device_pref(p, move_pref, 3);
		else
			s->device = device_pref(p, home_pref, 3);
		break;
	}
}

static int scratch_reserve(struct gen *g, size_t n)
{
	if (n <= g->scratch_cap)
		return 0;
	size_t cap = g->scratch_cap ? g->scratch_cap : 256;
	while (cap < n)
		cap *= 2;
	int64_t *st = realloc(g->starts, cap * sizeof(*st));
	if (!st)
		return -ENOMEM;
	g->starts = st;
	uint16_t *bu = realloc(g->budgets, cap * sizeof(*bu));
	if (!bu)
		return -ENOMEM;
	g->budgets = bu;
	g->scratch_cap = cap;
	return 0;
}

static void write_user_row(struct gen *g, const struct ustate *s)
{
	struct out *w = &g->f[SAMPLE_FILE_USERS];
	const struct sample_user *p = s->p;
	out_row(w);
	out_mem(w, s->uid, s->uid_len); out_sep(w);
	out_u64(w, p->age); out_sep(w);
	out_str(w, gender_names[p->gender]); out_sep(w);
	out_str(w, occupations[p->occupation].name); out_sep(w);
	out_field(w, districts[p->home_district].name);
	out_nl(w);
}

static int gen_user(struct gen *g, uint32_t user)
{
	struct sample_user p;
	struct ustate s;
	int ret;

	sample_user_profile(g->o, user, &p);
	memset(&s, 0, sizeof(s));
	s.p = &p;
	s.uid_len = (size_t)snprintf(s.uid, sizeof(s.uid), "U%05u", user + 1);
	write_user_row(g, &s);
	rng_seed(&s.r, g->o->seed, STREAM_EVENTS, user);
	for (unsigned k = 0; k < p.n_interests; k++) {
		s.interest[k] = p.interest[k];
		s.iw[k] = p.interest_w[k];
	}
	s.cur = rng_weighted(&s.r, s.iw, p.n_interests);

	/* Session budgets first, so that the number of sessions is known before
	 * their start times are drawn and sorted. */
	size_t nsess = 0;
	uint32_t sum = 0;
	ret = scratch_reserve(g, p.target_events);
	if (ret)
		return ret;
	while (sum < p.target_events) {
		uint32_t b = draw_budget(&s.r);
		if (b > p.target_events - sum)
			b = p.target_events - sum;
		g->budgets[nsess++] = (uint16_t)b;
		sum += b;
	}
	for (size_t k = 0; k < nsess; k++)
		g->starts[k] = plan_start(&s.r, &p);
	qsort(g->starts, nsess, sizeof(*g->starts), cmp_i64);

	/* Sessions never overlap: a session that would start before the last
	 * one ended waits for it, which keeps the user's events in time order. */
	int64_t end = SAMPLE_START_TIME + (int64_t)g->o->days * DAY;
	int64_t earliest = 0;
	for (size_t k = 0; k < nsess; k++) {
		s.t = g->starts[k] > earliest ? g->starts[k] : earliest;
		/* Leave room for the longest session (under 1500 s an event); past
		 * the span the rest is cut, but every user keeps a first session. */
		int64_t room = (int64_t)g->budgets[k] * 1500;
		if (s.t + room >= end) {
			if (k)
				break;
			s.t = end - room - 1;
		}
		interest_step(&s);
		s.left = g->budgets[k];
		uint32_t item = pick_item(g, &s, 1);
		session_place(g, &s, item);
		g->st.sessions++;
		for (;;) {
			touch(g, &s, item);
			if (!s.left)
				break;
			s.t += rng_range(&s.r, 10, 240);
			item = pick_item(g, &s, 0);
		}
		earliest = s.t + 600 + rng_below(&s.r, 1800);
	}
	g->st.users++;
	return 0;
}

/* --- README ------------------------------------------------------------ */
static void write_readme(struct gen *g)
{
	const struct sample_opts *o = g->o;
	struct out *w = &g->f[SAMPLE_FILE_README];
	char line[512];
	const char *fmt = o->format == SAMPLE_FORMAT_TSV ? "tsv" : "csv";

#define LINE(...) do { \
		snprintf(line, sizeof(line), __VA_ARGS__); \
		out_row(w); out_str(w, line); out_nl(w); \
	} while (0)
	LINE("Synthetic recommendation dataset written by recd's generator (recctl generate),");
	LINE("generator version %d. Nothing in it describes real people, places or works.",
	     SAMPLE_GENERATOR_VERSION);
	LINE("%s", "");
	LINE("options: --seed %llu --users %u --items %u --days %u --events-per-user %u --format %s",
	     (unsigned long long)o->seed, o->users, o->items, o->days, o->events_per_user, fmt);
	LINE("time span: %u days from 2026-01-01T00:00:00Z (Unix %lld); the city keeps UTC.",
	     o->days, (long long)SAMPLE_START_TIME);
	LINE("city: %s, centred on 50.820000,-0.140000, %u districts.", CITY_NAME,
	     (unsigned)N_DISTRICTS);
	LINE("%s", "");
	LINE("%-12s %llu users (user,age,gender,occupation,home_city)",
	     sample_file_name(o->format, SAMPLE_FILE_USERS), (unsigned long long)g->st.users);
	LINE("%-12s %llu items (item,title,text,categories,creator,place,price)",
	     sample_file_name(o->format, SAMPLE_FILE_ITEMS), (unsigned long long)g->st.items);
	LINE("%-12s %llu events in %llu sessions (user,item,time,action,value,lat,lon,device)",
	     sample_file_name(o->format, SAMPLE_FILE_EVENTS), (unsigned long long)g->st.events,
	     (unsigned long long)g->st.sessions);
	LINE("%-12s %llu view, %llu click, %llu cart, %llu purchase, %llu rate", "",
	     (unsigned long long)g->st.actions[SAMPLE_ACTION_VIEW],
	     (unsigned long long)g->st.actions[SAMPLE_ACTION_CLICK],
	     (unsigned long long)g->st.actions[SAMPLE_ACTION_CART],
	     (unsigned long long)g->st.actions[SAMPLE_ACTION_PURCHASE],
	     (unsigned long long)g->st.actions[SAMPLE_ACTION_RATE]);
	LINE("%-12s %llu triples over %llu entities (head,relation,tail,head_type,tail_type)",
	     "triples.tsv", (unsigned long long)g->st.triples, (unsigned long long)g->st.entities);
	LINE("%-12s %llu links from item IDs to KG entities (item,entity)",
	     sample_file_name(o->format, SAMPLE_FILE_LINKS), (unsigned long long)g->st.links);
	LINE("%s", "");
	LINE("Built in: daily and weekly rhythms, home/work/commute/out locations, devices");
	LINE("by context, Zipf item popularity, 2-4 drifting genre interests per user,");
	LINE("series watched in order, view-click-cart-purchase-rate funnels.");
	LINE("The same options give the same bytes. Format: sample/FORMAT.md in recd's source.");
#undef LINE
}

/* --- driver ------------------------------------------------------------ */
static void tmp_name(char *buf, size_t cap, const char *name)
{
	snprintf(buf, cap, ".%s.tmp", name);
}

static void set_why(char *why, size_t whylen, const char *what, int err)
{
	if (why && whylen)
		snprintf(why, whylen, "%s: %s", what, strerror(-err));
}

int sample_generate(const struct sample_opts *o, const char *outdir,
                    struct sample_stats *stats, char *why, size_t whylen)
{
	struct gen g;
	const char *bad;
	char tmp[64];
	int dfd = -1, ret;
	enum sample_file f;

	memset(&g, 0, sizeof(g));
	for (f = 0; f < SAMPLE_FILE_COUNT; f++)
		g.f[f].fd = -1;
	g.o = o;

	ret = sample_opts_check(o, &bad);
	if (ret) {
		set_why(why, whylen, bad, ret);
		return ret;
	}
	if (mkdir(outdir, 0755) < 0 && errno != EEXIST) {
		ret = -errno;
		set_why(why, whylen, outdir, ret);
		return ret;
	}
	dfd = open(outdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		ret = -errno;
		set_why(why, whylen, outdir, ret);
		return ret;
	}
	for (f = 0; f < SAMPLE_FILE_COUNT; f++) {
		const char *name = sample_file_name(o->format, f);
		struct out *w = &g.f[f];
		w->sep = (f == SAMPLE_FILE_TRIPLES || o->format == SAMPLE_FORMAT_TSV) ? '\t' : ',';
		w->buf = malloc(OUT_BUF_SIZE);
		if (!w->buf) {
			ret = -ENOMEM;
			set_why(why, whylen, "output buffers", ret);
			goto out;
		}
		tmp_name(tmp, sizeof(tmp), name);
		w->fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (w->fd < 0) {
			ret = -errno;
			set_why(why, whylen, name, ret);
			goto out;
		}
	}

	ret = catalog_build(&g.cat, o);
	if (ret) {
		set_why(why, whylen, "catalog", ret);
		goto out;
	}
	write_catalog(&g);

	out_header(&g.f[SAMPLE_FILE_USERS], "user,age,gender,occupation,home_city");
	out_header(&g.f[SAMPLE_FILE_EVENTS], "user,item,time,action,value,lat,lon,device");
	uint32_t step = o->users / 100 ? o->users / 100 : 1;
	for (uint32_t u = 0; u < o->users; u++) {
		ret = gen_user(&g, u);
		if (ret) {
			set_why(why, whylen, "events", ret);
			goto out;
		}
		if (g.f[SAMPLE_FILE_EVENTS].err || g.f[SAMPLE_FILE_USERS].err)
			break;  /* reported below */
		if (o->progress && (u + 1) % step == 0)
			o->progress(o->progress_arg, u + 1, o->users);
	}
	write_readme(&g);

	/* Flush and close everything before anything is renamed into place. */
	for (f = 0; f < SAMPLE_FILE_COUNT; f++) {
		struct out *w = &g.f[f];
		out_flush(w);
		if (!w->err && close(w->fd) < 0)
			w->err = -errno;
		else if (w->err)
			close(w->fd);
		w->fd = -1;
		if (w->err) {
			ret = w->err;
			set_why(why, whylen, sample_file_name(o->format, f), ret);
			goto out;
		}
		g.st.bytes += w->bytes;
	}
	for (f = 0; f < SAMPLE_FILE_COUNT; f++) {
		const char *name = sample_file_name(o->format, f);
		tmp_name(tmp, sizeof(tmp), name);
		if (renameat(dfd, tmp, dfd, name) < 0) {
			ret = -errno;
			set_why(why, whylen, name, ret);
			goto out;
		}
	}
	*stats = g.st;
	ret = 0;
out:
	for (f = 0; f < SAMPLE_FILE_COUNT; f++) {
		if (g.f[f].fd >= 0)
			close(g.f[f].fd);
		if (ret && dfd >= 0) {
			tmp_name(tmp, sizeof(tmp), sample_file_name(o->format, f));
			unlinkat(dfd, tmp, 0);
		}
		free(g.f[f].buf);
	}
	catalog_free(&g.cat);
	free(g.starts);
	free(g.budgets);
	if (dfd >= 0)
		close(dfd);
	return ret;
}
