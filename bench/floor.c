/*
 * The physical floor of a checkpoint listing: per `.kv` file in a
 * directory, exactly what any lister must do and nothing more — open it,
 * read the 52-byte prefix (48-byte header + u32 text_len, FORMAT.md §3),
 * fstat it for the size, close it. Single-threaded, no sorting, no output
 * but a one-line checksum (so the work cannot be optimized away).
 *
 * Built by the benchmark with `cc -O2`; usage: floor DIR
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PREFIX_LEN 52

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    DIR *d = opendir(argv[1]);
    if (!d) {
        perror(argv[1]);
        return 2;
    }
    int dfd = dirfd(d);
    unsigned long files = 0;
    unsigned long long sum = 0;
    unsigned char prefix[PREFIX_LEN];
    struct stat st;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 3 || strcmp(e->d_name + len - 3, ".kv") != 0)
            continue;
        /* As kvc opens: never follow a link, never block on a FIFO. */
        int fd = openat(dfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
            continue;
        if (read(fd, prefix, PREFIX_LEN) == PREFIX_LEN && fstat(fd, &st) == 0) {
            files++;
            sum += (unsigned long long)st.st_size + prefix[8];
        }
        close(fd);
    }
    closedir(d);
    printf("%lu %llu\n", files, sum);
    return 0;
}
