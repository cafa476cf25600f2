# Backend unit tests linked directly against the allocator core (no
# preload): the suite the TSan build runs.
add_executable(unit_backends ${CMAKE_CURRENT_LIST_DIR}/unit_backends.c)
target_compile_options(unit_backends PRIVATE -Wall -Wextra -Werror)
target_link_libraries(unit_backends PRIVATE mallard_core PkgConfig::CHECK Threads::Threads)
add_test(NAME unit_backend_threads COMMAND unit_backends)
set_tests_properties(unit_backend_threads PROPERTIES TIMEOUT 600 LABELS "unit")

# The freelist backend's reuse of large mappings and its purge by decay.
add_executable(unit_freelist ${CMAKE_CURRENT_LIST_DIR}/unit_freelist.c)
target_compile_options(unit_freelist PRIVATE -Wall -Wextra -Werror)
target_link_libraries(unit_freelist PRIVATE mallard_core PkgConfig::CHECK Threads::Threads)
foreach(case large_reuse large_calloc_zero purge_decay realloc_grow realloc_cycle realloc_room consumer_cache
    large_replace nursery_pack nursery_leave)
  add_test(NAME unit_freelist_${case} COMMAND unit_freelist)
  set_tests_properties(unit_freelist_${case} PROPERTIES ENVIRONMENT "CK_RUN_CASE=${case}"
                       TIMEOUT 300 LABELS "unit")
endforeach()

# The freelist size classes against their table, every size (once here
# rather than at each process start).
add_executable(unit_classes ${CMAKE_CURRENT_LIST_DIR}/unit_classes.c)
target_compile_options(unit_classes PRIVATE -Wall -Wextra -Werror)
target_link_libraries(unit_classes PRIVATE mallard_core)
add_test(NAME unit_classes COMMAND unit_classes)
set_tests_properties(unit_classes PROPERTIES PASS_REGULAR_EXPRESSION "size classes ok" TIMEOUT 120 LABELS "unit")

# The path-valued options: parsed in place, kept in a packed pool that is
# not written when none is set (core/options.h).
add_executable(unit_options ${CMAKE_CURRENT_LIST_DIR}/unit_options.c)
target_compile_options(unit_options PRIVATE -Wall -Wextra -Werror)
target_link_libraries(unit_options PRIVATE mallard_core)
add_test(NAME unit_options COMMAND unit_options)
set_tests_properties(unit_options PROPERTIES PASS_REGULAR_EXPRESSION "options ok" FAIL_REGULAR_EXPRESSION "FAIL"
                     TIMEOUT 60 LABELS "unit")

# The owner map while mappings are given back: never no one's while the
# pages are still there, and a clear after the munmap leaves alone what
# another mapping claimed (core/owner.h, ML_OWNER_GONE).
add_executable(unit_owner ${CMAKE_CURRENT_LIST_DIR}/unit_owner.c)
target_compile_options(unit_owner PRIVATE -Wall -Wextra -Werror)
target_link_libraries(unit_owner PRIVATE mallard_core Threads::Threads)
add_test(NAME unit_owner COMMAND unit_owner)
set_tests_properties(unit_owner PROPERTIES PASS_REGULAR_EXPRESSION "owner ok" FAIL_REGULAR_EXPRESSION "FAIL"
                     TIMEOUT 120 LABELS "unit")

# The live-block table, linked directly with its two trace-layer callbacks
# stubbed: shards per page, and threads with forks in between.
add_executable(unit_blocks ${CMAKE_CURRENT_LIST_DIR}/unit_blocks.c)
target_compile_options(unit_blocks PRIVATE -Wall -Wextra -Werror)
target_link_libraries(unit_blocks PRIVATE mallard_report mallard_core Threads::Threads)
add_test(NAME unit_blocks COMMAND unit_blocks)
set_tests_properties(unit_blocks PROPERTIES PASS_REGULAR_EXPRESSION "blocks ok" FAIL_REGULAR_EXPRESSION "FAIL"
                     TIMEOUT 120 LABELS "unit")
