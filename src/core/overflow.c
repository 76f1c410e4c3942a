/* SPDX-License-Identifier: MIT */
/*
 * Stack overflow report: a SIGSEGV handler on an alternate signal stack
 * checks whether the faulting address lies in the running task's guard
 * region and, if so, names the task before the process dies.  Other faults
 * go to the previous handler (or the default action).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core-internal.h"

#define WEFT__ALTSTACK_SIZE ((size_t)64 * 1024)

static struct sigaction prev_segv;
static int installed; /* loops with the handler installed (one per thread) */
static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;

static void write_str(const char *s)
{
    size_t n = strlen(s);
    while (n) {
        ssize_t w = write(STDERR_FILENO, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

static void on_segv(int sig, siginfo_t *si, void *uctx)
{
    weft_loop *loop = weft__tls_loop;
    weft_task *t = loop ? loop->current : NULL;
    if (t && t->stack) {
        char *lo = (char *)t->stack->map;
        char *hi = t->stack->top - t->stack->usable;
        char *a = (char *)si->si_addr;
        /* Also count a fault just below the guard: a huge frame can jump it. */
        if (a >= lo - 65536 && a < hi) {
            char buf[160];
            /* snprintf is not async-signal-safe in theory; with %s and %zu
             * glibc's does not allocate.  The process is about to die. */
            snprintf(buf, sizeof buf, "weft: stack overflow in task '%s' (stack size %zu KiB)\n",
                     t->name, t->stack_size / 1024);
            write_str(buf);
            signal(SIGSEGV, SIG_DFL);
            return; /* the faulting instruction runs again and kills us */
        }
    }
    if (prev_segv.sa_flags & SA_SIGINFO) {
        if (prev_segv.sa_sigaction) {
            prev_segv.sa_sigaction(sig, si, uctx);
            return;
        }
    } else if (prev_segv.sa_handler != SIG_DFL && prev_segv.sa_handler != SIG_IGN) {
        prev_segv.sa_handler(sig);
        return;
    }
    signal(SIGSEGV, SIG_DFL);
}

int weft__overflow_install(weft_loop *loop)
{
    loop->altstack = malloc(WEFT__ALTSTACK_SIZE);
    if (!loop->altstack)
        return -1;
    stack_t ss = {.ss_sp = loop->altstack, .ss_size = WEFT__ALTSTACK_SIZE, .ss_flags = 0};
    if (sigaltstack(&ss, &loop->saved_altstack) < 0) {
        free(loop->altstack);
        loop->altstack = NULL;
        return -1;
    }
    pthread_mutex_lock(&install_lock);
    if (installed++ == 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_segv;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSEGV, &sa, &prev_segv);
    }
    pthread_mutex_unlock(&install_lock);
    return 0;
}

void weft__overflow_uninstall(weft_loop *loop)
{
    if (!loop->altstack)
        return;
    pthread_mutex_lock(&install_lock);
    if (--installed == 0)
        sigaction(SIGSEGV, &prev_segv, NULL);
    pthread_mutex_unlock(&install_lock);
    /* Restore the previous alternate stack (disabled unless someone set one). */
    if (loop->saved_altstack.ss_sp)
        sigaltstack(&loop->saved_altstack, NULL);
    else {
        stack_t off = {.ss_flags = SS_DISABLE};
        sigaltstack(&off, NULL);
    }
    free(loop->altstack);
    loop->altstack = NULL;
}
