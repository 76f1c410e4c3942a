# SPDX-License-Identifier: MIT
# gdb commands for weft programs: `weft tasks` lists tasks, `weft bt N` walks a suspended task's stack.
#
# Load with `source tools/weft-gdb.py` (installed as share/weft/weft-gdb.py).
# Works on live processes and on core dumps: it only reads memory and never
# writes registers or switches threads.
#
#   weft tasks    every task of every running loop: index, address, name,
#                 state and what it waits on
#   weft bt N     the backtrace of task N (an index from `weft tasks`), read
#                 from the frame weft__switch saved on the task's stack and
#                 the frame-pointer chain above it (weft is built with
#                 -fno-omit-frame-pointer; code built without frame pointers
#                 cuts the chain short)

import sys

import gdb

_STATES = {0: "new", 1: "ready", 2: "running", 3: "waiting", 4: "done"}
_WAITS = {0: "", 1: "sleep", 2: "fd", 3: "join", 4: "signal", 5: "other"}

# Where weft__switch leaves the caller's frame pointer and return address,
# relative to the saved stack pointer (see src/core/switch_*.S).
_SWITCH_FRAME = {
    "x86_64": (48, 56),
    "aarch64": (80, 88),
}

_MAX_FRAMES = 256


def _u64_ptr():
    return gdb.lookup_type("unsigned long").pointer()


def _read_u64(addr):
    return int(gdb.Value(addr).cast(_u64_ptr()).dereference()) & 0xFFFFFFFFFFFFFFFF


def _offset_of(type_name, member):
    t = gdb.lookup_type(type_name).strip_typedefs()
    for f in t.fields():
        if f.name == member:
            return f.bitpos // 8
    raise gdb.GdbError("weft: %s has no member %s (is this a weft program?)" % (type_name, member))


def _list_entries(head, type_name, member):
    """The entries of an intrusive weft__list whose head is `head` (a value
    of type weft__list), as pointers to `type_name`."""
    off = _offset_of(type_name, member)
    ptr_type = gdb.lookup_type(type_name).pointer()
    head_addr = int(head.address)
    node = int(head["next"])
    seen = 0
    while node != head_addr and node != 0:
        yield gdb.Value(node - off).cast(ptr_type)
        node = _read_u64(node + _offset_of("weft__list", "next"))
        seen += 1
        if seen > 10000000:
            raise gdb.GdbError("weft: list at 0x%x looks corrupted" % head_addr)


def _loops():
    try:
        head = gdb.parse_and_eval("weft__loops")
    except gdb.error:
        raise gdb.GdbError("weft: symbol weft__loops not found (no weft debug info loaded?)")
    return list(_list_entries(head, "struct weft_loop", "loops_link"))


def _tasks():
    """(index, loop, task) for every live task of every running loop."""
    out = []
    for loop in _loops():
        for task in _list_entries(loop["tasks"], "struct weft_task", "all_link"):
            out.append((len(out), loop, task))
    return out


def _task_name(task):
    try:
        return task["name"].string(errors="replace")
    except gdb.error:
        return "?"


def _describe_wait(loop, task):
    state = int(task["state"])
    if state != 3:
        return ""
    kind = int(task["wait_kind"])
    run = task["stack"]["run"]  # a suspended task has started: it has a stack
    deadline = ""
    try:
        if int(run["timer"]["heap_index"]):
            left = (int(run["timer"]["deadline"]) - int(loop["now"])) // 1000000
            deadline = " (%d ms left)" % left if kind == 1 else ", deadline in %d ms" % left
    except gdb.error:
        pass
    if kind == 2:
        ev = int(run["wait_events"])
        what = "|".join(n for bit, n in ((1, "readable"), (2, "writable")) if ev & bit)
        return "fd %d %s%s" % (int(run["wait_fd"]), what, deadline)
    if kind == 3:
        joined = task["wait_obj"].cast(gdb.lookup_type("struct weft_task").pointer())
        return "join task '%s'%s" % (_task_name(joined.dereference()), deadline)
    if kind in _WAITS and _WAITS[kind] and kind != 5:
        return _WAITS[kind] + deadline
    return "other 0x%x%s" % (int(task["wait_obj"]), deadline)


def _thread_number(pthread):
    """gdb's number for the thread whose pthread_t is `pthread`, or None."""
    try:
        for th in gdb.selected_inferior().threads():
            if int.from_bytes(th.handle(), sys.byteorder) == pthread:
                return th.num
    except (AttributeError, gdb.error, RuntimeError, TypeError):
        pass
    return None


def _arch():
    try:
        name = gdb.selected_inferior().architecture().name()
    except (AttributeError, gdb.error):
        name = gdb.selected_frame().architecture().name()
    if "x86-64" in name or "x86_64" in name:
        return "x86_64"
    if "aarch64" in name:
        return "aarch64"
    return name


def _function_at(pc):
    """(function name or None, file:line or None) of a code address."""
    name = None
    try:
        block = gdb.block_for_pc(pc)
    except (RuntimeError, gdb.error):
        block = None
    chain = []
    while block is not None:
        if block.function is not None:
            chain.append(block.function.print_name)
        block = block.superblock
    if chain:
        name = chain[0]
        if len(chain) > 1:
            name += " (inlined into %s)" % ", ".join(chain[1:])
    where = None
    sal = gdb.find_pc_line(pc)
    if sal.symtab is not None and sal.line:
        where = "%s:%d" % (sal.symtab.filename, sal.line)
    if name is None:
        # No debug info: the ELF symbol, as `info symbol` prints it.
        try:
            sym = gdb.execute("info symbol 0x%x" % pc, to_string=True).strip()
            if not sym.startswith("No symbol"):
                name = sym
        except gdb.error:
            pass
    return name, where


def _print_frame(n, pc, is_return_address):
    # A return address points after the call: look up the call itself.
    lookup = pc - 1 if is_return_address else pc
    name, where = _function_at(lookup)
    line = "#%-3d 0x%016x in %s" % (n, pc, name or "??")
    if where:
        line += " at " + where
    gdb.write(line + "\n")


class WeftPrefix(gdb.Command):
    """weft: inspect the tasks of a weft program (weft tasks, weft bt N)."""

    def __init__(self):
        super().__init__("weft", gdb.COMMAND_STACK, gdb.COMPLETE_NONE, True)


class WeftTasks(gdb.Command):
    """List every task of every running weft loop.

Columns: index (for `weft bt`), task address, name, state and what a
waiting task waits on.  `*` marks the task running on its loop's thread."""

    def __init__(self):
        super().__init__("weft tasks", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        loops = _loops()
        if not loops:
            gdb.write("weft: no running loop\n")
            return
        index = 0
        for loop in loops:
            tasks = list(_list_entries(loop["tasks"], "struct weft_task", "all_link"))
            pthread = int(loop["thread"])
            num = _thread_number(pthread)
            thread = ("thread %d, " % num if num is not None else "") + "pthread 0x%x" % pthread
            gdb.write("loop 0x%x (%s): %d live task(s)\n" % (int(loop), thread, len(tasks)))
            current = int(loop["current"])
            for task in tasks:
                state = _STATES.get(int(task["state"]), "?")
                wait = _describe_wait(loop, task)
                mark = "*" if int(task) == current else " "
                gdb.write("%s%3d  0x%x  %-24s %-8s %s\n"
                          % (mark, index, int(task), _task_name(task), state, wait))
                index += 1


class WeftBt(gdb.Command):
    """Print the backtrace of a suspended weft task: weft bt N.

N is an index from `weft tasks`.  Reads the frame saved by the context
switch and follows the frame-pointer chain, so it needs no thread switch
and works on core dumps."""

    def __init__(self):
        super().__init__("weft bt", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        argv = gdb.string_to_argv(arg)
        if len(argv) != 1:
            raise gdb.GdbError("usage: weft bt N (N from `weft tasks`)")
        try:
            want = int(argv[0], 0)
        except ValueError:
            raise gdb.GdbError("weft bt: not a task index: %s" % argv[0])
        tasks = _tasks()
        match = [t for t in tasks if t[0] == want]
        if not match:
            raise gdb.GdbError("weft bt: no task %d (there are %d)" % (want, len(tasks)))
        _, loop, task = match[0]
        name = _task_name(task)
        state = int(task["state"])
        gdb.write("task %d 0x%x '%s' (%s)\n" % (want, int(task), name, _STATES.get(state, "?")))
        if state == 0:
            gdb.write("  never ran: no stack yet\n")
            return
        if int(task) == int(loop["current"]):
            num = _thread_number(int(loop["thread"]))
            where = "`thread %d` then `bt`" % num if num is not None else "`bt` in its loop's thread"
            gdb.write("  running now: use %s\n" % where)
            return
        arch = _arch()
        if arch not in _SWITCH_FRAME:
            raise gdb.GdbError("weft bt: architecture %s is not supported" % arch)
        fp_off, ra_off = _SWITCH_FRAME[arch]
        sp = int(task["sp"])
        stack = task["stack"]
        if sp == 0 or int(stack) == 0:
            gdb.write("  no saved context\n")
            return
        top = int(stack["top"])
        lo = top - int(stack["usable"])
        if not lo <= sp < top:
            raise gdb.GdbError("weft bt: saved sp 0x%x outside the task's stack [0x%x, 0x%x)"
                               % (sp, lo, top))
        fp = _read_u64(sp + fp_off)
        pc = _read_u64(sp + ra_off)
        n = 0
        while pc and n < _MAX_FRAMES:
            _print_frame(n, pc, True)
            n += 1
            # A frame record is [caller's frame pointer, return address]; the
            # chain only grows towards the top of the stack and ends with 0.
            if fp == 0 or not (sp <= fp < top) or fp % 8:
                break
            next_fp = _read_u64(fp)
            pc = _read_u64(fp + 8)
            if next_fp != 0 and next_fp <= fp:
                if pc:
                    _print_frame(n, pc, True)
                break
            sp, fp = fp, next_fp


WeftPrefix()
WeftTasks()
WeftBt()
