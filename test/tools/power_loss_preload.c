// power_loss_preload.so - a disk with a volatile write cache under a real process, for power-loss
// tests (test/integration/replication_standby_power_loss.sh).
//
//   POWER_LOSS_FILES=/abs/a.img[:/abs/b.img...] LD_PRELOAD=.../libpower_loss_preload.so freevsa serve ...
//
// Writes to the named files are held in this process's memory instead of reaching the file,
// as a disk's write cache or the page cache holds them, until they are made durable: by
// fsync/fdatasync on any descriptor of the file, or by a write with RWF_DSYNC/RWF_SYNC (pwritev2)
// or on a descriptor opened O_DSYNC/O_SYNC (that write alone). Reads see the held data. A
// fallocate (discard) first writes everything held to the file, then runs: a discard is never
// lost (a real disk might lose one).
//
// SIGUSR2 is the power loss: from then on nothing reaches the named files - every write, flush or
// fallocate on them blocks for good (a dead machine answers nothing), including a flush that was
// half way; the held writes are gone once the process is killed (SIGKILL, right after).
//
// Covers what freevsa's file volume uses (replication/file_volume.cpp): open/openat, pread,
// pwrite, pwritev2, fdatasync, fsync, fallocate, close. Block-aligned I/O only (512 bytes).
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define SECTOR 512u
#define MAX_FILES 8
#define MAX_FDS 4096

struct held {  // open addressing on the sector number; data NULL: empty slot
  uint64_t sector;
  uint8_t *data;
};

struct file {
  dev_t dev;
  ino_t ino;
  const char *path;
  struct held *slots;
  size_t capacity, count;
};

static struct file files[MAX_FILES];
static int file_count;
static signed char fd_file[MAX_FDS];  // index into files + 1, 0: not ours
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static volatile sig_atomic_t power_lost;

static int (*real_open)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_close)(int);
static ssize_t (*real_pread)(int, void *, size_t, off_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwritev2)(int, const struct iovec *, int, off_t, int);
static int (*real_fdatasync)(int);
static int (*real_fsync)(int);
static int (*real_fallocate)(int, int, off_t, off_t);

static void on_power_loss(int signal_number) {
  (void)signal_number;
  power_lost = 1;
  // How much the power loss takes (async-signal-safe: digits by hand, one write).
  uint64_t held = 0;
  for (int i = 0; i < file_count; ++i) held += (uint64_t)files[i].count * SECTOR;
  char line[96] = "power_loss_preload: power lost; writes held and lost: ";
  size_t at = strlen(line);
  char digits[24];
  int n = 0;
  do {
    digits[n++] = (char)('0' + held % 10);
    held /= 10;
  } while (held > 0);
  while (n > 0) line[at++] = digits[--n];
  memcpy(line + at, " bytes\n", 7);
  if (write(STDERR_FILENO, line, at + 7) < 0) power_lost = 1;
}

__attribute__((constructor)) static void init(void) {
  real_open = dlsym(RTLD_NEXT, "open");
  real_openat = dlsym(RTLD_NEXT, "openat");
  real_close = dlsym(RTLD_NEXT, "close");
  real_pread = dlsym(RTLD_NEXT, "pread");
  real_pwrite = dlsym(RTLD_NEXT, "pwrite");
  real_pwritev2 = dlsym(RTLD_NEXT, "pwritev2");
  real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
  real_fsync = dlsym(RTLD_NEXT, "fsync");
  real_fallocate = dlsym(RTLD_NEXT, "fallocate");
  const char *list = getenv("POWER_LOSS_FILES");
  if (list != NULL) {
    char *copy = strdup(list), *save = NULL;
    for (char *path = strtok_r(copy, ":", &save); path != NULL && file_count < MAX_FILES;
         path = strtok_r(NULL, ":", &save)) {
      files[file_count++].path = path;
    }
  }
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = on_power_loss;
  sigaction(SIGUSR2, &action, NULL);
}

// After the power loss: nothing of ours reaches the disk any more.
static void dead(void) {
  for (;;) pause();
}

static struct file *ours(int fd) {
  if (fd < 0 || fd >= MAX_FDS || fd_file[fd] == 0) return NULL;
  return &files[fd_file[fd] - 1];
}

static void track(int fd) {
  struct stat opened;
  if (fd < 0 || fd >= MAX_FDS || file_count == 0 || fstat(fd, &opened) != 0) return;
  for (int i = 0; i < file_count; ++i) {
    struct stat named;
    if (stat(files[i].path, &named) != 0 || named.st_dev != opened.st_dev || named.st_ino != opened.st_ino) continue;
    pthread_mutex_lock(&lock);
    files[i].dev = opened.st_dev;
    files[i].ino = opened.st_ino;
    fd_file[fd] = (signed char)(i + 1);
    pthread_mutex_unlock(&lock);
    fprintf(stderr, "power_loss_preload: writes to %s are held until flushed (SIGUSR2: power loss)\n", files[i].path);
    return;
  }
}

static size_t slot_of(const struct file *f, uint64_t sector) {
  size_t i = (size_t)(sector * 0x9e3779b97f4a7c15ull) & (f->capacity - 1);
  while (f->slots[i].data != NULL && f->slots[i].sector != sector) i = (i + 1) & (f->capacity - 1);
  return i;
}

static uint8_t *lookup(const struct file *f, uint64_t sector) {
  if (f->count == 0) return NULL;
  return f->slots[slot_of(f, sector)].data;
}

static int grow(struct file *f) {
  size_t capacity = f->capacity ? f->capacity * 2 : 1024;
  struct held *slots = calloc(capacity, sizeof *slots);
  if (slots == NULL) return -1;
  struct held *old = f->slots;
  size_t old_capacity = f->capacity;
  f->slots = slots;
  f->capacity = capacity;
  for (size_t i = 0; i < old_capacity; ++i)
    if (old[i].data != NULL) f->slots[slot_of(f, old[i].sector)] = old[i];
  free(old);
  return 0;
}

static int hold(struct file *f, uint64_t sector, const uint8_t *bytes) {
  if ((f->count + 1) * 2 > f->capacity && grow(f) != 0) return -1;
  struct held *slot = &f->slots[slot_of(f, sector)];
  if (slot->data == NULL) {
    slot->data = malloc(SECTOR);
    if (slot->data == NULL) return -1;
    slot->sector = sector;
    f->count++;
  }
  memcpy(slot->data, bytes, SECTOR);
  return 0;
}

static void drop_all(struct file *f) {
  for (size_t i = 0; i < f->capacity; ++i) free(f->slots[i].data);
  memset(f->slots, 0, f->capacity * sizeof *f->slots);
  f->count = 0;
}

static void forget(struct file *f, uint64_t first, uint64_t end) {  // sectors [first, end)
  if (f->count == 0) return;
  // Rehash without the dropped sectors (open addressing cannot just empty a slot).
  struct held *old = f->slots;
  size_t old_capacity = f->capacity;
  f->slots = calloc(old_capacity, sizeof *f->slots);
  if (f->slots == NULL) abort();
  f->count = 0;
  for (size_t i = 0; i < old_capacity; ++i) {
    if (old[i].data == NULL) continue;
    if (old[i].sector >= first && old[i].sector < end) {
      free(old[i].data);
      continue;
    }
    f->slots[slot_of(f, old[i].sector)] = old[i];
    f->count++;
  }
  free(old);
}

static int by_sector(const void *a, const void *b) {
  const uint64_t x = ((const struct held *)a)->sector, y = ((const struct held *)b)->sector;
  return x < y ? -1 : x > y;
}

// Writes everything held for f through fd, in runs of adjacent sectors (aligned, for O_DIRECT).
static int commit(struct file *f, int fd) {
  if (f->count == 0) return 0;
  struct held *sorted = malloc(f->count * sizeof *sorted);
  if (sorted == NULL) return -1;
  size_t n = 0;
  for (size_t i = 0; i < f->capacity; ++i)
    if (f->slots[i].data != NULL) sorted[n++] = f->slots[i];
  qsort(sorted, n, sizeof *sorted, by_sector);
  enum { RUN = 256 };
  uint8_t *run = NULL;
  if (posix_memalign((void **)&run, 4096, RUN * SECTOR) != 0) {
    free(sorted);
    return -1;
  }
  int error = 0;
  for (size_t i = 0; i < n && error == 0;) {
    size_t length = 0;
    while (i + length < n && length < RUN && sorted[i + length].sector == sorted[i].sector + length) {
      memcpy(run + length * SECTOR, sorted[i + length].data, SECTOR);
      ++length;
    }
    if (power_lost) dead();
    if (real_pwrite(fd, run, length * SECTOR, (off_t)(sorted[i].sector * SECTOR)) != (ssize_t)(length * SECTOR)) {
      error = -1;
    }
    i += length;
  }
  free(run);
  free(sorted);
  if (error == 0) drop_all(f);
  return error;
}

static int synchronous(int fd) {
  const int flags = fcntl(fd, F_GETFL);
  return flags >= 0 && (flags & (O_DSYNC | O_SYNC)) != 0;
}

static ssize_t hold_write(struct file *f, const uint8_t *data, size_t length, off_t offset) {
  if ((uint64_t)offset % SECTOR != 0 || length % SECTOR != 0) {
    errno = EINVAL;
    return -1;
  }
  for (size_t done = 0; done < length; done += SECTOR) {
    if (hold(f, ((uint64_t)offset + done) / SECTOR, data + done) != 0) {
      errno = ENOMEM;
      return -1;
    }
  }
  return (ssize_t)length;
}

// ---- the intercepted calls

// The mode argument exists only when a file may be created.
static mode_t creation_mode(int flags, va_list *args) {
  return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(*args, int) : 0;
}

static int tracked(int fd) {
  track(fd);
  return fd;
}

int open(const char *path, int flags, ...) {
  va_list args;
  va_start(args, flags);
  const mode_t mode = creation_mode(flags, &args);
  va_end(args);
  return tracked(real_open(path, flags, mode));
}
int open64(const char *path, int flags, ...) __attribute__((alias("open")));

int openat(int directory, const char *path, int flags, ...) {
  va_list args;
  va_start(args, flags);
  const mode_t mode = creation_mode(flags, &args);
  va_end(args);
  return tracked(real_openat(directory, path, flags, mode));
}
int openat64(int directory, const char *path, int flags, ...) __attribute__((alias("openat")));

int close(int fd) {
  if (fd >= 0 && fd < MAX_FDS) fd_file[fd] = 0;  // the held writes stay with the file
  return real_close(fd);
}

ssize_t pread(int fd, void *buffer, size_t length, off_t offset) {
  struct file *f = ours(fd);
  if (f == NULL) return real_pread(fd, buffer, length, offset);
  // Under the lock: a flush committing a held block between the read of the file and the
  // overlay would leave the read with the old content.
  pthread_mutex_lock(&lock);
  const ssize_t got = real_pread(fd, buffer, length, offset);
  if (got <= 0) {
    pthread_mutex_unlock(&lock);
    return got;
  }
  const uint64_t start = (uint64_t)offset, end = start + (uint64_t)got;
  for (uint64_t sector = start / SECTOR; sector * SECTOR < end && f->count > 0; ++sector) {
    const uint8_t *held = lookup(f, sector);
    if (held == NULL) continue;
    const uint64_t from = sector * SECTOR > start ? sector * SECTOR : start;
    const uint64_t to = (sector + 1) * SECTOR < end ? (sector + 1) * SECTOR : end;
    memcpy((uint8_t *)buffer + (from - start), held + (from - sector * SECTOR), to - from);
  }
  pthread_mutex_unlock(&lock);
  return got;
}
ssize_t pread64(int fd, void *buffer, size_t length, off_t offset) __attribute__((alias("pread")));

ssize_t pwrite(int fd, const void *data, size_t length, off_t offset) {
  struct file *f = ours(fd);
  if (f == NULL) return real_pwrite(fd, data, length, offset);
  if (power_lost) dead();
  pthread_mutex_lock(&lock);
  ssize_t result;
  if (synchronous(fd)) {
    forget(f, (uint64_t)offset / SECTOR, ((uint64_t)offset + length + SECTOR - 1) / SECTOR);
    result = real_pwrite(fd, data, length, offset);
  } else {
    result = hold_write(f, data, length, offset);
  }
  pthread_mutex_unlock(&lock);
  return result;
}
ssize_t pwrite64(int fd, const void *data, size_t length, off_t offset) __attribute__((alias("pwrite")));

ssize_t pwritev2(int fd, const struct iovec *vector, int count, off_t offset, int flags) {
  struct file *f = ours(fd);
  if (f == NULL) return real_pwritev2(fd, vector, count, offset, flags);
  if (power_lost) dead();
  size_t length = 0;
  for (int i = 0; i < count; ++i) length += vector[i].iov_len;
  pthread_mutex_lock(&lock);
  ssize_t result;
  if ((flags & (RWF_DSYNC | RWF_SYNC)) != 0 || synchronous(fd)) {
    forget(f, (uint64_t)offset / SECTOR, ((uint64_t)offset + length + SECTOR - 1) / SECTOR);
    result = real_pwritev2(fd, vector, count, offset, flags);
  } else {
    result = 0;
    for (int i = 0; i < count && result >= 0; ++i) {
      const ssize_t done = hold_write(f, vector[i].iov_base, vector[i].iov_len, offset + result);
      result = done < 0 ? -1 : result + done;
    }
  }
  pthread_mutex_unlock(&lock);
  return result;
}
ssize_t pwritev64v2(int fd, const struct iovec *vector, int count, off_t offset, int flags)
    __attribute__((alias("pwritev2")));

static int flush_through(int fd, int (*real)(int)) {
  struct file *f = ours(fd);
  if (f == NULL) return real(fd);
  if (power_lost) dead();
  pthread_mutex_lock(&lock);
  const int error = commit(f, fd);
  pthread_mutex_unlock(&lock);
  if (error != 0) return -1;
  if (power_lost) dead();
  return real(fd);
}

int fdatasync(int fd) { return flush_through(fd, real_fdatasync); }
int fsync(int fd) { return flush_through(fd, real_fsync); }

int fallocate(int fd, int mode, off_t offset, off_t length) {
  struct file *f = ours(fd);
  if (f == NULL) return real_fallocate(fd, mode, offset, length);
  if (power_lost) dead();
  pthread_mutex_lock(&lock);
  const int error = commit(f, fd);
  pthread_mutex_unlock(&lock);
  if (error != 0) return -1;
  return real_fallocate(fd, mode, offset, length);
}
int fallocate64(int fd, int mode, off_t offset, off_t length) __attribute__((alias("fallocate")));
