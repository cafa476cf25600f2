# tests/cli: the mallard command as a user meets it (tests/cli/test_cli.py):
# options and exit statuses, the library check, untraceable programs,
# process trees (--children, -q, -v) and report paths.
set(ML_CLI_CASES version help list_backends usage_errors value_forms library_missing not_found
    untraceable children_no children_patterns quiet_verbose report_path report_fixed_path
    report_render report_diff report_gen_suppressions json_show json_scales
    term_signals report_signal lsan_interface suppression_counts tags_nested strerror_text
    stats_tracer_off stats_tracer_on tags_patterns)
foreach(c ${ML_CLI_CASES})
  add_test(NAME cli_${c}
    COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/test_cli.py ${c} --cli $<TARGET_FILE:mallard_cli>
      --bin ${CMAKE_BINARY_DIR}/tests/programs --src ${CMAKE_SOURCE_DIR})
  set_tests_properties(cli_${c} PROPERTIES TIMEOUT 180 LABELS cli)
endforeach()

# Install, pkg-config, find_package(mallard), the .deb in a scratch root,
# and a build without Check (tests/cli/install.sh).
add_test(NAME cli_install
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/install.sh ${CMAKE_BINARY_DIR} ${CMAKE_SOURCE_DIR}
    ${CMAKE_BINARY_DIR}/tests/programs)
set_tests_properties(cli_install PROPERTIES TIMEOUT 900 LABELS cli)
