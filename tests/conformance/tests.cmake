# tests/conformance/tests.cmake: the conformance suite and the hazard tests.
#
# Every program here is built WITHOUT mallard and reaches it only through
# LD_PRELOAD, as a user's program would.  Each test runs once per backend;
# any "mallard:" line (a backend that fell back, a warning) or an ld.so
# "cannot be preloaded" warning fails it.
set(ML_CONF_DIR ${CMAKE_CURRENT_LIST_DIR})
set(ML_CONF_FAIL "mallard:;cannot be preloaded")
# Calls into the malloc family must stay calls: no folding of malloc+free
# pairs or of huge constant requests.
set(ML_CONF_FLAGS ${ML_WARN} -fno-builtin-malloc -fno-builtin-calloc -fno-builtin-realloc -fno-builtin-free)

function(ml_conf_program name)
  add_executable(${name} ${ARGN})
  target_compile_options(${name} PRIVATE ${ML_CONF_FLAGS})
  target_link_libraries(${name} PRIVATE Threads::Threads ${CMAKE_DL_LIBS})
endfunction()

function(ml_conf_dso name)
  add_library(${name} SHARED ${ARGN})
  target_compile_options(${name} PRIVATE ${ML_CONF_FLAGS})
  target_link_libraries(${name} PRIVATE ${CMAKE_DL_LIBS})
endfunction()

# Adds hazard_<what>_<backend> (or conformance_<backend>) running COMMAND...
# under the preload with that backend.
function(ml_conf_test name backend)
  add_test(NAME ${name} COMMAND ${ARGN})
  set_tests_properties(${name} PROPERTIES
    ENVIRONMENT "LD_PRELOAD=${ML_LIB};MALLARD_BACKEND=${backend}"
    FAIL_REGULAR_EXPRESSION "${ML_CONF_FAIL}"
    TIMEOUT 60
    LABELS "conformance")
endfunction()

# Adds a test that compares stdout and status without and with the preload
# (preload_cmp.sh); the script sets LD_PRELOAD itself.
function(ml_conf_cmp name backend preload)
  add_test(NAME ${name} COMMAND sh ${ML_CONF_DIR}/preload_cmp.sh ${preload} -- ${ARGN})
  set_tests_properties(${name} PROPERTIES
    ENVIRONMENT "MALLARD_BACKEND=${backend}"
    FAIL_REGULAR_EXPRESSION "${ML_CONF_FAIL}"
    TIMEOUT 60
    LABELS "conformance")
endfunction()

# FILTERS is a list of sed commands, each applied to both stdouts.
function(ml_conf_cmp_filtered name backend filters preload)
  set(fargs)
  foreach(f ${filters})
    list(APPEND fargs -f ${f})
  endforeach()
  add_test(NAME ${name} COMMAND sh ${ML_CONF_DIR}/preload_cmp.sh ${fargs} ${preload} -- ${ARGN})
  set_tests_properties(${name} PROPERTIES
    ENVIRONMENT "MALLARD_BACKEND=${backend}"
    FAIL_REGULAR_EXPRESSION "${ML_CONF_FAIL}"
    TIMEOUT 60
    LABELS "conformance")
endfunction()

# ---- programs -------------------------------------------------------------
ml_conf_program(conf_conformance ${ML_CONF_DIR}/conformance.c)
target_link_libraries(conf_conformance PRIVATE PkgConfig::CHECK)

ml_conf_dso(conf_hz_ctor_lib ${ML_CONF_DIR}/hz_ctor_lib.c)
ml_conf_program(conf_hz_ctor_main ${ML_CONF_DIR}/hz_ctor_main.c)
target_link_libraries(conf_hz_ctor_main PRIVATE conf_hz_ctor_lib)
ml_conf_dso(conf_hz_preload2 ${ML_CONF_DIR}/hz_preload2.c)

ml_conf_program(conf_hz_glibc_apis ${ML_CONF_DIR}/hz_glibc_apis.c)
ml_conf_program(conf_hz_spawn ${ML_CONF_DIR}/hz_spawn.c)
ml_conf_dso(conf_hz_tls_lib ${ML_CONF_DIR}/hz_tls_lib.c)
ml_conf_program(conf_hz_tls ${ML_CONF_DIR}/hz_tls.c)
ml_conf_dso(conf_hz_dlopen_lib ${ML_CONF_DIR}/hz_dlopen_lib.c)
ml_conf_dso(conf_hz_deep_lib ${ML_CONF_DIR}/hz_deep_lib.c)
ml_conf_program(conf_hz_dlopen ${ML_CONF_DIR}/hz_dlopen.c)
ml_conf_program(conf_hz_oom ${ML_CONF_DIR}/hz_oom.c)
ml_conf_program(conf_hz_exit_main ${ML_CONF_DIR}/hz_exit_main.c)
# C++: the same flags less -Wmissing-prototypes, which is C-only.
set(ML_CONF_CXX_FLAGS ${ML_CONF_FLAGS})
list(REMOVE_ITEM ML_CONF_CXX_FLAGS -Wmissing-prototypes)
add_executable(conf_hz_thread_local ${ML_CONF_DIR}/hz_thread_local.cpp)
target_compile_options(conf_hz_thread_local PRIVATE ${ML_CONF_CXX_FLAGS})
target_compile_features(conf_hz_thread_local PRIVATE cxx_std_17)
target_link_libraries(conf_hz_thread_local PRIVATE Threads::Threads)

# A fully static program: LD_PRELOAD cannot reach it (HAZARDS §15).
add_executable(conf_hz_static ${ML_CONF_DIR}/hz_static.c)
target_compile_options(conf_hz_static PRIVATE ${ML_CONF_FLAGS})
target_link_options(conf_hz_static PRIVATE -static)
if(MALLARD_SANITIZE)
  # a sanitizer runtime cannot be linked statically: build this one plain
  target_compile_options(conf_hz_static PRIVATE -fno-sanitize=all)
  target_link_options(conf_hz_static PRIVATE -fno-sanitize=all)
endif()

# ---- the library's exports (backend-independent) ---------------------------
add_test(NAME hazard_exports COMMAND sh ${ML_CONF_DIR}/check_exports.sh ${ML_LIB})
set_tests_properties(hazard_exports PROPERTIES TIMEOUT 30 LABELS "conformance")

# ---- per backend ------------------------------------------------------------
# Addresses in ldd's output move with ASLR.
set(ML_CONF_LDD_FILTER "s/ (0x[0-9a-f]*)$//")
foreach(b ${ML_BACKENDS})
  ml_conf_test(conformance_${b} ${b} $<TARGET_FILE:conf_conformance>)

  # §1/§7: bootstrap and init order
  ml_conf_cmp(hazard_true_${b} ${b} ${ML_LIB} /bin/true)
  ml_conf_cmp_filtered(hazard_env_${b} ${b} "/^LD_PRELOAD=/d" ${ML_LIB} env)
  ml_conf_test(hazard_ctor_${b} ${b} $<TARGET_FILE:conf_hz_ctor_main> mallard)
  ml_conf_cmp(hazard_preload2_first_${b} ${b} "$<TARGET_FILE:conf_hz_preload2>:${ML_LIB}"
    $<TARGET_FILE:conf_hz_ctor_main>)
  ml_conf_cmp(hazard_preload2_last_${b} ${b} "${ML_LIB}:$<TARGET_FILE:conf_hz_preload2>"
    $<TARGET_FILE:conf_hz_ctor_main>)
  ml_conf_cmp_filtered(hazard_preload2_env_${b} ${b} "/^LD_PRELOAD=/d"
    "$<TARGET_FILE:conf_hz_preload2>:${ML_LIB}" env)

  # §2: pointers crossing between glibc and the program
  ml_conf_test(hazard_glibc_apis_${b} ${b} $<TARGET_FILE:conf_hz_glibc_apis> ${CMAKE_CURRENT_BINARY_DIR})

  # §5: thread exit
  ml_conf_test(hazard_thread_local_${b} ${b} $<TARGET_FILE:conf_hz_thread_local>)
  ml_conf_test(hazard_exit_main_${b} ${b} $<TARGET_FILE:conf_hz_exit_main>)

  # §9: posix_spawn and vfork from a threaded parent
  ml_conf_test(hazard_spawn_${b} ${b} $<TARGET_FILE:conf_hz_spawn>)

  # §11: dynamic TLS of a dlopen'd library
  ml_conf_test(hazard_tls_${b} ${b} $<TARGET_FILE:conf_hz_tls> $<TARGET_FILE:conf_hz_tls_lib>)

  # §12: dlopen/dlclose cycles and RTLD_DEEPBIND
  ml_conf_test(hazard_dlopen_${b} ${b} $<TARGET_FILE:conf_hz_dlopen> loop $<TARGET_FILE:conf_hz_dlopen_lib>)
  # mallard drops RTLD_DEEPBIND (preload/hooks.c) and says so in one line;
  # the library must then run correctly: "deepbind ok" and exit 0.
  ml_conf_test(hazard_deepbind_${b} ${b} $<TARGET_FILE:conf_hz_dlopen> deepbind $<TARGET_FILE:conf_hz_deep_lib>)
  set_tests_properties(hazard_deepbind_${b} PROPERTIES
    FAIL_REGULAR_EXPRESSION "cannot be preloaded;invalid free;free\\(\\): invalid pointer"
    PASS_REGULAR_EXPRESSION "mallard: dlopen\\([^\n]*RTLD_DEEPBIND\\): the flag is dropped[^\n]*\n(.|\n)*deepbind ok|deepbind ok(.|\n)*mallard: dlopen\\([^\n]*RTLD_DEEPBIND\\): the flag is dropped")
  # dlopen keeps the caller's RPATH ($ORIGIN) although mallard interposes it
  ml_conf_test(hazard_dlopen_rpath_${b} ${b} $<TARGET_FILE:conf_hz_rpath>)

  # §15: a static binary is untouched
  ml_conf_cmp(hazard_static_${b} ${b} ${ML_LIB} $<TARGET_FILE:conf_hz_static>)

  # §16: ldd and bash command substitution
  # ldd also lists the preload and its dependencies: "-x LIB" (a list that
  # expands to two words before the PRELOAD argument) drops those lines.
  ml_conf_cmp_filtered(hazard_ldd_${b} ${b} "${ML_CONF_LDD_FILTER}" "-x;${ML_LIB};${ML_LIB}"
    sh -c "ldd \"$(command -v bash)\"")
  ml_conf_cmp(hazard_bash_${b} ${b} ${ML_LIB} bash -c "x=$(echo hi); y=`printf '%s\\n' a b | sort -r`; echo $x $y")

  # §18: out of address space
  ml_conf_test(hazard_oom_${b} ${b} $<TARGET_FILE:conf_hz_oom>)

  # §14: the harness itself fails when ld.so refuses a preload library
  # (preload_cmp.sh exits 3), rather than passing a run without mallard.
  add_test(NAME hazard_badpreload_${b}
    COMMAND sh -c "sh \"$0\" \"$1\" -- true; test $? -eq 3"
      ${ML_CONF_DIR}/preload_cmp.sh "${ML_LIB}:/nonexistent/libmallard-missing.so")
  set_tests_properties(hazard_badpreload_${b} PROPERTIES
    ENVIRONMENT "MALLARD_BACKEND=${b}" TIMEOUT 30 LABELS "conformance")
endforeach()

# dlopen by a bare name, found through the program's RUNPATH $ORIGIN/rpath
add_library(conf_hz_rpath_lib SHARED ${ML_CONF_DIR}/hz_rpath_lib.c)
set_target_properties(conf_hz_rpath_lib PROPERTIES OUTPUT_NAME hzrpath
  LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/rpath)
add_executable(conf_hz_rpath ${ML_CONF_DIR}/hz_rpath.c)
target_link_libraries(conf_hz_rpath PRIVATE ${CMAKE_DL_LIBS})
add_dependencies(conf_hz_rpath conf_hz_rpath_lib)
set_target_properties(conf_hz_rpath PROPERTIES BUILD_RPATH "\$ORIGIN/rpath" SKIP_BUILD_RPATH FALSE)

# mallinfo2 / malloc_trim / mallopt / malloc_info / malloc_stats (§10)
add_executable(conf_hz_introspect ${ML_CONF_DIR}/hz_introspect.c)
target_compile_options(conf_hz_introspect PRIVATE ${ML_CONF_FLAGS})
foreach(b ${ML_BACKENDS})
  add_test(NAME hazard_introspect_${b} COMMAND $<TARGET_FILE:conf_hz_introspect>)
  set_tests_properties(hazard_introspect_${b} PROPERTIES
    ENVIRONMENT "LD_PRELOAD=${ML_LIB};MALLARD_BACKEND=${b}"
    PASS_REGULAR_EXPRESSION "introspect ok" FAIL_REGULAR_EXPRESSION "mallard:;cannot be preloaded"
    TIMEOUT 60 LABELS "conformance")
endforeach()
add_test(NAME hazard_introspect_freelist_notrace COMMAND $<TARGET_FILE:conf_hz_introspect>)
set_tests_properties(hazard_introspect_freelist_notrace PROPERTIES
  ENVIRONMENT "LD_PRELOAD=${ML_LIB};MALLARD_BACKEND=freelist;MALLARD_TRACE=0"
  PASS_REGULAR_EXPRESSION "introspect ok" FAIL_REGULAR_EXPRESSION "mallard:;cannot be preloaded"
  TIMEOUT 60 LABELS "conformance")

# fork from a signal handler that interrupted malloc, single-threaded (§4)
add_executable(conf_hz_sigfork ${ML_CONF_DIR}/hz_sigfork.c)
target_compile_options(conf_hz_sigfork PRIVATE ${ML_CONF_FLAGS})
foreach(b ${ML_BACKENDS})
  add_test(NAME hazard_sigfork_${b} COMMAND $<TARGET_FILE:conf_hz_sigfork>)
  set_tests_properties(hazard_sigfork_${b} PROPERTIES
    ENVIRONMENT "LD_PRELOAD=${ML_LIB};MALLARD_BACKEND=${b};MALLARD_REPORT=/dev/null"
    PASS_REGULAR_EXPRESSION "sigfork ok" FAIL_REGULAR_EXPRESSION "mallard:;cannot be preloaded;stuck"
    TIMEOUT 90 LABELS "conformance")
endforeach()

# The bytes malloc_usable_size promised survive realloc, tracer on and off.
add_executable(conf_hz_usable_realloc ${ML_CONF_DIR}/hz_usable_realloc.c)
target_compile_options(conf_hz_usable_realloc PRIVATE ${ML_CONF_FLAGS})
foreach(b ${ML_BACKENDS})
  foreach(trace 1 0)
    add_test(NAME hazard_usable_realloc_${b}_${trace} COMMAND $<TARGET_FILE:conf_hz_usable_realloc>)
    set_tests_properties(hazard_usable_realloc_${b}_${trace} PROPERTIES
      ENVIRONMENT "LD_PRELOAD=${ML_LIB};MALLARD_BACKEND=${b};MALLARD_TRACE=${trace}"
      PASS_REGULAR_EXPRESSION "usable realloc ok" FAIL_REGULAR_EXPRESSION "mallard:;cannot be preloaded;lost"
      TIMEOUT 60 LABELS "conformance")
  endforeach()
endforeach()
include(${ML_CONF_DIR}/suite.cmake)
