/* csv.h: splitting delimited text (CSV with RFC 4180 quoting, or plain TSV)
 * into records and fields, without copying unless a quoted field has to be
 * unescaped.  Nothing here allocates; the caller gives the scratch space.
 */
#ifndef RECD_IMPORT_CSV_H
#define RECD_IMPORT_CSV_H

#include <stddef.h>

#define CSV_MAX_FIELDS 64   /* most columns a header or record may have */

struct csv_field {
	const char *p;
	size_t len;
};

/* Finds the end of the record that starts at buf[0] in buf[0..len).  With
 * quoting, a line end inside a quoted field belongs to the field.  On success
 * returns 1, *rec_len is the record's length without its line end ("\n" or
 * "\r\n"), *next the offset just past the line end, *inner_lines the number
 * of line ends inside quoted fields.  Returns 0 when buf holds no complete
 * record: the caller reads more, or at end of file takes all of buf as the
 * last record (csv_record_last). */
int csv_record_end(const char *buf, size_t len, char delim, int quoting,
                   size_t *rec_len, size_t *next, unsigned *inner_lines);
/* The last record of a file that does not end with a line end: buf[0..len). */
void csv_record_last(const char *buf, size_t len, size_t *rec_len, unsigned *inner_lines);

/* Splits rec[0..len) at delim into at most max fields.  Without quoting every
 * byte is literal.  With quoting, a field that starts with '"' runs to the
 * next lone '"', "" inside it stands for one '"', and its unescaped text is
 * written to scratch, which must hold len bytes; other fields point into rec.
 * Returns the number of fields, -E2BIG when there are more than max, or
 * -EINVAL for bad quoting (*err_field is then the 1-based field). */
int csv_split(const char *rec, size_t len, char delim, int quoting,
              struct csv_field *f, size_t max, char *scratch, size_t *err_field);

/* The delimiter of a header line: tab if it holds one, else comma. */
char csv_guess_delim(const char *line, size_t len);

#endif
