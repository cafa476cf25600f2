# reach: the reachability scan (report/reach.c) and the thread registry
# (report/threads.c), linked directly into a Check suite, not preloaded.
add_executable(test_reach ${CMAKE_CURRENT_LIST_DIR}/test_reach.c
  ${CMAKE_SOURCE_DIR}/report/reach.c ${CMAKE_SOURCE_DIR}/report/threads.c ${CMAKE_SOURCE_DIR}/report/pressure.c
  ${CMAKE_SOURCE_DIR}/report/freeze.c
  ${ML_CORE_OS_SOURCES} ${CMAKE_SOURCE_DIR}/core/fmt.c)
target_compile_options(test_reach PRIVATE ${ML_WARN} -fno-omit-frame-pointer)
target_link_libraries(test_reach PRIVATE PkgConfig::CHECK Threads::Threads ${CMAKE_DL_LIBS})
# Eager binding: a lazy PLT resolution spills every register onto the stack.
target_link_options(test_reach PRIVATE -Wl,-z,now)

add_test(NAME reach_classify COMMAND test_reach classify)
add_test(NAME reach_scale COMMAND test_reach scale)
set_tests_properties(reach_classify PROPERTIES TIMEOUT 120)
set_tests_properties(reach_scale PROPERTIES TIMEOUT 300)

# The exit report's sort of the live blocks (report/livesort.c).
add_executable(test_livesort ${CMAKE_CURRENT_LIST_DIR}/test_livesort.c ${CMAKE_SOURCE_DIR}/report/livesort.c
  ${ML_CORE_OS_SOURCES} ${CMAKE_SOURCE_DIR}/core/fmt.c)
target_compile_options(test_livesort PRIVATE ${ML_WARN})
target_link_libraries(test_livesort PRIVATE PkgConfig::CHECK Threads::Threads ${CMAKE_DL_LIBS})
add_test(NAME reach_livesort COMMAND test_livesort)
set_tests_properties(reach_livesort PROPERTIES TIMEOUT 120)
