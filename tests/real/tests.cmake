# tests/real: real Debian programs under every backend.
#
# real_<case>_<backend> runs one program twice, without and with
# libmallard.so preloaded (tests/real/run_real.sh), and compares stdout and
# exit status byte for byte; the backend runs bare (MALLARD_TRACE=0).
# real_<case>_trace does the same with no MALLARD_* setting at all: the
# default backend with the trace layer on.  real_readme_options and
# real_man_options check that README.md and man/mallard.1 carry the option
# table `mallard` prints.
#
# Also builds the demo program that scripts/demo.sh runs: build/tests/demo.

# A C++ program with iostreams, containers, exceptions and threads.
add_executable(real_cxx_threads ${CMAKE_CURRENT_LIST_DIR}/cxx_threads.cpp)
set_target_properties(real_cxx_threads PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON CXX_EXTENSIONS OFF)
target_compile_options(real_cxx_threads PRIVATE -Wall -Wextra -Werror -Wshadow)
target_link_libraries(real_cxx_threads PRIVATE Threads::Threads)

# The demo leaks on purpose (see tests/programs/demo.c).  -O0 keeps every
# allocation and the dropped pointers as the source shows them.
add_executable(mallard_demo ${CMAKE_SOURCE_DIR}/tests/programs/demo.c)
set_target_properties(mallard_demo PROPERTIES OUTPUT_NAME demo)
target_compile_options(mallard_demo PRIVATE ${ML_WARN} -O0 -g -fno-omit-frame-pointer)

set(ML_REAL_CASES python perl bash git make sort xz sqlite gcc cxx demo cmake gitfsck bashcap ruby node redis)
set(ML_REAL_ENV
  "ML_LIB=${ML_LIB}"
  "ML_CLI=$<TARGET_FILE:mallard_cli>"
  "ML_CXX_THREADS=$<TARGET_FILE:real_cxx_threads>"
  "ML_DEMO=$<TARGET_FILE:mallard_demo>")

# "trace" is the configuration a bare LD_PRELOAD gets: the default backend
# with the trace layer on (see run_real.sh).
foreach(backend ${ML_BACKENDS} trace)
  foreach(case ${ML_REAL_CASES})
    add_test(NAME real_${case}_${backend}
             COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/run_real.sh ${backend} ${case})
    set_tests_properties(real_${case}_${backend} PROPERTIES
      ENVIRONMENT "${ML_REAL_ENV}"
      LABELS "real;${backend}"
      TIMEOUT 600)
  endforeach()
endforeach()

foreach(doc readme man)
  add_test(NAME real_${doc}_options
           COMMAND bash ${CMAKE_SOURCE_DIR}/scripts/doc-options.sh check ${doc} $<TARGET_FILE:mallard_cli>)
  set_tests_properties(real_${doc}_options PROPERTIES LABELS "real;docs")
endforeach()
