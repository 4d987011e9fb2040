/* conf.h: recd.conf, the daemon's configuration file ("key = value" lines),
 * parsed into a plain struct with every limit checked.  recd.conf(5) documents
 * each key; keep the two in step. */
#ifndef RECD_CONF_H
#define RECD_CONF_H

#include <stddef.h>
#include <sys/types.h>

#define CONF_FILE_MAX        (256u * 1024)  /* bytes in the whole file */
#define CONF_LINE_MAX        1024           /* bytes in one line, newline excluded */
#define CONF_PATH_MAX        1024           /* bytes in state_dir */
/* runtime_dir will hold the request socket "recd.sock"; a Unix socket path has
 * 108 bytes with its NUL, so the directory may take 96 of them. */
#define CONF_RUNTIME_DIR_MAX 96
#define CONF_ALLOW_MAX       256            /* entries in allow_users, in allow_groups */
#define CONF_CLIENTS_MAX     4096
#define CONF_STATUS_INTERVAL_MAX 86400      /* seconds */

#define CONF_DEFAULT_STATE_DIR   "/var/lib/recd"
/* The spool (recd-spool(5)): where batch jobs come in, and their limits. */
#define CONF_DEFAULT_SPOOL_DIR   "/var/spool/recd"
#define CONF_DEFAULT_TRUSTED_KEYS "/etc/recd/trusted-keys"
#define CONF_DEFAULT_SPOOL_RESCAN 30             /* seconds */
#define CONF_DEFAULT_SPOOL_MAX_JOB (16u << 20)   /* bytes */
#define CONF_DEFAULT_SPOOL_STALE  86400          /* seconds */
#define CONF_DEFAULT_SPOOL_WORKERS 2
#define CONF_DEFAULT_SPOOL_SIG_AGE 3600          /* seconds */
#define CONF_SPOOL_DIR_MAX       512             /* bytes of spool_dir, spool_trusted_keys */
#define CONF_SPOOL_RESCAN_MAX    86400
#define CONF_SPOOL_MAX_JOB_MAX   (1u << 30)
#define CONF_SPOOL_STALE_MAX     (366u * 86400)
#define CONF_SPOOL_WORKERS_MAX   64
#define CONF_SPOOL_SIG_AGE_MAX   (366u * 86400)
#define CONF_DEFAULT_RUNTIME_DIR "/run/recd"
#define CONF_DEFAULT_MAX_CLIENTS 64
#define CONF_DEFAULT_STATUS_INTERVAL 10
/* Compaction of the store's recent events (daemon/compact.h). */
#define CONF_DEFAULT_COMPACT_THRESHOLD 100000u   /* events */
#define CONF_DEFAULT_COMPACT_MAX_AGE   60u       /* seconds */
#define CONF_COMPACT_THRESHOLD_MAX     100000000u
#define CONF_COMPACT_MAX_AGE_MAX       86400u

/* Plain data, no pointers: a reload parses into a copy and swaps it in only
 * when the whole file was good. */
struct recd_conf {
	char     state_dir[CONF_PATH_MAX + 1];
	char     runtime_dir[CONF_RUNTIME_DIR_MAX + 1];
	int      log_level;                   /* LOG_ERR .. LOG_DEBUG */
	uid_t    allow_uids[CONF_ALLOW_MAX];  /* resolved allow_users, no duplicates */
	size_t   n_allow_uids;
	gid_t    allow_gids[CONF_ALLOW_MAX];  /* resolved allow_groups, no duplicates */
	size_t   n_allow_gids;
	unsigned max_clients;                 /* 1 .. CONF_CLIENTS_MAX */
	unsigned status_interval;             /* seconds between STATUS= updates; 0 = never */
	char     spool_dir[CONF_SPOOL_DIR_MAX + 1];
	char     spool_trusted_keys[CONF_SPOOL_DIR_MAX + 1]; /* folder of NAME.pub Ed25519 keys */
	unsigned spool_rescan_interval;       /* seconds between full intake scans, 1 .. */
	unsigned spool_max_job_size;          /* bytes of one job file */
	unsigned spool_stale_age;             /* seconds before a staging file is removed; 0 = never */
	unsigned spool_workers;               /* bulk job worker threads, 1 .. */
	int      spool_require_signature;     /* 1: unsigned jobs fail */
	unsigned spool_signature_max_age;     /* seconds a signed job stays valid */
	unsigned compact_threshold;           /* recent events that start a compaction; 0 = never by count */
	unsigned compact_max_age;             /* seconds a recent event waits at most; 0 = no limit */
};

void conf_defaults(struct recd_conf *c);

/* Parses text (len bytes) named name in messages, over the defaults.  On
 * failure returns -EINVAL (or -ENOMEM, -EIO from a user database lookup) and
 * leaves "name:line: why" in err; *out is written only on success. */
int conf_parse(struct recd_conf *out, const char *name, const char *text, size_t len,
               char *err, size_t errlen);

/* Reads and parses the file at path: returns 0.  A missing file gives the
 * defaults and returns 1 when missing_ok, else -ENOENT; err says why on
 * failure. */
int conf_load(struct recd_conf *out, const char *path, int missing_ok, char *err, size_t errlen);

/* The command line's -s: the same checks as state_dir in the file; on failure
 * err holds "state_dir: why" and c is unchanged. */
int conf_set_state_dir(struct recd_conf *c, const char *dir, char *err, size_t errlen);

const char *conf_log_level_name(int level);

#endif
