/* SPDX-License-Identifier: MIT */
/* The README's example, compiled in CI so that it stays true. */
#include <stdio.h>
#include <weft.h>

static int worker(void *arg)
{
    int id = *(int *)arg;
    int rc = weft_sleep_ms(10);           /* suspends this task only */
    printf("worker %d done\n", id);
    return rc;
}

static int app(void *arg)
{
    (void)arg;
    int ids[100];
    weft_task *t[100];
    for (int i = 0; i < 100; i++) {
        ids[i] = i;
        t[i] = weft_spawn(worker, &ids[i], NULL);  /* named "worker" */
    }
    for (int i = 0; i < 100; i++)
        weft_join(t[i], NULL);            /* all 100 finish after ~10 ms */
    return 0;
}

int main(void) { return weft_run(app, NULL); }
