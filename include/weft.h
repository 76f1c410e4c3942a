/* SPDX-License-Identifier: MIT */
/* weft: straight-line async code in C — tasks on an event loop. */
#ifndef WEFT_H
#define WEFT_H

#include <errno.h> /* results are compared with -ECANCELED, -ETIMEDOUT, ... */

#include <weft/version.h>
#include <weft/error.h>
#include <weft/task.h>
#include <weft/time.h>
#include <weft/io.h>
#include <weft/signal.h>
#include <weft/loop.h>
#include <weft/debug.h>
#include <weft/sync.h>
#include <weft/group.h>
#include <weft/scoped.h>
#include <weft/exec.h>
#include <weft/net.h>

#endif
