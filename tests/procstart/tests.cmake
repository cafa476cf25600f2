# tests/procstart: the tracer's per-process start-up and exit work (issue 10).
set(ML_PROCSTART_DIR ${CMAKE_CURRENT_LIST_DIR})
add_executable(procstart_exit_regs ${ML_PROCSTART_DIR}/exit_regs.c)
target_compile_options(procstart_exit_regs PRIVATE ${ML_WARN} -O1 -g)
add_executable(procstart_nofde ${ML_PROCSTART_DIR}/nofde.c)
target_compile_options(procstart_nofde PRIVATE ${ML_WARN} -O0 -g -fno-omit-frame-pointer
  -fno-asynchronous-unwind-tables -fno-unwind-tables)
foreach(mode exit return _exit)
  add_test(NAME procstart_exit_regs_${mode}
    COMMAND python3 ${ML_PROCSTART_DIR}/check.py ${mode} ${ML_LIB} $<TARGET_FILE:procstart_exit_regs>)
  set_tests_properties(procstart_exit_regs_${mode} PROPERTIES TIMEOUT 300 PASS_REGULAR_EXPRESSION "${mode} ok:")
endforeach()
add_test(NAME procstart_nofde COMMAND python3 ${ML_PROCSTART_DIR}/check.py nofde ${ML_LIB} $<TARGET_FILE:procstart_nofde>)
set_tests_properties(procstart_nofde PROPERTIES TIMEOUT 120 PASS_REGULAR_EXPRESSION "nofde ok:")
# bss_pages: an untraced short program touches at most 9 zero-fill pages of
# libmallard's writable segment (.bss and .lbss: 16 before the start-up state
# was packed; small .bss, and one page per table that start-up indexes),
# with the path-valued options unset and set.
add_executable(procstart_bss_pages ${ML_PROCSTART_DIR}/bss_pages.c)
target_compile_options(procstart_bss_pages PRIVATE ${ML_WARN} -O1 -g)
add_test(NAME procstart_bss_pages
  COMMAND ${CMAKE_COMMAND} -E env LD_PRELOAD=${ML_LIB} MALLARD_TRACE=0 $<TARGET_FILE:procstart_bss_pages> 9)
add_test(NAME procstart_bss_pages_paths
  COMMAND ${CMAKE_COMMAND} -E env LD_PRELOAD=${ML_LIB} MALLARD_TRACE=0 MALLARD_REPORT=/nonexistent/r.%p
          MALLARD_SUPPRESSIONS=/nonexistent/s MALLARD_TAGS=x=y MALLARD_CHILDREN=yes
          $<TARGET_FILE:procstart_bss_pages> 9)
set_tests_properties(procstart_bss_pages procstart_bss_pages_paths PROPERTIES TIMEOUT 60
  PASS_REGULAR_EXPRESSION "bss_pages ok:" FAIL_REGULAR_EXPRESSION "FAIL")
