/* SPDX-License-Identifier: MIT */
/*
 * The guide's "async context managers": a resource (here a permit from a
 * pool of 2 "connections") taken in a task is released on every way out —
 * normal return, error, cancellation and timeout — and the output shows
 * the pool back at 2 each time.
 */
#include <errno.h>
#include <stdio.h>

#include <weft.h>

static weft_sem pool;

static int use_connection(void *arg)
{
    const char *how = arg;
    WEFT_SCOPED_PERMIT(conn, &pool);
    if (conn.rc < 0)
        return conn.rc;
    printf("  %-8s took a connection (free now: %ld)\n", how, weft_sem_value(&pool));
    if (how[0] == 'e')
        return -EIO;              /* error: released by the scope */
    return weft_sleep_ms(how[0] == 'n' ? 1 : 1000); /* cancel / timeout cut this */
}

static void show(const char *how, int rc)
{
    printf("  %-8s returned %-26s free after: %ld\n", how, weft_strerror(rc),
           weft_sem_value(&pool));
}

static int app(void *arg)
{
    (void)arg;
    weft_sem_init(&pool, 2);
    int st;

    weft_task *t = weft_spawn(use_connection, "normal", NULL);
    weft_join(t, &st);
    show("normal", st);

    t = weft_spawn(use_connection, "error", NULL);
    weft_join(t, &st);
    show("error", st);

    t = weft_spawn(use_connection, "cancel", NULL);
    weft_sleep_ms(5);
    weft_cancel(t);
    weft_join(t, &st);
    show("cancel", st);

    int rc = weft_wait_for(use_connection, "timeout", 20, &st);
    show("timeout", rc);
    return weft_sem_value(&pool) == 2 ? 0 : 1;
}

int main(void) { return weft_run(app, NULL); }
