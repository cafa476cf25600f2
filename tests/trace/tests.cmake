# Trace layer: fixture programs with exactly known leaks and errors, run
# under the preload; run_case.py asserts the JSON report field by field and
# validates it against docs/report.schema.json.
set(ML_FIXTURE_DIR ${CMAKE_BINARY_DIR}/tests/programs)
set(ML_FIXTURES simple_leak list_leak global_reach tls_reach xor_leak double_free bad_free
    threads_leak fork_leak dl_leak exit_leak big_leak tag_leak)
foreach(f ${ML_FIXTURES})
  add_executable(fx_${f} ${CMAKE_SOURCE_DIR}/tests/programs/${f}.c)
  # the fixtures make their mistakes on purpose
  target_compile_options(fx_${f} PRIVATE -g -O0 -fno-omit-frame-pointer -Wall -Wextra
    -Wno-free-nonheap-object -Wno-use-after-free)
  target_link_libraries(fx_${f} PRIVATE Threads::Threads ${CMAKE_DL_LIBS})
  target_include_directories(fx_${f} PRIVATE ${CMAKE_SOURCE_DIR}/preload)
  set_target_properties(fx_${f} PROPERTIES OUTPUT_NAME ${f} RUNTIME_OUTPUT_DIRECTORY ${ML_FIXTURE_DIR})
endforeach()
add_executable(fx_cxx_new ${CMAKE_SOURCE_DIR}/tests/programs/cxx_new.cpp)
target_compile_options(fx_cxx_new PRIVATE -g -O0 -Wall -Wextra)
set_target_properties(fx_cxx_new PROPERTIES OUTPUT_NAME cxx_new RUNTIME_OUTPUT_DIRECTORY ${ML_FIXTURE_DIR})
# Fixtures built as users build what they debug: -O1 -g (inlining happens).
foreach(src registry.cc cxx_mismatch.cpp interior_free.c inline_leak.c page_fault.c cxx_bad_alloc.cpp
    cxx_owners.cpp)
  get_filename_component(f ${src} NAME_WE)
  add_executable(fx_${f} ${CMAKE_SOURCE_DIR}/tests/programs/${src})
  target_compile_options(fx_${f} PRIVATE -g -O1 -fno-omit-frame-pointer -Wall -Wextra
    -Wno-free-nonheap-object -Wno-use-after-free -Wno-array-bounds $<$<COMPILE_LANGUAGE:CXX>:-Wno-mismatched-new-delete>)
  target_link_libraries(fx_${f} PRIVATE Threads::Threads)
  set_target_properties(fx_${f} PROPERTIES OUTPUT_NAME ${f} RUNTIME_OUTPUT_DIRECTORY ${ML_FIXTURE_DIR})
endforeach()
add_library(fx_dl_leak_lib SHARED ${CMAKE_SOURCE_DIR}/tests/programs/dl_leak_lib.c)
target_compile_options(fx_dl_leak_lib PRIVATE -g -O0 -Wall -Wextra)
set_target_properties(fx_dl_leak_lib PROPERTIES OUTPUT_NAME dl_leak_lib LIBRARY_OUTPUT_DIRECTORY ${ML_FIXTURE_DIR})

# Exactness fixtures (issue 12), built as a user would build them, -O1 -g,
# each run under every backend and checked against valgrind's figures.
set(ML_EXACT_FIXTURES end_pointer reused_blocks stale_blocks malloc_zero dead_frame cycle_owner anon_merge last_block)
foreach(f ${ML_EXACT_FIXTURES})
  add_executable(fx_${f} ${CMAKE_SOURCE_DIR}/tests/programs/${f}.c)
  target_compile_options(fx_${f} PRIVATE -g -O1 -Wall -Wextra)
  set_target_properties(fx_${f} PROPERTIES OUTPUT_NAME ${f} RUNTIME_OUTPUT_DIRECTORY ${ML_FIXTURE_DIR})
endforeach()
# Statistics over threads and a fork from a thread (issue 10's per-thread counts)
add_executable(fx_stats_threads ${CMAKE_SOURCE_DIR}/tests/programs/stats_threads.c)
target_compile_options(fx_stats_threads PRIVATE -g -O1 -Wall -Wextra)
target_link_libraries(fx_stats_threads PRIVATE Threads::Threads)
set_target_properties(fx_stats_threads PROPERTIES OUTPUT_NAME stats_threads RUNTIME_OUTPUT_DIRECTORY ${ML_FIXTURE_DIR})
# What the traced calls leave in the caller-saved registers: no address
# inside the block a call returned or took (a held thread's registers are
# roots of the leak scan)
add_executable(fx_scratch_regs ${CMAKE_SOURCE_DIR}/tests/programs/scratch_regs.c)
target_compile_options(fx_scratch_regs PRIVATE -g -O1 -Wall -Wextra)
set_target_properties(fx_scratch_regs PROPERTIES OUTPUT_NAME scratch_regs RUNTIME_OUTPUT_DIRECTORY ${ML_FIXTURE_DIR})
foreach(b freelist bump arena system page)
  add_test(NAME trace_scratch_regs_${b} COMMAND $<TARGET_FILE:fx_scratch_regs>)
  set_tests_properties(trace_scratch_regs_${b} PROPERTIES
    ENVIRONMENT "LD_PRELOAD=$<TARGET_FILE:mallard>;MALLARD_BACKEND=${b};MALLARD_TRACE=1;MALLARD_REPORT=/dev/null"
    PASS_REGULAR_EXPRESSION "scratch ok" TIMEOUT 60)
endforeach()
add_executable(fx_cxx_registry ${CMAKE_SOURCE_DIR}/tests/programs/cxx_registry.cpp)
target_compile_options(fx_cxx_registry PRIVATE -g -O1 -Wall -Wextra)
set_target_properties(fx_cxx_registry PROPERTIES OUTPUT_NAME cxx_registry RUNTIME_OUTPUT_DIRECTORY ${ML_FIXTURE_DIR})
# A worker thread's dead frames and registers while it waits, runs, or is
# asked for a live report (report/freeze.c holds it still for the scan)
add_executable(fx_thread_deadstack ${CMAKE_SOURCE_DIR}/tests/programs/thread_deadstack.c)
target_compile_options(fx_thread_deadstack PRIVATE -g -O1 -Wall -Wextra)
target_link_libraries(fx_thread_deadstack PRIVATE Threads::Threads ${CMAKE_DL_LIBS})
set_target_properties(fx_thread_deadstack PROPERTIES OUTPUT_NAME thread_deadstack
                      RUNTIME_OUTPUT_DIRECTORY ${ML_FIXTURE_DIR})
# Threads that leak and exit one after another, reusing one cached stack
add_executable(fx_thread_exit_leak ${CMAKE_SOURCE_DIR}/tests/programs/thread_exit_leak.c)
target_compile_options(fx_thread_exit_leak PRIVATE -g -O1 -Wall -Wextra)
target_link_libraries(fx_thread_exit_leak PRIVATE Threads::Threads)
set_target_properties(fx_thread_exit_leak PROPERTIES OUTPUT_NAME thread_exit_leak
                      RUNTIME_OUTPUT_DIRECTORY ${ML_FIXTURE_DIR})
add_executable(fx_heap_stack ${CMAKE_SOURCE_DIR}/tests/programs/heap_stack.c)
target_compile_options(fx_heap_stack PRIVATE -g -O1 -Wall -Wextra)
target_link_libraries(fx_heap_stack PRIVATE Threads::Threads)
set_target_properties(fx_heap_stack PROPERTIES OUTPUT_NAME heap_stack RUNTIME_OUTPUT_DIRECTORY ${ML_FIXTURE_DIR})
add_executable(fx_altstack_leak ${CMAKE_SOURCE_DIR}/tests/programs/altstack_leak.c)
target_link_libraries(fx_altstack_leak PRIVATE Threads::Threads)
target_compile_options(fx_altstack_leak PRIVATE -g -O1 -Wall -Wextra)
set_target_properties(fx_altstack_leak PROPERTIES OUTPUT_NAME altstack_leak RUNTIME_OUTPUT_DIRECTORY ${ML_FIXTURE_DIR})
foreach(c altstack_leak heap_stack thread_exit_leak end_pointer reused_blocks stale_blocks malloc_zero dead_frame dead_frame_exit cycle_owner anon_merge cxx_registry last_block
    thread_deadstack_futex thread_deadstack_read thread_deadstack_sleep thread_deadstack_spin thread_deadstack_reg
    thread_deadstack_live thread_deadstack_write thread_deadstack_churn stats_threads)
  foreach(b freelist bump arena system page)
    add_test(NAME trace_${c}_${b}
      COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/run_case.py ${c} --backend ${b}
        --lib $<TARGET_FILE:mallard> --bin ${ML_FIXTURE_DIR} --src ${CMAKE_SOURCE_DIR})
    set_tests_properties(trace_${c}_${b} PROPERTIES TIMEOUT 120)
  endforeach()
endforeach()

set(ML_TRACE_CASES simple_leak list_leak global_reach tls_reach xor_leak double_free bad_free
    threads_leak fork_leak dl_leak cxx_new exit_leak big_leak clean_git clean_bash
    tag_leak exitcode suppressions abort_on_error fatal_signal show_all
    registry registry_supp_name registry_supp_file registry_supp_mangled cxx_mismatch inline_leak
    interior_free interior_free@bump interior_free@arena interior_free@page interior_free@system
    cxx_mismatch@page cxx_mismatch@system double_free@page double_free@arena double_free@system
    page_fault_overflow page_fault_underflow page_fault_after_free page_fault_slack
    cxx_bad_alloc cxx_bad_alloc@bump cxx_bad_alloc@arena cxx_bad_alloc@page cxx_bad_alloc@system)
foreach(c ${ML_TRACE_CASES})
  add_test(NAME trace_${c}
    COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/run_case.py ${c}
      --lib $<TARGET_FILE:mallard> --bin ${ML_FIXTURE_DIR} --src ${CMAKE_SOURCE_DIR})
  set_tests_properties(trace_${c} PROPERTIES TIMEOUT 120)
endforeach()

# Real programs that leak, against valgrind memcheck on the same command.
foreach(c perl_e1 perl_dumper sort_passwd bash_c python3_c python3_import python3_numpy git_version tar_hostname
    gcc_version cxx_registry thread_deadstack_futex thread_deadstack_read thread_deadstack_sleep thread_deadstack_spin
    thread_deadstack_reg)
  add_test(NAME trace_valgrind_${c}
    COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/vs_valgrind.py ${c} --lib $<TARGET_FILE:mallard>
      --src ${CMAKE_SOURCE_DIR} --bin ${ML_FIXTURE_DIR})
  set_tests_properties(trace_valgrind_${c} PROPERTIES TIMEOUT 300)
endforeach()
# numpy's memory, mapped next to the allocator's, under the other backends
# too (issue 12: false definite leaks under freelist, bump, arena, system)
foreach(b bump arena system page)
  add_test(NAME trace_valgrind_python3_numpy_${b}
    COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/vs_valgrind.py python3_numpy --backend ${b}
      --lib $<TARGET_FILE:mallard> --src ${CMAKE_SOURCE_DIR} --bin ${ML_FIXTURE_DIR})
  set_tests_properties(trace_valgrind_python3_numpy_${b} PROPERTIES TIMEOUT 600)
endforeach()

# What a user reads, against valgrind memcheck on the -O1 fixtures: every
# definite record and bad free with the same demangled frame 0 and line
# (and the same allocation frame 0 for errors).
foreach(c registry cxx_mismatch interior_free inline_leak cxx_owners)
  add_test(NAME trace_valgrind_frames_${c}
    COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/vs_valgrind_frames.py ${c} --lib $<TARGET_FILE:mallard>
      --bin ${ML_FIXTURE_DIR})
  set_tests_properties(trace_valgrind_frames_${c} PROPERTIES TIMEOUT 300)
endforeach()

# The report opens an object's DWARF only for frames it prints (or for a
# suppression file's patterns): a library with compressed DWARF, and
# libelf's elf_compress counted by a preloaded interposer.
add_library(fx_lazy_dwarf_lib SHARED ${CMAKE_SOURCE_DIR}/tests/programs/lazy_dwarf_lib.c)
target_compile_options(fx_lazy_dwarf_lib PRIVATE -g -gz=zlib -O1 -Wall -Wextra)
target_link_options(fx_lazy_dwarf_lib PRIVATE -gz=zlib)
set_target_properties(fx_lazy_dwarf_lib PROPERTIES OUTPUT_NAME lazy_dwarf_lib LIBRARY_OUTPUT_DIRECTORY ${ML_FIXTURE_DIR})
add_executable(fx_lazy_dwarf ${CMAKE_SOURCE_DIR}/tests/programs/lazy_dwarf.c)
target_compile_options(fx_lazy_dwarf PRIVATE -g -O1 -Wall -Wextra)
target_link_libraries(fx_lazy_dwarf PRIVATE fx_lazy_dwarf_lib)
set_target_properties(fx_lazy_dwarf PROPERTIES OUTPUT_NAME lazy_dwarf RUNTIME_OUTPUT_DIRECTORY ${ML_FIXTURE_DIR})
add_library(fx_elf_compress_count MODULE ${CMAKE_CURRENT_LIST_DIR}/elf_compress_count.c)
target_compile_options(fx_elf_compress_count PRIVATE -O1 -Wall -Wextra)
target_link_libraries(fx_elf_compress_count PRIVATE ${CMAKE_DL_LIBS})
set_target_properties(fx_elf_compress_count PROPERTIES OUTPUT_NAME elf_compress_count LIBRARY_OUTPUT_DIRECTORY ${ML_FIXTURE_DIR})
add_test(NAME trace_lazy_dwarf
  COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/lazy_dwarf.sh $<TARGET_FILE:mallard> $<TARGET_FILE:fx_elf_compress_count>
    $<TARGET_FILE:fx_lazy_dwarf>)
set_tests_properties(trace_lazy_dwarf PROPERTIES PASS_REGULAR_EXPRESSION "lazy dwarf ok" TIMEOUT 120)

# The built-in pattern "__gnu_cxx::__freeres" matches a C++ function by its
# demangled symbol-table name: a block lost inside a function of that name
# is suppressed, one lost in main is not.
add_executable(fx_builtin_supp ${CMAKE_SOURCE_DIR}/tests/programs/builtin_supp.cpp)
target_compile_options(fx_builtin_supp PRIVATE -g -O1 -Wall -Wextra)
set_target_properties(fx_builtin_supp PROPERTIES OUTPUT_NAME builtin_supp RUNTIME_OUTPUT_DIRECTORY ${ML_FIXTURE_DIR})
add_test(NAME trace_builtin_supp_cxx
  COMMAND sh -c "env LD_PRELOAD=$1 MALLARD_TRACE=1 $2 2>&1 >/dev/null | grep -q 'definitely lost: 40 bytes in 1 block' && env LD_PRELOAD=$1 MALLARD_TRACE=1 $2 2>&1 >/dev/null | grep -q 'suppressed: 24 bytes in 1 block' && echo 'builtin supp ok'"
    sh $<TARGET_FILE:mallard> $<TARGET_FILE:fx_builtin_supp>)
set_tests_properties(trace_builtin_supp_cxx PROPERTIES PASS_REGULAR_EXPRESSION "builtin supp ok" TIMEOUT 60)

# A fork child reports only the blocks it allocated itself (the fork
# boundary is a sequence number, not a mark on every record): parent,
# child and grandchild each find only their own leak, on every backend.
add_executable(fx_fork_inherit ${CMAKE_CURRENT_LIST_DIR}/fork_inherit.c)
target_compile_options(fx_fork_inherit PRIVATE -g -O1 -Wall -Wextra -fno-builtin-malloc -fno-builtin-free)
set_target_properties(fx_fork_inherit PROPERTIES OUTPUT_NAME fork_inherit RUNTIME_OUTPUT_DIRECTORY ${ML_FIXTURE_DIR})
foreach(b freelist bump arena system page)
  add_test(NAME trace_fork_inherit_${b}
    COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/fork_inherit.sh $<TARGET_FILE:mallard> $<TARGET_FILE:fx_fork_inherit> ${b})
  set_tests_properties(trace_fork_inherit_${b} PROPERTIES PASS_REGULAR_EXPRESSION "fork_inherit ok" TIMEOUT 120)
endforeach()

# Freed records stay in the block table while their blocks wait in the
# quarantine, and read as no record once it lets them go (report/blocks.c):
# double, invalid and realloc frees are reported as before, every backend.
add_executable(fx_stale_free ${CMAKE_CURRENT_LIST_DIR}/stale_free.c)
target_compile_options(fx_stale_free PRIVATE -g -O1 -Wall -Wextra -Wno-use-after-free -Wno-free-nonheap-object)
target_link_libraries(fx_stale_free PRIVATE Threads::Threads)
set_target_properties(fx_stale_free PROPERTIES OUTPUT_NAME stale_free RUNTIME_OUTPUT_DIRECTORY ${ML_FIXTURE_DIR})
foreach(b freelist bump arena system page)
  add_test(NAME trace_blocks_stale_free_${b}
    COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/stale_free.sh $<TARGET_FILE:mallard> $<TARGET_FILE:fx_stale_free> ${b})
  set_tests_properties(trace_blocks_stale_free_${b} PROPERTIES PASS_REGULAR_EXPRESSION "stale_free ok" TIMEOUT 120)
endforeach()

# The tracer's memory per live block beside the stack depot (issue 10: at
# most 48 bytes): VmRSS with the tracer on minus off, over N live blocks.
add_test(NAME trace_blocks_livemem
  COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/livemem.py --lib $<TARGET_FILE:mallard> --bin $<TARGET_FILE:bench_livemem>
    --max 48 200000 1000000)
set_tests_properties(trace_blocks_livemem PROPERTIES TIMEOUT 300)

# A traced program that frees most of its blocks in waves and allocates
# again: shards fill with stale records and sweep them; every free stays
# valid (a sweep that lost a record would report invalid frees).
add_test(NAME trace_blocks_sweep_waves
  COMMAND sh -c "out=$(MALLARD_TRACE=1 LD_PRELOAD=$1 timeout 120 $2 300000 2>&1 >/dev/null); st=$?; printf '%s\\n' \"$out\" | grep -E 'mallard:|errors:' | head -5; [ $st = 0 ] && ! printf '%s\\n' \"$out\" | grep -q 'mallard:' && echo 'sweep waves ok'"
    sh $<TARGET_FILE:mallard> $<TARGET_FILE:bench_waves>)
set_tests_properties(trace_blocks_sweep_waves PROPERTIES PASS_REGULAR_EXPRESSION "sweep waves ok" FAIL_REGULAR_EXPRESSION "invalid|double" TIMEOUT 180)

# The page faults a traced program pays while it runs (report/unwind.c's
# recipe table, blocks.c's first tables, the depot): 256 blocks from 64
# sites on 64 pages of code add about 190 faults with a 1 MiB recipe table
# and first tables of 16 records, about 20 with a table that starts at a
# page and grows, and first tables of 6.
add_executable(fx_run_faults ${CMAKE_CURRENT_LIST_DIR}/run_faults.c)
target_compile_options(fx_run_faults PRIVATE -g -O1 -Wall -Wextra)
set_target_properties(fx_run_faults PROPERTIES OUTPUT_NAME run_faults RUNTIME_OUTPUT_DIRECTORY ${ML_FIXTURE_DIR})
add_test(NAME trace_run_faults
  COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/run_faults.sh $<TARGET_FILE:mallard> $<TARGET_FILE:fx_run_faults> 60)
set_tests_properties(trace_run_faults PROPERTIES PASS_REGULAR_EXPRESSION "run faults ok" TIMEOUT 120)
