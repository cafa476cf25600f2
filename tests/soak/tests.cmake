# tests/soak/tests.cmake: the soak (threads, fork with and without exec,
# signals whose handlers allocate, dlopen/dlclose, short threads) under
# every backend with the tracer on, 15 s each by default; SOAK_SECONDS in
# the environment makes it longer (SOAK_SECONDS=600 ctest -L soak).  A
# watchdog in soak.sh turns a hang into a failure with every thread's
# backtrace.
add_executable(soak ${CMAKE_CURRENT_LIST_DIR}/soak.c)
target_compile_options(soak PRIVATE ${ML_WARN} -fno-builtin)
target_link_libraries(soak PRIVATE Threads::Threads ${CMAKE_DL_LIBS})
add_library(soak_lib MODULE ${CMAKE_CURRENT_LIST_DIR}/soak_lib.c)
target_compile_options(soak_lib PRIVATE ${ML_WARN})
foreach(backend ${ML_BACKENDS})
  add_test(NAME soak_${backend}
    COMMAND sh -c "exec sh ${CMAKE_CURRENT_LIST_DIR}/soak.sh ${ML_LIB} $<TARGET_FILE:soak> $<TARGET_FILE:soak_lib> \${SOAK_SECONDS:-15}")
  set_tests_properties(soak_${backend} PROPERTIES
    ENVIRONMENT "MALLARD_BACKEND=${backend}" TIMEOUT 1000 LABELS "soak"
    FAIL_REGULAR_EXPRESSION "mallard:;FAILED;HUNG")
endforeach()
