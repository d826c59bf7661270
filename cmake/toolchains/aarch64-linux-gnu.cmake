# Cross toolchain: 64-bit ARM Linux (Debian's g++-aarch64-linux-gnu).
# Test executables run under qemu-user; ctest prepends the emulator automatically.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(_lowbit_triple aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${_lowbit_triple}-gcc)
set(CMAKE_CXX_COMPILER ${_lowbit_triple}-g++)

# NEON (Advanced SIMD) is mandatory in ARMv8-A, so no extra -mfpu flag is needed.
set(CMAKE_C_FLAGS_INIT "-march=armv8-a")
set(CMAKE_CXX_FLAGS_INIT "-march=armv8-a")

# Libraries and headers come from the target tree only; programs from the host.
set(CMAKE_FIND_ROOT_PATH /usr/${_lowbit_triple})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# -L points qemu at the target's dynamic loader and shared libraries.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64;-L;/usr/${_lowbit_triple})

set(LOWBIT_TEST_SUFFIX "_aarch64_qemu" CACHE STRING "Suffix appended to test names")
