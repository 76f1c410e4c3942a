/* SPDX-License-Identifier: MIT */
/* weft from C++17: the headers compile (extern "C", no C-only syntax), the
 * library links, and weft_spawn / weft_group_spawn accept an options
 * argument with commas outside parentheses (template arguments, braces),
 * which a three-argument macro would split.  See test_spawn_macro.c. */
#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
extern "C" {  /* cmocka.h (1.1) has no extern "C" of its own */
#include <cmocka.h>
}

#include <cstring>
#include <tuple>
#include <utility>

#include <weft.h>

namespace {

/* More than WEFT_STACK_DEFAULT (256 KiB), less than the 1 MiB asked for. */
constexpr size_t deep_bytes = 384 * 1024;
const weft_task_opts big = {"big", 1024 * 1024};

int deep(void *arg)
{
    const char *want = static_cast<const char *>(arg);
    volatile char buf[deep_bytes];
    for (size_t i = 0; i < sizeof buf; i += 4096)
        buf[i] = static_cast<char>(i);
    buf[sizeof buf - 1] = 1;
    return std::strcmp(weft_task_name(weft_current()), want) == 0 ? 0 : -1;
}

int spawn_main(void *)
{
    char want[] = "big";
    weft_task *t = weft_spawn(deep, want, std::get<1>(std::tuple<int, const weft_task_opts *>{0, &big}));
    if (!t)
        return -100;
    int st = -200;
    if (weft_join(t, &st) != 0)
        return -300;
    return st;
}

int group_main(void *)
{
    weft_group *g = weft_group_new(nullptr);
    if (!g)
        return -100;
    char want[] = "big";
    int i = weft_group_spawn(g, deep, want, std::pair<int, const weft_task_opts *>{0, &big}.second);
    if (i != 0)
        return -200;
    int rc = weft_group_wait(g);
    weft_group_free(g);
    return rc;
}

void test_spawn_cxx(void **)
{
    assert_int_equal(weft_run(spawn_main, nullptr), 0);
}

void test_group_spawn_cxx(void **)
{
    assert_int_equal(weft_run(group_main, nullptr), 0);
}

} // namespace

int main()
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spawn_cxx),
        cmocka_unit_test(test_group_spawn_cxx),
    };
    return cmocka_run_group_tests(tests, nullptr, nullptr);
}
