/* csv.c: record and field splitting for delimited text (see csv.h).  Quoting
 * follows RFC 4180 for reading: quoted fields may hold the delimiter, line
 * ends and doubled quotes; a quote inside an unquoted field is literal. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "import/csv.h"

static void csv_trim_cr(const char *buf, size_t *rec_len)
{
	if (*rec_len > 0 && buf[*rec_len - 1] == '\r')
		(*rec_len)--;
}

int csv_record_end(const char *buf, size_t len, char delim, int quoting,
                   size_t *rec_len, size_t *next, unsigned *inner_lines)
{
	/* Fast path: no quote before the first line end.  Both searches stop
	 * there, so a record costs its own length, not the buffer's. */
	const char *nl = memchr(buf, '\n', len);
	if (!quoting || !memchr(buf, '"', nl ? (size_t)(nl - buf) : len)) {
		if (!nl)
			return 0;
		*rec_len = (size_t)(nl - buf);
		csv_trim_cr(buf, rec_len);
		*next = (size_t)(nl - buf) + 1;
		*inner_lines = 0;
		return 1;
	}
	/* Quotes open a quoted section only at a field's start; a quote
	 * followed by anything but another quote closes it. */
	unsigned lines = 0;
	int in_quotes = 0, field_start = 1;
	for (size_t i = 0; i < len; i++) {
		char c = buf[i];
		if (in_quotes) {
			if (c == '"') {
				if (i + 1 >= len)
					return 0;  /* can't tell "" from a closing quote yet */
				if (buf[i + 1] == '"')
					i++;
				else
					in_quotes = 0;
			} else if (c == '\n') {
				lines++;
			}
			continue;
		}
		if (c == '\n') {
			*rec_len = i;
			csv_trim_cr(buf, rec_len);
			*next = i + 1;
			*inner_lines = lines;
			return 1;
		}
		if (c == '"' && field_start) {
			in_quotes = 1;
			field_start = 0;
			continue;
		}
		field_start = (c == delim);
	}
	return 0;
}

void csv_record_last(const char *buf, size_t len, size_t *rec_len, unsigned *inner_lines)
{
	unsigned lines = 0;
	for (size_t i = 0; i < len; i++)
		lines += buf[i] == '\n';
	*rec_len = len;
	csv_trim_cr(buf, rec_len);
	*inner_lines = lines;
}

int csv_split(const char *rec, size_t len, char delim, int quoting,
              struct csv_field *f, size_t max, char *scratch, size_t *err_field)
{
	size_t n = 0, i = 0;
	char *out = scratch;

	for (;;) {
		if (n == max)
			return -E2BIG;
		if (quoting && i < len && rec[i] == '"') {
			char *start = out;
			i++;
			for (;;) {
				if (i >= len) {
					*err_field = n + 1;  /* no closing quote */
					return -EINVAL;
				}
				if (rec[i] == '"') {
					if (i + 1 < len && rec[i + 1] == '"') {
						*out++ = '"';
						i += 2;
						continue;
					}
					i++;
					break;
				}
				*out++ = rec[i++];
			}
			if (i < len && rec[i] != delim) {
				*err_field = n + 1;  /* text after the closing quote */
				return -EINVAL;
			}
			f[n].p = start;
			f[n].len = (size_t)(out - start);
		} else {
			const char *d = memchr(rec + i, delim, len - i);
			size_t end = d ? (size_t)(d - rec) : len;
			f[n].p = rec + i;
			f[n].len = end - i;
			i = end;
		}
		n++;
		if (i >= len)
			break;
		i++;  /* the delimiter */
		if (i == len) {
			/* a trailing delimiter ends with one empty field */
			if (n == max)
				return -E2BIG;
			f[n].p = rec + len;
			f[n].len = 0;
			n++;
			break;
		}
	}
	return (int)n;
}

char csv_guess_delim(const char *line, size_t len)
{
	return memchr(line, '\t', len) ? '\t' : ',';
}
