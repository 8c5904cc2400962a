#ifndef LEAD_WRITEBACK_H
#define LEAD_WRITEBACK_H
#ifdef __linux__
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#endif

/// Starts writing the file's dirty pages to disk without waiting for them (Linux
/// sync_file_range with SYNC_FILE_RANGE_WRITE; nothing elsewhere), so that the fsync that
/// commits a large output finds most of it written already.
static inline int lead_start_writeback(int fd) {
#ifdef __linux__
    return sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
#else
    (void)fd;
    return 0;
#endif
}
#endif
