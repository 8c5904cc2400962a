// Row collection for libcsv. See csv_rows.h.
#include "csv_rows.h"

#include <csv.h>
#include <stdlib.h>
#include <string.h>

struct csvrows {
    struct csv_parser parser;
    unsigned char delimiter;
    uint8_t *bytes;
    size_t bytes_len, bytes_cap;
    size_t *ends;
    size_t ends_len, ends_cap;
    size_t *row_ends;
    size_t rows_len, rows_cap;
    int failed;
};

static int keep_spaces(unsigned char c) {
    (void)c;
    return 0;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 1;
    size_t n = *cap ? *cap : 64;
    while (n < need) n *= 2;
    void *q = realloc(*p, n * elem);
    if (!q) return 0;
    *p = q;
    *cap = n;
    return 1;
}

static void on_field(void *field, size_t len, void *data) {
    csvrows *r = (csvrows *)data;
    if (len > 0) {
        if (!grow((void **)&r->bytes, &r->bytes_cap, r->bytes_len + len, 1)) {
            r->failed = 1;
            return;
        }
        memcpy(r->bytes + r->bytes_len, field, len);
        r->bytes_len += len;
    }
    if (!grow((void **)&r->ends, &r->ends_cap, r->ends_len + 1, sizeof(size_t))) {
        r->failed = 1;
        return;
    }
    r->ends[r->ends_len++] = r->bytes_len;
}

static void on_row(int c, void *data) {
    (void)c;
    csvrows *r = (csvrows *)data;
    if (!grow((void **)&r->row_ends, &r->rows_cap, r->rows_len + 1, sizeof(size_t))) {
        r->failed = 1;
        return;
    }
    r->row_ends[r->rows_len++] = r->ends_len;
}

static int init_parser(csvrows *r) {
    if (csv_init(&r->parser, CSV_STRICT | CSV_STRICT_FINI) != 0) return 0;
    csv_set_delim(&r->parser, r->delimiter);
    csv_set_space_func(&r->parser, keep_spaces);
    return 1;
}

csvrows *csvrows_new(unsigned char delimiter) {
    csvrows *r = calloc(1, sizeof(csvrows));
    if (!r) return NULL;
    r->delimiter = delimiter;
    if (!init_parser(r)) {
        free(r);
        return NULL;
    }
    return r;
}

void csvrows_free(csvrows *r) {
    if (!r) return;
    csv_free(&r->parser);
    free(r->bytes);
    free(r->ends);
    free(r->row_ends);
    free(r);
}

// A line without quotes that starts a row needs no CSV parser: its fields are exactly the
// pieces between delimiters (spaces kept, as libcsv is configured to keep them). libcsv's
// pstate 0 is ROW_NOT_BEGUN: no row is in progress. Lines with quotes, or with a carriage
// return anywhere but before the final line feed, go through libcsv.
static int feed_plain(csvrows *r, const uint8_t *s, size_t len) {
    if (r->parser.pstate != 0 || len == 0) return 0;
    size_t n = len;
    if (s[n - 1] == '\n') n--;
    if (n > 0 && s[n - 1] == '\r') n--;
    if (n == 0) return 0;
    if (memchr(s, r->parser.quote_char, n) || memchr(s, '\r', n) || memchr(s, '\n', n)) return 0;
    const uint8_t *p = s, *end = s + n;
    for (;;) {
        const uint8_t *d = memchr(p, r->delimiter, (size_t)(end - p));
        const uint8_t *stop = d ? d : end;
        on_field((void *)p, (size_t)(stop - p), r);
        if (!d) break;
        p = d + 1;
    }
    on_row('\n', r);
    return 1;
}

int csvrows_feed(csvrows *r, const void *bytes, size_t len) {
    if (feed_plain(r, (const uint8_t *)bytes, len)) return r->failed ? -2 : 0;
    size_t used = csv_parse(&r->parser, bytes, len, on_field, on_row, r);
    if (r->failed) return -2;
    if (used < len) return csv_error(&r->parser) == CSV_EPARSE ? -1 : -2;
    return 0;
}

int csvrows_finish(csvrows *r) {
    int rc = csv_fini(&r->parser, on_field, on_row, r);
    if (r->failed) return -2;
    return rc == 0 ? 0 : -1;
}

csvrows_view csvrows_collected(const csvrows *r) {
    csvrows_view v = {r->bytes, r->ends, r->ends_len, r->row_ends, r->rows_len};
    return v;
}

void csvrows_clear_completed(csvrows *r) {
    if (r->rows_len == 0) return;
    size_t done_fields = r->row_ends[r->rows_len - 1];
    size_t done_bytes = done_fields ? r->ends[done_fields - 1] : 0;
    size_t rest_fields = r->ends_len - done_fields;
    memmove(r->bytes, r->bytes + done_bytes, r->bytes_len - done_bytes);
    for (size_t i = 0; i < rest_fields; i++) r->ends[i] = r->ends[done_fields + i] - done_bytes;
    r->bytes_len -= done_bytes;
    r->ends_len = rest_fields;
    r->rows_len = 0;
}

void csvrows_reset(csvrows *r) {
    csv_free(&r->parser);
    init_parser(r);
    r->bytes_len = 0;
    r->ends_len = 0;
    r->rows_len = 0;
    r->failed = 0;
}
