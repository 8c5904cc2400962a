/*
 * lead_json.h: a small C API over a one-pass tape builder and simdjson's On-Demand parser.
 *
 * lj_parse validates one JSON text and describes it as a flat array of nodes
 * in document order (a "tape"). Every node points back into the caller's
 * bytes, so values that a stage does not touch can be copied to the output
 * as they were received, and no per-value allocation happens while parsing.
 */
#ifndef LEAD_JSON_H
#define LEAD_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Bytes that must be readable after the end of a text passed to lj_parse. */
#define LJ_PADDING 64

/** What a node is. */
enum lj_kind {
    LJ_NULL = 0,
    LJ_FALSE = 1,
    LJ_TRUE = 2,
    /** An integer that fits in a signed 64-bit value. */
    LJ_INT = 3,
    /** An integer too large for 64 bits; kept as its text. */
    LJ_BIGINT = 4,
    /** A number with a fraction or an exponent. */
    LJ_FLOAT = 5,
    LJ_STRING = 6,
    LJ_OBJECT = 7,
    LJ_ARRAY = 8
};

/** Node flags. */
enum lj_flag {
    /** The node is an object member and key_off/key_len hold its key. */
    LJ_HAS_KEY = 1,
    /** The key contains a backslash escape. */
    LJ_KEY_ESCAPED = 2,
    /** The string value contains a backslash escape. */
    LJ_VALUE_ESCAPED = 4
};

/** One value of a parsed JSON text. */
typedef struct lj_node {
    uint8_t kind;
    uint8_t flags;
    uint16_t reserved;
    /** Index of the first node after this value and all its descendants. */
    uint32_t next;
    /** The member's key as written, without quotes (escapes not decoded). */
    uint32_t key_off;
    uint32_t key_len;
    /**
     * The value as written: a scalar's token (a string includes its quotes)
     * or a container from its opening to its closing bracket.
     */
    uint32_t val_off;
    uint32_t val_len;
    /** Containers: the number of direct children. */
    uint32_t count;
} lj_node;

typedef struct lj_parser lj_parser;

lj_parser *lj_parser_new(void);
void lj_parser_free(lj_parser *parser);

/**
 * Parses buf[0..len). capacity >= len + LJ_PADDING bytes must be readable.
 * Returns the number of nodes (>= 1), or -1 when the text is not valid JSON;
 * then lj_error_message and lj_error_offset say what and where.
 */
int64_t lj_parse(lj_parser *parser, const char *buf, size_t len, size_t capacity);

/**
 * lj_parse without its fast path: simdjson's On-Demand walk alone, which lj_parse
 * falls back to for every text its fast path does not accept (so errors are this
 * walk's). For tests that compare the two.
 */
int64_t lj_parse_reference(lj_parser *parser, const char *buf, size_t len, size_t capacity);

/** The nodes of the last successful lj_parse. */
const lj_node *lj_nodes(const lj_parser *parser);

/** A NUL-terminated description of the last error. */
const char *lj_error_message(const lj_parser *parser);

/** Byte offset in the text where the last error was found, or SIZE_MAX when unknown. */
size_t lj_error_offset(const lj_parser *parser);

/**
 * Decodes the escapes of a JSON string body (without quotes) into UTF-8.
 * dst must hold len bytes; returns the decoded length. A lone surrogate
 * becomes U+FFFD.
 */
size_t lj_unescape(const char *src, size_t len, char *dst);

/** The offset of the first '"', '\\' or control character in buf[0..len), or len. */
size_t lj_find_special(const char *buf, size_t len);

/** True when buf[0..len) is valid UTF-8. */
bool lj_validate_utf8(const char *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif
