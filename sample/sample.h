/* sample.h: recd's synthetic dataset generator (recctl generate).  It writes
 * events, items, users and a knowledge graph in the generic import format,
 * byte-identical for the same seed and options on every machine, with the
 * structure the models are meant to find (rhythms, places, devices, drifting
 * interests, popularity skew, series, funnels).  See sample/FORMAT.md.
 */
#ifndef RECD_SAMPLE_H
#define RECD_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

/* Bumped whenever the same seed and options would give different bytes. */
#define SAMPLE_GENERATOR_VERSION 1

#define SAMPLE_USERS_MAX           10000000u
#define SAMPLE_ITEMS_MAX           10000000u
#define SAMPLE_DAYS_MAX            3650u
#define SAMPLE_EVENTS_PER_USER_MAX 10000u

#define SAMPLE_DEFAULT_SEED            1
#define SAMPLE_DEFAULT_USERS           1000u
#define SAMPLE_DEFAULT_ITEMS           500u
#define SAMPLE_DEFAULT_DAYS            90u
#define SAMPLE_DEFAULT_EVENTS_PER_USER 50u

/* Day 0 starts at 2026-01-01T00:00:00Z, a Thursday.  The synthetic city keeps
 * UTC all year, so an event's hour of day is (time % 86400) / 3600. */
#define SAMPLE_START_TIME 1767225600LL

/* The city's centre, in microdegrees (50.820000 N, 0.140000 W). */
#define SAMPLE_CITY_LAT_E6 50820000
#define SAMPLE_CITY_LON_E6 (-140000)

enum sample_format {
	SAMPLE_FORMAT_CSV = 0,  /* ',' separated, RFC 4180 quoting, *.csv */
	SAMPLE_FORMAT_TSV,      /* tab separated, no quoting needed, *.tsv */
};

struct sample_opts {
	uint64_t seed;
	uint32_t users;            /* 1 .. SAMPLE_USERS_MAX */
	uint32_t items;            /* 1 .. SAMPLE_ITEMS_MAX */
	uint32_t days;             /* 1 .. SAMPLE_DAYS_MAX */
	uint32_t events_per_user;  /* average; 1 .. SAMPLE_EVENTS_PER_USER_MAX */
	enum sample_format format;
	/* Called now and then from the user loop (may be NULL). */
	void (*progress)(void *arg, uint64_t users_done, uint64_t users_total);
	void *progress_arg;
};

enum sample_action {
	SAMPLE_ACTION_VIEW = 0, SAMPLE_ACTION_CLICK, SAMPLE_ACTION_CART,
	SAMPLE_ACTION_PURCHASE, SAMPLE_ACTION_RATE,
	SAMPLE_ACTION_COUNT
};

enum sample_device {
	SAMPLE_DEVICE_PHONE = 0, SAMPLE_DEVICE_TABLET, SAMPLE_DEVICE_LAPTOP, SAMPLE_DEVICE_TV,
	SAMPLE_DEVICE_COUNT
};

struct sample_stats {
	uint64_t users, items, events, sessions;
	uint64_t actions[SAMPLE_ACTION_COUNT];
	uint64_t triples, links, entities;
	uint64_t genres, creators, places;
	uint64_t series, series_items;  /* series, and the items in them */
	uint64_t bytes;             /* all files together */
};

/* Fills o with the defaults above (seed 1, CSV, no progress callback). */
void sample_opts_default(struct sample_opts *o);
/* 0, or -EINVAL with *bad_option set to the long option's name ("--users"). */
int sample_opts_check(const struct sample_opts *o, const char **bad_option);

/* The files, in the order they are written. */
enum sample_file {
	SAMPLE_FILE_ITEMS = 0, SAMPLE_FILE_LINKS, SAMPLE_FILE_TRIPLES,
	SAMPLE_FILE_USERS, SAMPLE_FILE_EVENTS, SAMPLE_FILE_README,
	SAMPLE_FILE_COUNT
};
/* "events.csv", or "events.tsv" with SAMPLE_FORMAT_TSV; triples.tsv and README
 * never change. */
const char *sample_file_name(enum sample_format fmt, enum sample_file f);
const char *sample_action_name(enum sample_action a);
const char *sample_device_name(enum sample_device d);

/* Writes the dataset into outdir (created, mode 0755, when it does not exist;
 * files of an earlier run there are replaced).  Each file is written under a
 * temporary name and renamed into place once every file is complete, so a
 * failed run never leaves a file that looks whole.  Returns 0 or a negative
 * errno; on failure why (if not NULL) says which file or step failed. */
int sample_generate(const struct sample_opts *o, const char *outdir,
                    struct sample_stats *st, char *why, size_t whylen);

/* --- ground truth ------------------------------------------------------ */
/* What the generator decided about a user before any event was drawn, for
 * tests and for evaluations that check whether a model recovers it.  user is
 * the 0-based index: user 0 is "U00001" in the files.  Interests are the
 * starting ones; they drift while events are drawn. */
#define SAMPLE_INTERESTS_MAX 4
#define SAMPLE_NO_WORK 0xff

struct sample_user {
	uint8_t  age;
	uint8_t  gender;          /* index into the gender names */
	uint8_t  occupation;      /* index into the occupation names */
	uint8_t  home_district;   /* index into the districts */
	uint8_t  work_district;   /* SAMPLE_NO_WORK when the user has no workplace */
	uint8_t  work_start, work_end;  /* hours [start, end) on workdays */
	uint8_t  workdays;        /* bit d = weekday d (0 = Monday) is a workday */
	uint8_t  active_days;     /* bit d = the user tends to be active that weekday */
	uint8_t  peak_hour[2];    /* preferred hours on weekdays */
	uint8_t  weekend_peak;    /* preferred daytime hour on weekends */
	uint8_t  devices;         /* bit SAMPLE_DEVICE_* = owns one */
	uint8_t  n_interests;     /* 2 .. SAMPLE_INTERESTS_MAX */
	uint8_t  interest[SAMPLE_INTERESTS_MAX];     /* leaf genre indexes */
	uint16_t interest_w[SAMPLE_INTERESTS_MAX];   /* relative weights */
	int32_t  home_lat, home_lon;  /* microdegrees */
	int32_t  work_lat, work_lon;  /* = home when there is no workplace */
	uint32_t first_day, last_day; /* active on days [first_day, last_day) */
	uint32_t target_events;       /* events drawn for the user (a few may be cut
	                                 where sessions run past the last day) */
};
void sample_user_profile(const struct sample_opts *o, uint32_t user, struct sample_user *u);

/* Names of the genres (leaf genres first, then their parents), districts,
 * occupations and genders; NULL past the end. */
const char *sample_genre_name(unsigned g);
const char *sample_district_name(unsigned d);
const char *sample_occupation_name(unsigned o);
const char *sample_gender_name(unsigned g);

#endif
