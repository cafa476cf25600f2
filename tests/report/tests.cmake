# tests/report: modules.c, symbolize.c and the writers (write_text.c, write_json.c, wbuf.c) linked directly into a
# Check suite, plus the JSON schema checked against the contract's example.
pkg_check_modules(LIBDW REQUIRED IMPORTED_TARGET libdw)
pkg_check_modules(LIBELF REQUIRED IMPORTED_TARGET libelf)

# The validator needs python3-jsonschema; use the first python3 that has
# it, preferring the system one (what Debian's package installs into).
set(ML_PYTHON_WITH_JSONSCHEMA "")
find_program(ML_PATH_PYTHON3 python3)
foreach(cand /usr/bin/python3 ${ML_PATH_PYTHON3})
  if(EXISTS ${cand} AND NOT ML_PYTHON_WITH_JSONSCHEMA)
    execute_process(COMMAND ${cand} -c "import jsonschema" RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
    if(rc EQUAL 0)
      set(ML_PYTHON_WITH_JSONSCHEMA ${cand})
    endif()
  endif()
endforeach()
if(NOT ML_PYTHON_WITH_JSONSCHEMA)
  message(FATAL_ERROR "tests/report needs python3 with jsonschema: apt-get install python3-jsonschema")
endif()

set(ML_REPORT_DIR ${CMAKE_CURRENT_LIST_DIR})
get_filename_component(ML_REPORT_ROOT ${CMAKE_CURRENT_LIST_DIR}/../.. ABSOLUTE)
set(ML_REPORT_SCHEMA ${ML_REPORT_ROOT}/docs/report.schema.json)
set(ML_REPORT_VALIDATE ${ML_REPORT_DIR}/validate.py)

# A library with debug info, dlopen'd and dlclose'd by the tests.
add_library(report_dso MODULE ${ML_REPORT_DIR}/report_dso.c)
target_compile_options(report_dso PRIVATE ${ML_WARN} -g -O0)

# A library with no debug info and no .symtab: .dynsym only.
add_library(report_nodebug MODULE ${ML_REPORT_DIR}/report_nodebug.c)
target_compile_options(report_nodebug PRIVATE ${ML_WARN} -g0 -O0)
target_link_options(report_nodebug PRIVATE -Wl,--strip-all)

# The same library with its debug info split off into .debug/ and found
# through .gnu_debuglink, as `objcopy --only-keep-debug` users ship it.
add_library(report_split MODULE ${ML_REPORT_DIR}/report_dso.c)
target_compile_options(report_split PRIVATE ${ML_WARN} -g -O0)
add_custom_command(TARGET report_split POST_BUILD
  WORKING_DIRECTORY $<TARGET_FILE_DIR:report_split>
  COMMAND ${CMAKE_COMMAND} -E make_directory .debug
  COMMAND ${CMAKE_OBJCOPY} --only-keep-debug $<TARGET_FILE_NAME:report_split> .debug/$<TARGET_FILE_NAME:report_split>.debug
  COMMAND ${CMAKE_OBJCOPY} --strip-debug --add-gnu-debuglink=.debug/$<TARGET_FILE_NAME:report_split>.debug
          $<TARGET_FILE_NAME:report_split>
  VERBATIM)

set(ML_REPORT_UNIT_SOURCES
  ${ML_REPORT_DIR}/test_report.c
  ${ML_REPORT_ROOT}/report/modules.c
  ${ML_REPORT_ROOT}/report/symbolize.c
  ${ML_REPORT_ROOT}/report/symfns.c
  ${ML_REPORT_ROOT}/report/dw.c
  ${ML_REPORT_ROOT}/report/wbuf.c
  ${ML_REPORT_ROOT}/report/write_text.c
  ${ML_REPORT_ROOT}/report/write_json.c
  ${ML_CORE_OS_SOURCES}
  ${ML_REPORT_ROOT}/core/fmt.c)

function(ml_report_unit name)
  add_executable(${name} ${ML_REPORT_UNIT_SOURCES})
  # -O0 -g: the tests assert exact lines of this file's own functions.
  target_compile_options(${name} PRIVATE ${ML_WARN} -g -O0 -fno-omit-frame-pointer ${ARGN})
  target_link_options(${name} PRIVATE ${ARGN})
  target_compile_definitions(${name} PRIVATE
    ML_DSO_PATH="$<TARGET_FILE:report_dso>"
    ML_NODEBUG_PATH="$<TARGET_FILE:report_nodebug>"
    ML_SPLIT_PATH="$<TARGET_FILE:report_split>"
    ML_PYTHON="${ML_PYTHON_WITH_JSONSCHEMA}"
    ML_VALIDATE="${ML_REPORT_VALIDATE}"
    ML_SCHEMA="${ML_REPORT_SCHEMA}")
  target_link_libraries(${name} PRIVATE PkgConfig::CHECK PkgConfig::LIBDW PkgConfig::LIBELF
    ${CMAKE_DL_LIBS} Threads::Threads)
  add_dependencies(${name} report_dso report_nodebug report_split)
  add_test(NAME ${name} COMMAND ${name})
endfunction()

ml_report_unit(report_unit)
# ASan + UBSan on the directly linked report code, unless the whole build
# already runs under another sanitizer.
if(NOT MALLARD_SANITIZE)
  ml_report_unit(report_unit_asan -fsanitize=address,undefined -fno-sanitize-recover=all)
endif()

# The schema accepts the contract's own example and is itself valid.
add_test(NAME report_schema_example
  COMMAND ${ML_PYTHON_WITH_JSONSCHEMA} ${ML_REPORT_VALIDATE} ${ML_REPORT_SCHEMA} ${ML_REPORT_DIR}/example.json)
