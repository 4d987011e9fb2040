/* test_jobs.c: the spool's job files without a daemon: its recd.conf keys,
 * file-name checks, the parser's exact reasons for each kind of bad job, and
 * signature envelopes (good, altered, wrong key, unknown key, expired,
 * unsigned when required, renamed to another ID). */
#include "config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <sodium.h>

#include "daemon/conf.h"
#include "daemon/jobs.h"
#include "tests/test.h"

static char why[JOBS_WHY_MAX];

static void name_ok(const char *n)
{
	why[0] = '\0';
	if (jobs_name_check(n, strlen(n), why, sizeof why) != 0) {
		fprintf(stderr, "name '%s' refused: %s\n", n, why);
		exit(1);
	}
}

static void name_bad(const char *n, size_t len, const char *msg)
{
	why[0] = '\0';
	int r = jobs_name_check(n, len, why, sizeof why);
	if (r != -EINVAL || strcmp(why, msg) != 0) {
		fprintf(stderr, "name check: got %d '%s', expected '%s'\n", r, why, msg);
		exit(1);
	}
}

static struct jobs_job *parse_ok(const char *text, const char *id, const struct jobs_sig_policy *p)
{
	struct jobs_job *j = NULL;
	why[0] = '\0';
	int r = jobs_parse(text, strlen(text), id, p, &j, why, sizeof why);
	if (r != 0) {
		fprintf(stderr, "parse of %s failed (%d): %s\n", text, r, why);
		exit(1);
	}
	return j;
}

static void parse_bad(const char *text, const char *id, const struct jobs_sig_policy *p, int err,
                      const char *msg)
{
	struct jobs_job *j = NULL;
	why[0] = '\0';
	int r = jobs_parse(text, strlen(text), id, p, &j, why, sizeof why);
	if (r != err || strcmp(why, msg) != 0) {
		fprintf(stderr, "parse of %s: got %d '%s'\n            expected %d '%s'\n", text, r, why, err, msg);
		exit(1);
	}
	CHECK(j == NULL);
}

static void test_names(void)
{
	name_ok("job-1");
	name_ok("a.b.json");
	name_ok("r\xc3\xa9sum\xc3\xa9");     /* UTF-8 is fine */
	name_bad("", 0, "empty name");
	name_bad(".hidden", 7, "name starts with '.'");
	name_bad("a..b", 4, "'..' in name");
	name_bad("..", 2, "name starts with '.'");
	name_bad("a/b", 3, "'/' in name");
	name_bad("bad\xff", 4, "name is not valid UTF-8");
	name_bad("\xc0\xaf", 2, "name is not valid UTF-8");       /* overlong '/' */
	name_bad("tab\there", 8, "control character in name");
	name_bad("x.error", 7, "name ends in a suffix the spool uses (.error, .tmp, .jsonl)");
	name_bad("x.tmp", 5, "name ends in a suffix the spool uses (.error, .tmp, .jsonl)");
	char longname[JOBS_ID_MAX + 2];
	memset(longname, 'a', sizeof longname);
	longname[JOBS_ID_MAX] = '\0';
	name_ok(longname);
	name_bad(longname, JOBS_ID_MAX + 1, "name longer than 128 bytes");
}

static void test_parse(void)
{
	struct jobs_job *j;

	j = parse_ok("{\"format\":1,\"type\":\"recommend\",\"users\":[\"u1\",\"u2\"],\"k\":5,"
	             "\"exclude\":[\"i1\"],\"include_seen\":true}", "j1", NULL);
	CHECK_EQ(jobs_job_type(j), JOBS_RECOMMEND);
	CHECK_EQ(jobs_job_units(j), 2);
	CHECK(strcmp(jobs_job_id(j), "j1") == 0);
	CHECK_EQ(jobs_job_seen_key(j, (uint8_t[32]){ 0 }), -ENOENT);
	jobs_job_free(j);
	j = parse_ok("{\"format\":1,\"type\":\"score\",\"requests\":[{\"user\":\"u\",\"items\":[\"a\",\"b\"]}]}",
	             "j2", NULL);
	CHECK_EQ(jobs_job_type(j), JOBS_SCORE);
	CHECK_EQ(jobs_job_units(j), 1);
	jobs_job_free(j);
	j = parse_ok("{\"format\":1,\"type\":\"ingest\",\"id\":\"j3\",\"events\":[{\"user\":\"u\",\"item\":\"i\","
	             "\"time\":1,\"value\":2.5,\"lat\":1,\"lon\":2,\"action\":\"click\"},"
	             "{\"user\":\"u\",\"item\":\"i\",\"time\":\"2024-01-01T00:00:00Z\"}]}", "j3", NULL);
	CHECK_EQ(jobs_job_units(j), 2);
	jobs_job_free(j);
	j = parse_ok("{\"format\":1,\"type\":\"evaluate\",\"model\":1,\"protocol\":\"sampled\"}  \n", "j4", NULL);
	CHECK_EQ(jobs_job_type(j), JOBS_EVALUATE);
	jobs_job_free(j);

	parse_bad("{\"format\":1,\"type\":\"recommend\",\"users\":[\"u1\"", "t", NULL, -EINVAL,
	          "job: JSON ends early (truncated) after 44 bytes");
	parse_bad("{\"format\":1} x", "t", NULL, -EINVAL, "job: not valid JSON at byte 13: unexpected character");
	parse_bad("[1]", "t", NULL, -EINVAL, "job: expected a JSON object, got an array");
	parse_bad("{\"format\":1,\"type\":\"frobnicate\"}", "t", NULL, -EINVAL,
	          "type: unknown job type 'frobnicate' (expected recommend, score, ingest, train, evaluate or fine-tune)");
	parse_bad("{\"format\":2,\"type\":\"recommend\"}", "t", NULL, -EINVAL,
	          "format: version 2 is not supported (this recd reads version 1)");
	parse_bad("{\"type\":\"recommend\"}", "t", NULL, -EINVAL, "format: missing");
	parse_bad("{\"format\":\"1\",\"type\":\"recommend\"}", "t", NULL, -EINVAL,
	          "format: expected an integer, got a string");
	parse_bad("{\"format\":1,\"type\":\"recommend\",\"users\":[\"u\"],\"k\":\"10\"}", "t", NULL, -EINVAL,
	          "k: expected an integer, got a string");
	parse_bad("{\"format\":1,\"type\":\"recommend\",\"users\":[\"u\"],\"k\":0}", "t", NULL, -EINVAL,
	          "k: 0 is outside 1..1000");
	parse_bad("{\"format\":1,\"type\":\"recommend\",\"users\":[\"u\", 7]}", "t", NULL, -EINVAL,
	          "users[1]: expected a string, got an integer");
	parse_bad("{\"format\":1,\"type\":\"recommend\",\"users\":[]}", "t", NULL, -EINVAL,
	          "users: 0 entries, expected 1 to 100000");
	parse_bad("{\"format\":1,\"type\":\"recommend\",\"users\":[\"u\"],\"kk\":1}", "t", NULL, -EINVAL,
	          "kk: unknown field");
	parse_bad("{\"format\":1,\"type\":\"score\",\"requests\":[{\"user\":\"u\",\"items\":\"a\"}]}", "t", NULL,
	          -EINVAL, "requests[0].items: expected an array, got a string");
	parse_bad("{\"format\":1,\"type\":\"ingest\",\"events\":[{\"user\":\"u\",\"item\":\"i\",\"time\":true}]}",
	          "t", NULL, -EINVAL,
	          "events[0].time: expected an integer or a YYYY-MM-DDTHH:MM:SS string, got a boolean");
	parse_bad("{\"format\":1,\"type\":\"ingest\",\"events\":[{\"user\":\"u\",\"item\":\"i\",\"value\":\"5\"}]}",
	          "t", NULL, -EINVAL, "events[0].value: expected a number, got a string");
	parse_bad("{\"format\":1,\"type\":\"recommend\",\"id\":\"other\",\"users\":[\"u\"]}", "t", NULL, -EINVAL,
	          "id: the job says it is 'other' but its file is named 't'");
	parse_bad("{\"format\":1,\"type\":\"recommend\",\"users\":[\"a\\u0000b\"]}", "t", NULL, -EINVAL,
	          "users[0]: contains a NUL character");
	/* deep nesting is bounded */
	char deep[200];
	size_t o = (size_t)snprintf(deep, sizeof deep, "{\"format\":1,\"x\":");
	for (int i = 0; i < 40; i++)
		deep[o++] = '[';
	deep[o] = '\0';
	struct jobs_job *jj = NULL;
	CHECK_EQ(jobs_parse(deep, strlen(deep), "t", NULL, &jj, why, sizeof why), -EINVAL);
	CHECK(strstr(why, "nesting") || strstr(why, "depth") || strstr(why, "not valid JSON"));
}

static char keydir[4096];
static unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];

static void put(const char *name, const char *text)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/%s", keydir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	CHECK_EQ(write(fd, text, strlen(text)), (long long)strlen(text));
	close(fd);
}

/* The envelope around job text, signed with s (the test's key or another). */
static char *envelope(const char *key, const char *job, const unsigned char *s)
{
	unsigned char sig[crypto_sign_BYTES];
	char b64[sodium_base64_ENCODED_LEN(crypto_sign_BYTES, sodium_base64_VARIANT_ORIGINAL)];
	crypto_sign_detached(sig, NULL, (const unsigned char *)job, strlen(job), s);
	sodium_bin2base64(b64, sizeof b64, sig, sizeof sig, sodium_base64_VARIANT_ORIGINAL);
	struct json_object *e = json_object_new_object(), *so = json_object_new_object();
	json_object_object_add(so, "key", json_object_new_string(key));
	json_object_object_add(so, "sig", json_object_new_string(b64));
	json_object_object_add(e, "signature", so);
	json_object_object_add(e, "job", json_object_new_string(job));
	char *t = strdup(json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN));
	json_object_put(e);
	return t;
}

static void test_signatures(void)
{
	char hex[2 * crypto_sign_PUBLICKEYBYTES + 2], job[512], *env;
	unsigned char pk2[crypto_sign_PUBLICKEYBYTES], sk2[crypto_sign_SECRETKEYBYTES];
	int64_t now = 1700000000;
	struct jobs_sig_policy pol = { 1, keydir, 600, now };
	struct jobs_job *j;
	uint8_t k1[32], k2[32];

	snprintf(keydir, sizeof keydir, "%.4000s", test_tmpdir());
	crypto_sign_keypair(pk, sk);
	crypto_sign_keypair(pk2, sk2);
	sodium_bin2hex(hex, sizeof hex, pk, sizeof pk);
	strcat(hex, "\n");
	put("alice.pub", hex);

	snprintf(job, sizeof job, "{\"format\":1,\"type\":\"recommend\",\"id\":\"s1\",\"created\":%lld,"
	         "\"users\":[\"u\"]}", (long long)now - 10);
	env = envelope("alice", job, sk);
	j = parse_ok(env, "s1", &pol);
	CHECK_EQ(jobs_job_seen_key(j, k1), 0);
	jobs_job_free(j);
	/* the seen key depends on the ID only */
	j = parse_ok(env, "s1", &pol);
	CHECK_EQ(jobs_job_seen_key(j, k2), 0);
	CHECK(memcmp(k1, k2, 32) == 0);
	jobs_job_free(j);
	/* renamed: the signed ID is not the file's */
	parse_bad(env, "s2", &pol, -EPERM, "id: the job says it is 's1' but its file is named 's2'");
	free(env);

	/* altered after signing: sign one text, ship another */
	char altered[512];
	snprintf(altered, sizeof altered, "%s", job);
	env = envelope("alice", job, sk);
	char *p = strstr(env, "\\\"u\\\"");
	CHECK(p);
	p[2] = 'v';
	parse_bad(env, "s1", &pol, -EPERM,
	          "signature: bad signature by key 'alice' (the job was altered or signed with another key)");
	free(env);
	/* signed by a key that is not alice's */
	env = envelope("alice", job, sk2);
	parse_bad(env, "s1", &pol, -EPERM,
	          "signature: bad signature by key 'alice' (the job was altered or signed with another key)");
	free(env);
	/* an unknown key */
	env = envelope("bob", job, sk);
	struct jobs_job *jj = NULL;
	CHECK_EQ(jobs_parse(env, strlen(env), "s1", &pol, &jj, why, sizeof why), -EPERM);
	CHECK(strncmp(why, "signature.key: no trusted key 'bob'", 35) == 0);
	free(env);
	/* a key name that tries to leave the folder */
	env = envelope("../alice", job, sk);
	parse_bad(env, "s1", &pol, -EPERM, "signature.key: '../alice' is not a key name (letters, digits, '-', '_')");
	free(env);
	/* expired, and from the future */
	snprintf(job, sizeof job, "{\"format\":1,\"type\":\"recommend\",\"id\":\"s1\",\"created\":%lld,"
	         "\"users\":[\"u\"]}", (long long)now - 601);
	env = envelope("alice", job, sk);
	parse_bad(env, "s1", &pol, -EPERM,
	          "created: the signed job expired (created 601 s ago, spool_signature_max_age is 600 s)");
	free(env);
	snprintf(job, sizeof job, "{\"format\":1,\"type\":\"recommend\",\"id\":\"s1\",\"created\":%lld,"
	         "\"users\":[\"u\"]}", (long long)now + 3600);
	env = envelope("alice", job, sk);
	parse_bad(env, "s1", &pol, -EPERM, "created: 3600 s in the future");
	free(env);
	/* signed jobs must carry created */
	snprintf(job, sizeof job, "{\"format\":1,\"type\":\"recommend\",\"id\":\"s1\",\"users\":[\"u\"]}");
	env = envelope("alice", job, sk);
	parse_bad(env, "s1", &pol, -EINVAL, "created: missing");
	free(env);
	/* unsigned where signatures are required; fine where they are not */
	parse_bad("{\"format\":1,\"type\":\"recommend\",\"users\":[\"u\"]}", "s1", &pol, -EPERM,
	          "signature: the job is not signed and this spool requires signatures (spool_require_signature = yes)");
	pol.require = 0;
	jobs_job_free(parse_ok("{\"format\":1,\"type\":\"recommend\",\"users\":[\"u\"]}", "s1", &pol));
	/* a bad signature is refused even where signatures are optional */
	env = envelope("alice", "{\"format\":1}", sk2);
	parse_bad(env, "s1", &pol, -EPERM,
	          "signature: bad signature by key 'alice' (the job was altered or signed with another key)");
	free(env);
	test_rmtree(keydir);
}

/* The spool's recd.conf keys: defaults, good values, exact errors. */
static void test_conf_keys(void)
{
	struct recd_conf c;
	char err[512];
	const char *good = "spool_dir = /srv/spool\nspool_rescan_interval = 5\nspool_max_job_size = 64\n"
	                   "spool_stale_age = 0\nspool_workers = 8\nspool_require_signature = yes\n"
	                   "spool_trusted_keys = /etc/k\nspool_signature_max_age = 60\n";
	conf_defaults(&c);
	CHECK(strcmp(c.spool_dir, "/var/spool/recd") == 0);
	CHECK_EQ(c.spool_rescan_interval, 30);
	CHECK_EQ(c.spool_max_job_size, 16u << 20);
	CHECK_EQ(c.spool_workers, 2);
	CHECK_EQ(c.spool_require_signature, 0);
	CHECK_OK(conf_parse(&c, "t.conf", good, strlen(good), err, sizeof err));
	CHECK(strcmp(c.spool_dir, "/srv/spool") == 0 && strcmp(c.spool_trusted_keys, "/etc/k") == 0);
	CHECK_EQ(c.spool_rescan_interval, 5);
	CHECK_EQ(c.spool_max_job_size, 64);
	CHECK_EQ(c.spool_stale_age, 0);
	CHECK_EQ(c.spool_workers, 8);
	CHECK_EQ(c.spool_require_signature, 1);
	CHECK_EQ(c.spool_signature_max_age, 60);
	static const struct { const char *text, *msg; } bad[] = {
		{ "spool_dir = spool\n", "t.conf:1: spool_dir: 'spool' is not an absolute path" },
		{ "spool_rescan_interval = 0\n",
		  "t.conf:1: spool_rescan_interval: '0' is not a number of seconds from 1 to 86400" },
		{ "spool_max_job_size = 2000000000\n",
		  "t.conf:1: spool_max_job_size: '2000000000' is not a number of bytes from 64 to 1073741824" },
		{ "spool_workers = 65\n", "t.conf:1: spool_workers: '65' is not a number from 1 to 64" },
		{ "spool_require_signature = true\n", "t.conf:1: spool_require_signature: 'true' is not yes or no" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		err[0] = '\0';
		CHECK_EQ(conf_parse(&c, "t.conf", bad[i].text, strlen(bad[i].text), err, sizeof err), -EINVAL);
		if (strcmp(err, bad[i].msg) != 0) {
			fprintf(stderr, "conf: got '%s', expected '%s'\n", err, bad[i].msg);
			exit(1);
		}
	}
}

int main(void)
{
	test_conf_keys();
	CHECK(sodium_init() >= 0);
	test_names();
	test_parse();
	test_signatures();
	printf("test_jobs: ok\n");
	return 0;
}
