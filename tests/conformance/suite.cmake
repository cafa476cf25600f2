# tests/conformance/suite.cmake: cases found running glibc's malloc tests
# under every backend (helper "suite", issue 8).
ml_conf_program(conf_suite_glibc_top ${ML_CONF_DIR}/suite_glibc_top.c)
ml_conf_program(conf_suite_stats_cancel ${ML_CONF_DIR}/suite_stats_cancel.c)
foreach(b ${ML_BACKENDS})
  # exactly one definite leak of 100 bytes, and the program's output
  add_test(NAME suite_glibc_top_${b} COMMAND $<TARGET_FILE:conf_suite_glibc_top>)
  set_tests_properties(suite_glibc_top_${b} PROPERTIES
    ENVIRONMENT "LD_PRELOAD=${ML_LIB};MALLARD_BACKEND=${b};MALLARD_TRACE=1"
    PASS_REGULAR_EXPRESSION "definitely lost: 100 bytes in 1 block(.|\n)*glibc top ok|glibc top ok(.|\n)*definitely lost: 100 bytes in 1 block"
    TIMEOUT 60 LABELS "conformance")
  foreach(trace 1 0)
    add_test(NAME suite_stats_cancel_${b}_${trace} COMMAND $<TARGET_FILE:conf_suite_stats_cancel>)
    set_tests_properties(suite_stats_cancel_${b}_${trace} PROPERTIES
      ENVIRONMENT "LD_PRELOAD=${ML_LIB};MALLARD_BACKEND=${b};MALLARD_TRACE=${trace}"
      PASS_REGULAR_EXPRESSION "stats cancel ok" FAIL_REGULAR_EXPRESSION "mallard:;cannot be preloaded"
      TIMEOUT 60 LABELS "conformance")
  endforeach()
endforeach()

ml_conf_program(conf_suite_main_exit ${ML_CONF_DIR}/suite_main_exit.c)
foreach(b ${ML_BACKENDS})
  # the summary line: 100 bytes in 1 block, nothing more
  add_test(NAME suite_main_exit_${b} COMMAND $<TARGET_FILE:conf_suite_main_exit>)
  set_tests_properties(suite_main_exit_${b} PROPERTIES
    ENVIRONMENT "LD_PRELOAD=${ML_LIB};MALLARD_BACKEND=${b};MALLARD_TRACE=1"
    PASS_REGULAR_EXPRESSION "definitely lost: 100 bytes in 1 block\n"
    FAIL_REGULAR_EXPRESSION "mallard:;cannot be preloaded"
    TIMEOUT 60 LABELS "conformance")
endforeach()
