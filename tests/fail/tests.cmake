# tests/fail/tests.cmake: fault injection (issue 8, deliver 1).
#
# fail.c and failxx.cc are built WITHOUT mallard (-fno-builtin: the compiler
# must not assume anything about the malloc family) and reach it only
# through LD_PRELOAD.  Every case runs under every backend, tracer on and
# off; the report case needs the tracer.
add_executable(fail_prog ${CMAKE_CURRENT_LIST_DIR}/fail.c)
target_compile_options(fail_prog PRIVATE ${ML_WARN} -fno-builtin -O1)
target_link_libraries(fail_prog PRIVATE Threads::Threads)
add_executable(fail_progxx ${CMAKE_CURRENT_LIST_DIR}/failxx.cc)
target_compile_options(fail_progxx PRIVATE -O1)

foreach(backend ${ML_BACKENDS})
  foreach(trace 0 1)
    foreach(case nth rate limit cxx report)
      if(case STREQUAL "report" AND trace STREQUAL "0")
        continue()
      endif()
      add_test(NAME fail_${case}_${backend}_t${trace}
        COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/run.sh ${ML_LIB} $<TARGET_FILE:fail_prog> $<TARGET_FILE:fail_progxx>
                ${case})
      set_tests_properties(fail_${case}_${backend}_t${trace} PROPERTIES
        ENVIRONMENT "MALLARD_BACKEND=${backend};MALLARD_TRACE=${trace}" TIMEOUT 120 LABELS "fail")
    endforeach()
  endforeach()
endforeach()
