/* SPDX-License-Identifier: MIT */
/* The version is written once (include/weft/version.h): the string, the
 * number, the library's answers and CMake's project(VERSION) agree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>

#include <weft.h>

#include "test_helpers.h"

static void test_version(void **state)
{
    (void)state;
    char made[32];
    snprintf(made, sizeof made, "%d.%d.%d", WEFT_VERSION_MAJOR, WEFT_VERSION_MINOR,
             WEFT_VERSION_PATCH);
    assert_string_equal(WEFT_VERSION, made);
    assert_string_equal(WEFT_VERSION, WEFT_TEST_PROJECT_VERSION);
    assert_int_equal(WEFT_VERSION_HEX,
                     (WEFT_VERSION_MAJOR << 16) | (WEFT_VERSION_MINOR << 8) | WEFT_VERSION_PATCH);
    /* Outside a loop, as a program checks before it starts one. */
    assert_int_equal(weft_version(), WEFT_VERSION_HEX);
    assert_string_equal(weft_version_string(), WEFT_VERSION);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version),
    };
    return run_cases(tests, NULL, NULL);
}
