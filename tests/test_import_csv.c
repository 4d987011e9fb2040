/* test_import_csv.c: record and field splitting of import/csv.c on its own:
 * quoting, doubled quotes, line ends inside quotes, CRLF, bad quoting, limits. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "import/csv.h"
#include "tests/test.h"

static int split(const char *rec, char delim, int quoting, struct csv_field *f, char *scratch,
                 size_t *errf)
{
	return csv_split(rec, strlen(rec), delim, quoting, f, CSV_MAX_FIELDS, scratch, errf);
}

int main(void)
{
	struct csv_field f[CSV_MAX_FIELDS];
	char scratch[256];
	size_t errf = 0, rl, next;
	unsigned inner;

	/* plain fields, empty ones, a trailing delimiter */
	CHECK_EQ(split("a,b,,d", ',', 1, f, scratch, &errf), 4);
	CHECK_STREQ(f[0].p, f[0].len, "a");
	CHECK_STREQ(f[2].p, f[2].len, "");
	CHECK_STREQ(f[3].p, f[3].len, "d");
	CHECK_EQ(split("a,b,", ',', 1, f, scratch, &errf), 3);
	CHECK_STREQ(f[2].p, f[2].len, "");
	CHECK_EQ(split("", ',', 1, f, scratch, &errf), 1);
	CHECK_EQ(f[0].len, 0);

	/* quoted: delimiter, doubled quote, line end inside */
	CHECK_EQ(split("1,\"Hello, \"\"world\"\"\",x", ',', 1, f, scratch, &errf), 3);
	CHECK_STREQ(f[1].p, f[1].len, "Hello, \"world\"");
	CHECK_STREQ(f[2].p, f[2].len, "x");
	CHECK_EQ(split("\"two\nlines\",\"\"", ',', 1, f, scratch, &errf), 2);
	CHECK_STREQ(f[0].p, f[0].len, "two\nlines");
	CHECK_STREQ(f[1].p, f[1].len, "");
	/* a quote inside an unquoted field is literal */
	CHECK_EQ(split("ab\"c,d", ',', 1, f, scratch, &errf), 2);
	CHECK_STREQ(f[0].p, f[0].len, "ab\"c");
	/* without quoting (TSV) quotes are literal */
	CHECK_EQ(split("\"a\tb\"", '\t', 0, f, scratch, &errf), 2);
	CHECK_STREQ(f[0].p, f[0].len, "\"a");

	/* bad quoting: unterminated, text after the closing quote */
	CHECK_EQ(split("x,\"abc", ',', 1, f, scratch, &errf), -EINVAL);
	CHECK_EQ(errf, 2);
	CHECK_EQ(split("\"abc\"d,e", ',', 1, f, scratch, &errf), -EINVAL);
	CHECK_EQ(errf, 1);

	/* too many fields */
	char many[CSV_MAX_FIELDS * 2 + 2];
	memset(many, ',', CSV_MAX_FIELDS);
	many[CSV_MAX_FIELDS] = 0;
	CHECK_EQ(split(many, ',', 1, f, scratch, &errf), -E2BIG);
	many[CSV_MAX_FIELDS - 1] = 0;
	CHECK_EQ(split(many, ',', 1, f, scratch, &errf), CSV_MAX_FIELDS);

	/* record ends: CRLF trimmed, quoted line ends kept, incomplete records */
	const char *buf = "a,b\r\nc";
	CHECK_EQ(csv_record_end(buf, strlen(buf), ',', 1, &rl, &next, &inner), 1);
	CHECK_EQ(rl, 3);
	CHECK_EQ(next, 5);
	CHECK_EQ(inner, 0);
	CHECK_EQ(csv_record_end(buf + 5, 1, ',', 1, &rl, &next, &inner), 0);
	buf = "1,\"x\ny\r\nz\",2\nnext";
	CHECK_EQ(csv_record_end(buf, strlen(buf), ',', 1, &rl, &next, &inner), 1);
	CHECK_EQ(inner, 2);
	CHECK_EQ(rl, strlen("1,\"x\ny\r\nz\",2"));
	CHECK_EQ(split("1,\"x\ny\r\nz\",2", ',', 1, f, scratch, &errf), 3);
	CHECK_STREQ(f[1].p, f[1].len, "x\ny\r\nz");
	/* an open quote at the end of the buffer: need more data */
	buf = "1,\"abc\n";
	CHECK_EQ(csv_record_end(buf, strlen(buf), ',', 1, &rl, &next, &inner), 0);
	/* a quote not at a field start opens nothing */
	buf = "1,a\"b\n2";
	CHECK_EQ(csv_record_end(buf, strlen(buf), ',', 1, &rl, &next, &inner), 1);
	CHECK_EQ(rl, 5);
	csv_record_last("x,\"a\nb\"\r", 8, &rl, &inner);
	CHECK_EQ(rl, 7);
	CHECK_EQ(inner, 1);

	CHECK_EQ(csv_guess_delim("a\tb,c", 5), '\t');
	CHECK_EQ(csv_guess_delim("a,b", 3), ',');
	printf("test_import_csv: ok\n");
	return 0;
}
