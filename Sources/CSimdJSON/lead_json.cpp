// The tape builder behind lead_json.h. simdjson's On-Demand API validates the
// text (structure, UTF-8, numbers, literals); this file walks it once and
// records where every key and value sits, plus string checks that On-Demand
// leaves to the caller (control characters and escape syntax).
#include "lead_json.h"

#include <simdjson.h>

#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <string>
#include <vector>

using namespace simdjson;

struct lj_parser {
    ondemand::parser parser;
    std::vector<lj_node> nodes;
    std::string error;
    size_t error_offset = 0;
    const char *base = nullptr;
    const char *end = nullptr;
};

namespace {

struct failure {};

inline bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

inline bool is_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

[[noreturn]] void fail(lj_parser &P, const char *where, const std::string &message) {
    P.error = message;
    P.error_offset = where && where >= P.base && where <= P.end ? size_t(where - P.base) : SIZE_MAX;
    throw failure{};
}

// Messages for users who are looking at a line of their data, not at simdjson.
const char *describe(error_code code) {
    switch (code) {
    case TAPE_ERROR: return "a missing or extra comma, colon, bracket or brace";
    case INCOMPLETE_ARRAY_OR_OBJECT: return "an object or array is not closed (truncated?)";
    case UNCLOSED_STRING: return "unterminated string";
    case UTF8_ERROR: return "invalid UTF-8";
    case STRING_ERROR: return "invalid string";
    case T_ATOM_ERROR:
    case F_ATOM_ERROR:
    case N_ATOM_ERROR: return "invalid literal (expected true, false or null)";
    case NUMBER_ERROR: return "invalid number";
    case DEPTH_ERROR: return "nested too deeply";
    case EMPTY: return "empty text";
    case UNESCAPED_CHARS: return "unescaped control character inside a string";
    case TRAILING_CONTENT: return "unexpected text after the JSON value";
    case CAPACITY: return "text too large";
    default: return error_message(code);
    }
}

[[noreturn]] void fail(lj_parser &P, const char *where, error_code code) {
    fail(P, where, describe(code));
}

// True when any byte of w is '"', '\\' or below 0x20 (SWAR: eight bytes at a time).
inline bool word_has_special(uint64_t w) {
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t q = w ^ (ones * '"');
    uint64_t b = w ^ (ones * '\\');
    uint64_t special = ((q - ones) & ~q) | ((b - ones) & ~b) | ((w - ones * 0x20) & ~w);
    return (special & highs) != 0;
}

#if defined(__SSE2__)
// A bit for each of the 16 bytes at p that is '"', '\\' or below 0x20.
inline unsigned special_mask16(const char *p) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i *>(p));
    __m128i q = _mm_cmpeq_epi8(v, _mm_set1_epi8('"'));
    __m128i b = _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'));
    __m128i low = _mm_set1_epi8(0x1F);
    __m128i c = _mm_cmpeq_epi8(_mm_max_epu8(v, low), low);
    return unsigned(_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(q, b), c)));
}
#endif

// Scans a string body starting just after its opening quote. Returns the body
// length (up to, not including, the closing quote) and whether it has escapes.
size_t scan_string(lj_parser &P, const char *p, bool &escaped) {
    const char *s = p;
    escaped = false;
    while (p < P.end) {
#if defined(__SSE2__)
        // The input has LJ_PADDING readable bytes after its end: 16 at a time is safe.
        for (;;) {
            unsigned m = special_mask16(p);
            if (m) {
                p += __builtin_ctz(m);
                break;
            }
            p += 16;
            if (p >= P.end) break;
        }
#else
        while (p + 8 <= P.end) {
            uint64_t w;
            memcpy(&w, p, 8);
            if (word_has_special(w)) break;
            p += 8;
        }
#endif
        if (p >= P.end) break;
        unsigned char c = static_cast<unsigned char>(*p);
        if (c == '"') return size_t(p - s);
        if (c == '\\') {
            escaped = true;
            if (p + 1 >= P.end) break;
            char e = p[1];
            if (e == 'u') {
                if (p + 6 > P.end || !is_hex(p[2]) || !is_hex(p[3]) || !is_hex(p[4]) || !is_hex(p[5]))
                    fail(P, p, "invalid \\u escape in string");
                p += 6;
                continue;
            }
            if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' && e != 'r' && e != 't')
                fail(P, p, std::string("invalid escape \\") + e + " in string");
            p += 2;
            continue;
        }
        if (c < 0x20) {
            if (c == 0) fail(P, p, "NUL byte inside a string");
            fail(P, p, "unescaped control character inside a string");
        }
        ++p;
    }
    fail(P, s, "unterminated string");
}

const char *skip_ws(lj_parser &P, const char *p) {
    while (p < P.end && is_ws(*p)) ++p;
    return p;
}

uint32_t off(lj_parser &P, const char *p) { return uint32_t(p - P.base); }

size_t push(lj_parser &P, uint8_t kind, uint8_t flags, const char *key, size_t key_len) {
    lj_node n{};
    n.kind = kind;
    n.flags = flags;
    if (flags & LJ_HAS_KEY) {
        n.key_off = off(P, key);
        n.key_len = uint32_t(key_len);
    }
    P.nodes.push_back(n);
    return P.nodes.size() - 1;
}

// The raw token of a value: value and document return it differently.
std::string_view token_of(lj_parser &, ondemand::value &v) { return v.raw_json_token(); }

std::string_view token_of(lj_parser &P, ondemand::document &d) {
    std::string_view tok;
    if (auto e = d.raw_json_token().get(tok)) fail(P, nullptr, e);
    return tok;
}

// JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
// Returns 0 if not a number, 1 for an integer, 2 for a number with fraction or exponent.
int number_grammar(std::string_view t) {
    size_t i = 0, n = t.size();
    if (i < n && t[i] == '-') ++i;
    if (i >= n) return 0;
    if (t[i] == '0') {
        ++i;
    } else if (t[i] >= '1' && t[i] <= '9') {
        while (i < n && t[i] >= '0' && t[i] <= '9') ++i;
    } else {
        return 0;
    }
    int kind = 1;
    if (i < n && t[i] == '.') {
        ++i;
        size_t d = i;
        while (i < n && t[i] >= '0' && t[i] <= '9') ++i;
        if (i == d) return 0;
        kind = 2;
    }
    if (i < n && (t[i] == 'e' || t[i] == 'E')) {
        ++i;
        if (i < n && (t[i] == '+' || t[i] == '-')) ++i;
        size_t d = i;
        while (i < n && t[i] >= '0' && t[i] <= '9') ++i;
        if (i == d) return 0;
        kind = 2;
    }
    return i == n ? kind : 0;
}

std::string bad_literal(std::string_view t) {
    std::string shown(t.substr(0, 24));
    if (t.size() > 24) shown += "...";
    return "unexpected '" + shown + "' (expected a string, number, object, array, true, false or null)";
}

std::string_view trimmed(std::string_view tok) {
    size_t n = tok.size();
    while (n > 0 && is_ws(tok[n - 1])) --n;
    return tok.substr(0, n);
}

// Records a scalar. V is ondemand::value or ondemand::document.
template <typename V>
void walk_scalar(lj_parser &P, V &v, ondemand::json_type type, size_t idx) {
    std::string_view tok = token_of(P, v);
    lj_node &n = P.nodes[idx];
    n.val_off = off(P, tok.data());
    switch (type) {
    case ondemand::json_type::string: {
        bool escaped = false;
        size_t len = scan_string(P, tok.data() + 1, escaped);
        if (escaped) n.flags |= LJ_VALUE_ESCAPED;
        n.kind = LJ_STRING;
        n.val_len = uint32_t(len + 2);
        break;
    }
    case ondemand::json_type::number: {
        std::string_view t = trimmed(tok);
        n.val_len = uint32_t(t.size());
        ondemand::number num;
        auto e = v.get_number().get(num);
        if (e) {
            // Numbers beyond 64-bit range are valid JSON: keep their text.
            int grammar = number_grammar(t);
            if (grammar == 0) fail(P, tok.data(), "invalid number");
            n.kind = grammar == 1 ? LJ_BIGINT : LJ_FLOAT;
        } else if (num.is_int64()) {
            n.kind = LJ_INT;
        } else if (num.is_uint64()) {
            n.kind = LJ_BIGINT;
        } else {
            n.kind = LJ_FLOAT;
        }
        break;
    }
    case ondemand::json_type::boolean: {
        std::string_view t = trimmed(tok);
        n.val_len = uint32_t(t.size());
        if (t == "true") n.kind = LJ_TRUE;
        else if (t == "false") n.kind = LJ_FALSE;
        else fail(P, tok.data(), bad_literal(t));
        break;
    }
    case ondemand::json_type::null: {
        std::string_view t = trimmed(tok);
        n.val_len = uint32_t(t.size());
        if (t != "null") fail(P, tok.data(), bad_literal(t));
        n.kind = LJ_NULL;
        break;
    }
    default:
        fail(P, tok.data(), "unexpected value");
    }
    n.next = uint32_t(P.nodes.size());
}

void walk_value(lj_parser &P, ondemand::value v, size_t idx);

void walk_object(lj_parser &P, ondemand::object obj, const char *open, size_t idx) {
    const char *after_last = open + 1;
    uint32_t count = 0;
    for (auto member : obj) {
        ondemand::field field;
        if (auto e = std::move(member).get(field)) fail(P, after_last, e);
        const char *kp = field.key().raw();
        bool escaped = false;
        size_t klen = scan_string(P, kp, escaped);
        uint8_t flags = LJ_HAS_KEY | (escaped ? LJ_KEY_ESCAPED : 0);
        size_t child = push(P, LJ_NULL, flags, kp, klen);
        walk_value(P, field.value(), child);
        const lj_node &c = P.nodes[child];
        after_last = P.base + c.val_off + c.val_len;
        ++count;
    }
    const char *close = skip_ws(P, after_last);
    if (close >= P.end || *close != '}') fail(P, close, "expected '}'");
    lj_node &n = P.nodes[idx];
    n.kind = LJ_OBJECT;
    n.val_off = off(P, open);
    n.val_len = uint32_t(close + 1 - open);
    n.count = count;
    n.next = uint32_t(P.nodes.size());
}

void walk_array(lj_parser &P, ondemand::array arr, const char *open, size_t idx) {
    const char *after_last = open + 1;
    uint32_t count = 0;
    for (auto element : arr) {
        ondemand::value ev;
        if (auto e = std::move(element).get(ev)) fail(P, after_last, e);
        size_t child = push(P, LJ_NULL, 0, nullptr, 0);
        walk_value(P, ev, child);
        const lj_node &c = P.nodes[child];
        after_last = P.base + c.val_off + c.val_len;
        ++count;
    }
    const char *close = skip_ws(P, after_last);
    if (close >= P.end || *close != ']') fail(P, close, "expected ']'");
    lj_node &n = P.nodes[idx];
    n.kind = LJ_ARRAY;
    n.val_off = off(P, open);
    n.val_len = uint32_t(close + 1 - open);
    n.count = count;
    n.next = uint32_t(P.nodes.size());
}

void walk_value(lj_parser &P, ondemand::value v, size_t idx) {
    ondemand::json_type type;
    if (auto e = v.type().get(type)) fail(P, nullptr, e);
    if (type == ondemand::json_type::object || type == ondemand::json_type::array) {
        std::string_view tok = v.raw_json_token();
        if (type == ondemand::json_type::object) {
            ondemand::object obj;
            if (auto e = v.get_object().get(obj)) fail(P, tok.data(), e);
            walk_object(P, obj, tok.data(), idx);
        } else {
            ondemand::array arr;
            if (auto e = v.get_array().get(arr)) fail(P, tok.data(), e);
            walk_array(P, arr, tok.data(), idx);
        }
        return;
    }
    walk_scalar(P, v, type, idx);
}


// The fast path: a validating recursive-descent walk that builds the tape in one pass over
// the text (UTF-8 checked first, for the whole text). It accepts
// only what the On-Demand walk below accepts, and gives the same nodes (the tests compare
// them on fuzzed texts); anything it does not like, it leaves to that walk, so every error
// message and offset is the On-Demand walk's.
struct bail {};

constexpr int fast_max_depth = 1000; // On-Demand's own limit is 1024

inline const char *fast_ws(const char *p, const char *end) {
    while (p < end && is_ws(*p)) ++p;
    return p;
}

inline bool is_digit(char c) { return c >= '0' && c <= '9'; }

// A number at p (p < end): its kind, and where it ends. The JSON grammar, strictly.
inline const char *fast_number(const char *p, const char *end, uint8_t &kind) {
    bool negative = false;
    if (*p == '-') {
        negative = true;
        ++p;
        if (p >= end) throw bail{};
    }
    const char *digits = p;
    if (*p == '0') {
        ++p;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && is_digit(*p)) ++p;
    } else {
        throw bail{};
    }
    size_t n = size_t(p - digits);
    bool fraction = false;
    if (p < end && *p == '.') {
        ++p;
        const char *d = p;
        while (p < end && is_digit(*p)) ++p;
        if (p == d) throw bail{};
        fraction = true;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        ++p;
        if (p < end && (*p == '+' || *p == '-')) ++p;
        const char *d = p;
        while (p < end && is_digit(*p)) ++p;
        if (p == d) throw bail{};
        fraction = true;
    }
    if (fraction) {
        kind = LJ_FLOAT;
    } else if (n < 19) {
        kind = LJ_INT;
    } else if (n > 19) {
        kind = LJ_BIGINT;
    } else {
        // 19 digits: an int64 up to 9223372036854775807 (-...808 when negative).
        const char *limit = negative ? "9223372036854775808" : "9223372036854775807";
        kind = memcmp(digits, limit, 19) <= 0 ? LJ_INT : LJ_BIGINT;
    }
    return p;
}

const char *fast_value(lj_parser &P, const char *p, size_t idx, int depth);

// A container at p ('{' or '['), its node at idx.
const char *fast_container(lj_parser &P, const char *p, size_t idx, int depth) {
    if (depth >= fast_max_depth) throw bail{};
    const char *end = P.end;
    const bool object = *p == '{';
    const char close = object ? '}' : ']';
    uint32_t count = 0;
    const char *q = fast_ws(p + 1, end);
    if (q >= end) throw bail{};
    if (*q != close) {
        for (;;) {
            size_t child;
            if (object) {
                if (*q != '"') throw bail{};
                bool escaped = false;
                size_t klen = scan_string(P, q + 1, escaped);
                child = push(P, LJ_NULL, uint8_t(LJ_HAS_KEY | (escaped ? LJ_KEY_ESCAPED : 0)), q + 1, klen);
                q = fast_ws(q + 2 + klen, end);
                if (q >= end || *q != ':') throw bail{};
                q = fast_ws(q + 1, end);
                if (q >= end) throw bail{};
            } else {
                child = push(P, LJ_NULL, 0, nullptr, 0);
            }
            q = fast_ws(fast_value(P, q, child, depth + 1), end);
            ++count;
            if (q >= end) throw bail{};
            if (*q == ',') {
                q = fast_ws(q + 1, end);
                if (q >= end) throw bail{};
                continue;
            }
            if (*q == close) break;
            throw bail{};
        }
    }
    lj_node &n = P.nodes[idx];
    n.kind = object ? LJ_OBJECT : LJ_ARRAY;
    n.val_off = off(P, p);
    n.val_len = uint32_t(q + 1 - p);
    n.count = count;
    n.next = uint32_t(P.nodes.size());
    return q + 1;
}

// The value at p (p < end, not whitespace), its node at idx; returns the end of its token.
const char *fast_value(lj_parser &P, const char *p, size_t idx, int depth) {
    const char *end = P.end;
    uint8_t kind;
    const char *after;
    switch (*p) {
    case '{':
    case '[':
        return fast_container(P, p, idx, depth);
    case '"': {
        bool escaped = false;
        size_t len = scan_string(P, p + 1, escaped);
        lj_node &n = P.nodes[idx];
        if (escaped) n.flags |= LJ_VALUE_ESCAPED;
        n.kind = LJ_STRING;
        n.val_off = off(P, p);
        n.val_len = uint32_t(len + 2);
        n.next = uint32_t(P.nodes.size());
        return p + len + 2;
    }
    case 't':
        if (end - p < 4 || memcmp(p, "true", 4) != 0) throw bail{};
        kind = LJ_TRUE;
        after = p + 4;
        break;
    case 'f':
        if (end - p < 5 || memcmp(p, "false", 5) != 0) throw bail{};
        kind = LJ_FALSE;
        after = p + 5;
        break;
    case 'n':
        if (end - p < 4 || memcmp(p, "null", 4) != 0) throw bail{};
        kind = LJ_NULL;
        after = p + 4;
        break;
    default:
        if (*p != '-' && !is_digit(*p)) throw bail{};
        after = fast_number(p, end, kind);
        break;
    }
    lj_node &n = P.nodes[idx];
    n.kind = kind;
    n.val_off = off(P, p);
    n.val_len = uint32_t(after - p);
    n.next = uint32_t(P.nodes.size());
    return after;
}

// True when buf[0..len) is valid UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
// past U+10FFFF), ASCII 16 bytes at a time. The project's one UTF-8 check (lj_validate_utf8 too):
// simdjson's validate_utf8 goes through a process-wide implementation object, which a worker
// still parsing while the process exits (`lead-flatten json | head`) would call after its
// destruction.
bool valid_utf8(const char *text, size_t n) {
    const unsigned char *s = reinterpret_cast<const unsigned char *>(text);
    size_t i = 0;
    while (i < n) {
#if defined(__SSE2__)
        while (i + 16 <= n && _mm_movemask_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i *>(s + i))) == 0) i += 16;
#endif
        if (i >= n) break;
        unsigned char c = s[i];
        if (c < 0x80) {
            ++i;
            continue;
        }
        size_t need;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i - 1 < need) return false;
        for (size_t k = 1; k <= need; ++k) {
            unsigned char b = s[i + k];
            if ((b & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (b & 0x3F);
        }
        if (need == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return false;
        if (need == 3 && (cp < 0x10000 || cp > 0x10FFFF)) return false;
        i += need + 1;
    }
    return true;
}

// True when the fast path built the tape; false leaves the text to the On-Demand walk.
bool fast_parse(lj_parser &P, const char *buf, size_t len) {
    if (len > 0xFFFFFFF0u) return false;
    if (!valid_utf8(buf, len)) return false;
    try {
        const char *first = fast_ws(buf, P.end);
        if (first >= P.end) return false;
        push(P, LJ_NULL, 0, nullptr, 0);
        const char *rest = fast_ws(fast_value(P, first, 0, 0), P.end);
        if (rest < P.end) return false;
    } catch (const bail &) {
        return false;
    } catch (const failure &) {
        return false;
    }
    return true;
}

} // namespace

extern "C" {

lj_parser *lj_parser_new(void) {
    lj_parser *p = new (std::nothrow) lj_parser();
    if (p) p->nodes.reserve(1024);
    return p;
}

size_t lj_find_special(const char *buf, size_t len) {
    size_t i = 0;
#if defined(__SSE2__)
    while (i + 16 <= len) {
        unsigned m = special_mask16(buf + i);
        if (m) return i + size_t(__builtin_ctz(m));
        i += 16;
    }
    // The last bytes: 16 read at once when they do not cross into the next page (which may
    // not be mapped), the ones past the end masked off.
    if (i < len && (reinterpret_cast<uintptr_t>(buf + i) & 4095) <= 4096 - 16) {
        unsigned m = special_mask16(buf + i) & ((1u << (len - i)) - 1);
        return m ? i + size_t(__builtin_ctz(m)) : len;
    }
#endif
    while (i + 8 <= len) {
        uint64_t w;
        memcpy(&w, buf + i, 8);
        if (word_has_special(w)) break;
        i += 8;
    }
    for (; i < len; ++i) {
        unsigned char c = static_cast<unsigned char>(buf[i]);
        if (c == '"' || c == '\\' || c < 0x20) return i;
    }
    return len;
}

void lj_parser_free(lj_parser *parser) { delete parser; }

int64_t lj_parse(lj_parser *P, const char *buf, size_t len, size_t capacity) {
    P->nodes.clear();
    P->error.clear();
    P->error_offset = 0;
    P->base = buf;
    P->end = buf + len;
    if (fast_parse(*P, buf, len)) return int64_t(P->nodes.size());
    return lj_parse_reference(P, buf, len, capacity);
}

int64_t lj_parse_reference(lj_parser *P, const char *buf, size_t len, size_t capacity) {
    P->nodes.clear();
    P->error.clear();
    P->error_offset = 0;
    P->base = buf;
    P->end = buf + len;
    ondemand::document doc;
    auto err = P->parser.iterate(buf, len, capacity).get(doc);
    if (err) {
        P->error = describe(err);
        P->error_offset = SIZE_MAX;
        return -1;
    }
    try {
        const char *first = skip_ws(*P, buf);
        if (first >= P->end) fail(*P, first, "empty text");
        push(*P, LJ_NULL, 0, nullptr, 0);
        if (*first == '{' || *first == '[') {
            ondemand::value v;
            if (auto e = doc.get_value().get(v)) fail(*P, first, e);
            walk_value(*P, v, 0);
        } else {
            ondemand::json_type type;
            if (auto e = doc.type().get(type)) fail(*P, first, e);
            walk_scalar(*P, doc, type, 0);
        }
        const lj_node &root = P->nodes[0];
        const char *rest = skip_ws(*P, buf + root.val_off + root.val_len);
        if (rest < P->end) fail(*P, rest, "unexpected text after the JSON value");
    } catch (const failure &) {
        if (P->error.empty()) P->error = "invalid JSON";
        return -1;
    }
    return int64_t(P->nodes.size());
}

const lj_node *lj_nodes(const lj_parser *parser) { return parser->nodes.data(); }

const char *lj_error_message(const lj_parser *parser) { return parser->error.c_str(); }

size_t lj_error_offset(const lj_parser *parser) { return parser->error_offset; }

static unsigned hex4(const char *p) {
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= unsigned(c - '0');
        else if (c >= 'a' && c <= 'f') v |= unsigned(c - 'a' + 10);
        else v |= unsigned(c - 'A' + 10);
    }
    return v;
}

static char *put_utf8(char *d, unsigned cp) {
    if (cp < 0x80) {
        *d++ = char(cp);
    } else if (cp < 0x800) {
        *d++ = char(0xC0 | (cp >> 6));
        *d++ = char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *d++ = char(0xE0 | (cp >> 12));
        *d++ = char(0x80 | ((cp >> 6) & 0x3F));
        *d++ = char(0x80 | (cp & 0x3F));
    } else {
        *d++ = char(0xF0 | (cp >> 18));
        *d++ = char(0x80 | ((cp >> 12) & 0x3F));
        *d++ = char(0x80 | ((cp >> 6) & 0x3F));
        *d++ = char(0x80 | (cp & 0x3F));
    }
    return d;
}

size_t lj_unescape(const char *src, size_t len, char *dst) {
    const char *p = src, *end = src + len;
    char *d = dst;
    while (p < end) {
        const char *bs = static_cast<const char *>(memchr(p, '\\', size_t(end - p)));
        if (!bs) {
            memcpy(d, p, size_t(end - p));
            d += end - p;
            break;
        }
        memcpy(d, p, size_t(bs - p));
        d += bs - p;
        p = bs;
        if (p + 1 >= end) break;
        char e = p[1];
        if (e == 'u' && p + 6 <= end) {
            unsigned cp = hex4(p + 2);
            p += 6;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (p + 6 <= end && p[0] == '\\' && p[1] == 'u') {
                    unsigned lo = hex4(p + 2);
                    if (lo >= 0xDC00 && lo <= 0xDFFF) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        p += 6;
                    } else {
                        cp = 0xFFFD;
                    }
                } else {
                    cp = 0xFFFD;
                }
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                cp = 0xFFFD;
            }
            d = put_utf8(d, cp);
            continue;
        }
        switch (e) {
        case 'b': *d++ = '\b'; break;
        case 'f': *d++ = '\f'; break;
        case 'n': *d++ = '\n'; break;
        case 'r': *d++ = '\r'; break;
        case 't': *d++ = '\t'; break;
        default: *d++ = e; break;
        }
        p += 2;
    }
    return size_t(d - dst);
}

bool lj_validate_utf8(const char *buf, size_t len) { return valid_utf8(buf, len); }

} // extern "C"
