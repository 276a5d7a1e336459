# Included by CMake right after llama.cpp's project() (CMAKE_PROJECT_llama.cpp_INCLUDE), before its
# options are read: llama-cpp-python forces llama.cpp's "common" library on, but neither ships it in
# the Python package nor loads it, and it is the largest part of the build (a third of its time).
set(LLAMA_BUILD_COMMON OFF CACHE BOOL "llama: build common utils library" FORCE)
