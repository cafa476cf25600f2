# tests/bumparena: the bump and arena backends.
#   bumparena_<case>: the Check suite of unit.c, one ctest entry per case,
#     linked straight to mallard_core (no preload).
#   bumparena_preload_<backend>_<program>: real programs under LD_PRELOAD,
#     stdout and exit status compared with a run without mallard.
add_executable(bumparena_unit ${CMAKE_CURRENT_LIST_DIR}/unit.c)
target_compile_options(bumparena_unit PRIVATE ${ML_WARN})
target_link_libraries(bumparena_unit PRIVATE mallard_core PkgConfig::CHECK Threads::Threads)

foreach(case align realloc recycle arena threads lifecycle)
  add_test(NAME bumparena_${case} COMMAND bumparena_unit)
  set_tests_properties(bumparena_${case} PROPERTIES ENVIRONMENT "CK_RUN_CASE=${case}" TIMEOUT 600)
endforeach()

set(ML_BA_COMPARE ${CMAKE_CURRENT_LIST_DIR}/preload_compare.sh)
foreach(backend bump arena)
  foreach(prog lsdoc python pythreads sort git gitrepo)
    add_test(NAME bumparena_preload_${backend}_${prog} COMMAND sh ${ML_BA_COMPARE} ${ML_LIB} ${backend} ${prog})
    set_tests_properties(bumparena_preload_${backend}_${prog} PROPERTIES TIMEOUT 300)
  endforeach()
endforeach()

# bumparena_fused_<backend>: the shim's inline malloc/calloc/free for bump
# and arena (preload/fast.h), preloaded with the tracer off.
add_executable(bumparena_fused ${CMAKE_CURRENT_LIST_DIR}/fused.c)
target_compile_options(bumparena_fused PRIVATE ${ML_WARN})
target_link_libraries(bumparena_fused PRIVATE Threads::Threads)
foreach(backend bump arena)
  add_test(NAME bumparena_fused_${backend}
           COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/fused.sh ${ML_LIB} $<TARGET_FILE:bumparena_fused> ${backend})
  set_tests_properties(bumparena_fused_${backend} PROPERTIES TIMEOUT 300)
endforeach()
