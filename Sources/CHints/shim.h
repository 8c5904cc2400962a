#ifndef LEAD_HINTS_H
#define LEAD_HINTS_H

/// Asks the processor to start loading the cache line at `p` (for reading, kept in every
/// cache level), so that a loop over memory in an order the hardware cannot guess finds it
/// loaded a few steps later. A hint only: it never faults and changes no result.
static inline void lead_prefetch(const void *p) {
#if defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(p, 0, 3);
#else
    (void)p;
#endif
}
#endif
