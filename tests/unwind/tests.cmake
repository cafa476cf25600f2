# tests/unwind: report/unwind.c's stacks against libunwind's on fixtures.
set(ML_UNWIND_DIR ${CMAKE_CURRENT_LIST_DIR})
get_filename_component(ML_UNWIND_ROOT ${CMAKE_CURRENT_LIST_DIR}/../.. ABSOLUTE)

add_library(unwind_lib MODULE ${ML_UNWIND_DIR}/unwind_lib.c)
target_compile_options(unwind_lib PRIVATE ${ML_WARN} -O2 -fomit-frame-pointer)

# the "own" library of the ml_unwind_skip cases: built as libmallard.so is,
# and loaded before start-up as it is (a DT_NEEDED of unwind_match)
add_library(unwind_own SHARED ${ML_UNWIND_DIR}/unwind_own.c)
target_compile_options(unwind_own PRIVATE ${ML_WARN} -O2 -fno-omit-frame-pointer)

add_library(unwind_many OBJECT ${ML_UNWIND_DIR}/unwind_many.c)
target_compile_options(unwind_many PRIVATE ${ML_WARN} -O2)

add_library(unwind_fix_o0 OBJECT ${ML_UNWIND_DIR}/unwind_fix.c)
target_compile_options(unwind_fix_o0 PRIVATE ${ML_WARN} -O0 -g)
target_compile_definitions(unwind_fix_o0 PRIVATE FIX_O0)
add_library(unwind_fix_o2 OBJECT ${ML_UNWIND_DIR}/unwind_fix.c)
target_compile_options(unwind_fix_o2 PRIVATE ${ML_WARN} -O2 -fomit-frame-pointer)

add_executable(unwind_match ${ML_UNWIND_DIR}/test_unwind.c ${ML_UNWIND_DIR}/unwind_cxx.cpp
  ${ML_UNWIND_ROOT}/report/unwind.c ${ML_CORE_OS_SOURCES} $<TARGET_OBJECTS:unwind_fix_o0> $<TARGET_OBJECTS:unwind_fix_o2>
  $<TARGET_OBJECTS:unwind_many>)
target_compile_options(unwind_match PRIVATE $<$<COMPILE_LANGUAGE:C>:${ML_WARN}> $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Werror> -O2)
target_compile_definitions(unwind_match PRIVATE UNWIND_LIB_PATH="$<TARGET_FILE:unwind_lib>")
target_include_directories(unwind_match PRIVATE ${LIBUNWIND_INCLUDE_DIRS})
target_link_libraries(unwind_match PRIVATE unwind_own unwind ${CMAKE_DL_LIBS} Threads::Threads)
add_dependencies(unwind_match unwind_lib)
add_test(NAME trace_unwind_match COMMAND unwind_match)
set_tests_properties(trace_unwind_match PROPERTIES TIMEOUT 60)

# a PTHREAD_STACK_MIN thread starts, and allocates, under the preload, traced or not (static TLS)
add_executable(unwind_minstack ${ML_UNWIND_DIR}/minstack.c)
target_compile_options(unwind_minstack PRIVATE ${ML_WARN} -O1)
target_link_libraries(unwind_minstack PRIVATE Threads::Threads)
foreach(trace 0 1)
  add_test(NAME trace_minstack_${trace}
    COMMAND timeout -k 5 60 env LD_PRELOAD=${ML_LIB} MALLARD_TRACE=${trace} $<TARGET_FILE:unwind_minstack>)
  set_tests_properties(trace_minstack_${trace} PROPERTIES TIMEOUT 90 PASS_REGULAR_EXPRESSION "minstack ok")
  add_test(NAME trace_minstack_alloc_${trace}
    COMMAND timeout -k 5 60 env LD_PRELOAD=${ML_LIB} MALLARD_TRACE=${trace} $<TARGET_FILE:unwind_minstack> alloc)
  set_tests_properties(trace_minstack_alloc_${trace} PROPERTIES TIMEOUT 90 PASS_REGULAR_EXPRESSION "minstack ok")
endforeach()
