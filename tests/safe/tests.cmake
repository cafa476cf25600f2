# tests/safe: the default must never break a program (issue 7).
#
# Each program is built without mallard and reaches it through LD_PRELOAD
# only; run_safe.sh runs it under a backend with the trace layer on ("1")
# or off ("0"), under a watchdog timeout, and checks what the case needs
# (see the script).  Loops for races are bounded to a few seconds.
set(ML_SAFE_DIR ${CMAKE_CURRENT_LIST_DIR})
foreach(p getattr_thread fork_deadlock sig_malloc exit_race exit_order clean)
  add_executable(safe_${p} ${ML_SAFE_DIR}/${p}.c)
  target_compile_options(safe_${p} PRIVATE ${ML_WARN} -O1 -g -fno-omit-frame-pointer
    -fno-builtin-malloc -fno-builtin-free -fno-builtin-realloc)
  target_link_libraries(safe_${p} PRIVATE Threads::Threads)
  set_target_properties(safe_${p} PROPERTIES OUTPUT_NAME ${p} RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/safe)
endforeach()
# a cancel pending while the tracer captures a stack through libunwind
add_executable(safe_cancel_pending ${ML_SAFE_DIR}/cancel_pending.c)
target_compile_options(safe_cancel_pending PRIVATE ${ML_WARN} -O1 -g -fno-asynchronous-unwind-tables
  -fno-unwind-tables -fno-builtin-malloc -fno-builtin-free -fno-builtin-realloc)
target_link_libraries(safe_cancel_pending PRIVATE Threads::Threads)
set_target_properties(safe_cancel_pending PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/safe)
foreach(backend ${ML_BACKENDS})
  add_test(NAME safe_cancel_pending_${backend}_1
           COMMAND env LD_PRELOAD=${ML_LIB} MALLARD_BACKEND=${backend} MALLARD_TRACE=1
                   timeout 120 ${CMAKE_BINARY_DIR}/tests/safe/safe_cancel_pending)
  set_tests_properties(safe_cancel_pending_${backend}_1 PROPERTIES
    LABELS "safe;${backend}" TIMEOUT 180 PASS_REGULAR_EXPRESSION "^cancel pending ok\n")
endforeach()

# preloaded before mallard by exit_race's second half: on_exit handlers start late
add_library(safe_slow_on_exit SHARED ${ML_SAFE_DIR}/slow_on_exit.c)
target_compile_options(safe_slow_on_exit PRIVATE ${ML_WARN} -O1 -g)
target_link_libraries(safe_slow_on_exit PRIVATE ${CMAKE_DL_LIBS})
set_target_properties(safe_slow_on_exit PROPERTIES OUTPUT_NAME slow_on_exit PREFIX "" LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/safe)

# preloaded before mallard by exit_dlclose: says when anything dlcloses after exit() began
add_library(safe_dlclose_spy SHARED ${ML_SAFE_DIR}/dlclose_spy.c)
target_compile_options(safe_dlclose_spy PRIVATE ${ML_WARN} -O1 -g)
target_link_libraries(safe_dlclose_spy PRIVATE ${CMAKE_DL_LIBS})
set_target_properties(safe_dlclose_spy PROPERTIES OUTPUT_NAME dlclose_spy PREFIX "" LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests/safe)

function(ml_safe_test case backend trace)
  add_test(NAME safe_${case}_${backend}_${trace}
           COMMAND bash ${ML_SAFE_DIR}/run_safe.sh ${case} ${backend} ${trace})
  set_tests_properties(safe_${case}_${backend}_${trace} PROPERTIES
    ENVIRONMENT "ML_LIB=${ML_LIB};ML_CLI=$<TARGET_FILE:mallard_cli>;ML_SAFE_BIN=${CMAKE_BINARY_DIR}/tests/safe"
    LABELS "safe;${backend}"
    TIMEOUT 240)
endfunction()

foreach(backend ${ML_BACKENDS})
  foreach(trace 1 0)
    ml_safe_test(getattr ${backend} ${trace})
    ml_safe_test(fork_deadlock ${backend} ${trace})
  endforeach()
  # the trace layer's locks against a signal handler (the backends alone
  # are not async-signal-safe, and neither is glibc's malloc)
  ml_safe_test(sig_malloc ${backend} 1)
  ml_safe_test(exit_race ${backend} 1)
  ml_safe_test(exit_dlclose ${backend} 1)
  ml_safe_test(exit_order ${backend} 1)
  ml_safe_test(quiet ${backend} 1)
endforeach()
