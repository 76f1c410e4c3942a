/* SPDX-License-Identifier: MIT */
/*
 * Signals through a signalfd: the first wait blocks the signals in the
 * loop's thread and adds them to the loop's signalfd.  A signal read while
 * nobody waits for it is kept in `sigpending` for the next wait.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "backend/backend.h"
#include "core-internal.h"

static bool set_empty(const sigset_t *set)
{
    for (int s = 1; s < NSIG; s++)
        if (sigismember(set, s) == 1)
            return false;
    return true;
}

/* Route the signals of `set` to the loop's signalfd. */
static int watch(weft_loop *loop, const sigset_t *set)
{
    sigset_t add;
    sigemptyset(&add);
    bool any = false;
    for (int s = 1; s < NSIG; s++)
        if (sigismember(set, s) == 1 && sigismember(&loop->sigmask, s) != 1) {
            sigaddset(&add, s);
            any = true;
        }
    if (!any && loop->sigfd >= 0)
        return 0;
    sigset_t old;
    if (pthread_sigmask(SIG_BLOCK, &add, &old) != 0)
        return -EINVAL;
    if (!loop->sigmask_changed) {
        loop->saved_mask = old;
        loop->sigmask_changed = true;
    }
    for (int s = 1; s < NSIG; s++)
        if (sigismember(&add, s) == 1)
            sigaddset(&loop->sigmask, s);
    int fd = signalfd(loop->sigfd, &loop->sigmask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (loop->sigfd < 0) {
        loop->sigfd = fd;
        int rc = weft__backend_add(loop, fd);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Take a pending signal of `set`, or 0. */
static int take_pending(weft_loop *loop, const sigset_t *set)
{
    for (int s = 1; s < NSIG; s++)
        if (sigismember(set, s) == 1 && sigismember(&loop->sigpending, s) == 1) {
            sigdelset(&loop->sigpending, s);
            return s;
        }
    return 0;
}

void weft__signals_dispatch(weft_loop *loop)
{
    struct signalfd_siginfo si[16];
    for (;;) {
        ssize_t n = read(loop->sigfd, si, sizeof si);
        if (n <= 0)
            break;
        for (size_t i = 0; i < (size_t)n / sizeof si[0]; i++) {
            int signo = (int)si[i].ssi_signo;
            if (signo == SIGQUIT && loop->debug) {
                weft_dump_tasks(stderr);
                continue;
            }
            bool delivered = false;
            weft__list_foreach(it, &loop->sig_waiters) {
                weft_task *t = weft__container_of(it, weft__task_run, wait_link)->task;
                if (t->state == WEFT__SUSPENDED && sigismember(t->wait_obj, signo) == 1) {
                    weft__wake(t, signo);
                    delivered = true;
                    break;
                }
            }
            if (!delivered)
                sigaddset(&loop->sigpending, signo);
        }
    }
}

int weft__signals_watch_quit(weft_loop *loop)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGQUIT);
    return watch(loop, &set);
}

/* "INT" for SIGINT where glibc names signals (2.32+), else NULL. */
static const char *sig_name(int s)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
    return sigabbrev_np(s);
#else
    (void)s;
    return NULL;
#endif
}

static const char *sig_number(int s)
{
    static _Thread_local char buf[12];
    snprintf(buf, sizeof buf, "%d", s);
    return buf;
}

int weft_signal_wait(const sigset_t *set, int64_t deadline)
{
    weft_task *t = weft__require_task("weft_signal_wait");
    if (!t)
        return WEFT_ENOTASK;
    if (!set || set_empty(set))
        return weft__seterr(-EINVAL, "weft_signal_wait: %s signal set", set ? "empty" : "NULL");
    if (sigismember(set, SIGKILL) == 1 || sigismember(set, SIGSTOP) == 1)
        return weft__seterr(-EINVAL, "weft_signal_wait: SIGKILL and SIGSTOP cannot be caught");
    if (weft__cancel_visible(t))
        return weft__seterr(-ECANCELED, "weft_signal_wait: %s", weft_strerror(-ECANCELED));
    weft_loop *loop = t->loop;
    int rc = watch(loop, set);
    if (rc < 0)
        return weft__seterr(rc, "weft_signal_wait: signalfd: %s", weft_strerror(rc));
    int s = take_pending(loop, set);
    if (s) {
        weft__coop_spend(t);
        return s;
    }
    t->wait_kind = WEFT__WAIT_SIGNAL;
    t->wait_obj = set;
    weft__list_push_back(&loop->sig_waiters, &weft__run(t)->wait_link);
    loop->io_waiters++;
    int64_t started = weft__clock_ns();
    rc = weft__wait(t, deadline, -ETIMEDOUT);
    loop->io_waiters--;
    weft__list_remove(&weft__run(t)->wait_link);
    if (rc < 0) {
        char names[128] = "";
        for (int sig = 1; sig < NSIG && strlen(names) < sizeof names - 16; sig++)
            if (sigismember(set, sig) == 1)
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s%s",
                         names[0] ? ", " : "", sig_name(sig) ? "SIG" : "signal ",
                         sig_name(sig) ? sig_name(sig) : sig_number(sig));
        return weft__wait_failed(rc, "weft_signal_wait", started, deadline, "a signal (%s)",
                                 names);
    }
    return rc;
}

void weft__signals_close(weft_loop *loop)
{
    if (loop->sigfd >= 0) {
        close(loop->sigfd);
        loop->sigfd = -1;
    }
    if (loop->sigmask_changed) {
        pthread_sigmask(SIG_SETMASK, &loop->saved_mask, NULL);
        loop->sigmask_changed = false;
    }
}
