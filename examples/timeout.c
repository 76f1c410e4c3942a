/* SPDX-License-Identifier: MIT */
/*
 * The guide's "timeouts that really stop the work": weft_wait_for cancels a
 * slow operation and returns only after it has really stopped (its cleanup
 * ran); a deadline scope bounds every wait inside it at once.
 */
#include <errno.h>
#include <stdio.h>

#include <weft.h>

static int slow_operation(void *arg)
{
    int *cleaned = arg;
    int rc = weft_sleep_ms(1000); /* the "I/O": cancelled after 50 ms */
    *cleaned = 1;                 /* cleanup runs before wait_for returns */
    return rc;
}

static int app(void *arg)
{
    (void)arg;
    int cleaned = 0, status = 0;
    int64_t t0 = weft_now();
    int rc = weft_wait_for(slow_operation, &cleaned, 50, &status);
    printf("wait_for: %s after %.0f ms; operation status %s; cleanup ran: %s\n",
           weft_strerror(rc), (double)(weft_now() - t0) / 1e6, weft_strerror(status),
           cleaned ? "yes" : "no");

    /* A deadline scope: three sleeps of 40 ms under a 100 ms budget. */
    weft_scope scope;
    t0 = weft_now();
    weft_scope_enter(&scope, weft_deadline_ms(100));
    int done = 0;
    for (int i = 0; i < 3 && (rc = weft_sleep_ms(40)) == 0; i++)
        done++;
    int fired = weft_scope_exit(&scope); /* its deadline cut the work short */
    printf("scope: %d of 3 steps done, then %s after %.0f ms (scope fired: %s)\n", done,
           weft_strerror(rc), (double)(weft_now() - t0) / 1e6, fired ? "yes" : "no");
    return rc == -ETIMEDOUT && cleaned ? 0 : 1;
}

int main(void) { return weft_run(app, NULL); }
