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

ml_conf_program(conf_suite_term_altstack ${ML_CONF_DIR}/suite_term_altstack.c)
foreach(b ${ML_BACKENDS})
  # dies of SIGTERM (128 + 15), after a report naming the one leak
  add_test(NAME suite_term_altstack_${b}
    COMMAND sh -c "$0; echo \"exit status $?\"" $<TARGET_FILE:conf_suite_term_altstack>)
  set_tests_properties(suite_term_altstack_${b} PROPERTIES
    ENVIRONMENT "LD_PRELOAD=${ML_LIB};MALLARD_BACKEND=${b};MALLARD_TRACE=1"
    PASS_REGULAR_EXPRESSION "definitely lost: 100 bytes in 1 block\n(.|\n)*exit status 143"
    FAIL_REGULAR_EXPRESSION "mallard:;cannot be preloaded"
    TIMEOUT 60 LABELS "conformance")
endforeach()

ml_conf_program(conf_suite_term_deadstack ${ML_CONF_DIR}/suite_term_deadstack.c)
foreach(b ${ML_BACKENDS})
  # the one pointer left in a returned frame keeps nothing alive, whether
  # SIGTERM (128 + 15) or exit writes the report
  add_test(NAME suite_term_deadstack_${b}
    COMMAND sh -c "$0; echo \"exit status $?\"" $<TARGET_FILE:conf_suite_term_deadstack>)
  add_test(NAME suite_exit_deadstack_${b} COMMAND $<TARGET_FILE:conf_suite_term_deadstack> exit)
  set_tests_properties(suite_term_deadstack_${b} PROPERTIES
    ENVIRONMENT "LD_PRELOAD=${ML_LIB};MALLARD_BACKEND=${b};MALLARD_TRACE=1"
    PASS_REGULAR_EXPRESSION "definitely lost: 100 bytes in 1 block\n(.|\n)*exit status 143"
    FAIL_REGULAR_EXPRESSION "mallard:;cannot be preloaded"
    TIMEOUT 60 LABELS "conformance")
  set_tests_properties(suite_exit_deadstack_${b} PROPERTIES
    ENVIRONMENT "LD_PRELOAD=${ML_LIB};MALLARD_BACKEND=${b};MALLARD_TRACE=1"
    PASS_REGULAR_EXPRESSION "definitely lost: 100 bytes in 1 block\n"
    FAIL_REGULAR_EXPRESSION "mallard:;cannot be preloaded"
    TIMEOUT 60 LABELS "conformance")
endforeach()

# control characters in a bad option value are not echoed raw (any backend)
add_test(NAME suite_option_echo COMMAND sh ${ML_CONF_DIR}/suite_option_echo.sh ${ML_LIB} /bin/true)
set_tests_properties(suite_option_echo PROPERTIES
  PASS_REGULAR_EXPRESSION "option echo ok" TIMEOUT 60 LABELS "conformance")

ml_conf_program(conf_mallinfo_counts ${ML_CONF_DIR}/mallinfo_counts.c)
foreach(b ${ML_BACKENDS})
  foreach(trace 1 0)
    # glibc's tst-mallinfo2 and tst-malloc-tcache-leak rules for mallinfo2
    add_test(NAME suite_mallinfo_${b}_${trace} COMMAND $<TARGET_FILE:conf_mallinfo_counts>)
    set_tests_properties(suite_mallinfo_${b}_${trace} PROPERTIES
      ENVIRONMENT "LD_PRELOAD=${ML_LIB};MALLARD_BACKEND=${b};MALLARD_TRACE=${trace}"
      PASS_REGULAR_EXPRESSION "mallinfo ok" FAIL_REGULAR_EXPRESSION "mallard:;cannot be preloaded"
      TIMEOUT 120 LABELS "conformance")
  endforeach()
endforeach()
