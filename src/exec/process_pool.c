/* SPDX-License-Identifier: MIT */
/*
 * The process pool.  Each worker is a fork of the program with one end of
 * a socketpair; a caller task takes an idle worker (a FIFO semaphore counts
 * them), writes the request, and reads the answer on its own, so a worker
 * serves one job at a time and a crash, a cancellation or a timeout
 * concerns exactly one job.  A worker that must stop (crashed, cancelled,
 * recycled) is reaped through its pidfd and replaced by a new fork.
 *
 * Wire format, both directions on the stream socket:
 *   request:  u64 function address, u64 input length, input bytes
 *   response: i64 status, u64 output length (UINT64_MAX: output too large),
 *             output bytes
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../core/core-internal.h"
#include "weft/exec.h"

#define DEFAULT_MAX_BYTES ((size_t)1 << 30)
#define TOO_BIG UINT64_MAX
/* How long shutdown and replacement wait for a worker to exit. */
#define REAP_TIMEOUT_NS ((int64_t)5 * 1000000000)

typedef struct req_header {
    uint64_t fn;
    uint64_t len;
} req_header;

typedef struct rsp_header {
    int64_t status;
    uint64_t len;
} rsp_header;

typedef struct worker {
    pid_t pid;      /* 0: no process (could not be replaced yet) */
    int fd;         /* our end of the socketpair */
    int pidfd;      /* -1 without pidfd_open */
    size_t jobs;
    weft__list idle_link;
} worker;

struct weft_process_pool {
    weft_loop *loop;
    weft_process_pool_opts o;
    worker *w;
    size_t n;
    weft__list idle;
    weft_sem slots;         /* idle workers */
    size_t waiting, running;
    bool shut, cancelling;
    weft_event drained;     /* set when shut and no job runs or waits */
    weft_process_pool_stats stats;
};

/* ------------------------------------------------------------ bytes */

/* Make room for `len` more bytes after b->len (not counted yet). */
static int bytes_reserve(weft_bytes *b, size_t len)
{
    if (len > SIZE_MAX - b->len)
        return -ENOMEM;
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + len)
            cap = cap > SIZE_MAX / 2 ? b->len + len : cap * 2;
        void *d = realloc(b->data, cap);
        if (!d)
            return -ENOMEM;
        b->data = d;
        b->cap = cap;
    }
    return 0;
}

int weft_bytes_append(weft_bytes *b, const void *data, size_t len)
{
    if (!b || (len && !data))
        return -EINVAL;
    if (bytes_reserve(b, len) < 0)
        return -ENOMEM;
    if (len)
        memcpy((char *)b->data + b->len, data, len);
    b->len += len;
    return 0;
}

void weft_bytes_free(weft_bytes *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ------------------------------------------------------------ the worker side */

static bool read_full(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len) {
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static bool write_full(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

__attribute__((noreturn)) static void worker_main(int fd, size_t max_output)
{
    void *in = NULL;
    size_t in_cap = 0;
    for (;;) {
        req_header rq;
        if (!read_full(fd, &rq, sizeof rq))
            _exit(0); /* the pool closed our socket: stop */
        if (rq.len > in_cap) {
            free(in);
            in = malloc(rq.len);
            in_cap = in ? rq.len : 0;
            if (!in)
                _exit(3);
        }
        if (!read_full(fd, in, rq.len))
            _exit(0);
        weft_bytes out = {0};
        weft_process_fn fn = (weft_process_fn)(uintptr_t)rq.fn;
        rsp_header rs = {.status = fn(in, rq.len, &out), .len = out.len};
        if (out.len > max_output)
            rs.len = TOO_BIG;
        if (!write_full(fd, &rs, sizeof rs) ||
            (rs.len != TOO_BIG && !write_full(fd, out.data, out.len)))
            _exit(0);
        weft_bytes_free(&out);
    }
}

/* In the new child: drop the parent's loop and other workers, die with the
 * parent, leave Ctrl-C to it, and let crashes kill us with their signal. */
static void child_setup(weft_process_pool *pool, pid_t parent, int keep_fd)
{
    weft__loop_forget_after_fork();
    for (size_t i = 0; i < pool->n; i++) {
        if (pool->w[i].fd >= 0 && pool->w[i].fd != keep_fd)
            close(pool->w[i].fd);
        if (pool->w[i].pidfd >= 0)
            close(pool->w[i].pidfd);
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(1); /* the parent died before PDEATHSIG was set */
    signal(SIGINT, SIG_IGN);
    static const int crash[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    for (size_t i = 0; i < sizeof crash / sizeof crash[0]; i++)
        signal(crash[i], SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

/* ------------------------------------------------------------ the parent side */

static int spawn_worker(weft_process_pool *pool, worker *w)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return weft__seterr(-errno, "process pool: socketpair: %s", strerror(errno));
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        int err = errno;
        close(sv[0]);
        close(sv[1]);
        return weft__seterr(-err, "process pool: fork: %s", strerror(err));
    }
    if (pid == 0) {
        close(sv[0]);
        child_setup(pool, parent, sv[1]);
        worker_main(sv[1], pool->o.max_output);
    }
    close(sv[1]);
    weft_set_nonblocking(sv[0]);
    w->pid = pid;
    w->fd = sv[0];
    w->jobs = 0;
#ifdef SYS_pidfd_open
    w->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (w->pidfd >= 0)
        weft_set_nonblocking(w->pidfd);
#else
    w->pidfd = -1;
#endif
    return 0;
}

/* Wait (shielded, bounded) for a worker we closed or killed to exit, reap
 * it, and describe how it ended in `why` (may be NULL). */
static void reap_worker(worker *w, char *why, size_t why_len)
{
    if (w->fd >= 0)
        weft_close(w->fd);
    w->fd = -1;
    if (w->pid <= 0)
        return;
    weft_shield sh;
    weft_shield_begin(&sh, REAP_TIMEOUT_NS);
    int st = 0;
    pid_t r;
    if (w->pidfd >= 0 && weft_current())
        weft_wait_fd(w->pidfd, WEFT_READABLE, WEFT_NO_DEADLINE);
    while ((r = waitpid(w->pid, &st, WNOHANG)) == 0) {
        if (!weft_current() || weft_sleep_ms(1) < 0) {
            /* Out of time (or no task to wait in): make sure, then block. */
            kill(w->pid, SIGKILL);
            r = waitpid(w->pid, &st, 0);
            break;
        }
    }
    weft_shield_end(&sh);
    if (why) {
        if (r == w->pid && WIFSIGNALED(st))
            snprintf(why, why_len, "worker %d was killed by signal %d (%s)", (int)w->pid,
                     WTERMSIG(st), strsignal(WTERMSIG(st)));
        else if (r == w->pid && WIFEXITED(st))
            snprintf(why, why_len, "worker %d exited with status %d", (int)w->pid,
                     WEXITSTATUS(st));
        else
            snprintf(why, why_len, "worker %d vanished", (int)w->pid);
    }
    if (w->pidfd >= 0)
        weft_close(w->pidfd);
    w->pidfd = -1;
    w->pid = 0;
}

/* A worker whose job went wrong: kill it if it still runs, reap it, and
 * fork its replacement (if that fails, the slot stays empty and the next
 * job that takes it tries again). */
static void replace_worker(weft_process_pool *pool, worker *w, bool kill_it, char *why,
                           size_t why_len)
{
    if (kill_it && w->pid > 0)
        kill(w->pid, SIGKILL);
    reap_worker(w, why, why_len);
    if (!pool->shut)
        spawn_worker(pool, w);
}

static void maybe_drained(weft_process_pool *pool)
{
    if (pool->shut && pool->running == 0 && pool->waiting == 0)
        weft_event_set(&pool->drained);
}

weft_process_pool *weft_process_pool_new(const weft_process_pool_opts *opts)
{
    weft_loop *loop = weft__loop();
    if (!loop) {
        weft__seterr(WEFT_ENOLOOP, "weft_process_pool_new: no weft loop runs on this thread");
        return NULL;
    }
    weft_process_pool *pool = calloc(1, sizeof *pool);
    if (!pool) {
        weft__seterr(-ENOMEM, "weft_process_pool_new: out of memory");
        return NULL;
    }
    if (opts)
        pool->o = *opts;
    if (!pool->o.workers) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        pool->o.workers = cores > 0 ? (size_t)cores : 1;
    }
    if (!pool->o.max_input)
        pool->o.max_input = DEFAULT_MAX_BYTES;
    if (!pool->o.max_output)
        pool->o.max_output = DEFAULT_MAX_BYTES;
    pool->loop = loop;
    pool->w = calloc(pool->o.workers, sizeof *pool->w);
    if (!pool->w) {
        free(pool);
        weft__seterr(-ENOMEM, "weft_process_pool_new: out of memory");
        return NULL;
    }
    weft__list_init(&pool->idle);
    weft_sem_init(&pool->slots, 0);
    weft_event_init(&pool->drained);
    for (size_t i = 0; i < pool->o.workers; i++) {
        pool->w[i].fd = pool->w[i].pidfd = -1;
    }
    pool->n = pool->o.workers;
    for (size_t i = 0; i < pool->n; i++) {
        int rc = spawn_worker(pool, &pool->w[i]);
        if (rc < 0) {
            char msg[256];
            snprintf(msg, sizeof msg, "%s", weft_errmsg());
            weft_process_pool_free(pool);
            weft__seterr(rc, "weft_process_pool_new: %s", msg);
            return NULL;
        }
        weft__list_push_back(&pool->idle, &pool->w[i].idle_link);
        weft_sem_release(&pool->slots);
    }
    pool->stats.workers = pool->n;
    return pool;
}

/* Write the request (header and input) with one writev where it fits. */
static int send_request(int fd, weft_process_fn fn, const void *in, size_t len, int64_t deadline)
{
    req_header h = {.fn = (uint64_t)(uintptr_t)fn, .len = len};
    struct iovec iov[2] = {{&h, sizeof h}, {(void *)in, len}};
    int cnt = len ? 2 : 1;
    struct iovec *v = iov;
    while (cnt) {
        ssize_t n = writev(fd, v, cnt);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                return -errno;
            int rc = weft_wait_fd(fd, WEFT_WRITABLE, deadline);
            if (rc < 0)
                return rc;
            continue;
        }
        while (cnt && (size_t)n >= v->iov_len) {
            n -= (ssize_t)v->iov_len;
            v++;
            cnt--;
        }
        if (cnt) {
            v->iov_base = (char *)v->iov_base + n;
            v->iov_len -= (size_t)n;
        }
    }
    return 0;
}

/* Read exactly len bytes (into buf, or dropped when buf is NULL).
 * -EPIPE on end of stream. */
static int recv_exact(int fd, void *buf, size_t len, int64_t deadline)
{
    char scratch[4096];
    while (len) {
        size_t want = buf ? len : (len < sizeof scratch ? len : sizeof scratch);
        ssize_t n = weft_read(fd, buf ? buf : scratch, want, deadline);
        if (n < 0)
            return (int)n;
        if (n == 0)
            return -EPIPE;
        if (buf)
            buf = (char *)buf + n;
        len -= (size_t)n;
    }
    return 0;
}

/* One job on worker w.  Returns 0 (status and output filled), a job error
 * that leaves the worker fine (-E2BIG, -ENOMEM), or a code saying the
 * worker is gone or must go: WEFT_ECRASHED, -ECANCELED, -ETIMEDOUT,
 * WEFT_EPROTO. */
static int do_job(weft_process_pool *pool, worker *w, weft_process_fn fn, const void *in,
                  size_t in_len, weft_bytes *out, int *status, int64_t deadline, bool *lost)
{
    *lost = true;
    int rc = send_request(w->fd, fn, in, in_len, deadline);
    rsp_header h;
    if (rc == 0)
        rc = recv_exact(w->fd, &h, sizeof h, deadline);
    if (rc == -EPIPE || rc == -ECONNRESET)
        return WEFT_ECRASHED;
    if (rc < 0)
        return rc; /* cancelled or timed out mid-job: the worker must go */
    if (h.len == TOO_BIG) {
        *lost = false;
        return weft__seterr(-E2BIG, "weft_process_pool_run: the job's output is larger than "
                                    "max_output (%zu bytes)", pool->o.max_output);
    }
    if (h.len > pool->o.max_output)
        return weft__seterr(WEFT_EPROTO, "weft_process_pool_run: worker %d announced %llu "
                                         "output bytes", (int)w->pid,
                            (unsigned long long)h.len);
    size_t base = out ? out->len : 0;
    if (out && bytes_reserve(out, (size_t)h.len) < 0) {
        rc = recv_exact(w->fd, NULL, (size_t)h.len, deadline); /* keep the stream in step */
        if (rc == 0)
            *lost = false;
        return rc < 0 ? (rc == -EPIPE ? WEFT_ECRASHED : rc)
                      : weft__seterr(-ENOMEM, "weft_process_pool_run: no memory for %llu "
                                              "output bytes", (unsigned long long)h.len);
    }
    rc = recv_exact(w->fd, out && h.len ? (char *)out->data + base : NULL, (size_t)h.len,
                    deadline);
    if (rc < 0)
        return rc == -EPIPE || rc == -ECONNRESET ? WEFT_ECRASHED : rc;
    if (out)
        out->len = base + (size_t)h.len;
    *lost = false;
    if (status)
        *status = (int)h.status;
    return 0;
}

int weft_process_pool_run(weft_process_pool *pool, weft_process_fn fn, const void *in,
                          size_t in_len, weft_bytes *out, int *status,
                          const weft_process_call_opts *opts)
{
    weft_task *t = weft__require_task("weft_process_pool_run");
    if (!t)
        return WEFT_ENOTASK;
    if (!pool || !fn || (in_len && !in))
        return weft__seterr(-EINVAL, "weft_process_pool_run: NULL %s",
                            !pool ? "pool" : !fn ? "function" : "input");
    if (pool->loop != t->loop)
        return weft__seterr(-EINVAL, "weft_process_pool_run: the pool belongs to another "
                                     "thread's loop");
    if (pool->shut)
        return weft__seterr(-ESHUTDOWN, "weft_process_pool_run: the pool is shut down");
    if (in_len > pool->o.max_input)
        return weft__seterr(-E2BIG, "weft_process_pool_run: %zu input bytes, max_input is %zu",
                            in_len, pool->o.max_input);
    if (pool->o.max_queue && weft_sem_value(&pool->slots) == 0 &&
        pool->waiting >= pool->o.max_queue)
        return weft__seterr(-EAGAIN, "weft_process_pool_run: %zu callers already wait "
                                     "(max_queue)", pool->waiting);
    int64_t deadline = opts && opts->deadline > 0 ? opts->deadline : WEFT_NO_DEADLINE;

    pool->waiting++;
    int rc = weft_sem_acquire_until(&pool->slots, deadline);
    pool->waiting--;
    if (rc < 0) {
        maybe_drained(pool);
        return weft__seterr(rc, "weft_process_pool_run: %s while waiting for a worker",
                            weft_strerror(rc));
    }
    if (pool->cancelling) {
        weft_sem_release(&pool->slots); /* let the next waiter see it too */
        maybe_drained(pool);
        return weft__seterr(-ECANCELED, "weft_process_pool_run: the pool is shutting down");
    }
    worker *w = weft__container_of(weft__list_pop_front(&pool->idle), worker, idle_link);
    pool->running++;
    if (w->pid <= 0 && spawn_worker(pool, w) < 0) {
        rc = weft__seterr(-ENOMEM, "weft_process_pool_run: no worker: %s", weft_errmsg());
    } else {
        bool lost;
        rc = do_job(pool, w, fn, in, in_len, out, status, deadline, &lost);
        if (lost) {
            char why[160] = "";
            bool crashed = rc == WEFT_ECRASHED;
            replace_worker(pool, w, !crashed, why, sizeof why);
            if (crashed && !pool->cancelling) {
                pool->stats.crashes++;
                weft__seterr(rc, "weft_process_pool_run: %s while running the job", why);
            } else if (crashed) {
                pool->stats.kills++;
                rc = weft__seterr(-ECANCELED, "weft_process_pool_run: the pool shut down; "
                                              "the job's worker was killed");
            } else {
                pool->stats.kills++;
                weft__seterr(rc, "weft_process_pool_run: %s: the worker running the job was "
                                 "killed and replaced", weft_strerror(rc));
            }
        } else if (rc == 0) {
            pool->stats.jobs++;
            if (pool->o.max_jobs_per_worker && ++w->jobs >= pool->o.max_jobs_per_worker) {
                replace_worker(pool, w, false, NULL, 0);
                pool->stats.recycles++;
            }
        }
    }
    pool->running--;
    weft__list_push_back(&pool->idle, &w->idle_link);
    weft_sem_release(&pool->slots);
    maybe_drained(pool);
    return rc;
}

void weft_process_pool_stats_get(const weft_process_pool *pool, weft_process_pool_stats *stats)
{
    *stats = pool->stats;
}

int weft_process_pool_shutdown(weft_process_pool *pool)
{
    weft_task *t = weft__require_task("weft_process_pool_shutdown");
    if (!t)
        return WEFT_ENOTASK;
    if (!pool)
        return -EINVAL;
    if (!pool->shut) {
        pool->shut = true;
        if (pool->o.on_shutdown == WEFT_POOL_CANCEL) {
            pool->cancelling = true;
            /* Running jobs: kill their workers; their callers see the
             * crash and report -ECANCELED.  Waiting callers: woken by the
             * slots those jobs give back. */
            for (size_t i = 0; i < pool->n; i++)
                if (pool->w[i].pid > 0 && !weft__list_linked(&pool->w[i].idle_link))
                    kill(pool->w[i].pid, SIGKILL);
        }
        maybe_drained(pool);
    }
    weft_shield sh;
    weft_shield_begin(&sh, 0);
    weft_event_wait(&pool->drained);
    /* Every worker is idle now: closing its socket makes it exit. */
    for (size_t i = 0; i < pool->n; i++)
        reap_worker(&pool->w[i], NULL, 0);
    weft_shield_end(&sh);
    return 0;
}

void weft_process_pool_free(weft_process_pool *pool)
{
    if (!pool)
        return;
    for (size_t i = 0; i < pool->n; i++) {
        worker *w = &pool->w[i];
        if (w->fd >= 0) {
            if (weft__loop())
                weft_close(w->fd);
            else
                close(w->fd);
        }
        if (w->pid > 0) {
            kill(w->pid, SIGKILL);
            waitpid(w->pid, NULL, 0);
        }
        if (w->pidfd >= 0) {
            if (weft__loop())
                weft_close(w->pidfd);
            else
                close(w->pidfd);
        }
    }
    free(pool->w);
    free(pool);
}
