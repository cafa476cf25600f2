# Backend unit tests linked directly against the allocator core (no
# preload): the suite the TSan build runs.
add_executable(unit_backends ${CMAKE_CURRENT_LIST_DIR}/unit_backends.c)
target_compile_options(unit_backends PRIVATE -Wall -Wextra -Werror)
target_link_libraries(unit_backends PRIVATE mallard_core PkgConfig::CHECK Threads::Threads)
add_test(NAME unit_backend_threads COMMAND unit_backends)
set_tests_properties(unit_backend_threads PROPERTIES TIMEOUT 600 LABELS "unit")
