// The benchmark's ceiling for lead-flatten json (issue 15): simdjson's own parse of a JSONL
// file, one thread, parse_many (the On-Demand-free DOM parser, the kernel picked at run time
// for this CPU), touching every value so nothing is skipped. Prints documents and MB/s.
//   c++ -O3 -std=c++17 bench/simdjson_parse.cpp -lsimdjson -o bench/data/simdjson_parse
#include <simdjson.h>
#include <chrono>
#include <cstdio>

static size_t walk(simdjson::dom::element e) {
    size_t n = 1;
    if (e.is_object()) {
        for (auto field : simdjson::dom::object(e)) n += walk(field.value);
    } else if (e.is_array()) {
        for (auto item : simdjson::dom::array(e)) n += walk(item);
    }
    return n;
}

int main(int argc, char **argv) {
    if (argc != 2) { std::fprintf(stderr, "usage: simdjson_parse FILE.jsonl\n"); return 2; }
    simdjson::padded_string json;
    if (simdjson::padded_string::load(argv[1]).get(json)) { std::fprintf(stderr, "cannot read %s\n", argv[1]); return 3; }
    simdjson::dom::parser parser;
    auto start = std::chrono::steady_clock::now();
    simdjson::dom::document_stream docs;
    if (parser.parse_many(json).get(docs)) { std::fprintf(stderr, "parse_many failed\n"); return 1; }
    size_t count = 0, values = 0;
    for (auto doc : docs) {
        simdjson::dom::element e;
        if (doc.get(e)) { std::fprintf(stderr, "bad document\n"); return 1; }
        values += walk(e);
        count++;
    }
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%zu documents, %zu values, %.3f s, %.1f MB/s, kernel %s\n", count, values, seconds,
                json.size() / 1e6 / seconds, simdjson::get_active_implementation()->name().c_str());
    return 0;
}
