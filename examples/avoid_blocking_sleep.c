/* SPDX-License-Identifier: MIT */
/* The smallest weft program: 100 tasks sleep 10 ms each, concurrently. */
#include <stdint.h>
#include <stdio.h>
#include <weft.h>

static int worker(void *arg)
{
    (void)arg;
    return weft_sleep_ms(10); /* suspends this task only; the loop runs the others */
}

static int app(void *arg)
{
    (void)arg;
    weft_task *tasks[100];
    int64_t t0 = weft_now();
    for (int i = 0; i < 100; i++)
        tasks[i] = weft_spawn(worker, NULL, NULL);
    for (int i = 0; i < 100; i++) {
        int status;
        if (weft_join(tasks[i], &status) != 0 || status != 0)
            return 1;
    }
    printf("100 tasks x 10 ms sleep: %.1f ms\n", (double)(weft_now() - t0) / 1e6);
    return 0;
}

int main(void)
{
    return weft_run(app, NULL);
}
