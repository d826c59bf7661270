# Cross toolchain: 32-bit ARMv7-A Linux, hard-float ABI with NEON (Debian's g++-arm-linux-gnueabihf).
# Test executables run under qemu-user; ctest prepends the emulator automatically.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR armv7)

set(_lowbit_triple arm-linux-gnueabihf)
set(CMAKE_C_COMPILER ${_lowbit_triple}-gcc)
set(CMAKE_CXX_COMPILER ${_lowbit_triple}-g++)

set(CMAKE_C_FLAGS_INIT "-march=armv7-a -mfpu=neon -mfloat-abi=hard")
set(CMAKE_CXX_FLAGS_INIT "-march=armv7-a -mfpu=neon -mfloat-abi=hard")

# Libraries and headers come from the target tree only; programs from the host.
set(CMAKE_FIND_ROOT_PATH /usr/${_lowbit_triple})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# -L points qemu at the target's dynamic loader and shared libraries.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-arm;-L;/usr/${_lowbit_triple})

set(LOWBIT_TEST_SUFFIX "_armv7_qemu" CACHE STRING "Suffix appended to test names")
