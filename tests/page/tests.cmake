# tests/page/tests.cmake: the page backend.
#   page_unit                 Check suite on the backend's slots, linked to
#                             mallard_core directly.
#   page_<fixture>_<how>      one bad access under LD_PRELOAD: it must die of
#                             SIGSEGV under the page backend in the mode that
#                             guards it, and run normally everywhere else.
set(ML_PAGE_DIR ${CMAKE_CURRENT_LIST_DIR})

add_executable(page_unit ${ML_PAGE_DIR}/page_unit.c)
target_compile_options(page_unit PRIVATE ${ML_WARN})
target_include_directories(page_unit PRIVATE ${PROJECT_SOURCE_DIR})
target_link_libraries(page_unit PRIVATE mallard_core PkgConfig::CHECK Threads::Threads)
add_test(NAME page_unit COMMAND page_unit)

set(ML_PAGE_FIXTURES overflow underflow use_after_free exact13)
foreach(fx ${ML_PAGE_FIXTURES})
  add_executable(page_fx_${fx} ${ML_PAGE_DIR}/page_${fx}.c)
  target_compile_options(page_fx_${fx} PRIVATE ${ML_WARN})
endforeach()

# ml_page_case(NAME SEGV|OK FIXTURE ARGS ENV...): ARGS is a ;-list of the
# fixture's arguments ("" for none), ENV the variables besides LD_PRELOAD.
function(ml_page_case name expect fixture args)
  add_test(NAME ${name}
    COMMAND sh ${ML_PAGE_DIR}/expect_signal.sh ${expect} $<TARGET_FILE:page_fx_${fixture}> ${args})
  set_tests_properties(${name} PROPERTIES ENVIRONMENT "LD_PRELOAD=${ML_LIB};${ARGN}")
endfunction()

# Caught: each fixture under the mode that guards its access, with every
# other option at its default (the tracing decorator included), as a user
# would run it.
ml_page_case(page_overflow_page SEGV overflow "" MALLARD_BACKEND=page)
ml_page_case(page_underflow_page_before SEGV underflow "" MALLARD_BACKEND=page MALLARD_PAGE_GUARD=before)
ml_page_case(page_use_after_free_page SEGV use_after_free "" MALLARD_BACKEND=page)
ml_page_case(page_use_after_free_page_before SEGV use_after_free "" MALLARD_BACKEND=page
  MALLARD_PAGE_GUARD=before)
ml_page_case(page_exact13_page_align SEGV exact13 "" MALLARD_BACKEND=page MALLARD_PAGE_ALIGN=1)

# The backend alone, without the tracing decorator in front of it: its
# own free-time checks must work whatever the decorator does with frees.
ml_page_case(page_use_after_free_page_notrace SEGV use_after_free "" MALLARD_BACKEND=page MALLARD_TRACE=0)
ml_page_case(page_exact13_page_canary_notrace OK exact13 scribble MALLARD_BACKEND=page MALLARD_TRACE=0
  "EXPECT_STDERR=mallard: page backend: .*block 0x[0-9a-f]+ \\(13 bytes\\) were overwritten")

# Not over-eager: accesses the other mode leaves in bounds or in canary
# slack must not fault.
ml_page_case(page_overflow_page_before OK overflow "" MALLARD_BACKEND=page MALLARD_PAGE_GUARD=before)
ml_page_case(page_underflow_page OK underflow "" MALLARD_BACKEND=page)
ml_page_case(page_exact13_page OK exact13 "" MALLARD_BACKEND=page)

# A real write into the slack is not a fault but the canary reports it.
ml_page_case(page_exact13_page_canary OK exact13 scribble MALLARD_BACKEND=page
  "EXPECT_STDERR=mallard: page backend: .*block 0x[0-9a-f]+ \\(13 bytes\\) were overwritten")

# Every other backend runs every fixture normally.
foreach(backend ${ML_BACKENDS})
  if(NOT backend STREQUAL "page")
    foreach(fx ${ML_PAGE_FIXTURES})
      ml_page_case(page_${fx}_${backend} OK ${fx} "" MALLARD_BACKEND=${backend})
    endforeach()
  endif()
endforeach()
