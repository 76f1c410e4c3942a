/* SPDX-License-Identifier: MIT */
/*
 * The process pool.  Each worker is a fork of the program with one end of
 * a socketpair, and several jobs in flight (up to DEPTH while its jobs are
 * quick, DEPTH_SLOW otherwise): requests queue in the socket, so a stream of
 * small jobs finds the worker busy, not asleep.
 *
 * Callers take a place with a FIFO semaphore (DEPTH per worker), pick the
 * least loaded worker and append their job to its in-flight FIFO.  A small
 * request is copied into the worker's staging buffer and a writer task
 * sends everything staged in one sendmsg once the callers woken in the same
 * loop turn have added theirs; a large one is sent by its caller (after the
 * staged ones, to keep the order).  While a worker has jobs in flight a
 * reader task reads its answers, in order, many per read(2), and hands each
 * to its caller.  The worker side batches the same way (worker_main).
 *
 * Each job has a slot in memory shared with the worker (MAP_SHARED, made
 * before the forks): QUEUED when sent, RUNNING when the worker starts it,
 * DONE when it finished (with its answer header beside it, so a header-only
 * answer still in the worker's buffer survives the worker's death).  So a caller that gives up knows exactly where its
 * job is: still queued (it marks the slot CANCELLED and the worker skips
 * the job), running (the worker is killed: the work really stops), or done
 * (the answer is on its way: the caller takes it).  When a worker dies, the
 * job in RUNNING fails (WEFT_ECRASHED, or the cancellation that killed it)
 * and the jobs still QUEUED are sent again to its replacement.
 *
 * Wire format, both directions on the stream socket:
 *   request:  u64 function address, u32 slot, u32 0, u64 input length, input
 *   response: i64 status, u64 output length (TOO_BIG: output over the limit,
 *             SKIPPED: cancelled before it started), output bytes
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../core/core-internal.h"
#include "../util/iov.h"
#include "weft/exec.h"

#define DEFAULT_MAX_BYTES ((size_t)1 << 30)
#define TOO_BIG UINT64_MAX
#define SKIPPED (UINT64_MAX - 1)
/* Jobs in flight per worker: up to DEPTH while its jobs are quick (a stream
 * of tiny jobs then always finds work queued, and its requests and answers
 * travel in batches), DEPTH_SLOW otherwise, so that slow jobs do not queue
 * behind each other while another worker could take them.  A job counts as
 * quick when the worker's answers come less than QUICK_JOB_NS apart on
 * average (a moving average, starting slow). */
#define DEPTH 64
/* opts.workers above this is refused: a typo, not a machine. */
#define WEFT__MAX_WORKERS 4096
#define DEPTH_SLOW 2
#define QUICK_JOB_NS ((int64_t)100 * 1000)
/* Inputs up to this size are queued behind a worker's running job; larger
 * ones wait for an idle worker. */
#define PIPELINE_MAX_INPUT ((size_t)64 * 1024)
/* How long shutdown and replacement wait for a worker to exit. */
#define REAP_TIMEOUT_MS ((int64_t)5000)

enum { SLOT_FREE, SLOT_QUEUED, SLOT_RUNNING, SLOT_DONE, SLOT_CANCELLED };

typedef struct req_header {
    uint64_t fn;
    uint32_t slot;
    uint32_t pad;
    uint64_t len;
} req_header;

typedef struct rsp_header {
    int64_t status;
    uint64_t len;
} rsp_header;

/* A finished job's answer header, also kept in shared memory (beside its
 * slot's state) so that an answer still in the worker's write buffer is not
 * lost when the worker dies before sending it (see worker_main). */
typedef rsp_header job_result;

typedef struct pjob {
    weft__list link;     /* the worker's in-flight FIFO */
    weft_task *task;     /* the caller; NULL once it gave up */
    uint32_t slot;
    weft_process_fn fn;
    const void *in;      /* the caller's: valid while task != NULL */
    size_t in_len;
    weft_bytes *out;
    int status;
    int rc;
    bool sent;           /* the request is on the socket of the current process */
    bool staged;         /* its request waits in the worker's staging buffer */
    bool resend;         /* sent to a worker that died before starting it */
    bool done;
    char why[160];       /* for WEFT_ECRASHED */
} pjob;

typedef struct worker {
    pid_t pid;           /* 0: no process */
    int fd;              /* our end of the socketpair */
    int pidfd;           /* -1 without pidfd_open */
    _Atomic uint32_t *slots; /* DEPTH states, shared with the worker */
    job_result *results; /* DEPTH answer headers, shared with the worker */
    uint64_t free_slots; /* bitmask */
    int64_t service_ns;  /* moving average of the time between its answers */
    int64_t last_answer; /* when it last answered (or became busy) */
    weft__list inflight;
    size_t depth;
    size_t taken;        /* jobs given to this process (for max_jobs_per_worker) */
    bool replacing;      /* its reader reaps it and forks the next: hands off */
    weft_lock wlock;     /* one request at a time on the socket */
    weft_event kick;     /* wakes the reader: a request was sent, or withdrawn */
    weft_task *reader;   /* alive while jobs are in flight */
    char *sbuf;          /* requests staged, sent together by the writer */
    weft_event space;    /* set when the writer has made room in sbuf */
    size_t slen;
    size_t nstaged;      /* jobs whose request is in sbuf */
    weft_task *writer;   /* alive while requests are staged */
    struct weft_process_pool *pool;
    char *rbuf;          /* answers read ahead: many small ones per read(2) */
    size_t rstart, rend;
} worker;

struct weft_process_pool {
    weft__list pools_link; /* all pools of the process: a new worker closes their fds */
    weft_loop *loop;
    weft_process_pool_opts o;
    worker *w;
    size_t n;
    _Atomic uint32_t *shm;
    size_t shm_size;
    weft_sem places;     /* DEPTH per worker */
    size_t waiting, running;
    size_t inflight;     /* jobs in the workers' FIFOs (callers may have left) */
    size_t helpers;      /* reader and writer tasks alive (a reader may still recycle a worker) */
    bool shut, cancelling;
    weft_event drained;  /* set when shut and no job runs or waits */
    weft_event avail;    /* a worker took a new process or finished a job */
    weft_process_pool_stats stats;
};

static pthread_mutex_t pools_lock = PTHREAD_MUTEX_INITIALIZER;
static weft__list pools = {&pools, &pools};

/* ------------------------------------------------------------ bytes */

/* Make room for `len` more bytes after b->len (not counted yet). */
static int bytes_reserve(weft_bytes *b, size_t len)
{
    if (len > PTRDIFF_MAX - b->len) /* no allocation can be larger */
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
        return weft__seterr(-EINVAL, "weft_bytes_append: NULL %s", b ? "data" : "buffer");
    if (bytes_reserve(b, len) < 0)
        return weft__seterr(-ENOMEM, "weft_bytes_append: out of memory for %zu more bytes",
                            len);
    if (len)
        memcpy((char *)b->data + b->len, data, len);
    b->len += len;
    return 0;
}

void weft_bytes_free(weft_bytes *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ------------------------------------------------------------ the worker side */

/* The worker's blocking I/O: all of len bytes, or false (end, error). */
static bool io_full(int fd, void *buf, size_t len, bool writing)
{
    char *p = buf;
    while (len) {
        ssize_t n = writing ? write(fd, p, len) : read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static bool read_full(int fd, void *buf, size_t len) { return io_full(fd, buf, len, false); }

static bool write_full(int fd, const void *buf, size_t len)
{
    return io_full(fd, (void *)buf, len, true);
}

/* The worker reads requests ahead (many small ones per read(2)) and
 * gathers the answers of quick jobs into one write(2); an answer waits for
 * no more than FLUSH_AFTER_NS, and none waits behind a job when the job
 * before it took longer than that (a slow job is not expected to be
 * followed by quick ones). */
#define WORKER_BUF ((size_t)64 * 1024)
#define FLUSH_AFTER_NS ((int64_t)50 * 1000)

typedef struct wbuf {
    char *p;
    size_t start, end;
} wbuf;

static int64_t worker_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Make `need` bytes of requests available at in->start (need <= WORKER_BUF). */
static bool worker_fill(int fd, wbuf *in, size_t need)
{
    if (in->end - in->start >= need)
        return true;
    memmove(in->p, in->p + in->start, in->end - in->start);
    in->end -= in->start;
    in->start = 0;
    while (in->end < need) {
        ssize_t n = read(fd, in->p + in->end, WORKER_BUF - in->end);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        in->end += (size_t)n;
    }
    return true;
}

/* writev(2) of every byte (blocking: the worker's side). */
static bool writev_full(int fd, struct iovec *v, int cnt)
{
    while (cnt) {
        ssize_t n = writev(fd, v, cnt);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        weft__iov_advance(&v, &cnt, (size_t)n);
    }
    return true;
}

static void worker_flush(int fd, wbuf *out)
{
    if (out->end && !write_full(fd, out->p, out->end))
        _exit(0);
    out->end = 0;
}

__attribute__((noreturn)) static void worker_main(int fd, _Atomic uint32_t *slots,
                                                 job_result *results, size_t max_output)
{
    wbuf in = {malloc(WORKER_BUF), 0, 0}, out = {malloc(WORKER_BUF), 0, 0};
    void *big = NULL; /* an input larger than the read-ahead buffer */
    size_t big_cap = 0;
    int64_t pending_since = 0, last_job_ns = 0;
    if (!in.p || !out.p)
        _exit(3);
    for (;;) {
        if (in.end - in.start < sizeof(req_header))
            worker_flush(fd, &out); /* about to wait for requests: answer first */
        req_header rq;
        if (!worker_fill(fd, &in, sizeof rq))
            _exit(0); /* the pool closed our socket: stop */
        memcpy(&rq, in.p + in.start, sizeof rq);
        in.start += sizeof rq;
        if (rq.slot >= DEPTH)
            _exit(0);
        const void *input;
        if (rq.len <= WORKER_BUF) {
            if (in.end - in.start < rq.len)
                worker_flush(fd, &out);
            if (!worker_fill(fd, &in, (size_t)rq.len))
                _exit(0);
            input = in.p + in.start;
            in.start += (size_t)rq.len;
        } else {
            if (rq.len > big_cap) {
                free(big);
                big = malloc(rq.len);
                big_cap = big ? rq.len : 0;
                if (!big)
                    _exit(3);
            }
            size_t have = in.end - in.start;
            memcpy(big, in.p + in.start, have);
            in.start = in.end = 0;
            worker_flush(fd, &out);
            if (!read_full(fd, (char *)big + have, rq.len - have))
                _exit(0);
            input = big;
        }
        rsp_header rs = {.status = -ECANCELED, .len = SKIPPED};
        uint32_t queued = SLOT_QUEUED;
        weft_bytes result = {0};
        if (atomic_compare_exchange_strong(&slots[rq.slot], &queued, SLOT_RUNNING)) {
            int64_t t0 = worker_clock();
            if (out.end && (last_job_ns > FLUSH_AFTER_NS || t0 - pending_since > FLUSH_AFTER_NS))
                worker_flush(fd, &out);
            weft_process_fn fn = (weft_process_fn)(uintptr_t)rq.fn;
            rs.status = fn(input, (size_t)rq.len, &result);
            rs.len = result.len > max_output ? TOO_BIG : result.len;
            results[rq.slot] = rs; /* before DONE: the pool reads it after */
            atomic_store(&slots[rq.slot], SLOT_DONE);
            last_job_ns = worker_clock() - t0;
        }
        /* Answers with output bytes go out now: only the header of an answer
         * is kept in shared memory, so only header-only answers may wait in
         * the buffer (the pool completes them from there if we die). */
        size_t data = rs.len < SKIPPED ? result.len : 0;
        if (data || out.end + sizeof rs > WORKER_BUF)
            worker_flush(fd, &out);
        if (data) {
            struct iovec v[2] = {{&rs, sizeof rs}, {result.data, data}};
            if (!writev_full(fd, v, 2))
                _exit(0);
        } else {
            if (out.end == 0)
                pending_since = worker_clock();
            memcpy(out.p + out.end, &rs, sizeof rs);
            out.end += sizeof rs;
        }
        weft_bytes_free(&result);
    }
}

/* In the new child: drop the parent's loop and other workers, die with the
 * parent, leave Ctrl-C to it, and let crashes kill us with their signal. */
static void child_setup(pid_t parent, int keep_fd)
{
    weft__loop_forget_after_fork();
    /* Every pool's sockets, not only ours: a copy of another pool's socket
     * kept here would hide that pool's closing from its worker.  (The
     * fork happened under pools_lock, so the list is consistent.) */
    weft__list_foreach(it, &pools) {
        weft_process_pool *p = weft__container_of(it, weft_process_pool, pools_link);
        for (size_t i = 0; i < p->n; i++) {
            if (p->w[i].fd >= 0 && p->w[i].fd != keep_fd)
                close(p->w[i].fd);
            if (p->w[i].pidfd >= 0)
                close(p->w[i].pidfd);
        }
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

/* ------------------------------------------------------------ workers */

static void ensure_reader(worker *w);

/* Loop side: the worker's pidfd (or socket) is readable: it may have died. */
static void worker_event(void *arg)
{
    worker *w = arg;
    if (w->pid > 0 && !w->replacing && !w->pool->shut)
        ensure_reader(w);
}

static int spawn_worker(weft_process_pool *pool, worker *w)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return weft__seterr(-errno, "process pool: socketpair: %s", strerror(errno));
    pid_t parent = getpid();
    pthread_mutex_lock(&pools_lock);
    pid_t pid = fork();
    if (pid != 0)
        pthread_mutex_unlock(&pools_lock);
    if (pid < 0) {
        int err = errno;
        close(sv[0]);
        close(sv[1]);
        return weft__seterr(-err, "process pool: fork: %s", strerror(err));
    }
    if (pid == 0) {
        close(sv[0]);
        child_setup(parent, sv[1]);
        worker_main(sv[1], w->slots, w->results, pool->o.max_output);
    }
    close(sv[1]);
    weft_set_nonblocking(sv[0]);
    w->pid = pid;
    w->fd = sv[0];
    w->rstart = w->rend = 0;
    w->taken = 0;
#ifdef SYS_pidfd_open
    w->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (w->pidfd >= 0)
        weft_set_nonblocking(w->pidfd);
#else
    w->pidfd = -1;
#endif
    /* A worker that dies while idle is reaped (and replaced) at once, not
     * when it is next given a job: its pidfd (or, without one, its socket's
     * EOF) wakes its reader. */
    weft__fd_watch(w->pidfd >= 0 ? w->pidfd : w->fd, worker_event, w);
    return 0;
}

/* Wait (shielded, bounded) for a worker we closed or killed to exit, reap
 * it, and say how it ended in `why` (may be NULL). */
static void reap_worker(worker *w, char *why, size_t why_len)
{
    /* Claim the process first: this waits, and another task may come to
     * reap the same worker meanwhile; it must find nothing (a stale pid of
     * 0 would make waitpid and kill act on the whole process group). */
    pid_t pid = w->pid;
    int pidfd = w->pidfd;
    w->pid = 0;
    w->pidfd = -1;
    if (w->fd >= 0)
        weft_close(w->fd);
    w->fd = -1;
    if (pid <= 0) {
        if (why)
            snprintf(why, why_len, "the worker was gone already");
        return;
    }
    weft_shield sh;
    weft_shield_begin(&sh, REAP_TIMEOUT_MS);
    int st = 0;
    pid_t r;
    if (pidfd >= 0 && weft_current())
        weft_wait_fd(pidfd, WEFT_READABLE, WEFT_NO_DEADLINE);
    while ((r = waitpid(pid, &st, WNOHANG)) == 0) {
        if (!weft_current() || weft_sleep_ms(1) < 0) {
            /* Out of time (or no task to wait in): make sure, then block. */
            kill(pid, SIGKILL);
            r = waitpid(pid, &st, 0);
            break;
        }
    }
    weft_shield_end(&sh);
    if (why) {
        if (r == pid && WIFSIGNALED(st))
            snprintf(why, why_len, "worker %d was killed by signal %d (%s)", (int)pid,
                     WTERMSIG(st), strsignal(WTERMSIG(st)));
        else if (r == pid && WIFEXITED(st))
            snprintf(why, why_len, "worker %d exited with status %d", (int)pid,
                     WEXITSTATUS(st));
        else
            snprintf(why, why_len, "worker %d vanished", (int)pid);
    }
    if (pidfd >= 0)
        weft_close(pidfd);
}

static void maybe_drained(weft_process_pool *pool)
{
    if (pool->shut && pool->running == 0 && pool->waiting == 0 && pool->inflight == 0 &&
        pool->helpers == 0)
        weft_event_set(&pool->drained);
}

/* ------------------------------------------------------------ jobs */

/* Write the request (header and input) with one sendmsg where it fits.
 * *sent tells whether any byte went out. */
static int send_request(worker *w, pjob *j, int64_t deadline, bool *sent)
{
    req_header h = {.fn = (uint64_t)(uintptr_t)j->fn, .slot = j->slot, .len = j->in_len};
    struct iovec iov[2] = {{&h, sizeof h}, {(void *)j->in, j->in_len}};
    int cnt = j->in_len ? 2 : 1;
    struct iovec *v = iov;
    *sent = false;
    while (cnt) {
        /* sendmsg, not writev: MSG_NOSIGNAL, as a dead worker must not
         * raise SIGPIPE in the program. */
        struct msghdr msg = {.msg_iov = v, .msg_iovlen = (size_t)cnt};
        ssize_t n = sendmsg(w->fd, &msg, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                return -errno;
            int rc = weft_wait_fd(w->fd, WEFT_WRITABLE, deadline);
            if (rc < 0)
                return rc;
            continue;
        }
        *sent = true;
        weft__iov_advance(&v, &cnt, (size_t)n);
    }
    return 0;
}

#define RBUF_SIZE ((size_t)64 * 1024)
/* Requests with inputs up to PIPELINE_MAX_INPUT are copied into the
 * worker's staging buffer, in FIFO order, and sent by its writer task, many
 * per sendmsg: the callers woken in one loop iteration share one system
 * call.  The writer never gives up half-way (shielded), so a caller's
 * cancel or deadline never cuts a request in two, which would break the
 * stream and cost the worker (and the job it runs) its life. */
#define STAGE_SIZE ((size_t)256 * 1024)
#define YIELD_EVERY_BYTES ((size_t)4 << 20)

/* Read exactly len bytes of worker w's answers (into buf, or dropped when
 * buf is NULL), through its read-ahead buffer.  -EPIPE on end of stream. */
static int recv_exact(worker *w, void *buf, size_t len)
{
    char *dst = buf;
    size_t since_yield = 0;
    while (len) {
        /* A large answer that keeps arriving would hold the loop: let the
         * other tasks run every few MiB. */
        if (since_yield >= YIELD_EVERY_BYTES) {
            weft_yield();
            since_yield = 0;
        }
        if (w->rstart < w->rend) {
            size_t k = w->rend - w->rstart < len ? w->rend - w->rstart : len;
            if (dst) {
                memcpy(dst, w->rbuf + w->rstart, k);
                dst += k;
            }
            w->rstart += k;
            len -= k;
            since_yield += k;
            continue;
        }
        ssize_t n;
        if (dst && len >= RBUF_SIZE) {
            n = weft_read(w->fd, dst, len, WEFT_NO_DEADLINE); /* large: straight in */
            if (n > 0) {
                dst += n;
                len -= (size_t)n;
                since_yield += (size_t)n;
            }
        } else {
            w->rstart = w->rend = 0;
            n = weft_read(w->fd, w->rbuf, RBUF_SIZE, WEFT_NO_DEADLINE);
            if (n > 0)
                w->rend = (size_t)n;
        }
        if (n < 0)
            return (int)n;
        if (n == 0)
            return -EPIPE;
    }
    return 0;
}

static void slot_release(worker *w, pjob *j)
{
    atomic_store(&w->slots[j->slot], SLOT_FREE);
    w->free_slots |= (uint64_t)1 << j->slot;
}

/* The job is over for the pool: off the FIFO, its slot free; its caller
 * (if still there) gets rc. */
static void job_finish(worker *w, pjob *j, int rc)
{
    weft__list_remove(&j->link);
    w->depth--;
    slot_release(w, j);
    /* The place is free only now: a job whose caller left still occupies
     * its worker until the worker has answered or died. */
    w->pool->inflight--;
    weft_sem_release(&w->pool->places);
    weft_event_set(&w->pool->avail);
    maybe_drained(w->pool);
    if (!j->task) {
        free(j);
        return;
    }
    j->rc = rc;
    j->done = true;
    if (j->task->state == WEFT__SUSPENDED && j->task->wait_obj == j)
        weft__wake(j->task, 0);
}

/* Send the requests staged so far (under wlock), in one go.  Requests
 * staged meanwhile stay for the next flush.  A dead worker counts as sent:
 * its reader sees the death and resends what had not started. */
static void flush_staged(worker *w)
{
    size_t len = w->slen, k = w->nstaged;
    if (!len)
        return;
    const char *p = w->sbuf;
    size_t left = len;
    int rc = 0;
    while (left && w->fd >= 0) {
        ssize_t n = send(w->fd, p, left, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN) {
                rc = -errno;
                break;
            }
            weft_shield sh; /* others' requests: finish them whatever happens to us */
            weft_shield_begin(&sh, WEFT_NO_TIMEOUT);
            rc = weft_wait_fd(w->fd, WEFT_WRITABLE, WEFT_NO_DEADLINE);
            weft_shield_end(&sh);
            if (rc < 0)
                break;
            continue;
        }
        p += n;
        left -= (size_t)n;
    }
    if (rc < 0 && left < len && w->pid > 0)
        kill(w->pid, SIGKILL); /* cut off mid-request: the stream is broken */
    size_t marked = 0; /* the first k staged jobs are the ones just sent */
    weft__list_foreach(it, &w->inflight) {
        pjob *j = weft__container_of(it, pjob, link);
        if (marked == k)
            break;
        if (j->staged) {
            j->staged = false;
            j->sent = true;
            marked++;
        }
    }
    memmove(w->sbuf, w->sbuf + len, w->slen - len);
    w->slen -= len;
    w->nstaged -= marked;
    weft_event_set(&w->kick);
    weft_event_set(&w->space);
}

static int writer_main(void *arg)
{
    worker *w = arg;
    while (w->slen) {
        weft_lock_acquire(&w->wlock);
        flush_staged(w);
        weft_lock_release(&w->wlock);
    }
    w->writer = NULL;
    w->pool->helpers--;
    maybe_drained(w->pool);
    return 0;
}

/* Whether j is the oldest job of w whose request is neither staged nor
 * sent: requests must reach the socket in the in-flight FIFO's order. */
static bool first_unsent(worker *w, pjob *j)
{
    weft__list_foreach(it, &w->inflight) {
        pjob *x = weft__container_of(it, pjob, link);
        if (x == j)
            return true;
        if (!x->staged && !x->sent)
            return false;
    }
    return false;
}

/* Start a worker's detached helper task (its writer or reader) unless it
 * runs: it ends by itself when the worker has nothing left for it. */
static void ensure_helper(worker *w, weft_task **slot, weft_task_fn fn, const char *name)
{
    if (*slot)
        return;
    *slot = weft_spawn_named(fn, w, &(weft_task_opts){.name = name}, name);
    if (*slot) {
        weft_detach(*slot);
        w->pool->helpers++;
    }
}

static void ensure_writer(worker *w)
{
    ensure_helper(w, &w->writer, writer_main, "process-pool-writer");
}

static int reader_main(void *arg);

static void ensure_reader(worker *w)
{
    ensure_helper(w, &w->reader, reader_main, "process-pool-reader");
}

/* The worker died (or we closed it): settle every job in flight, fork the
 * replacement, and send it the jobs that had not started. */
static void worker_died(weft_process_pool *pool, worker *w)
{
    /* A sender may be writing to the old socket: let it finish (it fails
     * with EPIPE) before the socket is closed and replaced. */
    weft_lock_acquire(&w->wlock);
    w->replacing = true;
    char why[160] = "";
    reap_worker(w, why, sizeof why);
    weft__list_foreach(it, &w->inflight) {
        pjob *j = weft__container_of(it, pjob, link);
        if (!j->sent)
            continue; /* its caller sends it to the replacement */
        uint32_t st = atomic_load(&w->slots[j->slot]);
        if (!j->task || st == SLOT_CANCELLED) {
            job_finish(w, j, -ECANCELED); /* its caller left: nothing to do */
        } else if (st == SLOT_DONE && w->results[j->slot].len == 0) {
            /* Finished, its answer still in the worker's buffer: complete
             * it from shared memory. */
            pool->stats.jobs++;
            j->status = (int)w->results[j->slot].status;
            job_finish(w, j, 0);
        } else if (st == SLOT_DONE && w->results[j->slot].len == TOO_BIG) {
            pool->stats.jobs++;
            job_finish(w, j, -E2BIG);
        } else if (st == SLOT_RUNNING || st == SLOT_DONE) {
            if (pool->cancelling) {
                pool->stats.kills++;
                job_finish(w, j, -ECANCELED);
            } else {
                pool->stats.crashes++;
                snprintf(j->why, sizeof j->why, "%s", why);
                job_finish(w, j, WEFT_ECRASHED);
            }
        } else if (pool->cancelling || pool->shut) {
            job_finish(w, j, -ECANCELED);
        } else {
            j->sent = false; /* still QUEUED: sent again below */
            j->resend = true;
        }
    }
    int rc = pool->shut ? -ESHUTDOWN : spawn_worker(pool, w);
    w->replacing = false;
    /* Resend, oldest first.  Sending may suspend, and meanwhile other jobs
     * may leave the FIFO (a caller that gave up waiting for the lock
     * withdraws its job, which frees it): so no iterator is kept across a
     * send; the scan starts over each time. */
    for (;;) {
        pjob *j = NULL;
        weft__list_foreach(it, &w->inflight) {
            pjob *x = weft__container_of(it, pjob, link);
            if (x->resend) {
                j = x;
                break;
            }
        }
        if (!j)
            break;
        j->resend = false;
        if (!j->task) {
            /* Its caller left while earlier jobs were resent: its input is
             * gone with it.  Send the header alone; the worker skips the job
             * (its slot says CANCELLED) and answers for it. */
            j->in = NULL;
            j->in_len = 0;
        }
        bool sent = false;
        int src = rc < 0 ? rc : send_request(w, j, WEFT_NO_DEADLINE, &sent);
        if (src == 0 || src == -EPIPE || src == -ECONNRESET) {
            j->sent = true; /* died again: the next read sees it */
        } else if (!sent && rc < 0) {
            snprintf(j->why, sizeof j->why, "no replacement worker: %s", weft_strerror(rc));
            job_finish(w, j, WEFT_ECRASHED);
        }
    }
    weft_lock_release(&w->wlock);
    weft_event_set(&w->space); /* callers waiting behind a resent job may stage now */
    weft_event_set(&pool->avail);
}

/* Reads the answers of one worker while it has jobs in flight.  Answers
 * come in the order the requests were sent, which is the FIFO's order. */
/* Whether the worker's process has exited (not reaped: waitid WNOWAIT). */
static bool worker_gone(const worker *w)
{
    if (w->pid <= 0)
        return false;
    siginfo_t si;
    si.si_pid = 0;
    return waitid(P_PID, (id_t)w->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0
        && si.si_pid == w->pid;
}

static int reader_main(void *arg)
{
    worker *w = arg;
    weft_process_pool *pool = w->pool;
    for (;;) {
        if (weft__list_empty(&w->inflight)) {
            /* Idle: a worker that died now is reaped and replaced. */
            if (pool->shut || w->replacing || !worker_gone(w))
                break;
            worker_died(pool, w);
            continue;
        }
        pjob *j = weft__container_of(w->inflight.next, pjob, link);
        if (!j->sent) {
            /* Its caller is about to send it (or withdraws it). */
            weft_event_clear(&w->kick);
            weft_event_wait(&w->kick);
            continue;
        }
        rsp_header h;
        int rc = w->fd >= 0 ? recv_exact(w, &h, sizeof h) : -EPIPE;
        if (rc == 0 && h.len < SKIPPED && h.len > pool->o.max_output)
            rc = -EPIPE; /* nonsense: treat the worker as broken */
        weft_bytes *out = j->task ? j->out : NULL;
        size_t base = out ? out->len : 0;
        bool no_memory = false;
        if (rc == 0 && h.len < SKIPPED) {
            void *dst = NULL;
            if (out && h.len) {
                if (bytes_reserve(out, (size_t)h.len) == 0)
                    dst = (char *)out->data + base;
                else
                    no_memory = true; /* the job fails; the stream stays in step */
            }
            rc = recv_exact(w, dst, (size_t)h.len);
            if (rc == 0 && dst)
                out->len = base + (size_t)h.len;
        }
        if (rc < 0) {
            if (w->pid > 0)
                kill(w->pid, SIGKILL); /* a broken stream: make sure it is dead */
            worker_died(pool, w);
            continue;
        }
        if (h.len == SKIPPED) {
            job_finish(w, j, -ECANCELED);
        } else {
            pool->stats.jobs++;
            int64_t now = weft_now();
            w->service_ns += (now - w->last_answer - w->service_ns) / 8;
            w->last_answer = now;
            j->status = (int)h.status;
            job_finish(w, j, no_memory ? -ENOMEM : h.len == TOO_BIG ? -E2BIG : 0);
        }
        if (pool->o.max_jobs_per_worker && w->taken >= pool->o.max_jobs_per_worker &&
            weft__list_empty(&w->inflight)) {
            pool->stats.recycles++;
            weft_lock_acquire(&w->wlock);
            w->replacing = true;
            reap_worker(w, NULL, 0); /* closes the socket: it exits */
            if (!pool->shut)
                spawn_worker(pool, w);
            w->replacing = false;
            weft_lock_release(&w->wlock);
            weft_event_set(&pool->avail);
        }
    }
    w->reader = NULL;
    pool->helpers--;
    maybe_drained(pool);
    return 0;
}

/* The least loaded worker that takes another job of in_len input bytes,
 * or NULL (all full, being replaced, at max_jobs_per_worker, or busy when
 * the input is large). */
static worker *pick_worker(weft_process_pool *pool, size_t in_len)
{
    worker *best = NULL;
    for (size_t i = 0; i < pool->n; i++) {
        worker *w = &pool->w[i];
        size_t cap = w->service_ns < QUICK_JOB_NS ? DEPTH : DEPTH_SLOW;
        if (w->depth >= cap || w->replacing ||
            (pool->o.max_jobs_per_worker && w->taken >= pool->o.max_jobs_per_worker))
            continue;
        /* A large input is not queued behind other jobs: sending it may
         * block, and a caller cut off mid-request must be able to kill the
         * worker without hurting anyone else's running job. */
        if (in_len > PIPELINE_MAX_INPUT && w->depth)
            continue;
        if (!best || w->depth < best->depth)
            best = w;
    }
    return best;
}

/* Jobs waiting for a worker: callers not yet placed, and jobs queued in a
 * worker behind the one it runs. */
static size_t queued_jobs(const weft_process_pool *pool)
{
    size_t q = pool->waiting;
    for (size_t i = 0; i < pool->n; i++)
        if (pool->w[i].depth > 1)
            q += pool->w[i].depth - 1;
    return q;
}

weft_process_pool *weft_process_pool_new(const weft_process_pool_opts *opts)
{
    weft_loop *loop = weft__loop();
    if (!loop) {
        weft__seterr(WEFT_ENOLOOP, "weft_process_pool_new: no weft loop runs on this thread");
        return NULL;
    }
    if (opts && opts->workers > WEFT__MAX_WORKERS) {
        weft__seterr(-EINVAL, "weft_process_pool_new: opts.workers %zu above %d", opts->workers,
                     WEFT__MAX_WORKERS);
        return NULL;
    }
    if (opts && opts->on_shutdown != WEFT_POOL_DRAIN && opts->on_shutdown != WEFT_POOL_CANCEL) {
        weft__seterr(-EINVAL, "weft_process_pool_new: opts.on_shutdown %d is neither "
                              "WEFT_POOL_DRAIN nor WEFT_POOL_CANCEL", (int)opts->on_shutdown);
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
    weft__list_init(&pool->pools_link);
    pool->w = calloc(pool->o.workers, sizeof *pool->w);
    /* the slots' states, then their answer headers (8-byte aligned) */
    size_t states = (pool->o.workers * DEPTH * sizeof(*pool->shm) + 7) & ~(size_t)7;
    pool->shm_size = states + pool->o.workers * DEPTH * sizeof(job_result);
    pool->shm = mmap(NULL, pool->shm_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                     -1, 0);
    if (!pool->w || pool->shm == MAP_FAILED) {
        if (pool->shm != MAP_FAILED)
            munmap(pool->shm, pool->shm_size);
        free(pool->w);
        free(pool);
        weft__seterr(-ENOMEM, "weft_process_pool_new: out of memory");
        return NULL;
    }
    weft_sem_init(&pool->places, 0);
    weft_event_init(&pool->drained);
    weft_event_init(&pool->avail);
    pool->n = pool->o.workers;
    pthread_mutex_lock(&pools_lock);
    weft__list_push_back(&pools, &pool->pools_link);
    pthread_mutex_unlock(&pools_lock);
    for (size_t i = 0; i < pool->n; i++) {
        worker *w = &pool->w[i];
        w->fd = w->pidfd = -1;
        w->slots = pool->shm + i * DEPTH;
        w->results = (job_result *)((char *)pool->shm + states) + i * DEPTH;
        w->free_slots = DEPTH == 64 ? ~(uint64_t)0 : ((uint64_t)1 << DEPTH) - 1;
        w->service_ns = QUICK_JOB_NS * 10; /* unknown: slow until measured */
        weft__list_init(&w->inflight);
        weft_lock_init(&w->wlock);
        weft_event_init(&w->kick);
        weft_event_init(&w->space);
        w->pool = pool;
        w->rbuf = malloc(RBUF_SIZE);
        w->sbuf = malloc(STAGE_SIZE);
        if (!w->rbuf || !w->sbuf) {
            weft_process_pool_free(pool);
            weft__seterr(-ENOMEM, "weft_process_pool_new: out of memory");
            return NULL;
        }
    }
    for (size_t i = 0; i < pool->n; i++) {
        int rc = spawn_worker(pool, &pool->w[i]);
        if (rc < 0) {
            char msg[256];
            snprintf(msg, sizeof msg, "%s", weft_errmsg());
            weft_process_pool_free(pool);
            weft__seterr(rc, "weft_process_pool_new: %s", msg);
            return NULL;
        }
        for (int k = 0; k < DEPTH; k++)
            weft_sem_release(&pool->places);
    }
    pool->stats.workers = pool->n;
    return pool;
}

/* The caller gives up on job j (cancelled, timed out): withdraw it if it
 * has not started, kill its worker if it runs.  Returns true when the
 * job had finished already: then its answer is on the way and counts. */
static bool give_up(weft_process_pool *pool, worker *w, pjob *j)
{
    uint32_t queued = SLOT_QUEUED;
    if (atomic_compare_exchange_strong(&w->slots[j->slot], &queued, SLOT_CANCELLED)) {
        j->task = NULL; /* the worker skips it; the reader frees it */
        return false;
    }
    if (queued == SLOT_DONE)
        return true;
    /* Running: stop the work for real.  The reader sees the worker die,
     * frees the job and sends the queued ones to the replacement. */
    j->task = NULL;
    if (w->pid > 0)
        kill(w->pid, SIGKILL);
    pool->stats.kills++;
    return false;
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
    int64_t deadline;
    /* A deadline already past: fail before the job could reach a worker. */
    if (weft__call_expired(t, opts ? opts->timeout_ms : 0, &deadline))
        return weft__seterr(-ETIMEDOUT, "weft_process_pool_run: %s before the job started",
                            weft_strerror(-ETIMEDOUT));
    worker *idle = pick_worker(pool, in_len);
    if (pool->o.max_queue && queued_jobs(pool) >= pool->o.max_queue &&
        !(idle && idle->depth == 0))
        return weft__seterr(-EAGAIN, "weft_process_pool_run: %zu jobs already wait for a "
                                     "worker (max_queue)", queued_jobs(pool));

    pool->waiting++;
    int rc = weft_sem_acquire_until(&pool->places, deadline);
    pool->waiting--;
    if (rc < 0) {
        maybe_drained(pool);
        return weft__seterr(rc, "weft_process_pool_run: %s while waiting for a worker",
                            weft_strerror(rc));
    }
    if (pool->cancelling) {
        weft_sem_release(&pool->places); /* let the next waiter see it too */
        maybe_drained(pool);
        return weft__seterr(-ECANCELED, "weft_process_pool_run: the pool is shutting down");
    }
    worker *w;
    pool->waiting++; /* still queued, as far as max_queue is concerned */
    while (!(w = pick_worker(pool, in_len)) && rc == 0) {
        /* Only workers at their depth, being replaced, at
         * max_jobs_per_worker, or busy for a large input are left: wait for
         * one to become free. */
        weft_event_clear(&pool->avail);
        rc = weft_event_wait_until(&pool->avail, deadline);
        if (rc == 0 && pool->cancelling)
            rc = -ECANCELED;
    }
    pool->waiting--;
    if (rc < 0) {
        weft_sem_release(&pool->places);
        maybe_drained(pool);
        return weft__seterr(rc, "weft_process_pool_run: %s while waiting for a worker",
                            weft_strerror(rc));
    }
    pjob *j = calloc(1, sizeof *j);
    if (!j || (w->pid <= 0 && spawn_worker(pool, w) < 0)) {
        free(j);
        weft_sem_release(&pool->places);
        maybe_drained(pool);
        return weft__seterr(-ENOMEM, "weft_process_pool_run: %s",
                            !j ? "out of memory" : "no worker process");
    }
    j->task = t;
    j->fn = fn;
    j->in = in;
    j->in_len = in_len;
    j->out = out;
    j->slot = (uint32_t)__builtin_ctzll(w->free_slots);
    w->free_slots &= ~((uint64_t)1 << j->slot);
    atomic_store(&w->slots[j->slot], SLOT_QUEUED);
    if (w->depth == 0)
        w->last_answer = weft_now(); /* idle until now: that time is not service */
    weft__list_push_back(&w->inflight, &j->link);
    w->depth++;
    w->taken++;
    pool->inflight++;
    pool->running++;
    ensure_reader(w);

    bool sent = false;
    if (in_len <= PIPELINE_MAX_INPUT) {
        /* Copied into the staging buffer, in the order of the in-flight
         * FIFO; the writer task sends it with the others staged in this
         * loop iteration. */
        size_t need = sizeof(req_header) + in_len;
        while (!(first_unsent(w, j) && w->slen + need <= STAGE_SIZE)) {
            ensure_writer(w);
            weft_event_clear(&w->space);
            rc = weft_event_wait_until(&w->space, deadline);
            if (rc < 0)
                break;
        }
        if (rc == 0) {
            req_header h = {.fn = (uint64_t)(uintptr_t)fn, .slot = j->slot, .len = in_len};
            memcpy(w->sbuf + w->slen, &h, sizeof h);
            if (in_len)
                memcpy(w->sbuf + w->slen + sizeof h, in, in_len);
            w->slen += need;
            w->nstaged++;
            j->staged = true;
            ensure_writer(w);
            if (!w->writer) { /* no task for the writer: send now */
                weft_lock_acquire(&w->wlock);
                flush_staged(w);
                weft_lock_release(&w->wlock);
            }
        }
        weft_event_set(&w->space); /* the next in line may stage now */
    } else {
        /* Large (its worker is idle): sent by the caller, straight from its
         * memory.  Cut off half-way, it costs only that worker. */
        rc = weft_lock_acquire_until(&w->wlock, deadline);
        if (rc == 0) {
            flush_staged(w); /* requests staged before this one go first */
            rc = send_request(w, j, deadline, &sent);
            weft_lock_release(&w->wlock);
            if (rc == -EPIPE || rc == -ECONNRESET) {
                rc = 0; /* the worker is dead: its reader resends the job */
                sent = true;
            }
        }
    }
    if (j->staged || (rc == 0 && j->sent)) {
        /* staged (or already flushed): its answer comes as for a sent one */
    } else if (rc < 0 && !sent) {
        /* It never reached the worker: withdraw it. */
        j->task = NULL;
        job_finish(w, j, rc);
        weft_event_set(&w->kick);
    } else if (rc < 0) {
        /* Cut off mid-request: the stream is broken, the worker must go
         * (its reader replaces it and resends the others). */
        j->task = NULL;
        j->sent = true;
        weft_event_set(&w->kick);
        if (w->pid > 0)
            kill(w->pid, SIGKILL);
    }
    if (rc == 0) {
        if (!j->staged && !j->sent) {
            j->sent = true;
            weft_event_set(&w->kick);
        }
        while (!j->done) {
            t->wait_kind = WEFT__WAIT_OTHER;
            t->wait_obj = j;
            t->wait_describe = NULL;
            rc = weft__wait(t, deadline, -ETIMEDOUT);
            if (rc < 0 && !j->done) {
                if (!give_up(pool, w, j))
                    break;
                /* finished already: wait for the answer, shielded */
                weft_shield sh;
                weft_shield_begin(&sh, WEFT_NO_TIMEOUT);
                while (!j->done) {
                    t->wait_obj = j;
                    weft__wait(t, WEFT_NO_DEADLINE, 0);
                }
                weft_shield_end(&sh);
            }
        }
        if (j->done) {
            rc = j->rc;
            if (rc == 0 && status)
                *status = j->status;
            if (rc == WEFT_ECRASHED)
                weft__seterr(rc, "weft_process_pool_run: %s while running the job", j->why);
            free(j);
        }
    }
    pool->running--;
    maybe_drained(pool);
    if (rc == -ECANCELED || rc == -ETIMEDOUT)
        return weft__seterr(rc, "weft_process_pool_run: %s; the job was withdrawn or its "
                                "worker killed", weft_strerror(rc));
    if (rc == -E2BIG)
        return weft__seterr(rc, "weft_process_pool_run: the job's output is larger than "
                                "max_output (%zu bytes)", pool->o.max_output);
    return rc;
}

void weft_process_pool_stats_get(const weft_process_pool *pool, weft_process_pool_stats *stats)
{
    if (stats)
        *stats = pool ? pool->stats : (weft_process_pool_stats){0};
}

int weft_process_pool_shutdown(weft_process_pool *pool)
{
    weft_task *t = weft__require_task("weft_process_pool_shutdown");
    if (!t)
        return WEFT_ENOTASK;
    if (!pool)
        return weft__seterr(-EINVAL, "weft_process_pool_shutdown: NULL pool");
    if (!pool->shut) {
        pool->shut = true;
        if (pool->o.on_shutdown == WEFT_POOL_CANCEL) {
            pool->cancelling = true;
            /* Queued jobs are withdrawn (their workers skip them); a worker
             * with a running job is killed (its reader reports -ECANCELED). */
            for (size_t i = 0; i < pool->n; i++) {
                worker *w = &pool->w[i];
                bool running = false;
                weft__list_foreach(it, &w->inflight) {
                    pjob *j = weft__container_of(it, pjob, link);
                    uint32_t queued = SLOT_QUEUED;
                    if (!atomic_compare_exchange_strong(&w->slots[j->slot], &queued,
                                                        SLOT_CANCELLED) &&
                        queued == SLOT_RUNNING)
                        running = true;
                }
                if (running && w->pid > 0)
                    kill(w->pid, SIGKILL);
            }
        }
        maybe_drained(pool);
    }
    weft_shield sh;
    weft_shield_begin(&sh, WEFT_NO_TIMEOUT);
    weft_event_wait(&pool->drained);
    /* Nothing in flight: closing a worker's socket makes it exit. */
    for (size_t i = 0; i < pool->n; i++)
        reap_worker(&pool->w[i], NULL, 0);
    weft_shield_end(&sh);
    return 0;
}

void weft_process_pool_free(weft_process_pool *pool)
{
    if (!pool)
        return;
    if (pool->helpers || pool->running || pool->waiting) {
        /* Still in use (no shutdown first): its tasks would touch freed
         * memory.  Stop the workers and leave the memory to them. */
        weft__log("weft: weft_process_pool_free on a pool still in use (call "
                  "weft_process_pool_shutdown first): its workers are killed, its memory "
                  "leaked\n");
        pool->shut = pool->cancelling = true;
        for (size_t i = 0; i < pool->n; i++)
            if (pool->w[i].pid > 0)
                kill(pool->w[i].pid, SIGKILL);
        return;
    }
    pthread_mutex_lock(&pools_lock);
    if (weft__list_linked(&pool->pools_link))
        weft__list_remove(&pool->pools_link);
    pthread_mutex_unlock(&pools_lock);
    for (size_t i = 0; i < pool->n; i++) {
        worker *w = &pool->w[i];
        if (w->fd >= 0) {
            weft_close(w->fd); /* forgets it in the loop, if any */
        }
        if (w->pid > 0) {
            kill(w->pid, SIGKILL);
            waitpid(w->pid, NULL, 0);
        }
        if (w->pidfd >= 0) {
            weft_close(w->pidfd); /* forgets it in the loop, if any */
        }
    }
    for (size_t i = 0; i < pool->n; i++) {
        free(pool->w[i].rbuf);
        free(pool->w[i].sbuf);
    }
    if (pool->shm && pool->shm != MAP_FAILED)
        munmap(pool->shm, pool->shm_size);
    free(pool->w);
    free(pool);
}
