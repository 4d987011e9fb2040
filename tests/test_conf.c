/* test_conf.c: the recd.conf parser: defaults, every key's good and bad
 * values, the exact error messages (file and line), limits, and the file
 * checks of conf_load(). */
#include "config.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "daemon/conf.h"
#include "tests/test.h"

#define NAME "/etc/recd/recd.conf"

static char err[2048];

static struct recd_conf parse_ok(const char *text)
{
	struct recd_conf c;
	err[0] = '\0';
	int r = conf_parse(&c, NAME, text, strlen(text), err, sizeof err);
	if (r != 0) {
		fprintf(stderr, "parse of \"%s\" failed (%d): %s\n", text, r, err);
		exit(1);
	}
	return c;
}

/* text must fail with exactly msg; the output struct must stay untouched. */
static void parse_bad_len(const char *text, size_t len, const char *msg, int line)
{
	struct recd_conf c, before;
	memset(&c, 0xa5, sizeof c);
	before = c;
	err[0] = '\0';
	int r = conf_parse(&c, NAME, text, len, err, sizeof err);
	if (r >= 0 || strcmp(err, msg) != 0) {
		fprintf(stderr, "line %d: parse returned %d with \"%s\", expected an error \"%s\"\n",
		        line, r, err, msg);
		exit(1);
	}
	CHECK(memcmp(&c, &before, sizeof c) == 0);
}
#define parse_bad(text, msg) parse_bad_len((text), strlen(text), (msg), __LINE__)

static void test_defaults(void)
{
	struct recd_conf c = parse_ok("");
	CHECK(strcmp(c.state_dir, "/var/lib/recd") == 0);
	CHECK(strcmp(c.runtime_dir, "/run/recd") == 0);
	CHECK_EQ(c.log_level, LOG_INFO);
	CHECK_EQ(c.n_allow_uids, 0);
	CHECK_EQ(c.n_allow_gids, 0);
	CHECK_EQ(c.max_clients, 64);
	CHECK_EQ(c.status_interval, 10);
	CHECK_EQ(c.compact_threshold, 100000);
	CHECK_EQ(c.compact_max_age, 60);

	/* Only comments and blank lines, no final newline. */
	c = parse_ok("# a comment\n\n   \t\n  # indented comment\n#state_dir = /x");
	CHECK(strcmp(c.state_dir, "/var/lib/recd") == 0);
}

static void test_all_keys(void)
{
	struct passwd *pw = getpwnam("nobody");
	struct group *gr = getgrnam("daemon");
	if (!pw || !gr)
		test_skip("no user 'nobody' or group 'daemon' on this system");
	uid_t nobody = pw->pw_uid;
	gid_t daemon_gid = gr->gr_gid;

	struct recd_conf c = parse_ok(
		"# recd.conf\n"
		"state_dir = /srv/recd/state\n"
		"runtime_dir=/run/recd2\r\n"            /* no blanks, CRLF */
		"\tlog_level\t=\tdebug  \n"              /* tabs, trailing blanks */
		"allow_users = root, nobody 4242,0\n"    /* names, ids, both separators, a repeat */
		"allow_groups = daemon,7\n"
		"max_clients = 4096\n"
		"status_interval = 0\n");
	CHECK(strcmp(c.state_dir, "/srv/recd/state") == 0);
	CHECK(strcmp(c.runtime_dir, "/run/recd2") == 0);
	CHECK_EQ(c.log_level, LOG_DEBUG);
	CHECK_EQ(c.n_allow_uids, 3);
	CHECK_EQ(c.allow_uids[0], 0);
	CHECK_EQ(c.allow_uids[1], nobody);
	CHECK_EQ(c.allow_uids[2], 4242);
	CHECK_EQ(c.n_allow_gids, 2);
	CHECK_EQ(c.allow_gids[0], daemon_gid);
	CHECK_EQ(c.allow_gids[1], 7);
	CHECK_EQ(c.max_clients, 4096);
	CHECK_EQ(c.status_interval, 0);

	/* Each level name, and the limits of the numbers. */
	static const struct { const char *name; int level; } levels[] = {
		{ "err", LOG_ERR }, { "warning", LOG_WARNING }, { "notice", LOG_NOTICE },
		{ "info", LOG_INFO }, { "debug", LOG_DEBUG },
	};
	for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
		char text[64];
		snprintf(text, sizeof text, "log_level = %s\n", levels[i].name);
		CHECK_EQ(parse_ok(text).log_level, levels[i].level);
		CHECK(strcmp(conf_log_level_name(levels[i].level), levels[i].name) == 0);
	}
	CHECK_EQ(parse_ok("max_clients = 1").max_clients, 1);
	CHECK_EQ(parse_ok("status_interval = 86400").status_interval, 86400);
	c = parse_ok("compact_threshold = 0\ncompact_max_age = 0\n");
	CHECK_EQ(c.compact_threshold, 0);
	CHECK_EQ(c.compact_max_age, 0);
	c = parse_ok("compact_threshold = 100000000\ncompact_max_age = 86400\n");
	CHECK_EQ(c.compact_threshold, 100000000);
	CHECK_EQ(c.compact_max_age, 86400);
	CHECK_EQ(parse_ok("allow_users = 4294967294").allow_uids[0], 4294967294u);
	/* An empty list is a list: nobody named. */
	c = parse_ok("allow_users =\nallow_groups = \n");
	CHECK_EQ(c.n_allow_uids, 0);
	CHECK_EQ(c.n_allow_gids, 0);
	/* A value may hold '=' and ends at the line's end, blanks trimmed. */
	CHECK(strcmp(parse_ok("state_dir = /a=b c  ").state_dir, "/a=b c") == 0);
}

static void test_errors(void)
{
	parse_bad("foo = 1\n", NAME ":1: unknown key 'foo'");
	parse_bad("# c\n\nlog_level = info\nfoo = bar\n", NAME ":4: unknown key 'foo'");
	parse_bad("max_clients = 5\nlog_level = info\n  max_clients=6\n",
	          NAME ":3: duplicate key 'max_clients' (first set on line 1)");
	parse_bad("garbage\n", NAME ":1: expected 'key = value', got 'garbage'");
	parse_bad("\n = value\n", NAME ":2: expected 'key = value', got '= value'");
	parse_bad("state_dir = var/lib/recd\n", NAME ":1: state_dir: 'var/lib/recd' is not an absolute path");
	parse_bad("state_dir =\n", NAME ":1: state_dir: empty value");
	parse_bad("log_level =   \n", NAME ":1: log_level: empty value");
	parse_bad("state_dir = /a\tb\n", NAME ":1: state_dir: control character in path");
	parse_bad("log_level = loud\n",
	          NAME ":1: log_level: 'loud' is not one of err, warning, notice, info, debug");
	parse_bad("log_level = INFO\n",
	          NAME ":1: log_level: 'INFO' is not one of err, warning, notice, info, debug");
	parse_bad("max_clients = 0\n", NAME ":1: max_clients: '0' is not a number from 1 to 4096");
	parse_bad("max_clients = 4097\n", NAME ":1: max_clients: '4097' is not a number from 1 to 4096");
	parse_bad("max_clients = -1\n", NAME ":1: max_clients: '-1' is not a number from 1 to 4096");
	parse_bad("max_clients = 0x10\n", NAME ":1: max_clients: '0x10' is not a number from 1 to 4096");
	parse_bad("max_clients = 99999999999999999999999\n",
	          NAME ":1: max_clients: '99999999999999999999999' is not a number from 1 to 4096");
	/* A '#' after a value is part of it, and the message shows that. */
	parse_bad("max_clients = 5 # five\n",
	          NAME ":1: max_clients: '5 # five' is not a number from 1 to 4096");
	parse_bad("compact_threshold = 100000001\n",
	          NAME ":1: compact_threshold: '100000001' is not a number of events from 0 to 100000000");
	parse_bad("compact_max_age = 1m\n",
	          NAME ":1: compact_max_age: '1m' is not a number of seconds from 0 to 86400");
	parse_bad("status_interval = 86401\n",
	          NAME ":1: status_interval: '86401' is not a number of seconds from 0 to 86400");
	parse_bad("status_interval = 1.5\n",
	          NAME ":1: status_interval: '1.5' is not a number of seconds from 0 to 86400");
	parse_bad("allow_users = root, no_such_user_recd\n",
	          NAME ":1: allow_users: unknown user 'no_such_user_recd'");
	parse_bad("log_level = info\nallow_groups = no_such_group_recd\n",
	          NAME ":2: allow_groups: unknown group 'no_such_group_recd'");
	parse_bad("allow_users = 4294967295\n", NAME ":1: allow_users: '4294967295' is not a valid user id");
	parse_bad("allow_groups = 12x\n", NAME ":1: allow_groups: '12x' is not a valid group id");

	/* Limits: list length, path lengths, line length. */
	char text[CONF_LINE_MAX + 64];
	size_t n = (size_t)snprintf(text, sizeof text, "allow_users =");
	for (unsigned i = 0; i < CONF_ALLOW_MAX; i++)
		n += (size_t)snprintf(text + n, sizeof text - n, " %u", i);
	CHECK(n < CONF_LINE_MAX);
	CHECK_EQ(parse_ok(text).n_allow_uids, CONF_ALLOW_MAX);
	snprintf(text + n, sizeof text - n, " 999");
	parse_bad(text, NAME ":1: allow_users: more than 256 entries");

	char dir[CONF_RUNTIME_DIR_MAX + 2];
	memset(dir, 'r', sizeof dir - 1);
	dir[0] = '/';
	dir[CONF_RUNTIME_DIR_MAX] = '\0';
	snprintf(text, sizeof text, "runtime_dir = %s\n", dir);       /* 96 bytes: fits */
	CHECK_EQ(strlen(parse_ok(text).runtime_dir), CONF_RUNTIME_DIR_MAX);
	dir[CONF_RUNTIME_DIR_MAX] = 'r';
	dir[CONF_RUNTIME_DIR_MAX + 1] = '\0';
	snprintf(text, sizeof text, "runtime_dir = %s\n", dir);       /* 97: too long */
	parse_bad(text, NAME ":1: runtime_dir: path longer than 96 bytes");

	/* A line of exactly CONF_LINE_MAX bytes is fine; one more is not. */
	memset(text, 'x', CONF_LINE_MAX);
	text[0] = '#';
	text[CONF_LINE_MAX] = '\n';
	text[CONF_LINE_MAX + 1] = '\0';
	parse_ok(text);
	memset(text, 'x', CONF_LINE_MAX + 1);
	text[0] = '#';
	text[CONF_LINE_MAX + 1] = '\0';
	char msg[128];
	snprintf(msg, sizeof msg, NAME ":1: line longer than %u bytes", CONF_LINE_MAX);
	parse_bad(text, msg);

	/* What the file holds is quoted short and printable. */
	static const char nul[] = "log_level = info\nfo\0o = 1\n";
	parse_bad_len(nul, sizeof nul - 1, NAME ":2: NUL byte in line", __LINE__);
	parse_bad("f\x01\xffo = 1\n", NAME ":1: unknown key 'f??o'");
	memset(text, 'k', 100);
	memcpy(text + 100, " = 1\n", 6);
	snprintf(msg, sizeof msg, NAME ":1: unknown key '%.64s...'", text);
	parse_bad(text, msg);
}

static void write_file(const char *path, const char *text, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, text, len), (long long)len);
	CHECK_OK(close(fd));
}

static void test_files(void)
{
	char *dir = test_tmpdir();
	char path[4200], msg[4400];
	struct recd_conf c, before;

	/* Missing: the defaults when that is fine, else an error naming the file. */
	snprintf(path, sizeof path, "%s/missing.conf", dir);
	memset(&c, 0, sizeof c);
	CHECK_EQ(conf_load(&c, path, 1, err, sizeof err), 1);
	CHECK_EQ(c.max_clients, CONF_DEFAULT_MAX_CLIENTS);
	CHECK(strcmp(c.state_dir, CONF_DEFAULT_STATE_DIR) == 0);
	CHECK_EQ(conf_load(&c, path, 0, err, sizeof err), -ENOENT);
	snprintf(msg, sizeof msg, "%s: No such file or directory", path);
	CHECK(strcmp(err, msg) == 0);

	/* A good file. */
	snprintf(path, sizeof path, "%s/recd.conf", dir);
	write_file(path, "max_clients = 7\nstatus_interval = 3\n", 36);
	CHECK_EQ(conf_load(&c, path, 0, err, sizeof err), 0);
	CHECK_EQ(c.max_clients, 7);
	CHECK_EQ(c.status_interval, 3);

	/* A bad one: the message names this file and the line. */
	write_file(path, "max_clients = 7\n\nfoo = 1\n", 25);
	before = c;
	CHECK_EQ(conf_load(&c, path, 1, err, sizeof err), -EINVAL);
	snprintf(msg, sizeof msg, "%s:3: unknown key 'foo'", path);
	CHECK(strcmp(err, msg) == 0);
	CHECK(memcmp(&c, &before, sizeof c) == 0);

	/* Not a regular file. */
	CHECK_EQ(conf_load(&c, dir, 0, err, sizeof err), -EINVAL);
	snprintf(msg, sizeof msg, "%s: not a regular file", dir);
	CHECK(strcmp(err, msg) == 0);

	/* Too large, even when every line is a fine comment. */
	size_t big = CONF_FILE_MAX + 1;
	char *text = malloc(big);
	CHECK(text);
	for (size_t i = 0; i < big; i++)
		text[i] = (i % 64 == 63) ? '\n' : (i % 64 == 0 ? '#' : 'x');
	write_file(path, text, big);
	CHECK_EQ(conf_load(&c, path, 0, err, sizeof err), -EFBIG);
	snprintf(msg, sizeof msg, "%s: larger than %u bytes", path, CONF_FILE_MAX);
	CHECK(strcmp(err, msg) == 0);
	write_file(path, text, big - 1);   /* exactly the limit: fine */
	CHECK_EQ(conf_load(&c, path, 0, err, sizeof err), 0);
	free(text);

	/* The command line's -s goes through the same checks. */
	c = parse_ok("");
	before = c;
	CHECK(conf_set_state_dir(&c, "relative", err, sizeof err) < 0);
	CHECK(strcmp(err, "state_dir: 'relative' is not an absolute path") == 0);
	CHECK(memcmp(&c, &before, sizeof c) == 0);
	CHECK_OK(conf_set_state_dir(&c, "/tmp/x", err, sizeof err));
	CHECK(strcmp(c.state_dir, "/tmp/x") == 0);

	test_rmtree(dir);
}

int main(void)
{
	test_defaults();
	test_errors();
	test_files();
	test_all_keys();   /* last: it may skip on a system without nobody/daemon */
	return 0;
}
