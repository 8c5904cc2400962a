/*
 * csv_rows.h: collects the rows libcsv parses into flat buffers, so the callbacks
 * that libcsv makes per field and per character stay in C.
 */
#ifndef CSV_ROWS_H
#define CSV_ROWS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct csvrows csvrows;

/** Field bytes and field ends of the rows completed so far. */
typedef struct csvrows_view {
    const uint8_t *bytes;
    /** ends[i]: offset in bytes just after field i. */
    const size_t *ends;
    /** Number of fields collected (of completed rows and of the row in progress). */
    size_t field_count;
    /** row_ends[r]: the number of fields up to and including completed row r. */
    const size_t *row_ends;
    size_t row_count;
} csvrows_view;

/** A strict RFC 4180 parser with the given delimiter that keeps spaces. NULL on failure. */
csvrows *csvrows_new(unsigned char delimiter);
void csvrows_free(csvrows *r);

/**
 * Feeds bytes. Returns 0, or -1 on malformed input (bad quoting) or -2 when out of
 * memory; after an error call csvrows_reset before feeding more.
 */
int csvrows_feed(csvrows *r, const void *bytes, size_t len);

/** Ends the input. Returns 0, or -1 when a quoted field was never closed. */
int csvrows_finish(csvrows *r);

/** What has been collected. */
csvrows_view csvrows_collected(const csvrows *r);

/** Forgets completed rows (and their fields), keeping a row in progress. */
void csvrows_clear_completed(csvrows *r);

/** Starts over: a fresh parser state and no rows. */
void csvrows_reset(csvrows *r);

#ifdef __cplusplus
}
#endif

#endif
