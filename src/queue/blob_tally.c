/* blob_tally - the shared byte count of the blob store: a mapped file and atomic adds. */
#include "queue/blob_tally.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

void tally_open(blob_tally *t, const char *path)
{
    atomic_init(&t->own, 0);
    t->count = &t->own;
    t->mapped = 0;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    struct stat sb;
    /* growing the file reads as zeros; a file already grown keeps its count,
       however many processes open it at once */
    if (fstat(fd, &sb) == 0 &&
        (sb.st_size >= (off_t)sizeof(int64_t) || ftruncate(fd, (off_t)sizeof(int64_t)) == 0)) {
        void *p = mmap(NULL, sizeof(int64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p != MAP_FAILED) {
            t->count = p;
            t->mapped = 1;
        }
    }
    close(fd);
}

void tally_close(blob_tally *t)
{
    if (t->mapped)
        munmap((void *)t->count, sizeof(int64_t));
    t->count = &t->own;
    t->mapped = 0;
}

void tally_add(blob_tally *t, int64_t delta)
{
    atomic_fetch_add_explicit(t->count, delta, memory_order_relaxed);
}

int64_t tally_get(blob_tally *t)
{
    int64_t v = atomic_load_explicit(t->count, memory_order_relaxed);
    return v > 0 ? v : 0;
}

void tally_set(blob_tally *t, int64_t value)
{
    atomic_store_explicit(t->count, value, memory_order_relaxed);
}
