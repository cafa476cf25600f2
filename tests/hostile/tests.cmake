# tests/hostile/tests.cmake: issue 8's hostile programs and environments.
#
# hostile.c is built WITHOUT mallard (and -fno-builtin: the compiler must not
# assume anything about the malloc family's errno) and reaches it only
# through LD_PRELOAD.  run.sh holds the process-level cases (no /proc, fork
# children without /proc or beside a big untouched .bss, no free fd, stderr
# reused, quick_exit, GC-style SIGSEGV, a tiny sigaltstack, posix_memalign
# errno), each under every backend; files.sh the cases about files a user
# names (symlinks, FIFOs, directories, another user's file, setuid under
# /etc/ld.so.preload, suppression patterns, long values).
# Every run has a watchdog: a hang is a failure.
add_executable(hostile ${CMAKE_CURRENT_LIST_DIR}/hostile.c)
target_compile_options(hostile PRIVATE ${ML_WARN} -fno-builtin -O1)
target_link_libraries(hostile PRIVATE Threads::Threads)

foreach(case noproc noprocfork forkbss nofile closefds quick gcsegv altstack memalign pressure)
  foreach(backend ${ML_BACKENDS})
    add_test(NAME hostile_${case}_${backend}
      COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/run.sh ${ML_LIB} $<TARGET_FILE:hostile> ${case})
    set_tests_properties(hostile_${case}_${backend} PROPERTIES
      ENVIRONMENT "MALLARD_BACKEND=${backend}" TIMEOUT 300 SKIP_RETURN_CODE 77 LABELS "hostile")
  endforeach()
endforeach()

foreach(case symlink mode0600 otheruser fiforeport fifosupp dirsupp ttystderr devnull glob dollar bigsupp badlines
        longreport longexpand longvalue setuid)
  add_test(NAME hostile_files_${case}
    COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/files.sh ${ML_LIB} $<TARGET_FILE:hostile> ${case})
  set_tests_properties(hostile_files_${case} PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77 LABELS "hostile")
endforeach()
