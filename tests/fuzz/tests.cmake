# tests/fuzz/tests.cmake: libFuzzer targets (clang only), built when
# -DMALLARD_FUZZ=ON; tests/fuzz/run.sh configures that build (build-fuzz/)
# and runs each target for a bounded time from the corpus in tests/fuzz/corpus.
#
# The allocator core and the trace layer are compiled again here, from the
# same sources, with coverage instrumentation (-fsanitize=fuzzer-no-link),
# and linked directly into each target: no preload.
option(MALLARD_FUZZ "build the libFuzzer targets in tests/fuzz (needs clang)" OFF)
if(MALLARD_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "MALLARD_FUZZ needs clang (CC=clang-14)")
  endif()
  set(ML_FUZZ_FLAGS -fsanitize=fuzzer-no-link -fsanitize=address,undefined -fno-sanitize-recover=undefined)
  set(ML_FUZZ_SOURCES)
  foreach(src ${ML_CORE_SOURCES} ${ML_REPORT_SOURCES})
    if(IS_ABSOLUTE ${src})
      list(APPEND ML_FUZZ_SOURCES ${src})
    else()
      list(APPEND ML_FUZZ_SOURCES ${PROJECT_SOURCE_DIR}/${src})
    endif()
  endforeach()
  add_library(mallard_fuzzlib STATIC ${ML_FUZZ_SOURCES})
  target_compile_options(mallard_fuzzlib PRIVATE ${ML_WARN} ${ML_FUZZ_FLAGS}
    -fvisibility=hidden -ftls-model=initial-exec -fno-omit-frame-pointer)
  target_include_directories(mallard_fuzzlib PRIVATE ${LIBDW_INCLUDE_DIRS})
  target_link_libraries(mallard_fuzzlib PUBLIC ${CMAKE_DL_LIBS} Threads::Threads)
  foreach(f fuzz_api fuzz_options fuzz_supp)
    add_executable(${f} ${CMAKE_CURRENT_LIST_DIR}/${f}.c)
    target_compile_options(${f} PRIVATE ${ML_WARN} -fsanitize=fuzzer -fsanitize=address,undefined)
    target_link_options(${f} PRIVATE -fsanitize=fuzzer -fsanitize=address,undefined)
    target_link_libraries(${f} PRIVATE mallard_fuzzlib)
  endforeach()
endif()
