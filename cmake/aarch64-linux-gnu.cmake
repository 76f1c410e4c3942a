# Cross-compile for aarch64 with Debian's gcc-aarch64-linux-gnu; tests run
# under qemu-aarch64 (Debian qemu-user) through CTest's emulator hook.
# At run time the programs use the multiarch libc6:arm64 (installed with
# libcmocka-dev:arm64, found by qemu through /lib/ld-linux-aarch64.so.1),
# not the cross sysroot: mixing that sysroot's ld.so (`qemu -L`) with the
# multiarch libc.so.6 hangs pthread_create.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_ASM_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu /usr/lib/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64)
